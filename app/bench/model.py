"""`covey bench model`: covey's generation path against llama-cpp-python called directly.

Both run in this process on the same model file, prompt and settings, in alternating rounds so
that warm-up and machine noise fall on both alike. Figures: tokens per second (completion
tokens / time from request to last token) and time to first token.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from app.assistant import Assistant
from app.config import Paths
from app.context import Context
from app.errors import ModelError
from models.base import ChatMessage, GenerationParams
from models.llama import LlamaCppModel, _delta_text
from sync.store import Store

PROMPT: list[ChatMessage] = [
    {"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}
]


def bench_model(ctx: Context, max_tokens: int, rounds: int, progress: TextIO | None) -> dict[str, Any]:
    model = ctx.model
    if not isinstance(model, LlamaCppModel):
        raise ModelError("covey bench model measures a GGUF model; --model fake has no raw path")
    from llama_cpp import Llama

    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=1)
    covey_llm = model.llama
    # The raw side runs on the model's thread too: llama.cpp's OpenMP team belongs to the
    # calling thread, and both sides must get the same (see LlamaCppModel).
    raw_llm = model.on_model_thread(lambda: Llama(
        model_path=model.info.path, n_ctx=covey_llm.n_ctx(), n_threads=model.threads,
        verbose=False))

    # covey's side is the whole pipeline: prompt building, generation, and the answer
    # committed into a store every few tokens (a scratch store: the bench adds no history).
    scratch = tempfile.TemporaryDirectory(prefix="covey-bench-")
    store = Store.open(Paths(Path(scratch.name), Path(scratch.name)), "BENCH")
    assistant = Assistant(store, model, replace(ctx.config, auto_title=False))

    def covey_run(on_piece: Callable[[str], None]) -> None:
        assistant.ask(PROMPT[0]["content"], params=params, on_piece=on_piece)

    def raw_run(on_piece: Callable[[str], None]) -> None:
        stream = raw_llm.create_chat_completion(
            messages=PROMPT,  # type: ignore[arg-type]  # (llama-cpp's per-role TypedDicts)
            max_tokens=max_tokens, temperature=0.0, top_p=params.top_p, seed=1, stream=True,
        )
        for chunk in stream:
            piece = _delta_text(chunk)
            if piece:
                on_piece(piece)

    def count(text: str) -> int:
        return len(covey_llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    results: dict[str, list[tuple[float, float, int]]] = {"covey": [], "raw": []}
    def measure(name: str) -> tuple[float, float, int]:
        if name == "raw":
            return model.on_model_thread(lambda: _measure(raw_run, count))
        return _measure(covey_run, count)

    measure("covey")  # warm-up: first-call costs must not land on either side
    measure("raw")
    for i in range(rounds):
        order = ["covey", "raw"]
        for name in order if i % 2 == 0 else reversed(order):
            results[name].append(measure(name))
            if progress is not None:
                tok_s = results[name][-1][2] / results[name][-1][1]
                print(f"round {i + 1}/{rounds} {name:>5}: {tok_s:7.1f} tok/s", file=progress)
    store.close()
    scratch.cleanup()
    covey_tok_s = _median_rate(results["covey"])
    raw_tok_s = _median_rate(results["raw"])
    return {
        "model": model.info.name,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "completion_tokens": results["covey"][-1][2],
        "covey_tok_s": round(covey_tok_s, 2),
        "raw_tok_s": round(raw_tok_s, 2),
        # Each round runs both sides back to back: the median of the per-round ratios cancels
        # the machine's drift better than a ratio of medians.
        "ratio": round(statistics.median(
            (c[2] / c[1]) / (r[2] / r[1]) for c, r in zip(results["covey"], results["raw"])), 4),
        "covey_ttft_ms": round(statistics.median(r[0] for r in results["covey"]) * 1000, 1),
        "raw_ttft_ms": round(statistics.median(r[0] for r in results["raw"]) * 1000, 1),
    }


def _measure(
    run: Callable[[Callable[[str], None]], None], count: Callable[[str], int]
) -> tuple[float, float, int]:
    """(time to first piece, total time, completion tokens) of one generation."""
    pieces: list[str] = []
    first: list[float] = []
    start = time.perf_counter()

    def on_piece(piece: str) -> None:
        if not first:
            first.append(time.perf_counter() - start)
        pieces.append(piece)

    run(on_piece)
    total = time.perf_counter() - start
    return (first[0] if first else total, total, count("".join(pieces)))


def _median_rate(samples: list[tuple[float, float, int]]) -> float:
    return statistics.median(tokens / total for _, total, tokens in samples if total > 0)


def print_model_report(report: dict[str, Any]) -> None:
    print(f"model            {report['model']}")
    print(f"tokens/answer    {report['completion_tokens']} (max {report['max_tokens']}), "
          f"{report['rounds']} rounds each")
    print(f"covey            {report['covey_tok_s']:8.1f} tok/s   first token {report['covey_ttft_ms']} ms")
    print(f"llama-cpp-python {report['raw_tok_s']:8.1f} tok/s   first token {report['raw_ttft_ms']} ms")
    print(f"ratio            {report['ratio']}")
