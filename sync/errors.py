"""Reporting failures of background work once, then rate-limited (never a traceback loop).

A session that fails the same way on every reconnect would otherwise log the same traceback
every few seconds, forever. The first occurrence of a (where, what) pair is logged — with its
traceback if it is a bug, with its message alone if it is a condition covey knows (a full disk:
a CoveyError); repeats within `QUIET_FOR` seconds are counted and summarised in the next line.
"""

from __future__ import annotations

import logging
import time

from app.errors import CoveyError

log = logging.getLogger("covey.errors")
QUIET_FOR = 60.0
_last: dict[tuple[str, str], tuple[float, int]] = {}  # (where, what) → (logged at, suppressed)


def report(where: str, what: str, exc: BaseException | None = None) -> bool:
    """Log a failure unless the same one was logged lately; True if it was logged now."""
    key = (where, what[:200])
    now = time.monotonic()
    logged_at, suppressed = _last.get(key, (-QUIET_FOR, 0))
    if now - logged_at < QUIET_FOR:
        _last[key] = (logged_at, suppressed + 1)
        return False
    if len(_last) > 1000:  # bounded: forget the oldest kinds of failure
        _last.pop(next(iter(_last)))
    _last[key] = (now, 0)
    more = f" ({suppressed} more like it since the last report)" if suppressed else ""
    if exc is not None and not isinstance(exc, CoveyError) and suppressed == 0 and logged_at < 0:
        log.error("%s: %s%s", where, what, more, exc_info=exc)
    else:
        log.error("%s: %s%s", where, what, more)
    return True
