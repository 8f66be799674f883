"""The conversation store: conversation documents, their edits, and the materialized view.

Built on `DocumentStore` (durable Loro documents in SQLite). Whoever appends an update also
refreshes the view rows of that conversation in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from loro import LoroDoc

from sync import conversation as schema
from sync import view
from sync.conversation import Conversation, Message
from sync.db import StoreFiles
from sync.docstore import DocumentStore
from sync.edits import StoreEvent
from sync.errors import StoreError, UnknownConversationError
from sync.ids import new_id, now_iso
from sync.writers import slot_is_live

HOUSEHOLD_DOC = "household"
DEFAULT_TITLE = "New conversation"  # until the first answer that completes titles it


class Store(DocumentStore):
    """All conversations of one device. Thread-safe; one instance per process."""

    #: Answers this process is streaming right now (never "interrupted" by recovery).
    _streaming: set[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._streaming = set()

    # -- writing conversations ------------------------------------------------------------

    def create_conversation(
        self, system_prompt: str | None = None, title: str = DEFAULT_TITLE
    ) -> str:
        conv_id = new_id()

        def init(doc: LoroDoc) -> None:
            schema.init_conversation(
                doc, conv_id=conv_id, title=title, created_at=now_iso(), created_by=self.device_id,
                system_prompt=system_prompt,
            )

        self.write(conv_id, init, touched=None, create=True)
        return conv_id

    def add_turn(
        self, conv_id: str | None, prompt: str, *, system_prompt: str | None = None,
        parent_id: str | None = None, status: str = "streaming", model: str | None = None,
        then: Callable[[LoroDoc, str], object] | None = None,
    ) -> tuple[str, str, str]:
        """A prompt and its (empty) answer in one commit — in a new conversation when `conv_id`
        is None — and `then(doc, answer_id)` in the same commit (a job for the answer: a peer
        never sees it as anything but queued). Returns (conversation, prompt, answer) ids.

        `parent_id` as for `add_message`; `system_prompt` is the new conversation's, or replaces
        the conversation's own."""
        new = conv_id is None
        conv = conv_id or new_id()
        prompt_id, answer_id = new_id(), new_id()

        def add(doc: LoroDoc) -> None:
            if new:
                schema.init_conversation(doc, conv_id=conv, title=DEFAULT_TITLE,
                                         created_at=now_iso(), created_by=self.device_id,
                                         system_prompt=system_prompt)
            elif system_prompt:
                schema.set_meta(doc, system_prompt=system_prompt)
            parent = parent_id
            if parent is None and not new:
                last = schema.read_conversation(conv, doc)
                parent = last.messages[-1].id if last and last.messages else None
            self._append_new(doc, Message(id=prompt_id, role="user", text=prompt,
                                          created_at=now_iso(), device=self.device_id,
                                          parent_id=parent or None))
            self._append_new(doc, Message(id=answer_id, role="assistant", text="",
                                          created_at=now_iso(), device=self.device_id,
                                          model=model, status=status, parent_id=prompt_id))
            if then is not None:
                then(doc, answer_id)

        self.write(conv, add, touched=None if new else {prompt_id, answer_id}, create=new)
        return conv, prompt_id, answer_id

    def _append_new(self, doc: LoroDoc, message: Message) -> None:
        entry = schema.append_message(doc, message)
        if message.status == "streaming":
            self._streaming.add(message.id)
            # Which process streams it: if that process dies, the next store to open on
            # this device marks the answer interrupted instead of "streaming" forever.
            entry.insert("writer_slot", self._writer.slot)

    def add_message(
        self, conv_id: str, role: str, text: str, *, parent_id: str | None = None,
        status: str = "done", model: str | None = None,
        then: Callable[[LoroDoc, str], object] | None = None,
    ) -> str:
        """Append a message; `parent_id` defaults to the current last message ("" = none:
        a first prompt edited into a new branch). `then(doc, message_id)` runs in the same
        commit (as for `add_turn`)."""
        message_id = new_id()

        def add(doc: LoroDoc) -> None:
            parent = parent_id
            if parent is None:
                last = schema.read_conversation(conv_id, doc)
                parent = last.messages[-1].id if last and last.messages else None
            self._append_new(doc, Message(
                id=message_id, role=role, text=text, created_at=now_iso(),
                device=self.device_id, model=model, status=status, parent_id=parent or None,
            ))
            if then is not None:
                then(doc, message_id)

        self.write(conv_id, add, touched={message_id})
        return message_id

    def recover_interrupted(self) -> list[str]:
        """Mark answers whose writing process died mid-stream as "interrupted"; return their ids.

        Only this device's own answers (not jobs), and only those whose writer slot no live
        process holds.
        """
        # Not answers run as jobs (delegation): their writer slot is the requester's, from
        # another device, and their liveness is the job's lease (a lapsed one is taken over).
        rows = self.db.conn.execute(
            "SELECT conversation_id, id FROM messages WHERE status = 'streaming' AND device = ?"
            " AND requested_by IS NULL", [self.device_id],
        ).fetchall()
        recovered = []
        for conv_id, message_id in rows:
            with self._lock:
                doc = self._entry(self.db.conn, conv_id).doc
                entry = schema.message_map(doc, message_id)
                slot = schema.plain(entry.get("writer_slot")) if entry is not None else None
            if not isinstance(slot, int) or message_id in self._streaming:
                continue
            # Our own slot but not our stream: a previous holder of the slot died mid-answer.
            if slot == self._writer.slot or not slot_is_live(self._writer.locks_dir, slot):
                self.finish_message(conv_id, message_id, "interrupted")
                recovered.append(message_id)
        return recovered

    def append_text(self, conv_id: str, message_id: str, text: str) -> None:
        """Stream `text` onto the end of a message (one commit; call every few tokens)."""
        if text:
            self._edit_message(conv_id, message_id, text=text, fsync=False)

    def finish_message(self, conv_id: str, message_id: str, status: str, text: str = "") -> None:
        """Append any last `text` and set the final status, in one commit."""
        self._edit_message(conv_id, message_id, text=text, status=status)
        self._streaming.discard(message_id)

    def _edit_message(
        self, conv_id: str, message_id: str, text: str = "", status: str | None = None,
        fsync: bool = True,
    ) -> None:
        def edit(doc: LoroDoc) -> None:
            entry = schema.message_map(doc, message_id)
            container = schema.message_text(entry) if entry is not None else None
            if entry is None or container is None:
                raise StoreError(f"message {message_id} is not in conversation {conv_id}")
            if text:
                container.insert(container.len_unicode, text)
            if status is not None:
                entry.insert("status", status)

        self.write(conv_id, edit, touched={message_id}, fsync=fsync)

    def set_title(self, conv_id: str, title: str, source: str = "user") -> None:
        self._set_meta(conv_id, title=title, title_source=source)

    def set_system_prompt(self, conv_id: str, system_prompt: str) -> None:
        self._set_meta(conv_id, system_prompt=system_prompt)

    def set_archived(self, conv_id: str, archived: bool) -> None:
        self._set_meta(conv_id, archived=archived)

    def delete_conversation(self, conv_id: str) -> None:
        """Tombstone the conversation (the tombstone syncs); it leaves lists and search."""
        self._set_meta(conv_id, deleted=True)

    def undelete_conversation(self, conv_id: str) -> None:
        """Lift the tombstone (undo of a delete); the conversation comes back everywhere."""
        self._set_meta(conv_id, deleted=False)

    def _set_meta(self, conv_id: str, **values: object) -> None:
        self.write(conv_id, lambda doc: schema.set_meta(doc, **values), touched=set())

    def _check(self, doc_id: str, doc: LoroDoc) -> object | None:
        if doc_id == HOUSEHOLD_DOC:
            return True
        return schema.read_conversation(doc_id, doc)

    def _after_append(
        self, conn: sqlite3.Connection, doc_id: str, doc: LoroDoc, touched: set[str] | None,
        parsed: object = None,
    ) -> None:
        conv = parsed if isinstance(parsed, Conversation) else schema.read_conversation(doc_id, doc)
        if conv is not None:
            view.refresh(conn, conv, touched)

    def untitled(self, conv_id: str) -> bool:
        """Still "New conversation", never titled (its first answers may have been stopped)."""
        conv = self.conversation_document(conv_id)
        return conv is not None and conv.title_source == "auto" and conv.title == DEFAULT_TITLE

    def conversation_document(self, conv_id: str) -> Conversation | None:
        """The conversation in document `conv_id`, deleted or not; None if there is none."""
        with self._lock:
            entry = self._entry(self.db.conn, conv_id)
            return schema.read_conversation(conv_id, entry.doc)

    def conversation(self, conv_id: str) -> Conversation:
        """The full, current conversation (from its document)."""
        conv = self.conversation_document(conv_id)
        if conv is None or conv.deleted:
            raise UnknownConversationError(f"no conversation {conv_id}")
        return conv

    # -- the materialized view ------------------------------------------------------------

    def list_conversations(
        self, limit: int | None = None, include_archived: bool = False
    ) -> list[view.ConversationRow]:
        with self._lock:
            return view.list_conversations(self.db.conn, limit, include_archived)

    def summary(self, conv_id: str) -> view.ConversationRow:
        with self._lock:
            row = view.get_conversation(self.db.conn, conv_id)
        if row is None:
            raise UnknownConversationError(f"no conversation {conv_id}")
        return row

    def answers_in_flight(self) -> dict[str, int]:
        """Answers queued or running, per device that runs them (routing weighs queues)."""
        with self._lock:
            return view.answers_in_flight(self.db.conn)

    def queued_answers(self) -> list[tuple[str, str]]:
        """(conversation id, message id) of every answer waiting to be run."""
        with self._lock:
            return view.queued_answers(self.db.conn)

    def text_length(self, message_id: str) -> int | None:
        """How long a message's text is now (a cheap read of the view: benchmarks poll it)."""
        with self._lock:
            return view.text_length(self.db.conn, message_id)

    def health(self) -> tuple[str, dict[str, int]]:
        """SQLite's integrity check and the main tables' row counts (`covey doctor`)."""
        with self._lock:
            return view.health(self.db.conn)

    def ratings(self, conv_id: str) -> dict[str, tuple[str | None, str | None]] | None:
        """Message id → (rating, note) of a listed conversation, from the view (no document
        is loaded: an import asks this of every conversation); None if it is not listed."""
        with self._lock:
            return view.ratings_of(self.db.conn, conv_id)

    def messages(self, conv_id: str) -> list[Message]:
        self.summary(conv_id)
        with self._lock:
            return view.messages_of(self.db.conn, conv_id)

    def search(self, words: str, limit: int = 20) -> list[view.SearchHit]:
        with self._lock:
            return view.search(self.db.conn, words, limit)

    def recent_prompts(self, limit: int = 100) -> list[str]:
        """What was asked lately, newest first, without repeats (the prompt's input history)."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT text FROM messages WHERE role = 'user' ORDER BY created_at DESC LIMIT ?",
                [limit * 2]).fetchall()
        return list(dict.fromkeys(r[0] for r in rows if r[0].strip()))[:limit]

    def answers_with_text(self, text: str, limit: int = 20) -> list[tuple[str, str]]:
        """(conversation id, message id) of finished answers whose text is exactly `text`,
        newest first: how a client that repeats a conversation's turns is found again."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT conversation_id, id FROM messages WHERE role = 'assistant' AND text = ?"
                " AND status = 'done' ORDER BY created_at DESC LIMIT ?", [text, limit]).fetchall()
        return [(r[0], r[1]) for r in rows]

    def rate(self, conv_id: str, message_id: str, rating: str | None, note: str | None = None) -> None:
        """Feedback on an answer: "up", "down", or None to take it back (synced, last wins)."""
        if rating is not None and rating not in schema.RATINGS:
            raise StoreError(f"a rating is one of {', '.join(schema.RATINGS)}, not {rating!r}")

        def rate(doc: LoroDoc) -> None:
            if schema.message_map(doc, message_id) is None:
                raise StoreError(f"message {message_id} is not in conversation {conv_id}")
            schema.set_rating(doc, message_id, rating, note, self.device_id, now_iso())

        self.write(conv_id, rate, touched={message_id})

    def resolve_message(self, id_or_prefix: str) -> tuple[str, str]:
        """(conversation id, message id) of a message given its id or a unique prefix of it."""
        prefix = id_or_prefix.strip().lower()
        with self._lock:
            found = view.resolve_message_prefix(self.db.conn, prefix) if prefix else []
        if not found:
            raise UnknownConversationError(
                f"no message {id_or_prefix!r} (`covey show CONVERSATION -v` shows message ids)")
        if len(found) > 1:
            raise UnknownConversationError(
                f"{id_or_prefix!r} matches several messages; give more of the id")
        return found[0]

    def set_client(self, conv_id: str, client: str) -> None:
        """Which program made the conversation (an API key's name, say); shown by `show`."""
        self._set_meta(conv_id, client=client)

    # -- this device's own notes (covey_meta: never synced) ------------------------------------
    # (under the store's lock: the connection is shared by the app's threads and its node's)

    def note(self, key: str) -> str | None:
        with self._lock:
            row = self.db.conn.execute("SELECT value FROM covey_meta WHERE key = ?",
                                       [key]).fetchone()
        return row[0] if row else None

    def notes_starting(self, prefix: str) -> list[tuple[str, str]]:
        with self._lock:
            return [(k, v) for k, v in self.db.conn.execute(
                "SELECT key, value FROM covey_meta WHERE substr(key, 1, ?) = ?",
                [len(prefix), prefix])]

    def set_note(self, key: str, value: str) -> None:
        with self._lock:
            self.db.conn.execute("INSERT OR REPLACE INTO covey_meta (key, value) VALUES (?, ?)",
                                 [key, value])

    def set_model(self, conv_id: str, model: str) -> None:
        """The model a conversation is answered by, by name (every device sees it)."""
        self._set_meta(conv_id, model=model)

    def latest_conversation_id(self) -> str | None:
        rows = self.list_conversations(limit=1, include_archived=True)
        return rows[0].id if rows else None

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of a conversation given its id or a unique prefix of it."""
        prefix = id_or_prefix.strip().lower()
        if not prefix:
            raise UnknownConversationError("no conversation id given")
        with self._lock:
            found = view.resolve_prefix(self.db.conn, prefix)
        if not found:
            raise UnknownConversationError(
                f"no conversation {id_or_prefix!r} (see `covey history` for ids)"
            )
        if len(found) > 1:
            raise UnknownConversationError(
                f"{id_or_prefix!r} matches several conversations; give more of the id"
            )
        return found[0]

@contextmanager
def opened(paths: StoreFiles, device_id: str, compact_after: int = 256) -> Iterator[Store]:
    store = Store.open(paths, device_id, compact_after)
    try:
        yield store
    finally:
        store.close()


__all__ = ["Conversation", "Message", "Store", "StoreEvent", "opened"]
