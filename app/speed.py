"""This device's generation speed for its model, measured and cached per model file.

One measurement on a busy machine can be off several-fold (seen: 7.6, 44.8 and 5.4 tok/s for
one model), and routing trusts it: so it is the best of several short runs after a warm-up,
it records when it was taken, and a node re-measures when it has been idle a while.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from models.base import ChatMessage, GenerationParams

if TYPE_CHECKING:  # (the context builds on routing, which asks for speeds)
    from app.context import Context

log = logging.getLogger(__name__)
PROMPT: list[ChatMessage] = [{"role": "user", "content": "Count from one to twenty in words."}]


def _key(ctx: Context) -> str:
    spec = ctx.config.model or ""
    if spec.startswith("fake"):
        return f"speed:{spec}"
    path = ctx.model.info.path  # (the file a name or the default means)
    try:
        stat = os.stat(path)
        return f"speed:{path}:{stat.st_size}:{int(stat.st_mtime)}:{ctx.config.threads}"
    except OSError:
        return f"speed:{path}"


def cached_speed(ctx: Context) -> float | None:
    """This device's measured decode speed, if `covey serve` measured it before."""
    value = ctx.store.note(_key(ctx))
    return float(json.loads(value)["tok_s"]) if value else None


def measured_at(ctx: Context) -> float | None:
    """When this device's speed for its model was last measured (epoch seconds)."""
    value = ctx.store.note(_key(ctx))
    return float(json.loads(value).get("measured_at", 0.0)) if value else None


def measured_speed(ctx: Context, tokens: int = 24, runs: int = 3,
                   fresh: bool = False) -> tuple[str, float]:
    """(model name, decode tokens/s) — from the cache if this model file was measured before
    (unless `fresh`); otherwise the best of `runs` short runs after a warm-up."""
    model = ctx.model
    info = model.info
    key = _key(ctx)
    row = ctx.store.note(key)
    if row and not fresh:
        cached = json.loads(row)
        return info.name, float(cached["tok_s"])
    params = GenerationParams(max_tokens=tokens, temperature=0.0, seed=1)
    list(model.stream(PROMPT, params))  # load and warm up
    tok_s = max(_one_run(model.stream(PROMPT, params)) for _ in range(runs))
    ctx.store.set_note(key, json.dumps({"tok_s": tok_s, "measured_at": time.time()}))
    log.info("measured %s: %.1f tokens/s (best of %d runs)", info.name, tok_s, runs)
    return info.name, tok_s


def _one_run(pieces: Iterator[str]) -> float:
    """Decode speed of one run: pieces after the first (prefill) over the time they took."""
    count, first = 0, 0.0
    for _ in pieces:
        count += 1
        if count == 1:
            first = time.perf_counter()
    elapsed = time.perf_counter() - first
    return round((count - 1) / elapsed, 1) if count > 1 and elapsed > 0 else 0.0
