"""Which device handed us which changes, and when they arrived here (this device's clock).

Recorded as each remote update is stored: per document and Loro peer, the counter span that
arrived, from which session's device, at what local time. It is what lets `covey restore
--undo-device` find a hostile device's changes (its writers' peer ids, as first seen from it)
and date them without trusting anyone's clock but ours. Rows of one stream are merged, so a
streamed answer is one row, not one per token.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from loro import VersionVector

MERGE_WITHIN = 60.0  # seconds: consecutive spans from one source are one row


if TYPE_CHECKING:  # (the store records arrivals as it imports: it builds on this module)
    from sync.docstore import DocumentStore


def record(conn: sqlite3.Connection, doc_id: str, before: VersionVector, after: VersionVector,
           source: str | None, now: float | None = None) -> None:
    if source is None:
        return
    at = time.time() if now is None else now
    old = before.to_spans().inner()
    for peer, (_, end) in after.to_spans().inner().items():
        start = old.get(peer, (0, 0))[1]
        if end <= start:
            continue
        row = conn.execute(
            "SELECT rowid, end, source, at FROM arrivals WHERE doc_id = ? AND peer = ?"
            " ORDER BY rowid DESC LIMIT 1", [doc_id, _signed(peer)]).fetchone()
        if row and row[1] == start and row[2] == source and at - row[3] < MERGE_WITHIN:
            conn.execute("UPDATE arrivals SET end = ? WHERE rowid = ?", [end, row[0]])
        else:
            conn.execute("INSERT INTO arrivals (doc_id, peer, start, end, source, at)"
                         " VALUES (?, ?, ?, ?, ?, ?)", [doc_id, _signed(peer), start, end, source, at])


def _signed(peer: int) -> int:
    """Loro peer ids are u64; SQLite integers are signed 64-bit."""
    return peer - (1 << 64) if peer >= 1 << 63 else peer


def _unsigned(peer: int) -> int:
    return peer + (1 << 64) if peer < 0 else peer


def peers_from(store: DocumentStore, source: str) -> set[int]:
    """The peers whose changes reached us first-hand from `source`."""
    with store.connection() as conn:
        return {_unsigned(r[0]) for r in conn.execute(
            "SELECT DISTINCT peer FROM arrivals WHERE source = ?", [source])}


def first_counter_since(store: DocumentStore, doc_id: str, peer: int, since: float) -> int | None:
    """The lowest counter of `peer` in `doc_id` that arrived here at or after `since`
    (None: nothing of it did, as far as this device recorded)."""
    with store.connection() as conn:
        row = conn.execute("SELECT MIN(start) FROM arrivals WHERE doc_id = ? AND peer = ? AND at >= ?",
                           [doc_id, _signed(peer), since]).fetchone()
    return None if row is None or row[0] is None else int(row[0])
