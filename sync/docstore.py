"""Loro documents persisted in SQLite, shared by the processes of one device.

Every change is a Loro commit whose update bytes are appended to `updates` in one
`BEGIN IMMEDIATE` transaction before the call returns: once a method returns, the change is on
disk. Each process writes with its own Loro peer id (see writers.py) and, inside the write
transaction, first imports what other processes appended, so documents never fork between
processes. SQLite is the bus: `poll()` picks up other processes' changes. Compaction folds a
document's updates into a snapshot and deletes exactly the rows it folded.

This layer knows nothing of conversations; `sync.store.Store` adds them (and the view).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TypeVar

import sqlite_utils
from loro import ExportMode, LoroDoc

from sync import arrivals, versions, wakeup
from sync.db import StoreFiles, ensure_epoch, max_seq, open_database, transaction
from sync.edits import Edit, Origin, StoreEvent
from sync.errors import InvalidUpdateError, UnknownConversationError
from sync.sync_reads import SyncReads
from sync.writers import WriterSlot, claim_writer

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Document ids: a conversation's 32 hex digits, or a short lowercase name ("household").
DOC_ID = re.compile(r"[0-9a-f]{32}|[a-z][a-z0-9_-]{0,31}")
#: Loaded documents kept in memory per process; the rest are reloaded from SQLite when used.
#: (A catch-up or an export touches every document once: keeping them all would hold the
#: whole history in memory.)
CACHED_DOCS = 256
#: What a `except BaseException` around a loro call must let through untouched.
NOT_LORO_ERRORS = (KeyboardInterrupt, SystemExit, GeneratorExit)


@dataclass
class _Loaded:
    doc: LoroDoc
    seen_seq: int  # every update row of this doc with seq <= seen_seq is in `doc`
    writes: int = 0
    drops: int = 0  # how many times the document had been dropped when this was loaded


class DocumentStore(SyncReads):
    """All documents of one device. Thread-safe; one instance per process."""

    def __init__(
        self, db: sqlite_utils.Database, writer: WriterSlot, device_id: str, compact_after: int
    ) -> None:
        self.db = db
        self.device_id = device_id
        self.compact_after = compact_after
        self._writer = writer
        self._docs: OrderedDict[str, _Loaded] = OrderedDict()
        self._listeners: list[Callable[[StoreEvent], None]] = []
        self._lock = threading.RLock()
        self._polled_seq = max_seq(db)
        self._digest: tuple[object, str] | None = None
        self.epoch = ensure_epoch(db)
        # Whether commits wake this device's node in another process; off in the process that
        # hosts the node (it hears this store's events directly).
        self.nudges = True

    @classmethod
    def open(cls, paths: StoreFiles, device_id: str, compact_after: int = 256) -> Self:
        paths.ensure()
        db = open_database(paths.db_file)
        return cls(db, claim_writer(db, paths.locks_dir), device_id, compact_after)

    def close(self) -> None:
        with self._lock:
            self._docs.clear()
            self._writer.release()
            self.db.conn.close()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the store's lock, for sync/'s own local tables (the network
        state, pairing offers); nothing outside sync/ runs SQL."""
        with self._lock:
            yield self.db.conn

    @property
    def locks_dir(self) -> Path:
        return self._writer.locks_dir

    def _nudge(self) -> None:
        if self.nudges:  # (a node in another process reads what we committed at once)
            wakeup.nudge(self._writer.locks_dir)

    def change_probe(self) -> Callable[[], int]:
        """See wakeup.change_probe: "has anyone committed since?", cheaply."""
        return wakeup.change_probe(self.db.conn.execute("PRAGMA database_list").fetchone()[2])

    @property
    def peer_id(self) -> int:
        return self._writer.peer_id

    # -- events ---------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[StoreEvent], None]) -> Callable[[], None]:
        """Call `listener` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, event: StoreEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not undo a committed write
                log.exception("store listener failed")

    def write(
        self, doc_id: str, mutate: Callable[[LoroDoc], T], touched: set[str] | None,
        create: bool = False, fsync: bool = True,
    ) -> T:
        """Run `mutate` on the document and commit it durably (the primitive behind all edits).

        `touched`: the message ids changed (None: refresh the whole view of the conversation).
        `fsync=False` (tokens of an answer still streaming): the commit survives a crash of
        this process, as always, but waits for the disk only at the next synced commit.
        """
        return self.write_many([Edit(doc_id, mutate, touched, create)], fsync)[0]

    def write_many(self, edits: Sequence[Edit[T]], fsync: bool = True) -> list[T]:
        """Several documents' edits in one transaction: all are on disk, or none (an import
        commits a batch of conversations at once instead of paying a commit for each)."""
        results: list[T] = []
        entries: list[_Loaded] = []
        with self._lock:
            try:
                with transaction(self.db, fsync=fsync) as conn:
                    for edit in edits:
                        entry = self._entry(conn, edit.doc_id, must_exist=not edit.create)
                        before = entry.doc.oplog_vv
                        results.append(edit.mutate(entry.doc))
                        entry.doc.commit()
                        data = entry.doc.export(ExportMode.Updates(before))
                        self._append(conn, edit.doc_id, entry, [data], edit.touched)
                        entries.append(entry)
            except BaseException:
                # The in-memory documents may hold operations that never reached the disk:
                # forget them, the next use reloads what was really committed.
                for edit in edits:
                    self._docs.pop(edit.doc_id, None)
                raise
            for edit, entry in zip(edits, entries):
                self._maybe_compact(edit.doc_id, entry)
        for edit in edits:
            touched = frozenset(edit.touched) if edit.touched is not None else None
            self._emit(StoreEvent(edit.doc_id, "local", touched))
        if edits:
            self._nudge()
        return results

    def _append(
        self, conn: sqlite3.Connection, doc_id: str, entry: _Loaded, blobs: Sequence[bytes],
        touched: set[str] | None, source: str | None = None, parsed: object = None,
    ) -> None:
        """Append update rows of one document, then its version and view, once for them all."""
        for data in blobs:
            cur = conn.execute(
                "INSERT INTO updates (doc_id, data, source) VALUES (?, ?, ?)",
                [doc_id, data, source])
            entry.seen_seq = max(entry.seen_seq, int(cur.lastrowid or 0))
            entry.writes += 1
        versions.record(conn, doc_id, entry.doc.oplog_vv)
        self._after_append(conn, doc_id, entry.doc, touched, parsed)

    def _after_append(
        self, conn: sqlite3.Connection, doc_id: str, doc: LoroDoc, touched: set[str] | None,
        parsed: object = None,
    ) -> None:
        """Called inside the write transaction after appending (view upkeep); `parsed` is what
        `_check` made of the document, if it was just checked."""

    # -- loading documents ----------------------------------------------------------------

    def _entry(self, conn: sqlite3.Connection, doc_id: str, must_exist: bool = True) -> _Loaded:
        """The document `doc_id`, with everything other processes appended imported."""
        row = conn.execute("SELECT value FROM covey_meta WHERE key = ?", ["drops:" + doc_id]).fetchone()
        drops = int(row[0]) if row else 0
        entry = self._docs.get(doc_id)
        if entry is None or entry.drops != drops:  # (another process dropped it: start over)
            entry = _Loaded(doc=LoroDoc(), seen_seq=0, drops=drops)
            entry.doc.peer_id = self._writer.peer_id
            self._docs[doc_id] = entry
            while len(self._docs) > CACHED_DOCS:
                self._docs.popitem(last=False)  # the least recently used
        else:
            self._docs.move_to_end(doc_id)
        snap = conn.execute(
            "SELECT upto_seq, data FROM snapshots WHERE doc_id = ? AND upto_seq > ?",
            [doc_id, entry.seen_seq],
        ).fetchone()
        batch: list[bytes] = []
        if snap:
            batch.append(snap[1])
            entry.seen_seq = snap[0]
        rows = conn.execute(
            "SELECT seq, data FROM updates WHERE doc_id = ? AND seq > ? ORDER BY seq",
            [doc_id, entry.seen_seq],
        ).fetchall()
        batch.extend(r[1] for r in rows)
        if rows:
            entry.seen_seq = rows[-1][0]
        if batch:
            entry.doc.import_batch(batch)
        if must_exist and entry.seen_seq == 0:
            self._docs.pop(doc_id, None)
            raise UnknownConversationError(f"no conversation {doc_id}")
        return entry

    def read(self, doc_id: str, reader: Callable[[LoroDoc], T]) -> T | None:
        """Run `reader` on the current document (None if there is no such document).

        `reader` must not modify the document; use `write` for that.
        """
        with self._lock:
            try:
                entry = self._entry(self.db.conn, doc_id)
            except UnknownConversationError:
                return None
            return reader(entry.doc)

    def replace_document(
        self, doc_id: str, data: bytes, source: str | None = None,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Put the document in `data` in place of this one, and run `also` in the same
        transaction (a joining device giving up its own household for the one it joined).

        Other processes see the old document or the new one, never neither and never a mix:
        a node rewriting the old household's entries between two steps would carry them in."""
        with self._lock:
            try:
                with transaction(self.db) as conn:
                    for table in ("updates", "snapshots", "doc_versions"):
                        conn.execute(f"DELETE FROM {table} WHERE doc_id = ?", [doc_id])
                    # Other processes holding the document in memory see the count change.
                    conn.execute(
                        "INSERT INTO covey_meta (key, value) VALUES (?, '1') ON CONFLICT(key)"
                        " DO UPDATE SET value = CAST(value AS INTEGER) + 1", ["drops:" + doc_id])
                    self._docs.pop(doc_id, None)
                    self._import_one(conn, doc_id, [data], source)
                    if also is not None:
                        also(conn)
            except BaseException:
                self._docs.pop(doc_id, None)  # whatever reached memory was not committed
                raise
        self._emit(StoreEvent(doc_id, "remote", source=source))
        self._nudge()

    def import_updates(
        self, doc_id: str, data: bytes | Sequence[bytes], origin: Origin = "remote",
        source: str | None = None,
    ) -> bool:
        """Apply update bytes from elsewhere (`source`: the peer device); False if nothing new.

        Bad bytes, or a change that would break the document's shape, raise
        InvalidUpdateError and leave the store exactly as it was.
        """
        blobs = [data] if isinstance(data, (bytes, bytearray)) else list(data)
        changed, error = self.import_many([(doc_id, blobs)], origin, source)
        if error is not None:
            raise error
        return changed[0]

    def import_many(
        self, items: Sequence[tuple[str, Sequence[bytes]]], origin: Origin = "remote",
        source: str | None = None,
    ) -> tuple[list[bool], InvalidUpdateError | None]:
        """Apply the updates of several documents in one transaction (a catch-up's batch).

        Returns whether each document gained something, for the items stored before the first
        refused one, and that refusal (None if all were taken). A refused item changes nothing;
        the items before it are committed, the items after it are not looked at.
        """
        changed: list[bool] = []
        error: InvalidUpdateError | None = None
        with self._lock:
            try:
                with transaction(self.db) as conn:
                    for doc_id, blobs in items:
                        conn.execute("SAVEPOINT covey_import")
                        try:
                            changed.append(self._import_one(conn, doc_id, blobs, source))
                        except InvalidUpdateError as exc:
                            conn.execute("ROLLBACK TO covey_import")
                            self._docs.pop(doc_id, None)  # the import may have reached memory
                            error = exc
                            break
                        finally:
                            conn.execute("RELEASE covey_import")
            except BaseException:
                for doc_id, _ in items:  # nothing was committed: forget what reached memory
                    self._docs.pop(doc_id, None)
                raise
        for (doc_id, _), was_new in zip(items, changed):
            if was_new:
                self._emit(StoreEvent(doc_id, origin, source=source))
        if any(changed):
            self._nudge()
        return changed, error

    def _import_one(
        self, conn: sqlite3.Connection, doc_id: str, blobs: Sequence[bytes], source: str | None
    ) -> bool:
        if not DOC_ID.fullmatch(doc_id):
            raise InvalidUpdateError(f"refused update: {doc_id[:40]!r} is not a document id")
        entry = self._entry(conn, doc_id, must_exist=False)
        before = entry.doc.oplog_vv
        pending = False
        for blob in blobs:
            try:
                status = entry.doc.import_(bytes(blob))
            except BaseException as exc:  # loro raises bare BaseException
                if isinstance(exc, NOT_LORO_ERRORS):
                    raise
                raise InvalidUpdateError(f"refused update for {doc_id}: {exc}") from None
            pending = pending or status.pending is not None
        if pending:  # it needs changes we never got: storing (and relaying) it would hide that
            raise InvalidUpdateError(
                f"refused update for {doc_id}: it depends on changes this device does not have")
        if entry.doc.oplog_vv == before:
            return False
        applied = bool(entry.doc.oplog_vv.to_spans().inner())
        parsed = self._check(doc_id, entry.doc) if applied else None
        if applied and parsed is None:
            raise InvalidUpdateError(
                f"refused update for {doc_id}: not a well-formed document of that id"
            )
        self._append(conn, doc_id, entry, [bytes(b) for b in blobs], None, source, parsed)
        arrivals.record(conn, doc_id, before, entry.doc.oplog_vv, source)
        return True

    def _check(self, doc_id: str, doc: LoroDoc) -> object | None:
        """What `doc` is if it has the shape its kind needs, else None (subclasses know the
        kinds); handed on to `_after_append`, so a document is read once per import."""
        return True

    def poll(self) -> set[str]:
        """Pick up what other processes committed since the last poll; emit events for it."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT doc_id, MAX(seq) FROM updates WHERE seq > ? GROUP BY doc_id",
                [self._polled_seq],
            ).fetchall()
            changed: set[str] = set()
            for doc_id, newest in rows:
                self._polled_seq = max(self._polled_seq, newest)
                entry = self._docs.get(doc_id)
                if entry is not None and entry.seen_seq >= newest:
                    continue  # our own write
                if entry is not None:
                    self._entry(self.db.conn, doc_id, must_exist=False)
                changed.add(doc_id)
        for doc_id in sorted(changed):
            self._emit(StoreEvent(doc_id, "process"))
        return changed

    # -- compaction -----------------------------------------------------------------------

    def compact(self, doc_id: str) -> int:
        """Fold the document's updates into one snapshot; return how many rows were folded."""
        with self._lock, transaction(self.db) as conn:
            entry = self._entry(conn, doc_id, must_exist=False)
            upto = entry.seen_seq
            pending = entry.doc.export_pending_updates()
            if pending:  # updates waiting for missing dependencies are not in a snapshot
                cur = conn.execute(
                    "INSERT INTO updates (doc_id, data) VALUES (?, ?)", [doc_id, bytes(pending)]
                )
                entry.seen_seq = int(cur.lastrowid or upto)
            snapshot = bytes(entry.doc.export(ExportMode.Snapshot()))
            conn.execute(
                "INSERT INTO snapshots (doc_id, data, upto_seq) VALUES (?, ?, ?)"
                " ON CONFLICT(doc_id) DO UPDATE SET data = excluded.data, upto_seq = excluded.upto_seq",
                [doc_id, snapshot, upto],
            )
            folded = conn.execute(
                "DELETE FROM updates WHERE doc_id = ? AND seq <= ?", [doc_id, upto]
            ).rowcount
            entry.writes = 0
        log.debug("compacted %s: %d updates folded", doc_id, folded)
        return folded

    def _maybe_compact(self, doc_id: str, entry: _Loaded) -> None:
        if entry.writes < self.compact_after:
            return
        count = self.db.conn.execute(
            "SELECT COUNT(*) FROM updates WHERE doc_id = ?", [doc_id]
        ).fetchone()[0]
        if count >= self.compact_after:
            self.compact(doc_id)
        entry.writes = 0
