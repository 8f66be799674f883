"""`covey import`, `covey export` and `covey rate`: history in and out, and feedback on it."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from app import exporting
from app.context import Context
from app.errors import CoveyError, UsageError
from sync.conversation import Conversation

if TYPE_CHECKING:
    from app.importers import Source, Tally

BAR = 10  # cells of the progress bar
EVERY = 0.2  # seconds between repaints of the progress line


def import_(ctx: Context, args: argparse.Namespace) -> int:
    if args.file == "-":  # stdin: kept in a temporary file, so the format can be looked at first
        with tempfile.NamedTemporaryFile(prefix="covey-import-", suffix=".json") as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool)
            spool.flush()
            return _import(ctx, Path(spool.name), args.format or "covey")
    return _import(ctx, Path(args.file).expanduser(), args.format)


def _import(ctx: Context, path: Path, fmt: str | None) -> int:
    # (the importers and their streaming JSON parser: loaded for `covey import` only)
    from app.importers import Tally, open_source
    from app.importers.writer import restore_many

    source = open_source(path, fmt)
    tally = Tally()
    line = _ProgressLine(source, tally) if sys.stderr.isatty() else None
    try:
        restore_many(ctx.store, _watched(source.conversations(tally), line), tally)
    except CoveyError as exc:
        if tally.new_conversations or tally.new_messages:  # each stored whole: say so
            exc.args = ((f"{exc} (the {tally.new_conversations:,} new conversation(s) read "
                         "before it were imported whole; importing again adds only the rest)"),)
        raise
    finally:
        if line is not None:
            line.clear()
    print(f"{source.label}: {_counts(tally)}")
    nothing = not (tally.new_messages or tally.new_conversations or tally.updated)
    detail = [f"{tally.new_conversations:,} new conversation(s)"] if tally.new_conversations else []
    if tally.updated:
        detail.append(f"{tally.updated:,} brought back to the file's ratings or undeleted")
    print(f"imported {tally.conversations:,} conversation(s), {tally.new_messages:,} new "
          f"message(s)" + (": nothing new" if nothing else
                           f" ({'; '.join(detail)})" if detail else ""))
    if tally.skipped:
        print("left out or marked: " + ", ".join(
            f"{n:,} {reason}" for reason, n in tally.skipped.most_common()))
    return 0


def _counts(tally: Tally) -> str:
    return (f"{tally.conversations:,} conversations, {tally.messages:,} messages, "
            f"{tally.branches:,} branches")


class _ProgressLine:
    """`ChatGPT export: 1,842 conversations, 41,207 messages, 312 branches  [████████░░] 80%`"""

    def __init__(self, source: Source, tally: Tally) -> None:
        self.source, self.tally = source, tally
        self.shown_at = 0.0
        self.width = 0

    def show(self) -> None:
        now = time.monotonic()
        if now - self.shown_at < EVERY:
            return
        self.shown_at = now
        done = self.source.progress()
        cells = int(done * BAR)
        text = (f"{self.source.label}: {_counts(self.tally)}  "
                f"[{'█' * cells}{'░' * (BAR - cells)}] {int(done * 100)}%")
        text = text[:shutil.get_terminal_size((80, 24)).columns - 1]
        self.width = max(self.width, len(text))
        print("\r" + text.ljust(self.width), end="", file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.width:
            print("\r" + " " * self.width + "\r", end="", file=sys.stderr, flush=True)


def _watched(conversations: Iterator[Conversation], line: _ProgressLine | None
             ) -> Iterator[Conversation]:
    for conv in conversations:
        if line is not None:
            line.show()
        yield conv


def export(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    if args.id:
        ids = [store.resolve(args.id)]
    else:
        ids = [r.id for r in reversed(store.list_conversations(include_archived=True))]
    conversations = (store.conversation(i) for i in ids)
    count = len(ids)
    if args.format == "json":
        text = exporting.to_json(list(conversations))
    elif args.format == "finetune":
        lines = list(exporting.to_finetune(conversations, args.rating))
        text, count = "".join(lines), len(lines)
    else:
        text = exporting.to_markdown(list(conversations))
    what = "rated answer(s)" if args.format == "finetune" else "conversation(s)"
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
        print(f"exported {count} {what} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.format == "finetune" and not count:
        print(f"no answers rated {args.rating} yet: rate them with `covey rate MESSAGE up|down` "
              "or + / - in the app", file=sys.stderr)
    return 0


def rate(ctx: Context, args: argparse.Namespace) -> int:
    conv_id, message_id = ctx.store.resolve_message(args.message)
    message = ctx.store.conversation(conv_id).message(message_id)
    if message is None or message.role != "assistant":
        raise UsageError(f"{args.message} is not an answer; only answers are rated")
    rating = None if args.rating == "clear" else args.rating
    ctx.store.rate(conv_id, message_id, rating, args.note)
    print(f"rated {message_id[:12]} {args.rating}" + (f": {args.note}" if args.note and rating else ""))
    return 0
