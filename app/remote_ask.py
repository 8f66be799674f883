"""`covey ask --on DEVICE|auto`: hand the generation to another device and watch it stream in.

The answer arrives through ordinary sync; this process only watches the store. If the runner's
lease lapses (it died, or it is cut off), this device takes the job over with a new attempt and
answers itself; Ctrl-C cancels the job everywhere.
"""

from __future__ import annotations

import sys
import time

from app.context import Context
from app.delegation import LEASE_SECONDS, AttemptRunner, JobRef, cancel_job, current_job, take_over
from models.base import GenerationParams

TAKEOVER_GRACE = 1.0
WATCH_EVERY = 0.02


def watch(ctx: Context, ref: JobRef, params: GenerationParams, lease: float = LEASE_SECONDS) -> str:
    """Print the answer as it grows; take over if its runner goes silent; return its status."""
    store = ctx.store
    shown_attempt, shown = "", 0
    try:
        while True:
            store.poll()
            status, job = current_job(store, ref)
            current = job.current if job else None
            if current is not None:
                if current.id != shown_attempt:
                    if shown:
                        sys.stdout.write(f"\n[taken over: attempt {current.n}]\n")
                    shown_attempt, shown = current.id, 0
                if len(current.text) > shown:
                    sys.stdout.write(current.text[shown:])
                    sys.stdout.flush()
                    shown = len(current.text)
            if status in ("done", "failed", "cancelled"):
                return status
            if current is not None and current.refused:
                sys.stderr.write("covey: the other device declined; answering here\n")
                return _take_over_here(ctx, ref, params, shown_attempt, shown)
            if (current is not None and current.assignee and status in ("queued", "streaming")
                    and time.time() > current.lease_until + TAKEOVER_GRACE):
                return _take_over_here(ctx, ref, params, shown_attempt, shown)
            time.sleep(WATCH_EVERY)
    except KeyboardInterrupt:
        cancel_job(store, ref)
        raise


def _take_over_here(ctx: Context, ref: JobRef, params: GenerationParams, old: str,
                    shown: int) -> str:
    aid = take_over(ctx.store, ref, ctx.store.device_id)
    if shown:
        sys.stdout.write(f"\n[the other device went silent: answering here ({aid})]\n")
    runner = AttemptRunner(ctx.store, ctx.model, params)

    def show(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    result = runner.run(ref, aid, on_piece=show)
    return "done" if result == "done" else result
