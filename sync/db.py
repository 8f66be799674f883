"""Opening the SQLite file and migrating its schema (the schema's history: sync/migrations.py).

Schema changes are an ordered list of named functions, each applied once and recorded (as
simonw/llm does). Connections run in autocommit mode; writers take `BEGIN IMMEDIATE` so that
several covey processes on one home queue for the write lock instead of failing with
"database is locked" when a read transaction tries to upgrade.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Protocol

import sqlite_utils

from sync.errors import CorruptStoreError, StoreError
from sync.ids import new_id
from sync.migrations import MIGRATIONS as MIGRATIONS  # (re-exported: tests migrate with it)
from sync.migrations import Migration


class NewerStoreError(StoreError):
    """The store was made by a newer covey than this one."""

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 60_000
MIGRATIONS_TABLE = "_covey_migrations"

def open_database(path: Path, migrations: list[tuple[str, Migration]] | None = None) -> sqlite_utils.Database:
    """Open (creating if needed) the store at `path`, migrated to the latest schema."""
    _check_header(path)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit that returned is on disk; an acknowledged write survives power loss.
        conn.execute("PRAGMA synchronous = FULL")
        # 32 MiB of page cache (default 2 MiB): a catch-up writes all over the message and
        # search indexes, and misses there dominated its time.
        conn.execute("PRAGMA cache_size = -32768")
        # No sqlite-utils plugins on covey's store: none is meant to run on it, and finding
        # them (the installed packages' entry points) cost every command 14 ms at its start.
        db = sqlite_utils.Database(conn, execute_plugins=False)
        _check_is_covey(db, path)
        migrate(db, MIGRATIONS if migrations is None else migrations)
    except sqlite3.OperationalError as exc:  # the disk or the file, not the store's contents
        raise io_error(path, exc) from None
    except sqlite3.DatabaseError as exc:
        raise CorruptStoreError(
            f"{path} is damaged or not a covey store ({exc}); move it aside to start afresh"
        ) from None
    return db


def io_error(path: Path, exc: sqlite3.OperationalError) -> StoreError:
    """A clear message for what went wrong around the store file (nothing in it is lost)."""
    text = str(exc)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if "full" in text or (free is not None and free < (1 << 20) and "I/O" in text):
        return StoreError(f"the disk holding {path} is full: free some space and try again "
                          "(nothing stored was lost)")
    if "readonly" in text or "read-only" in text or _read_only(path):
        return StoreError(f"{path} cannot be written (a read-only disk or mount, or file "
                          "permissions): covey needs to write there")
    if "locked" in text or "busy" in text:
        return StoreError(f"{path} stayed locked by another program for "
                          f"{BUSY_TIMEOUT_MS // 1000} s; try again when it is done")
    return StoreError(f"cannot use the store {path}: {text}")


def migrate(db: sqlite_utils.Database, migrations: list[tuple[str, Migration]]) -> list[str]:
    """Apply the migrations not yet recorded, in order; return the names applied now.

    A store that records migrations this covey does not know was made by a newer covey: it is
    refused rather than used as if it were current."""
    applied_now: list[str] = []
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    known = {name for name, _ in MIGRATIONS} | {name for name, _ in migrations}
    unknown = sorted(r[0] for r in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")
                     if r[0] not in known)
    if unknown:
        raise NewerStoreError(
            f"this store was made by a newer covey (schema {len(unknown) + len(MIGRATIONS)}, "
            f"this covey knows {len(MIGRATIONS)}: {', '.join(unknown[:3])}); update covey")
    for name, migration in migrations:
        with transaction(db):
            done = db.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", [name]).fetchone()
            if done:
                continue
            migration(db)
            db.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, ?)", [name, time.time()])
            applied_now.append(name)
    return applied_now


class transaction:
    """`BEGIN IMMEDIATE` … COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite_utils.Database, fsync: bool = True) -> None:
        self.conn = db.conn
        self.fsync = fsync

    def __enter__(self) -> sqlite3.Connection:
        if not self.fsync:
            # WAL + NORMAL: committed and safe from a process crash; the WAL is synced to disk
            # with the next FULL commit (or checkpoint). Only a power cut could lose it.
            self.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _write_error(exc) from None
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.OperationalError as error:  # disk full, I/O error: nothing kept
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise _write_error(error) from None
            elif self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):  # e.g. full disk mid-write
                    raise _write_error(exc) from None
        finally:
            if not self.fsync:
                self.conn.execute("PRAGMA synchronous = FULL")


class StoreFiles(Protocol):
    """Where a store lives: its database and its lock files (app.config.Paths is one)."""

    @property
    def db_file(self) -> Path: ...

    @property
    def locks_dir(self) -> Path: ...

    def ensure(self) -> None:
        """Make the directories."""


def max_seq(db: sqlite_utils.Database) -> int:
    """The newest update row's sequence number (0 for an empty store)."""
    row = db.conn.execute("SELECT MAX(seq) FROM updates").fetchone()
    return int(row[0] or 0)


def ensure_epoch(db: sqlite_utils.Database) -> str:
    """This store's epoch: made once, so peers can tell a reset store from the one they knew."""
    with transaction(db) as conn:
        row = conn.execute("SELECT value FROM covey_meta WHERE key = 'store_epoch'").fetchone()
        if row:
            return str(row[0])
        epoch = new_id()
        conn.execute("INSERT INTO covey_meta (key, value) VALUES ('store_epoch', ?)", [epoch])
        return epoch


def _read_only(path: Path) -> bool:
    """Whether the store's directory is on a read-only mount, or not writable for us."""
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY) or not os.access(
            path.parent, os.W_OK)
    except OSError:
        return False


def _write_error(exc: sqlite3.OperationalError) -> StoreError:
    text = str(exc)
    if "full" in text:
        return StoreError("cannot write to the store: the disk is full (database or disk is "
                          "full); free some space — nothing stored was lost")
    if "readonly" in text:
        return StoreError("cannot write to the store: it is read-only (a read-only disk or "
                          "mount, or file permissions)")
    return StoreError(f"cannot write to the store: {text}")


def _check_header(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc.strerror}") from None
    if header != SQLITE_HEADER:
        raise CorruptStoreError(
            f"{path} is not a covey store (not an SQLite database); move it aside to start afresh"
        )


def _check_is_covey(db: sqlite_utils.Database, path: Path) -> None:
    tables = set(db.table_names())
    if tables and MIGRATIONS_TABLE not in tables:
        raise CorruptStoreError(
            f"{path} is an SQLite database but not a covey store; point COVEY_HOME elsewhere"
        )
