"""Putting imported conversations into the store: in batches, each conversation whole.

A batch of conversations is one transaction (one commit and one disk sync for hundreds of
conversations, instead of one each: the difference between minutes and seconds on a big
export). A conversation is written in a single edit, so an import stopped at any moment leaves
each conversation complete or absent; running it again adds the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from loro import LoroDoc

from app.errors import ImportFormatError
from app.importers.base import Tally
from sync import conversation as schema
from sync.conversation import Conversation, Message
from sync.edits import Edit
from sync.ids import now_iso
from sync.store import Store

#: Conversations per transaction: big enough that commits stop mattering, small enough that
#: an interrupted import loses little work and other processes wait briefly for the lock.
BATCH = 200


def _edit(store: Store, conv: Conversation) -> tuple[Edit[None], int] | None:
    """The edit that brings `conv` into the store and how many messages it adds; None if the
    store already holds all of it."""
    exists = bool(store.version_vector(conv.id))  # (an index lookup: imports are big)
    present = store.ratings(conv.id) if exists else {}
    deleted = False
    if present is None:  # stored but not listed: deleted (or not a conversation at all)
        current = store.conversation_document(conv.id)
        if current is None:
            raise ImportFormatError(f"{conv.title!r}: its id {conv.id} is taken by a document "
                                    "that is not a conversation")
        present = {m.id: (m.rating, m.rating_note) for m in current.messages}
        deleted = current.deleted
    new = [m for m in conv.messages if m.id not in present]
    rated = [m for m in conv.messages if m.rating and present.get(m.id) != (m.rating, m.rating_note)]
    if exists and not new and not rated and not deleted:
        return None

    def apply(doc: LoroDoc) -> None:
        if not exists:
            schema.init_conversation(
                doc, conv_id=conv.id, title=conv.title, created_at=conv.created_at,
                created_by=conv.created_by or store.device_id, system_prompt=conv.system_prompt,
            )
            schema.set_meta(doc, title_source=conv.title_source, archived=conv.archived)
            extra = {"client": conv.client, "model": conv.model}
            schema.set_meta(doc, **{k: v for k, v in extra.items() if v})
        if deleted:  # importing a deleted conversation restores it
            schema.set_meta(doc, deleted=False)
        for message in new:
            schema.append_message(doc, _plain(message))
        for message in rated:
            schema.set_rating(doc, message.id, message.rating, message.rating_note,
                              store.device_id, now_iso())

    return Edit(conv.id, apply, None, create=not exists), len(new)


def _plain(m: Message) -> Message:
    # Job details (attempts, who asked) describe a generation on another device's store; an
    # imported message is finished text. A status left "streaming" by a crash elsewhere is shown
    # as interrupted rather than forever in progress.
    status = "interrupted" if m.status in ("streaming", "queued") else m.status
    return Message(id=m.id, role=m.role, text=m.text, created_at=m.created_at, device=m.device,
                   model=m.model, status=status, parent_id=m.parent_id)


def restore_many(store: Store, conversations: Iterable[Conversation], tally: Tally,
                 after_batch: Callable[[], None] = lambda: None, batch: int = BATCH) -> None:
    """Write every conversation, batch by batch; count what was new in `tally`.

    A conversation met twice (an export listing it twice) is merged into the first: the batch
    is committed before the second is looked at.
    """
    edits: list[Edit[None]] = []
    pending: set[str] = set()
    new_messages = new_conversations = updated = 0

    def flush() -> None:
        nonlocal new_messages, new_conversations, updated
        todo, counts = list(edits), (new_messages, new_conversations, updated)
        edits.clear()  # (cleared first: a failed write is not tried again by the `finally`)
        pending.clear()
        new_messages = new_conversations = updated = 0
        if todo:
            store.write_many(todo)
            tally.new_messages += counts[0]
            tally.new_conversations += counts[1]
            tally.updated += counts[2]
        after_batch()

    try:
        for conv in conversations:
            if conv.id in pending:
                flush()
            made = _edit(store, conv)
            if made is None:
                continue
            edit, added = made
            edits.append(edit)
            pending.add(conv.id)
            new_messages += added
            new_conversations += 1 if edit.create else 0
            updated += 1 if not edit.create and not added else 0
            if len(edits) >= batch:
                flush()
    finally:
        # What was read whole before an error (or Ctrl+C) is kept: each conversation is
        # complete, and the error is reported after it.
        flush()
