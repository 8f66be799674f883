"""Schema migrations: from a blank database and from an older schema."""

from __future__ import annotations

from pathlib import Path

from loro import ExportMode, LoroDoc, VersionVector

from sync import db as dbmod
from sync import versions
from sync.db import MIGRATIONS, migrate, open_database


def names(database) -> list[str]:  # type: ignore[no-untyped-def]
    return [r[0] for r in database.execute(f"SELECT name FROM {dbmod.MIGRATIONS_TABLE} ORDER BY rowid")]


def test_blank_database_gets_every_migration_in_order(tmp_path: Path) -> None:
    database = open_database(tmp_path / "c.db")
    assert names(database) == [n for n, _ in MIGRATIONS]
    tables = set(database.table_names())
    assert {"updates", "snapshots", "conversations", "messages", "messages_fts"} <= tables
    assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_apply_once(tmp_path: Path) -> None:
    open_database(tmp_path / "c.db").conn.close()
    database = open_database(tmp_path / "c.db")
    assert migrate(database, MIGRATIONS) == []
    assert names(database) == [n for n, _ in MIGRATIONS]


def test_old_schema_with_data_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = open_database(path, migrations=MIGRATIONS[:1])
    assert "conversations" not in old.table_names()
    doc = LoroDoc()
    doc.peer_id = 42
    doc.get_text("t").insert(0, "old data")
    doc.commit()
    old.execute("INSERT INTO updates (doc_id, data) VALUES ('d', ?)",
                [doc.export(ExportMode.Updates(VersionVector()))])
    old.execute("INSERT INTO updates (doc_id, data) VALUES ('junk', x'00')")
    old.conn.close()
    database = open_database(path)
    assert names(database) == [n for n, _ in MIGRATIONS]
    assert database.execute("SELECT doc_id FROM updates ORDER BY seq").fetchall() == [("d",), ("junk",)]
    # m004 indexed the version of the readable document (and skipped the unreadable one)
    assert versions.index(database.conn) == [("d", versions.encode_vv(doc.oplog_vv))]
    # search indexing (the view's writes, and the triggers left) works on the migrated file
    from sync import view
    from sync.conversation import Conversation, Message

    conv = Conversation(id="d", title="t", created_at="t",
                        messages=[Message(id="m", role="user", text="alpacas graze", created_at="t")])
    view.refresh(database.conn, conv, None)
    view.refresh(database.conn, conv, {"m"})
    assert database.execute(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'alpacas'"
    ).fetchall()


def test_a_failing_migration_leaves_nothing_half_done(tmp_path: Path) -> None:
    def broken(database) -> None:  # type: ignore[no-untyped-def]
        database.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    path = tmp_path / "c.db"
    database = open_database(path)
    try:
        migrate(database, MIGRATIONS + [("m999_broken", broken)])
    except RuntimeError:
        pass
    assert "half" not in database.table_names()
    assert "m999_broken" not in names(database)
