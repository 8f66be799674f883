"""What sync reads from the store: document ids, versions, digests, exports, the update log.

A part of `DocumentStore` (mixed in), kept apart because sync is its only reader. Versions come
from `doc_versions` (never from loading documents); only `export_updates` loads a document.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING

import sqlite_utils
from loro import ExportMode, VersionVector

from sync import versions
from sync.db import max_seq
from sync.errors import InvalidUpdateError

if TYPE_CHECKING:
    from sync.docstore import _Loaded


class SyncReads:
    db: sqlite_utils.Database
    _lock: threading.RLock
    _digest: tuple[object, str] | None

    def _entry(self, conn: sqlite3.Connection, doc_id: str, must_exist: bool = True) -> _Loaded:
        raise NotImplementedError

    # -- what sync uses -------------------------------------------------------------------

    def doc_ids(self) -> list[str]:
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT doc_id FROM snapshots UNION SELECT DISTINCT doc_id FROM updates"
            )
            return sorted(r[0] for r in rows)

    def version_vector(self, doc_id: str) -> bytes:
        """The document's version, canonically encoded (see versions.py); b"" if unknown."""
        with self._lock:
            row = self.db.conn.execute(
                "SELECT vv FROM doc_versions WHERE doc_id = ?", [doc_id]
            ).fetchone()
        return bytes(row[0]) if row else b""

    def sync_digest(self) -> str:
        """Hex digest over every document's version; cached until the update log changes."""
        with self._lock:
            key = self.db.conn.execute(
                "SELECT (SELECT MAX(seq) FROM updates), (SELECT COUNT(*) FROM doc_versions)"
            ).fetchone()
            if self._digest is None or self._digest[0] != key:
                self._digest = (key, versions.digest(versions.index(self.db.conn)).hex())
            return self._digest[1]

    def sync_index(self) -> list[tuple[str, bytes]]:
        """(document id, canonical version) of every document, sorted by id."""
        with self._lock:
            return versions.index(self.db.conn)

    def export_updates(self, doc_id: str, since: bytes | None = None) -> bytes:
        """Loro update bytes holding what a replica at version `since` lacks (all if None)."""
        try:
            their_vv = versions.decode_vv(since) if since else VersionVector()
        except versions.VersionError as exc:
            raise InvalidUpdateError(f"malformed version vector: {exc}") from None
        with self._lock:
            return bytes(self._entry(self.db.conn, doc_id).doc.export(ExportMode.Updates(their_vv)))

    def lacks(self, doc_id: str, their_version: bytes | None) -> bool:
        """Whether a replica at `their_version` of `doc_id` misses something this store has."""
        ours = self.version_vector(doc_id)
        if not ours or ours == their_version:
            return False
        if not their_version:
            return True
        try:
            return not versions.decode_vv(their_version).includes_vv(versions.decode_vv(ours))
        except versions.VersionError as exc:
            raise InvalidUpdateError(f"malformed version vector: {exc}") from None

    def updates_after(self, seq: int, limit: int = 256) -> list[tuple[int, str, bytes, str | None]]:
        """Update rows appended after `seq`: (seq, doc id, bytes, source peer or None)."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT seq, doc_id, data, source FROM updates WHERE seq > ? ORDER BY seq LIMIT ?",
                [seq, limit],
            ).fetchall()
        return [(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def folded_after(self, seq: int) -> list[tuple[str, int]]:
        """(document, snapshot's last seq) of snapshots that folded updates newer than `seq`."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT doc_id, upto_seq FROM snapshots WHERE upto_seq > ?", [seq]
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def last_seq(self) -> int:
        with self._lock:
            return max_seq(self.db)
