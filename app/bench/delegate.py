"""`covey bench delegate`: a generation handed to another device, measured in one run.

Two devices in this process on loopback (real TLS, real nodes, scratch homes): A asks, B runs
its model. Figures:
- extra lag per token: when A has a piece of text — live (a watcher's socket on A, fed by A's
  node from B's PIECE frames, as `covey ask` on A gets it) or in its store, whichever first —
  minus when B's model produced it (p50/p99), i.e. what delegation adds on top of generation;
- delegated throughput (tokens / time until A has the whole answer) against B answering the
  same prompt locally, in the same run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from app.assistant import Assistant
from app.bench.sync import Running, paired, wait_for
from app.config import Config
from app.delegation import AttemptRunner, JobRef, current_job, request_job
from models.base import ChatModel, GenerationParams
from models.fake import FakeModel
from sync.live import Listener, Publisher
from sync.store import StoreEvent

_PHASES: dict[str, list[float]] = {}
PROMPT = "Write a long story about a lighthouse keeper and a storm."


def run(model: ChatModel, max_tokens: int = 128, rounds: int = 3) -> dict[str, Any]:
    # As `covey serve` does (B's node, in a real household): the model's thread gets the GIL
    # back soon after each token, though this process runs both devices' nodes beside it.
    sys.setswitchinterval(0.0005)
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=1)
    lags: list[float] = []
    ratios: list[float] = []
    delegated_rates: list[float] = []
    local_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="covey-bench-delegate-") as tmp:
        a, b = paired(Path(tmp))
        try:
            requester = Assistant(a.store, FakeModel(name="requester"), Config(auto_title=False))
            local = Assistant(b.store, model, Config(auto_title=False))
            local.ask("warm up", params=GenerationParams(max_tokens=8, temperature=0.0))
            with Running(a, b) as running:
                wait_for(running.caught_up)
                live = Publisher(b.store.locks_dir, b.store.device_id, running.nodes["b"])
                runner = AttemptRunner(b.store, model, params, live=live)
                for _ in range(rounds):
                    rate, round_lags = _delegated_once(a, b, requester, runner, params)
                    delegated_rates.append(rate)
                    lags += round_lags
                    local_rate = _local_once(local, params)
                    local_rates.append(local_rate)
                    ratios.append(rate / local_rate)
        finally:
            a.close()
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


def _delegated_once(a: Any, b: Any, requester: Assistant, runner: AttemptRunner,
                    params: GenerationParams) -> tuple[float, list[float]]:
    turn, aid = request_job(requester, PROMPT, None, None, b.identity.device_id, params)
    ref = JobRef(turn.conversation_id, turn.answer_id)
    seen: list[tuple[float, int]] = []  # (time, length of the answer) as A sees it

    def on_a(event: StoreEvent) -> None:
        if event.doc_id == ref.conversation_id and event.origin == "remote":
            # the view row was refreshed in the import's transaction: a cheap, honest read
            length = a.store.text_length(ref.answer_id)
            if length is not None:
                seen.append((time.perf_counter(), length))

    unsubscribe = a.store.subscribe(on_a)
    listener = Listener(a.store.locks_dir)  # (as `covey ask` on A does, before it asks)
    stop_listening = threading.Event()

    def listen() -> None:
        have = 0  # (text counts as had only without a gap before it, as a watcher shows it)
        while not stop_listening.is_set():
            for piece in listener.wait(0.05):
                if piece.message_id == ref.answer_id and piece.offset <= have:
                    have = max(have, piece.offset + len(piece.text))
                    seen.append((time.perf_counter(), have))

    listening = threading.Thread(target=listen)
    listening.start()

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
    thread = threading.Thread(target=runner.run, args=(ref, aid, on_piece),
                              kwargs={"heard_here": False})
    thread.start()
    thread.join()
    final = total[0]
    wait_for(lambda: any(n >= final for _, n in list(seen)), timeout=30)
    stop_listening.set()
    listening.join()
    listener.close()
    unsubscribe()
    seen.sort()
    finished = next(t for t, n in seen if n >= final)
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
