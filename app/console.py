"""What the CLI's commands share for talking to the terminal: piped input, progress lines,
flat reports (kept out of commands.py so other command modules need not import it)."""

from __future__ import annotations

import json
import sys

from app.errors import UsageError


def read_stdin() -> str:
    """Text piped into covey ('' for a terminal); non-UTF-8 bytes are a clear error."""
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"stdin is not UTF-8 text (bad byte at position {exc.start}); convert it first, "
            "e.g. with iconv"
        ) from None


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def print_report(report: dict[str, object], as_json: bool) -> None:
    """A flat report as JSON, or as aligned `key value` lines."""
    if as_json:
        print(json.dumps(report, indent=2))
        return
    width = max((len(k) for k in report), default=0) + 2
    for key, value in report.items():
        print(f"{key:<{width}}{value}")
