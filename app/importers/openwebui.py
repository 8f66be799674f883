"""Open WebUI's chat export (Settings → Chats → Export, or one chat's "Export chat (.json)").

A list of `{id, title, chat: {title, models, params, history: {currentId, messages: {id: {id,
parentId, childrenIds, role, content, model, timestamp}}}}, created_at, updated_at, archived}`:
a tree again, where a regenerated answer or an edited prompt is another child; `currentId` is
the message Open WebUI showed last.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.errors import ImportFormatError
from app.importers import jsonstream
from app.importers.base import (
    EPOCH,
    Node,
    Tally,
    as_dict,
    flatten,
    iso_from_epoch,
    stable_id,
    text_of,
)
from sync.conversation import Conversation, Message

SOURCE = "openwebui"


class OpenWebUISource(jsonstream.JsonFileSource):
    label = "Open WebUI export"

    def conversations(self, tally: Tally) -> Iterator[Conversation]:
        with self.path.open("rb") as f:
            if jsonstream.first_char(f) != "[":
                raise ImportFormatError(f"{self.path.name} is not a list of chats")
            f.seek(0)
            self._file = f
            for raw in jsonstream.items(f, self.path.name):
                conv = convert(raw, tally)
                if conv is not None:
                    yield conv


def convert(raw: Any, tally: Tally) -> Conversation | None:
    chat = raw.get("chat") if isinstance(raw, dict) else None
    if not isinstance(chat, dict):
        tally.skip("chats without a readable \"chat\"")
        return None
    source_id = text_of(raw.get("id")) or text_of(chat.get("id"))
    if not source_id:
        source_id = stable_id(text_of(raw.get("title")), repr(raw.get("created_at")))
    created = iso_from_epoch(raw.get("created_at", chat.get("timestamp")), EPOCH)
    history = as_dict(chat.get("history"))
    raw_messages = history.get("messages")
    nodes: dict[str, Node] = {}
    current: str | None = text_of(history.get("currentId")) or None
    if isinstance(raw_messages, dict):
        for key, m in raw_messages.items():
            if not isinstance(m, dict):
                tally.skip("malformed messages")
                continue
            node_id = text_of(m.get("id")) or str(key)
            kids = m.get("childrenIds")
            nodes[node_id] = Node(
                id=node_id, parent=text_of(m.get("parentId")) or None,
                children=[k for k in kids if isinstance(k, str)] if isinstance(kids, list) else [],
                message=_message(m, stable_id(SOURCE, source_id, node_id), created, tally))
    elif isinstance(chat.get("messages"), list):  # older exports: the shown thread only
        parent: str | None = None
        for n, m in enumerate(chat["messages"]):
            if not isinstance(m, dict):
                tally.skip("malformed messages")
                continue
            node_id = text_of(m.get("id")) or f"#{n}"
            nodes[node_id] = Node(node_id, parent, [], _message(
                m, stable_id(SOURCE, source_id, node_id), created, tally))
            if parent is not None:
                nodes[parent].children.append(node_id)
            parent = node_id
        current = parent
    messages = flatten(nodes, current)
    if not messages:
        tally.skip("chats with no messages")
        return None
    tally.count(messages)
    params = as_dict(chat.get("params"))
    system = text_of(params.get("system")) or text_of(chat.get("system"))
    title = text_of(raw.get("title")) or text_of(chat.get("title"))
    return Conversation(
        id=stable_id(SOURCE, source_id), title=title.strip() or "Untitled", created_at=created,
        system_prompt=system or None, title_source="user", archived=raw.get("archived") is True,
        messages=messages)


def _message(raw: dict[str, Any], ident: str, fallback_time: str, tally: Tally) -> Message | None:
    role = raw.get("role")
    if role not in ("user", "assistant", "system"):
        tally.skip(f"messages from {role!r}" if isinstance(role, str) else "malformed messages")
        return None
    content = raw.get("content")
    if isinstance(content, list):  # OpenAI-style parts
        texts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                tally.skip("non-text parts (kept as a [marker])")
                texts.append(f"[{text_of(part.get('type')) if isinstance(part, dict) else 'part'}]")
        content = "\n".join(texts)
    if not isinstance(content, str) or not content.strip():
        tally.skip("empty messages")
        return None
    if raw.get("files"):
        tally.skip("attached files (not imported)")
    model = text_of(raw.get("model")) or text_of(raw.get("modelName")) or None
    return Message(id=ident, role=role, text=content,
                   created_at=iso_from_epoch(raw.get("timestamp"), fallback_time),
                   model=model if role == "assistant" else None)
