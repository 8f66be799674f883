"""`covey bench delegate`: a generation handed to another device, measured in one run.

Two devices on loopback (real TLS, real nodes, scratch homes), each in a process of its own as
real devices are: A (app/bench/delegate_peer.py, a child process) asks, B (this process) runs
its model. Figures:
- extra lag per token: when A has a piece of text — live (a watcher's socket on A, fed by A's
  node from B's PIECE frames, as `covey ask` on A gets it) or in its store, whichever first —
  minus when B's model produced it (p50/p99), i.e. what delegation adds on top of generation;
- delegated throughput (tokens / time until A has the whole answer) against B answering the
  same prompt locally, in the same run, rounds alternating.
Both processes share this machine's cores, so what A does costs B's model too (unlike two
devices).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from app.assistant import Assistant
from app.bench.delegate_peer import PROMPT
from app.bench.sync import Device, paired, wait_for
from app.config import Config
from app.delegation import AttemptRunner, JobRef, current_job
from models.base import ChatModel, GenerationParams
from sync.live import Publisher
from sync.node import Node, NodeOptions

_PHASES: dict[str, list[float]] = {}


def run(model: ChatModel, max_tokens: int = 128, rounds: int = 3) -> dict[str, Any]:
    # As `covey serve` does (B's node, in a real household): the model's thread gets the GIL
    # back soon after each token, though the node's threads run beside it.
    sys.setswitchinterval(0.0005)
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=1)
    lags: list[float] = []
    ratios: list[float] = []
    delegated_rates: list[float] = []
    local_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="covey-bench-delegate-") as tmp:
        a, b = paired(Path(tmp))
        a.close()  # (A is the child's)
        peer = subprocess.Popen(
            [sys.executable, "-m", "app.bench.delegate_peer", tmp, str(max_tokens)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert peer.stdin is not None and peer.stdout is not None
            port = int(json.loads(peer.stdout.readline())["port"])
            local = Assistant(b.store, model, Config(auto_title=False))
            local.ask("warm up", params=GenerationParams(max_tokens=8, temperature=0.0))
            with _Node(b, port) as node:
                wait_for(lambda: node.caught_up(a.identity.device_id))
                live = Publisher(b.store.locks_dir, b.store.device_id, node.node)
                runner = AttemptRunner(b.store, model, params, live=live)
                for _ in range(rounds):
                    rate, round_lags = _delegated_once(peer, b, runner)
                    delegated_rates.append(rate)
                    lags += round_lags
                    local_rate = _local_once(local, params)
                    local_rates.append(local_rate)
                    ratios.append(rate / local_rate)
            peer.stdin.write(json.dumps({"do": "stop"}) + "\n")
            peer.stdin.flush()
            peer.wait(timeout=30)
        finally:
            if peer.poll() is None:
                peer.kill()
            b.close()
    lags.sort()
    phases = {k: round(statistics.median(v) * 1000, 1) for k, v in _PHASES.items()}
    _PHASES.clear()
    return {
        "model": model.info.name,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "lag_p50_ms": round(statistics.median(lags) * 1000, 1),
        "lag_p99_ms": round(lags[max(0, int(len(lags) * 0.99) - 1)] * 1000, 1),
        "delegated_tok_s": round(statistics.median(delegated_rates), 2),
        "runner_local_tok_s": round(statistics.median(local_rates), 2),
        "throughput_ratio": round(statistics.median(ratios), 4),
        **phases,
    }


class _Node:
    """B's node, on a loop of its own thread, dialling A."""

    def __init__(self, b: Device, port: int) -> None:
        self.node = Node(b.store, b.identity, b.name, NodeOptions(peers=[("127.0.0.1", port)]))
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self.node.async_run(self._stop),))

    def caught_up(self, device_id: str) -> bool:
        conn = self.node.connections.get(device_id)
        return conn is not None and conn.link.caught_up

    def __enter__(self) -> _Node:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


def _delegated_once(peer: subprocess.Popen[str], b: Device,
                    runner: AttemptRunner) -> tuple[float, list[float]]:
    assert peer.stdin is not None and peer.stdout is not None
    peer.stdin.write(json.dumps({"do": "ask", "runner": b.store.device_id}) + "\n")
    peer.stdin.flush()
    conv_id, answer_id, aid = json.loads(peer.stdout.readline())["job"]
    ref = JobRef(conv_id, answer_id)

    def job_arrived() -> bool:
        if ref.conversation_id not in b.store.doc_ids():
            return False
        _, job = current_job(b.store, ref)
        return job is not None and job.current is not None and job.current.id == aid

    wait_for(job_arrived)
    produced: list[tuple[float, int]] = []  # (time, length) as B's model produced it
    total = [0]

    def on_piece(piece: str) -> None:
        total[0] += len(piece)
        produced.append((time.perf_counter(), total[0]))

    started = time.perf_counter()
    # (A hears the answer as another device does, live and through its store: the bench hears
    # B's pieces here only to time them.)
    runner.run(ref, aid, on_piece, heard_here=False)
    peer.stdin.write(json.dumps({"final": total[0]}) + "\n")
    peer.stdin.flush()
    seen = [(float(t), int(n)) for t, n in json.loads(peer.stdout.readline())["seen"]]
    finished = next(t for t, n in seen if n >= total[0])
    for key, value in (("delegated_first_piece_ms", produced[0][0] - started),
                       ("delegated_decode_ms", produced[-1][0] - produced[0][0]),
                       ("delegated_tail_ms", finished - produced[-1][0])):
        _PHASES.setdefault(key, []).append(value)
    lags = []
    for t_made, length in produced:
        shown = next((t for t, n in seen if n >= length), None)
        if shown is not None:
            lags.append(max(0.0, shown - t_made))
    return len(produced) / (finished - started), lags


def _local_once(local: Assistant, params: GenerationParams) -> float:
    times: list[float] = []
    started = time.perf_counter()
    local.ask(PROMPT, params=params, on_piece=lambda p: times.append(time.perf_counter()))
    ended = time.perf_counter()
    for key, value in (("local_first_piece_ms", times[0] - started),
                       ("local_decode_ms", times[-1] - times[0]),
                       ("local_tail_ms", ended - times[-1])):
        _PHASES.setdefault(key, []).append(value)
    return len(times) / (ended - started)
