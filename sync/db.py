"""Opening the SQLite file and migrating its schema.

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
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import sqlite_utils

from sync.errors import CorruptStoreError, StoreError
from sync.ids import new_id


class NewerStoreError(StoreError):
    """The store was made by a newer covey than this one."""

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 60_000
MIGRATIONS_TABLE = "_covey_migrations"

Migration = Callable[[sqlite_utils.Database], None]


def m001_updates_and_snapshots(db: sqlite_utils.Database) -> None:
    """The source of truth: Loro update bytes, in local sequence order, and folded snapshots."""
    db.execute("CREATE TABLE covey_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # AUTOINCREMENT: a sequence number is never reused after compaction deletes rows, so a
    # process that remembers "seen up to N" can never miss a later row that reused N.
    db.execute(
        "CREATE TABLE updates (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " doc_id TEXT NOT NULL, data BLOB NOT NULL)"
    )
    db.execute("CREATE INDEX updates_doc_seq ON updates (doc_id, seq)")
    db.execute(
        "CREATE TABLE snapshots (doc_id TEXT PRIMARY KEY, data BLOB NOT NULL,"
        " upto_seq INTEGER NOT NULL)"
    )
    db.execute("CREATE TABLE writers (slot INTEGER PRIMARY KEY, peer_id INTEGER NOT NULL UNIQUE)")


def m002_materialized_view(db: sqlite_utils.Database) -> None:
    """Lists and search read these rows; they are kept current from the documents."""
    db.execute(
        "CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, message_count INTEGER NOT NULL,"
        " archived INTEGER NOT NULL DEFAULT 0, system_prompt TEXT, created_by TEXT)"
    )
    db.execute("CREATE INDEX conversations_updated ON conversations (updated_at DESC)")
    db.execute(
        "CREATE TABLE messages (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL,"
        " position INTEGER NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,"
        " created_at TEXT NOT NULL, device TEXT, model TEXT, status TEXT NOT NULL,"
        " parent_id TEXT)"
    )
    db.execute("CREATE INDEX messages_conversation ON messages (conversation_id, position)")
    # The FTS index is external-content with triggers (the layout sqlite-utils' enable_fts makes),
    # written out here because enable_fts runs executescript, which would commit our migration
    # transaction half-way.
    for statement in FTS_STATEMENTS:
        db.execute(statement)


FTS_STATEMENTS = [
    "CREATE VIRTUAL TABLE messages_fts USING FTS5"
    " (text, tokenize='porter unicode61', content='messages')",
    "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);"
    " END",
    "CREATE TRIGGER messages_au AFTER UPDATE ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);"
    " INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text); END",
]


def m003_streaming_index(db: sqlite_utils.Database) -> None:
    """Finding answers left mid-stream by a crashed process must not scan every message."""
    db.execute("CREATE INDEX messages_streaming ON messages (device) WHERE status = 'streaming'")


def m004_versions_and_sources(db: sqlite_utils.Database) -> None:
    """Sync needs every document's version without loading it, and where an update came from."""
    from loro import LoroDoc

    from sync import versions

    db.execute("ALTER TABLE updates ADD COLUMN source TEXT")
    db.execute("CREATE TABLE doc_versions (doc_id TEXT PRIMARY KEY, vv BLOB NOT NULL)")
    doc_ids = [r[0] for r in db.execute(
        "SELECT doc_id FROM snapshots UNION SELECT DISTINCT doc_id FROM updates")]
    for doc_id in doc_ids:
        doc = LoroDoc()
        blobs = [r[0] for r in db.execute("SELECT data FROM snapshots WHERE doc_id = ?", [doc_id])]
        blobs += [r[0] for r in db.execute(
            "SELECT data FROM updates WHERE doc_id = ? ORDER BY seq", [doc_id])]
        try:
            doc.import_batch(blobs)
        except BaseException as exc:  # loro raises bare BaseException on bad bytes
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            continue  # unreadable history: it stays unindexed (and unsynced) as before
        versions.record(db.conn, doc_id, doc.oplog_vv)


def m005_network_state(db: sqlite_utils.Database) -> None:
    """Local, unsynced network state: pairing offers, peer addresses, when peers were seen."""
    db.execute(
        "CREATE TABLE pairing_offers (code TEXT PRIMARY KEY, number INTEGER NOT NULL,"
        " created_at REAL NOT NULL, expires_at REAL NOT NULL, state TEXT NOT NULL,"
        " device TEXT, reason TEXT)"
    )
    db.execute("CREATE TABLE peer_addresses (address TEXT PRIMARY KEY, added_at REAL NOT NULL)")
    db.execute(
        "CREATE TABLE peer_status (device_id TEXT PRIMARY KEY, address TEXT, last_seen REAL,"
        " last_sync REAL, online INTEGER NOT NULL DEFAULT 0)"
    )


def m006_seen_on_the_lan(db: sqlite_utils.Database) -> None:
    """Devices seen by mDNS (members or not), for `covey peers`."""
    db.execute(
        "CREATE TABLE peers_seen (name TEXT PRIMARY KEY, device_prefix TEXT NOT NULL,"
        " household_hash TEXT NOT NULL, addresses TEXT NOT NULL, port INTEGER NOT NULL,"
        " can_run_models INTEGER NOT NULL, model TEXT, tok_s REAL, online INTEGER NOT NULL,"
        " last_seen REAL NOT NULL)"
    )


def m007_queued_index(db: sqlite_utils.Database) -> None:
    """Nodes look for queued jobs on every change: an index, not a scan."""
    db.execute("CREATE INDEX messages_queued ON messages (conversation_id) WHERE status = 'queued'")


def m008_job_columns(db: sqlite_utils.Database) -> None:
    """`covey show` tells whether an answer was handed over or taken over."""
    db.execute("ALTER TABLE messages ADD COLUMN requested_by TEXT")
    db.execute("ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")


def m009_presence(db: sqlite_utils.Database) -> None:
    """Where a peer listens (not the port it dialled from), why its last session ended, and how
    far a catch-up from it has come."""
    for column in ("listen_address TEXT", "last_error TEXT", "catch_up_total INTEGER",
                   "catch_up_done INTEGER"):
        db.execute(f"ALTER TABLE peer_status ADD COLUMN {column}")


def m010_search_index_in_bulk(db: sqlite_utils.Database) -> None:
    """New messages are indexed for search by the view, a conversation per statement (twice as
    fast as a trigger row by row); updates and deletes keep their triggers."""
    db.execute("DROP TRIGGER messages_ai")


def m011_pairing_tries(db: sqlite_utils.Database) -> None:
    """Wrong pairing tries are counted (per offer and per address) instead of using the code up."""
    db.execute("ALTER TABLE pairing_offers ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE TABLE pairing_failures (code TEXT NOT NULL, address TEXT NOT NULL,"
               " count INTEGER NOT NULL, PRIMARY KEY (code, address))")


def m012_clock_offset(db: sqlite_utils.Database) -> None:
    """How far a peer's clock is from ours, as it said at hello (shown, never relied on)."""
    db.execute("ALTER TABLE peer_status ADD COLUMN clock_offset REAL")


def m013_order_by_arrival(db: sqlite_utils.Database) -> None:
    """Conversations are listed by when they last changed *here* at the latest (never later
    than they arrived), so a device whose clock is ahead cannot keep its own on top."""
    from sync.ids import now_iso

    db.execute("ALTER TABLE conversations ADD COLUMN sort_at TEXT")
    db.execute("UPDATE conversations SET sort_at = MIN(updated_at, ?)", [now_iso()])
    db.execute("CREATE INDEX conversations_sort ON conversations (sort_at DESC)")


def m014_membership_log(db: sqlite_utils.Database) -> None:
    """Every membership entry this device has seen (the document may lose some; this table
    only grows), and which one is the founding entry it pinned."""
    db.execute("CREATE TABLE membership_log (hash TEXT PRIMARY KEY, entry TEXT NOT NULL,"
               " root INTEGER NOT NULL DEFAULT 0)")


def m015_arrivals(db: sqlite_utils.Database) -> None:
    """Which device handed us which changes, and when they arrived (see sync/arrivals.py)."""
    db.execute("CREATE TABLE arrivals (doc_id TEXT NOT NULL, peer INTEGER NOT NULL,"
               " start INTEGER NOT NULL, end INTEGER NOT NULL, source TEXT NOT NULL,"
               " at REAL NOT NULL)")
    db.execute("CREATE INDEX arrivals_doc_peer ON arrivals (doc_id, peer)")
    db.execute("CREATE INDEX arrivals_source ON arrivals (source)")


def m016_ratings(db: sqlite_utils.Database) -> None:
    """The user's feedback on answers, shown by `show` and the app (see conversation.py)."""
    db.execute("ALTER TABLE messages ADD COLUMN rating TEXT")
    db.execute("ALTER TABLE messages ADD COLUMN rating_note TEXT")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_updates_and_snapshots", m001_updates_and_snapshots),
    ("m002_materialized_view", m002_materialized_view),
    ("m003_streaming_index", m003_streaming_index),
    ("m004_versions_and_sources", m004_versions_and_sources),
    ("m005_network_state", m005_network_state),
    ("m006_seen_on_the_lan", m006_seen_on_the_lan),
    ("m007_queued_index", m007_queued_index),
    ("m008_job_columns", m008_job_columns),
    ("m009_presence", m009_presence),
    ("m010_search_index_in_bulk", m010_search_index_in_bulk),
    ("m011_pairing_tries", m011_pairing_tries),
    ("m012_clock_offset", m012_clock_offset),
    ("m013_order_by_arrival", m013_order_by_arrival),
    ("m014_membership_log", m014_membership_log),
    ("m015_arrivals", m015_arrivals),
    ("m016_ratings", m016_ratings),
]


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
        db = sqlite_utils.Database(conn)
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
