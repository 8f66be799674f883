"""The materialized view: conversation and message rows plus an FTS5 index.

Whoever appends an update row refreshes the view from the document in the same transaction, so
the view never disagrees with the updates it was built from. Lists, `show` and search read only
these rows and never load a document.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sync.conversation import Conversation, Message
from sync.ids import now_iso


@dataclass(frozen=True)
class ConversationRow:
    id: str
    title: str
    created_at: str
    updated_at: str
    message_count: int
    archived: bool
    system_prompt: str | None


@dataclass(frozen=True)
class SearchHit:
    conversation_id: str
    conversation_title: str
    message_id: str
    role: str
    created_at: str
    snippet: str


def refresh(conn: sqlite3.Connection, conv: Conversation, touched: Iterable[str] | None) -> None:
    """Bring the rows of `conv` up to date; `touched` = only these messages changed."""
    if conv.deleted:
        conn.execute("DELETE FROM messages WHERE conversation_id = ?", [conv.id])
        conn.execute("DELETE FROM conversations WHERE id = ?", [conv.id])
        return
    # The order of the list (and `--continue`) must not follow another device's clock: a
    # conversation written by a device a year ahead is as recent as when it reached us.
    sort_at = min(conv.updated_at, now_iso())
    conn.execute(
        "INSERT INTO conversations (id, title, created_at, updated_at, message_count, archived,"
        " system_prompt, created_by, sort_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET title = excluded.title, updated_at = excluded.updated_at,"
        " message_count = excluded.message_count, archived = excluded.archived,"
        " system_prompt = excluded.system_prompt,"
        " sort_at = CASE WHEN excluded.updated_at = conversations.updated_at"
        " THEN conversations.sort_at ELSE excluded.sort_at END",
        [conv.id, conv.title, conv.created_at, conv.updated_at, len(conv.messages),
         int(conv.archived), conv.system_prompt, conv.created_by, sort_at],
    )
    wanted = set(touched) if touched is not None else None
    if wanted is None and conn.execute(
            "SELECT 1 FROM messages WHERE conversation_id = ? LIMIT 1", [conv.id]).fetchone() is None:
        # A conversation new to this view (a catch-up brings thousands): one plain insert.
        conn.executemany(
            "INSERT INTO messages (id, conversation_id, position, role, text, created_at, device,"
            " model, status, parent_id, requested_by, attempts, rating, rating_note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
            [_row(conv.id, position, m) for position, m in enumerate(conv.messages)])
        conn.execute("INSERT INTO messages_fts (rowid, text) SELECT rowid, text FROM messages"
                     " WHERE conversation_id = ?", [conv.id])
        return
    for position, message in enumerate(conv.messages):
        if wanted is None or message.id in wanted:
            _upsert_message(conn, conv.id, position, message)
    if wanted is None:
        keep = [m.id for m in conv.messages]
        marks = ",".join("?" * len(keep))
        conn.execute(
            f"DELETE FROM messages WHERE conversation_id = ? AND id NOT IN ({marks})",
            [conv.id, *keep],
        )


def _upsert_message(conn: sqlite3.Connection, conv_id: str, position: int, m: Message) -> None:
    # New rows are indexed for search here (there is no insert trigger: indexing a whole
    # conversation in one statement is twice as fast, and catch-ups bring thousands).
    if conn.execute("SELECT 1 FROM messages WHERE id = ?", [m.id]).fetchone() is None:
        cur = conn.execute(
            "INSERT INTO messages (id, conversation_id, position, role, text, created_at, device,"
            " model, status, parent_id, requested_by, attempts, rating, rating_note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(conv_id, position, m))
        conn.execute("INSERT INTO messages_fts (rowid, text) VALUES (?, ?)",
                     [cur.lastrowid, m.text])
        return
    # ON CONFLICT … DO UPDATE (not INSERT OR REPLACE) so the FTS update trigger fires.
    conn.execute(
        "INSERT INTO messages (id, conversation_id, position, role, text, created_at, device,"
        " model, status, parent_id, requested_by, attempts, rating, rating_note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET position = excluded.position, text = excluded.text,"
        " status = excluded.status, model = excluded.model, device = excluded.device,"
        " requested_by = excluded.requested_by, attempts = excluded.attempts,"
        " rating = excluded.rating, rating_note = excluded.rating_note"
        " WHERE messages.text IS NOT excluded.text OR messages.status IS NOT excluded.status"
        " OR messages.position IS NOT excluded.position OR messages.device IS NOT excluded.device"
        " OR messages.attempts IS NOT excluded.attempts OR messages.model IS NOT excluded.model"
        " OR messages.rating IS NOT excluded.rating"
        " OR messages.rating_note IS NOT excluded.rating_note",
        _row(conv_id, position, m),
    )


def _row(conv_id: str, position: int, m: Message) -> list[object]:
    return [m.id, conv_id, position, m.role, m.text, m.created_at, m.device, m.model, m.status,
            m.parent_id, m.requested_by, m.attempts, m.rating, m.rating_note]


def list_conversations(
    conn: sqlite3.Connection, limit: int | None = None, include_archived: bool = False
) -> list[ConversationRow]:
    sql = (
        "SELECT id, title, created_at, updated_at, message_count, archived, system_prompt"
        " FROM conversations"
    )
    if not include_archived:
        sql += " WHERE archived = 0"
    sql += " ORDER BY sort_at DESC, id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [
        ConversationRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6])
        for r in conn.execute(sql)
    ]


def get_conversation(conn: sqlite3.Connection, conv_id: str) -> ConversationRow | None:
    r = conn.execute(
        "SELECT id, title, created_at, updated_at, message_count, archived, system_prompt"
        " FROM conversations WHERE id = ?",
        [conv_id],
    ).fetchone()
    return ConversationRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) if r else None


def messages_of(conn: sqlite3.Connection, conv_id: str) -> list[Message]:
    rows = conn.execute(
        "SELECT id, role, text, created_at, device, model, status, parent_id, requested_by,"
        " attempts, rating, rating_note FROM messages"
        " WHERE conversation_id = ? ORDER BY position",
        [conv_id],
    )
    return [Message(*r) for r in rows]


def ratings_of(conn: sqlite3.Connection, conv_id: str) -> dict[str, tuple[str | None, str | None]] | None:
    """Each message id of a listed conversation with its (rating, note); None if it is not
    listed (unknown, or deleted)."""
    if conn.execute("SELECT 1 FROM conversations WHERE id = ?", [conv_id]).fetchone() is None:
        return None
    rows = conn.execute("SELECT id, rating, rating_note FROM messages WHERE conversation_id = ?",
                        [conv_id])
    return {r[0]: (r[1], r[2]) for r in rows}


def answers_in_flight(conn: sqlite3.Connection) -> dict[str, int]:
    """Answers queued or running, per device that runs them."""
    rows = conn.execute(
        "SELECT device, COUNT(*) FROM messages WHERE status IN ('queued', 'streaming')"
        " AND role = 'assistant' GROUP BY device").fetchall()
    return {r[0]: int(r[1]) for r in rows if r[0]}


def queued_answers(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(conversation id, message id) of every answer waiting to be run."""
    rows = conn.execute("SELECT conversation_id, id FROM messages WHERE status = 'queued'")
    return [(r[0], r[1]) for r in rows]


def text_length(conn: sqlite3.Connection, message_id: str) -> int | None:
    row = conn.execute("SELECT length(text) FROM messages WHERE id = ?", [message_id]).fetchone()
    return int(row[0]) if row is not None else None


def health(conn: sqlite3.Connection) -> tuple[str, dict[str, int]]:
    """SQLite's quick check ("ok" or the first problem) and how many rows the main tables hold."""
    check = str(conn.execute("PRAGMA quick_check").fetchone()[0])
    counts = {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
              for t in ("conversations", "messages", "updates", "snapshots")}
    return check, counts


def resolve_prefix(conn: sqlite3.Connection, prefix: str) -> list[str]:
    """Ids of conversations that start with `prefix` (at most 2: enough to say 'ambiguous')."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        "SELECT id FROM conversations WHERE id LIKE ? ESCAPE '\\' LIMIT 2", [escaped + "%"]
    )
    return [r[0] for r in rows]


def resolve_message_prefix(conn: sqlite3.Connection, prefix: str) -> list[tuple[str, str]]:
    """(conversation id, message id) of messages whose id starts with `prefix` (at most 2)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        "SELECT conversation_id, id FROM messages WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
        [escaped + "%"])
    return [(r[0], r[1]) for r in rows]


def search(conn: sqlite3.Connection, words: str, limit: int = 20) -> list[SearchHit]:
    """Messages matching every word of `words` (any FTS syntax in it is taken literally)."""
    query = fts_query(words)
    if not query:
        return []
    rows = conn.execute(
        "SELECT m.conversation_id, c.title, m.id, m.role, m.created_at,"
        " snippet(messages_fts, 0, '[', ']', '…', 12)"
        " FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid"
        " JOIN conversations c ON c.id = m.conversation_id"
        " WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
        [query, limit],
    )
    return [SearchHit(*r) for r in rows]


def fts_query(words: str) -> str:
    """Quote each word so user text never reaches FTS5 as syntax."""
    tokens = re.findall(r"\w+", words, flags=re.UNICODE)
    return " ".join('"' + t + '"' for t in tokens)


def count_in_file(db: Path) -> int:
    """How many conversations the store file `db` lists, read-only, without opening a store
    (nor claiming a writer: a benchmark watches another process's store fill up)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()
