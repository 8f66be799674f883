"""`covey bench api`: an answer through the HTTP API against the same answer by `covey ask`.

One run, the same model, prompt and settings (greedy, fixed seed), rounds alternating:
- ask: what `covey ask` does on this device (record the prompt, stream the answer into the
  store), in this process;
- api: a streaming chat-completions request to a `covey serve` started for the bench (scratch
  home, loopback), timed by the client from sending the request.
Figures: time to the first token and tokens/s (pieces after the first, over the time they
took), medians; the API's throughput as a share of ask's (the median of each round's ratio),
and what it adds to the first token.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.assistant import Assistant
from app.bench.clone import free_port, start_serve
from app.config import Config, Paths
from models.base import ChatModel, GenerationParams
from sync.store import Store

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def run(model: ChatModel, spec: str | None, max_tokens: int = 128, rounds: int = 5,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = progress or (lambda _: None)
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=1)
    ask_first: list[float] = []
    ask_rate: list[float] = []
    api_first: list[float] = []
    api_rate: list[float] = []
    with tempfile.TemporaryDirectory(prefix="covey-bench-api-") as tmp:
        serve, url = _serve(Path(tmp) / "served", spec)
        paths = Paths.at(Path(tmp) / "asker")
        paths.ensure()
        store = Store.open(paths, "BENCH-ASKER")
        try:
            assistant = Assistant(store, model, Config(auto_title=False))
            _api_once(url, model.info.name, params)  # warm up both sides
            _ask_once(assistant, params)
            for n in range(rounds):
                say(f"round {n + 1}/{rounds}")
                first, rate = _ask_once(assistant, params)
                ask_first.append(first)
                ask_rate.append(rate)
                first, rate = _api_once(url, model.info.name, params)
                api_first.append(first)
                api_rate.append(rate)
            freed = [_hang_up_then_ask(url, model.info.name, params) for _ in range(3)]
        finally:
            store.close()
            serve.terminate()
            serve.wait(timeout=30)
    ms = 1000.0
    return {
        "model": model.info.name, "max_tokens": max_tokens, "rounds": rounds,
        "ask_first_token_ms": round(statistics.median(ask_first) * ms, 1),
        "api_first_token_ms": round(statistics.median(api_first) * ms, 1),
        "api_adds_to_first_token_ms": round(
            (statistics.median(api_first) - statistics.median(ask_first)) * ms, 1),
        "ask_tok_s": round(statistics.median(ask_rate), 1),
        "api_tok_s": round(statistics.median(api_rate), 1),
        # (each round's pair ran back to back: the median of the pairs' ratios leaves out what
        # the machine did between rounds, as `covey bench model` does)
        "api_throughput_ratio": round(statistics.median(
            api / ask for api, ask in zip(api_rate, ask_rate)), 3),
        "api_throughput_ratio_range": [round(min(a / b for a, b in zip(api_rate, ask_rate)), 3),
                                       round(max(a / b for a, b in zip(api_rate, ask_rate)), 3)],
        "after_hang_up_first_token_ms": round(statistics.median(freed) * ms, 1),
        "targets": "api_throughput_ratio >= 0.95, api_adds_to_first_token_ms <= 20, "
                   "after_hang_up_first_token_ms <= 1000",
    }


def _rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def _ask_once(assistant: Assistant, params: GenerationParams) -> tuple[float, float]:
    stamps: list[float] = []
    started = time.perf_counter()
    turn = assistant.start(PROMPT)
    assistant.answer(turn, params, on_piece=lambda _: stamps.append(time.perf_counter()))
    return stamps[0] - started, _rate(stamps)


def _api_once(url: str, model: str, params: GenerationParams) -> tuple[float, float]:
    """One streamed request, read line by line as it arrives (http.client: a plain client)."""
    body = json.dumps({"model": model, "stream": True, "max_tokens": params.max_tokens,
                       "temperature": params.temperature, "seed": params.seed,
                       "messages": [{"role": "user", "content": PROMPT}]})
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    stamps: list[float] = []
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    try:
        started = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body,
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"the API said {response.status}: {response.read()[:500]!r}")
        while line := response.readline():
            text = line.decode().strip()
            if not text.startswith("data: ") or text == "data: [DONE]":
                continue
            chunk = json.loads(text[6:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
    finally:
        conn.close()
    return stamps[0] - started, _rate(stamps)


def _hang_up_then_ask(url: str, model: str, params: GenerationParams) -> float:
    """A client reads a few pieces of a long answer and hangs up; how soon the next request's
    first token comes (the model must be free again: the abandoned answer stopped)."""
    body = json.dumps({"model": model, "stream": True, "max_tokens": 2000,
                       "messages": [{"role": "user", "content": PROMPT}]})
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    for _ in range(6):
        response.readline()
    conn.sock.close()  # (hang up mid-answer, as a client that is closed does)
    conn.close()
    return _api_once(url, model, params)[0]


def _serve(home: Path, spec: str | None) -> tuple[subprocess.Popen[bytes], str]:
    home.mkdir(parents=True)
    port = free_port()
    (home / "config.toml").write_text(
        f'device_name = "bench-api"\nlisten = "127.0.0.1:{free_port()}"\nmdns = false\n'
        f'auto_title = false\nmodel = {json.dumps(spec or "")}\n'
        f'api_listen = "127.0.0.1:{port}"\n')
    proc = start_serve(home, lambda text: "covey API on" in text and "ready:" in text)
    return proc, f"http://127.0.0.1:{port}/v1"
