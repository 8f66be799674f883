"""Reporting failures of background work once, then rate-limited (never a traceback loop).

A session that fails the same way on every reconnect would otherwise log the same traceback
every few seconds, forever. The first occurrence of a (where, what) pair is logged — with its
traceback if it is a bug, with its message alone if it is a condition covey knows (a full disk:
a CoveyError); repeats within `QUIET_FOR` seconds are counted and summarised in the next line.
A loop of the node that dies anyway is restarted by `supervise`, loudly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from models.errors import CoveyError

if TYPE_CHECKING:  # (asyncio at run time: 25 ms of the start of every command that has no node)
    import asyncio


class StoreError(CoveyError):
    """The conversation store cannot be opened or written."""


class CorruptStoreError(StoreError):
    """The database file is damaged or is not a covey store."""


class UnknownConversationError(StoreError):
    """No conversation has the given id (or the prefix is ambiguous)."""


class InvalidUpdateError(StoreError):
    """Update bytes from elsewhere were refused (malformed CRDT data); nothing was changed."""


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


RESTART_AFTER = 1.0  # seconds before a failed loop is started again


def supervise(task: asyncio.Task[None], where: str,
              again: Callable[[], Coroutine[Any, Any, None]] | None,
              respawn: Callable[[Coroutine[Any, Any, None], Callable[[], Coroutine[Any, Any, None]]], None],
              stopping: bool) -> None:
    """When a background task ends: a failure is reported, loudly; a loop (`again` given) that
    failed or returned while the node runs is started again a moment later, and says so."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        report(where, f"{type(exc).__name__}: {exc}", exc)
    if again is None or stopping:
        return
    log.error("%s ended%s; starting it again in %.0f s", where,
              " with that failure" if exc is not None else "", RESTART_AFTER)
    task.get_loop().call_later(RESTART_AFTER, lambda: respawn(again(), again))
