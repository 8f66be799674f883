"""`covey models`: every model on every device of the household."""

from __future__ import annotations

import argparse
import json
import sys

from app import model_choice
from app.context import Context
from models.scan import LocalModel


def models(ctx: Context, args: argparse.Namespace) -> int:
    def progress(text: str) -> None:
        print(f"covey: {text} (once per file)…", file=sys.stderr, flush=True)

    mine = model_choice.local_models(ctx, rescan=args.rescan, progress=progress)
    from sync import household

    household.ensure(ctx.store, ctx.identity, ctx.config.device_name)
    model_choice.publish(ctx, mine, model_choice.known_speeds(ctx))  # (the others see it)
    listed = model_choice.household_models(ctx, mine=mine)
    if args.json:
        print(json.dumps(model_choice.as_json(
            [m for m in listed if args.all or not m.unusable]), indent=2))
        return 0
    shown = [m for m in listed if not m.unusable]
    rows = [("DEVICE", "MODEL", "PARAMS", "QUANT", "SIZE", "CTX", "TOK/S", "FROM")]
    for m in shown:
        rows.append((m.device_name, m.name, m.params or "—", m.quant or "—", _size(m.size),
                     str(m.context_length or "—"), f"{m.tok_s:.1f}" if m.tok_s else "—",
                     m.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if args.all:
        unusable = [m for m in listed if m.unusable]
        if unusable:
            print("\nFound, and cannot chat:")
        for m in unusable:
            print(f"  {m.name} ({m.source}): {m.unusable}")
    else:
        hidden = sum(1 for m in listed if m.unusable)
        if hidden:
            print(f"({hidden} file(s) found that cannot chat: covey models --all says why)")
    return 0


def _size(size: int) -> str:
    if not size:
        return "—"
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def describe(model: LocalModel) -> str:
    return f"{model.name} ({model.params} {model.quant}, {model.source})"
