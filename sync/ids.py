"""Identifiers for things that sync: random, so two devices never mint the same one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def new_id() -> str:
    """A fresh 32-hex-digit id (UUID4): no counter, nothing to collide across devices."""
    return uuid.uuid4().hex


def now_iso() -> str:
    """Wall-clock time for display only (ordering in the store is by sequence, never by this)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")
