"""The asking device of `covey bench delegate`, in a process of its own, as a real device is.

`python -m app.bench.delegate_peer ROOT MAX_TOKENS`: opens the scratch home ROOT/bench-a that
the bench paired, runs its node (listening on loopback; the port is the first line printed),
and for each `{"do": "ask", "runner": DEVICE}` line on stdin asks for an answer run there. It
prints the job; told `{"final": LENGTH}` (the runner finished), it prints — once it has the
whole text — when it had how much of it: live (a watcher's socket, as `covey ask` has one) or
in its store, whichever came first.
Times are `time.perf_counter()`, the system-wide monotonic clock on Linux, so the bench's own
process can compare them with when its model produced each piece.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from app.assistant import Assistant
from app.bench.sync import Device
from app.config import Config
from app.delegation import request_job
from models.base import GenerationParams
from models.fake import FakeModel
from sync.live import Listener
from sync.node import Node, NodeOptions
from sync.store import StoreEvent

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def main(root: Path, max_tokens: int) -> None:
    sys.setswitchinterval(0.0005)  # (as `covey serve` does)
    a = Device(root, "bench-a")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    node = Node(a.store, a.identity, a.name, NodeOptions(listen=("127.0.0.1", 0)))
    thread = threading.Thread(target=loop.run_until_complete,
                              args=(node.async_run(stop, lambda n: ready.set()),))
    thread.start()
    ready.wait(30)
    assert node.bound is not None
    _say({"port": node.bound[1]})
    requester = Assistant(a.store, FakeModel(name="requester"), Config(auto_title=False))
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=1)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("do") != "ask":
                break
            _say({"seen": _ask(a, requester, str(command["runner"]), params, sys.stdin)})
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        a.close()


def _ask(a: Device, requester: Assistant, runner: str, params: GenerationParams,
         commands: TextIO) -> list[tuple[float, int]]:
    seen: list[tuple[float, int]] = []  # (time, length of the answer had without a gap)
    answer: list[str] = []
    final = [-1]
    whole = threading.Event()

    def had(length: int) -> None:
        seen.append((time.perf_counter(), length))
        if final[0] >= 0 and length >= final[0]:
            whole.set()

    def on_store(event: StoreEvent) -> None:
        if answer and event.origin == "remote":
            # (the view row was refreshed in the import's transaction: a cheap, honest read)
            length = a.store.text_length(answer[0])
            if length is not None:
                had(length)

    listener = Listener(a.store.locks_dir)  # (as `covey ask` does, before it asks)
    stop_listening = threading.Event()

    def listen() -> None:
        have = 0
        while not stop_listening.is_set():
            for piece in listener.wait(0.05):
                if answer and piece.message_id == answer[0] and piece.offset <= have:
                    have = max(have, piece.offset + len(piece.text))
                    had(have)

    listening = threading.Thread(target=listen)
    listening.start()
    unsubscribe = a.store.subscribe(on_store)
    try:
        turn, aid = request_job(requester, PROMPT, None, None, runner, params)
        answer.append(turn.answer_id)
        _say({"job": [turn.conversation_id, turn.answer_id, aid]})
        final[0] = int(json.loads(commands.readline())["final"])
        if any(n >= final[0] for _, n in list(seen)):
            whole.set()
        if not whole.wait(60):
            raise TimeoutError("the whole answer never reached the asking device")
    finally:
        stop_listening.set()
        listening.join()
        listener.close()
        unsubscribe()
    return sorted(seen)


def _say(message: object) -> None:
    print(json.dumps(message), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
