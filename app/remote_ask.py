"""`covey ask --on DEVICE|auto`: hand the generation to another device and watch it stream in.

The answer arrives through ordinary sync; this process watches the store, and takes each piece
live as the runner generates it (sync/live.py: a datagram from this device's node, which got it
from the runner's session, or made it itself) — the store's text, the same, follows in batches.
If the runner's lease lapses (it died, or it is cut off), this device takes the job over with a
new attempt and answers itself; Ctrl-C cancels the job everywhere.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

from app.context import Context
from app.delegation import LEASE_SECONDS, AttemptRunner, JobRef, cancel_job, current_job, take_over
from models.base import GenerationParams
from sync.live import Listener

log = logging.getLogger(__name__)

TAKEOVER_GRACE = 1.0
WATCH_EVERY = 0.02


def listen(ctx: Context) -> Listener | None:
    """Live pieces for this process, from now on (None where no socket can be made: the store
    alone then shows the answer, a little later)."""
    try:
        return Listener(ctx.store.locks_dir)
    except OSError as exc:
        log.info("no live pieces here: %s", exc)
        return None


def watch(ctx: Context, ref: JobRef, params: GenerationParams, lease: float = LEASE_SECONDS,
          on_piece: Callable[[str], None] | None = None,
          on_note: Callable[[str], None] | None = None,
          cancel: threading.Event | None = None, run_here: bool = True,
          live: Listener | None = None) -> str:
    """Pass the answer on as it grows (default: to stdout); take over if its runner goes silent;
    return its status. Setting `cancel` (or Ctrl-C) cancels the job everywhere.

    With `run_here` the take-over runs on this thread with `ctx.model`; without (a node, whose
    job worker owns the model), the new attempt is assigned to this device for its worker, and
    watched like any other. `live`: a listener opened before the job was stored (so no piece is
    missed; closed here); without one, one is opened now."""
    listener = live or listen(ctx)
    try:
        return _watch(ctx, ref, params, lease, on_piece, on_note, cancel, run_here, listener)
    finally:
        if listener is not None:
            listener.close()


def _watch(ctx: Context, ref: JobRef, params: GenerationParams, lease: float,
           on_piece: Callable[[str], None] | None, on_note: Callable[[str], None] | None,
           cancel: threading.Event | None, run_here: bool, listener: Listener | None) -> str:
    store = ctx.store
    out = on_piece or print_piece
    note = on_note or _print_note
    shown_attempt, shown = "", 0
    # The runner's signs of life, timed on this device's monotonic clock (never its clock
    # against ours): the attempt, its beat, its text, whether it started.
    life: tuple[object, ...] = ()
    life_at = time.monotonic()
    try:
        while True:
            if cancel is not None and cancel.is_set():
                cancel_job(store, ref)
                return "cancelled"
            store.poll()
            status, job = current_job(store, ref)
            current = job.current if job else None
            if current is not None:
                if current.id != shown_attempt:
                    if shown:
                        note(f"attempt {current.n} starts over on another device; the answer is "
                             "what follows")
                    shown_attempt, shown = current.id, 0
                if len(current.text) > shown:
                    out(current.text[shown:])
                    shown = len(current.text)
            if status in ("done", "failed", "cancelled"):
                return status
            if current is not None and current.refused:
                if not run_here and current.assignee == store.device_id:
                    return "failed"  # this device's own worker declined: no one is left
                note(_restart("the other device declined", current.n + 1, shown))
                if not run_here:
                    take_over(store, ref, store.device_id)
                    continue
                return _take_over_here(ctx, ref, params, out, cancel)
            if current is not None:
                sign = (current.id, current.beat, len(current.text), current.started)
                if sign != life:
                    life, life_at = sign, time.monotonic()
            mine = not run_here and current is not None and current.assignee == store.device_id
            if (current is not None and current.assignee and status in ("queued", "streaming")
                    and not mine  # (this device's worker takes its queue in turn)
                    and time.monotonic() - life_at > lease + TAKEOVER_GRACE):
                note(_restart("the other device went silent", current.n + 1, shown))
                if not run_here:
                    take_over(store, ref, store.device_id)
                    life_at = time.monotonic()
                    continue
                return _take_over_here(ctx, ref, params, out, cancel)
            if listener is None:
                time.sleep(WATCH_EVERY)
                continue
            for piece in listener.wait(WATCH_EVERY):  # (returns at the first piece to come)
                if (piece.message_id, piece.attempt) != (ref.answer_id, shown_attempt):
                    continue
                if piece.offset <= shown < piece.offset + len(piece.text):
                    out(piece.text[shown - piece.offset:])  # (what continues what was shown)
                    shown = piece.offset + len(piece.text)
                life_at = time.monotonic()
    except KeyboardInterrupt:
        cancel_job(store, ref)
        raise


def _take_over_here(ctx: Context, ref: JobRef, params: GenerationParams,
                    out: Callable[[str], None], cancel: threading.Event | None) -> str:
    aid = take_over(ctx.store, ref, ctx.store.device_id)
    runner = AttemptRunner(ctx.store, ctx.model, params)
    done = threading.Event()
    if cancel is not None:  # the runner stops when the job is cancelled: bridge the event to it
        def forward() -> None:
            while not done.wait(0.05):
                if cancel.is_set():
                    cancel_job(ctx.store, ref)
                    return

        threading.Thread(target=forward, daemon=True).start()
    try:
        result = runner.run(ref, aid, on_piece=out)
    finally:
        done.set()
    return "done" if result == "done" else result


def _restart(why: str, attempt: int, shown: int) -> str:
    if not shown:
        return f"{why}; answering here"
    return f"{why}; attempt {attempt} starts here, and the answer is what follows"


def print_piece(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def _print_note(note: str) -> None:
    """A note between attempts goes into the answer's stream, plainly marked, so what was
    printed of an abandoned attempt is never read as the start of the next one."""
    sys.stdout.write(f"\n[covey: {note}]\n")
    sys.stdout.flush()
    if not sys.stdout.isatty():
        print(f"covey: {note}", file=sys.stderr, flush=True)
