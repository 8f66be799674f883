"""This device's generation speed for its model, measured once and cached per model file."""

from __future__ import annotations

import json
import logging
import os
import time

from app.context import Context
from models.base import ChatMessage, GenerationParams

log = logging.getLogger(__name__)
PROMPT: list[ChatMessage] = [{"role": "user", "content": "Count from one to twenty in words."}]


def _key(ctx: Context) -> str:
    path = ctx.config.model or ""
    if path.startswith("fake"):
        return f"speed:{path}"
    if not path:
        from models.registry import bundled_model_path

        path = str(bundled_model_path())
    try:
        stat = os.stat(path)
        return f"speed:{path}:{stat.st_size}:{int(stat.st_mtime)}:{ctx.config.threads}"
    except OSError:
        return f"speed:{path}"


def cached_speed(ctx: Context) -> float | None:
    """This device's measured decode speed, if `covey serve` measured it before."""
    row = ctx.store.db.conn.execute("SELECT value FROM covey_meta WHERE key = ?",
                                    [_key(ctx)]).fetchone()
    return float(json.loads(row[0])["tok_s"]) if row else None


def measured_speed(ctx: Context, tokens: int = 32) -> tuple[str, float]:
    """(model name, decode tokens/s) — from the cache if this model file was measured before."""
    model = ctx.model
    info = model.info
    key = _key(ctx)
    conn = ctx.store.db.conn
    row = conn.execute("SELECT value FROM covey_meta WHERE key = ?", [key]).fetchone()
    if row:
        cached = json.loads(row[0])
        return info.name, float(cached["tok_s"])
    params = GenerationParams(max_tokens=tokens, temperature=0.0, seed=1)
    list(model.stream(PROMPT, params))  # load and warm up
    started, count, first = time.perf_counter(), 0, 0.0
    for _ in model.stream(PROMPT, params):
        count += 1
        if count == 1:
            first = time.perf_counter()
    elapsed = time.perf_counter() - first
    tok_s = round((count - 1) / elapsed, 1) if count > 1 and elapsed > 0 else 0.0
    conn.execute("INSERT OR REPLACE INTO covey_meta (key, value) VALUES (?, ?)",
                 [key, json.dumps({"tok_s": tok_s, "measured_at": time.time()})])
    log.info("measured %s: %.1f tokens/s", info.name, tok_s)
    return info.name, tok_s
