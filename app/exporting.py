"""covey's export formats: JSON (which `covey import` reads back) and Markdown (to read)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from typing import Any

from loro import LoroDoc

from app.errors import ImportFormatError
from sync import conversation as schema
from sync.conversation import Conversation, Message
from sync.ids import now_iso
from sync.store import Store

FORMAT = "covey-export"
VERSION = 1


def to_json(conversations: list[Conversation]) -> str:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": now_iso(),
        "conversations": [asdict(c) for c in conversations],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


def to_markdown(conversations: list[Conversation]) -> str:
    parts: list[str] = []
    for conv in conversations:
        parts.append(f"# {conv.title}\n\n_conversation {conv.id} · started {conv.created_at}_\n")
        if conv.system_prompt:
            parts.append(f"> **System:** {conv.system_prompt}\n")
        for m in conv.messages:
            who = "You" if m.role == "user" else "Assistant" if m.role == "assistant" else "System"
            origin = f" _({m.model})_" if m.role == "assistant" and m.model else ""
            status = f" _[{m.status}]_" if m.status != "done" else ""
            parts.append(f"**{who}**{origin}{status}:\n\n{m.text}\n")
    return "\n".join(parts)


def parse_json(text: str) -> list[Conversation]:
    """Conversations from covey's JSON export; ImportFormatError for anything else."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ImportFormatError("not a covey export (expected \"format\": \"covey-export\")")
    if payload.get("version") != VERSION:
        raise ImportFormatError(f"unsupported export version {payload.get('version')!r}")
    raw = payload.get("conversations")
    if not isinstance(raw, list):
        raise ImportFormatError("\"conversations\" must be a list")
    return [_conversation(c, i) for i, c in enumerate(raw)]


def _fields(kind: type, raw: dict[str, Any], where: str, skip: str = "") -> dict[str, Any]:
    """The fields of a record, checked in the user's words: which is missing, which unknown."""
    known = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - set(known) - {skip})
    if unknown:
        raise ImportFormatError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    missing = [name for name, f in known.items() if name != skip and name not in raw
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ImportFormatError(f"{where} has no {' and no '.join(map(repr, missing))}")
    return {k: v for k, v in raw.items() if k != skip}


def _conversation(raw: Any, index: int) -> Conversation:
    where = f"conversation #{index + 1}"
    if not isinstance(raw, dict):
        raise ImportFormatError(f"{where} is not an object")
    if isinstance(raw.get("title"), str):
        where += f" ({raw['title'][:40]!r})"
    raw_messages = raw.get("messages", [])
    if not isinstance(raw_messages, list):
        raise ImportFormatError(f"{where}: \"messages\" must be a list")
    messages = []
    for n, m in enumerate(raw_messages):
        if not isinstance(m, dict):
            raise ImportFormatError(f"{where}: message #{n + 1} is not an object")
        messages.append(Message(**_fields(Message, m, f"{where}, message #{n + 1}")))
    conv = Conversation(**_fields(Conversation, raw, where, skip="messages"), messages=messages)
    if not isinstance(conv.id, str) or not conv.id or not isinstance(conv.created_at, str):
        raise ImportFormatError(f"{where} lacks an id or created_at")
    for m in conv.messages:
        if m.role not in schema.ROLES or not isinstance(m.text, str) or not isinstance(m.id, str):
            raise ImportFormatError(f"{where}: message {m.id!r} is malformed")
    return conv


def restore(store: Store, conv: Conversation) -> int:
    """Put `conv` into the store under its own ids; return how many messages were new.

    Importing twice adds nothing; importing a conversation that was deleted brings it back.
    """
    present: set[str] = set()
    exists = bool(store.version_vector(conv.id))  # (an index lookup: imports are big)
    if exists:
        current = store.conversation_document(conv.id)
        present = {m.id for m in current.messages} if current else set()
    new = [m for m in conv.messages if m.id not in present]

    def apply(doc: LoroDoc) -> None:
        if not exists:
            schema.init_conversation(
                doc, conv_id=conv.id, title=conv.title, created_at=conv.created_at,
                created_by=conv.created_by or store.device_id, system_prompt=conv.system_prompt,
            )
            schema.set_meta(doc, title_source=conv.title_source, archived=conv.archived)
        schema.set_meta(doc, deleted=False)
        for message in new:
            schema.append_message(doc, message)

    store.write(conv.id, apply, touched=None, create=not exists)
    return len(new)
