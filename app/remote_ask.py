"""`covey ask --on DEVICE|auto`: hand the generation to another device and watch it stream in.

The answer arrives through ordinary sync; this process only watches the store. If the runner's
lease lapses (it died, or it is cut off), this device takes the job over with a new attempt and
answers itself; Ctrl-C cancels the job everywhere.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from app.context import Context
from app.delegation import LEASE_SECONDS, AttemptRunner, JobRef, cancel_job, current_job, take_over
from models.base import GenerationParams

TAKEOVER_GRACE = 1.0
WATCH_EVERY = 0.02


def watch(ctx: Context, ref: JobRef, params: GenerationParams, lease: float = LEASE_SECONDS,
          on_piece: Callable[[str], None] | None = None,
          on_note: Callable[[str], None] | None = None,
          cancel: threading.Event | None = None, run_here: bool = True) -> str:
    """Pass the answer on as it grows (default: to stdout); take over if its runner goes silent;
    return its status. Setting `cancel` (or Ctrl-C) cancels the job everywhere.

    With `run_here` the take-over runs on this thread with `ctx.model`; without (a node, whose
    job worker owns the model), the new attempt is assigned to this device for its worker, and
    watched like any other."""
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
            time.sleep(WATCH_EVERY)
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
