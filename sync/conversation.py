"""The shape of a conversation document, and reading/writing it.

One Loro document per conversation:
  meta      map: id (= the document id), title, title_source ("auto"|"user"), created_at, created_by, system_prompt,
            archived, deleted (a tombstone: the document stays so the deletion syncs),
            client (the program that made it through the API: its key's name, or "localhost"),
            model (the model it is answered by, by name: `covey ask --model`, `/model` in the app)
  messages  list of maps: id, role, text (LoroText, so an answer can be streamed into it),
            created_at, device, model, status, parent_id
  ratings   map: message id -> {rating: "up"|"down", note, by (device), at}: feedback on an answer,
            last writer wins (kept apart from the message so two devices rating at once, or a
            message listed twice, still give one rating)

Reading is defensive: a document that arrived from elsewhere may hold anything, and a malformed
entry is skipped rather than crashing a list or the view.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, cast

from loro import LoroDoc, LoroMap, LoroText

from sync.jobs import read_job
from sync.loro_access import message_map as message_map  # (re-exported: the schema reads
from sync.loro_access import message_text as message_text  # and writes messages with them)
from sync.loro_access import plain as plain

ROLES = ("system", "user", "assistant")
#: Message status values: a prompt is "done" at once; an answer streams, then ends one way.
RATINGS = ("up", "down")
STATUSES = ("queued", "streaming", "done", "cancelled", "failed", "interrupted")


@dataclass(frozen=True)
class Message:
    id: str
    role: str
    text: str
    created_at: str
    device: str | None = None
    model: str | None = None
    status: str = "done"
    parent_id: str | None = None
    requested_by: str | None = None  # set when the answer was generated as a job (delegation)
    attempts: int = 0  # how many devices were given the job (>1: it was taken over)
    rating: str | None = None  # "up" or "down": the user's feedback on an answer
    rating_note: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: str
    created_by: str | None = None
    system_prompt: str | None = None
    title_source: str = "auto"
    archived: bool = False
    deleted: bool = False
    messages: list[Message] = field(default_factory=list)
    client: str | None = None  # made through the HTTP API by this client
    model: str | None = None  # the model it is answered by (a name from `covey models`)

    @property
    def updated_at(self) -> str:
        stamps = [self.created_at] + [m.created_at for m in self.messages]
        return max(stamps)

    def message(self, message_id: str) -> Message | None:
        return next((m for m in self.messages if m.id == message_id), None)

    def thread(self, leaf_id: str | None = None) -> list[Message]:
        """The messages leading to `leaf_id` (default: the last message), oldest first.

        Follows parent links, so an edited prompt that branched off earlier yields only its own
        branch; messages without a parent link fall back to list order.
        """
        if not self.messages:
            return []
        by_id = {m.id: m for m in self.messages}
        current = by_id.get(leaf_id) if leaf_id else self.messages[-1]
        chain: list[Message] = []
        seen: set[str] = set()
        while current is not None and current.id not in seen:
            seen.add(current.id)
            chain.append(current)
            current = by_id.get(current.parent_id) if current.parent_id else None
        return list(reversed(chain))

    def children(self, message_id: str | None) -> list[Message]:
        """Messages answering or following `message_id` (None: the roots), in list order."""
        return [m for m in self.messages if m.parent_id == message_id and m.id != message_id]

    def siblings(self, message_id: str) -> list[Message]:
        """`message_id` and the alternatives to it (same parent, same role), in list order:
        regenerated answers, and prompts edited into a new branch."""
        me = self.message(message_id)
        if me is None:
            return []
        return [m for m in self.children(me.parent_id) if m.role == me.role]

    def latest_leaf(self, message_id: str | None = None) -> str | None:
        """The newest end of the branch through `message_id` (default: the last message)."""
        if message_id is None or self.message(message_id) is None:
            return self.messages[-1].id if self.messages else None
        seen = {message_id}
        while True:
            later = [m for m in self.children(message_id) if m.id not in seen]
            if not later:
                return message_id
            message_id = later[-1].id
            seen.add(message_id)


def init_conversation(
    doc: LoroDoc, *, conv_id: str, title: str, created_at: str, created_by: str,
    system_prompt: str | None,
) -> None:
    meta = doc.get_map("meta")
    # The id inside the document binds its content to its name: a peer cannot pass one
    # conversation off under another's id.
    meta.insert("id", conv_id)
    meta.insert("title", title)
    meta.insert("title_source", "auto")
    meta.insert("created_at", created_at)
    meta.insert("created_by", created_by)
    if system_prompt:
        meta.insert("system_prompt", system_prompt)
    meta.insert("archived", False)
    meta.insert("deleted", False)


def set_meta(doc: LoroDoc, **values: Any) -> None:
    meta = doc.get_map("meta")
    for key, value in values.items():
        meta.insert(key, value)


def append_message(doc: LoroDoc, message: Message) -> LoroMap:
    """Add `message` at the end of the list; return its map (the text is under "text")."""
    messages = doc.get_list("messages")
    entry = cast(LoroMap, messages.insert_container(len(messages), LoroMap()))
    for key in ("id", "role", "created_at", "device", "model", "status", "parent_id"):
        value = getattr(message, key)
        if value is not None:
            entry.insert(key, value)
    text = cast(LoroText, entry.insert_container("text", LoroText()))
    if message.text:
        text.insert(0, message.text)
    return entry


def set_rating(doc: LoroDoc, message_id: str, rating: str | None, note: str | None, by: str,
               at: str) -> None:
    """Rate message `message_id` (None: take the rating back)."""
    ratings = doc.get_map("ratings")
    if rating is None:
        ratings.delete(message_id)
    else:
        ratings.insert(message_id, {"rating": rating, "note": note, "by": by, "at": at})


def read_conversation(doc_id: str, doc: LoroDoc) -> Conversation | None:
    """The conversation in `doc`, or None if the document has no valid conversation meta."""
    value: Any = doc.get_deep_value()
    if not isinstance(value, dict):
        return None
    meta = value.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("created_at"), str):
        return None
    if meta.get("id") != doc_id:
        return None
    raw_messages = value.get("messages")
    ratings: dict[str, Any] = value.get("ratings") or {}
    if not isinstance(ratings, dict):
        ratings = {}
    messages: list[Message] = []
    seen: set[str] = set()
    for m in map(_message, raw_messages if isinstance(raw_messages, list) else []):
        # Two devices that imported the same export while apart each appended its messages:
        # the list holds them twice, in the same order everywhere, and the first one counts.
        if m is None or m.id in seen:
            continue
        seen.add(m.id)
        rated = ratings.get(m.id)
        if isinstance(rated, dict) and rated.get("rating") in RATINGS:
            m = replace(m, rating=rated["rating"], rating_note=_str(rated.get("note")))
        messages.append(m)
    return Conversation(
        id=doc_id,
        title=_str(meta.get("title")) or "Untitled",
        created_at=meta["created_at"],
        created_by=_str(meta.get("created_by")),
        system_prompt=_str(meta.get("system_prompt")),
        title_source=_str(meta.get("title_source")) or "auto",
        archived=meta.get("archived") is True,
        deleted=meta.get("deleted") is True,
        messages=messages,
        client=_str(meta.get("client")),
        model=_str(meta.get("model")),
    )


def _message(raw: Any) -> Message | None:
    if not isinstance(raw, dict):
        return None
    ident, role, created = raw.get("id"), raw.get("role"), raw.get("created_at")
    if not (isinstance(ident, str) and role in ROLES and isinstance(created, str)):
        return None
    status = raw.get("status")
    text, device, model = _str(raw.get("text")) or "", _str(raw.get("device")), _str(raw.get("model"))
    job = read_job(raw)
    current = job.current if job else None
    if job and current:  # a job: the message is what its current attempt produced
        text, device, model = current.text, current.assignee or device, current.model or model
    return Message(
        id=ident,
        role=role,
        text=text,
        created_at=created,
        device=device,
        model=model,
        status=status if status in STATUSES else "done",
        parent_id=_str(raw.get("parent_id")),
        requested_by=job.requested_by if job else None,
        attempts=len(job.attempts) if job else 0,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
