"""The store's schema, as the ordered list of changes that built it: each applied once, in
order, and recorded (sync/db.py applies them). A new feature adds one at the end; none is ever
edited once released, since stores out there already ran it.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

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
