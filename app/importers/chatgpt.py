"""ChatGPT's data export (Settings → Data controls → Export): a .zip, or the folder it unzips to.

The conversations are in `conversations.json`, or in newer exports split over
`conversations-000.json`, `conversations-001.json`, … — each a list of
`{title, create_time, mapping, current_node, conversation_id, is_archived, …}`. `mapping` is a
tree of `{id, message|null, parent, children}`: an edited prompt or a regenerated answer is a
second child. Every branch is kept; the one ChatGPT showed (`current_node`) is the one shown.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from app.errors import ImportFormatError
from app.importers import jsonstream
from app.importers.base import (
    EPOCH,
    Node,
    Tally,
    as_dict,
    as_list,
    flatten,
    iso_from_epoch,
    stable_id,
    text_of,
)
from sync.conversation import Conversation, Message

SOURCE = "chatgpt"
FILE_NAME = re.compile(r"conversations(-\d+)?\.json")
#: Content types that are someone's words; the others are the tools' working.
SKIPPED_TYPES = {
    "thoughts": "reasoning (thoughts)", "reasoning_recap": "reasoning (thoughts)",
    "user_editable_context": "custom instructions", "execution_output": "tool output",
    "tether_browsing_display": "browsing results", "tether_quote": "browsing results",
    "system_error": "error messages",
}


def is_export(path: Path) -> bool:
    """A folder or zip that holds ChatGPT's conversation files."""
    if path.is_dir():
        return any(FILE_NAME.fullmatch(p.name) for p in path.iterdir())
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                return any(FILE_NAME.fullmatch(Path(n).name) for n in z.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    return False


class ChatGPTSource:
    label = "ChatGPT export"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done = 0  # bytes of the files already read
        self._total = 1
        self._current: IO[bytes] | None = None

    def progress(self) -> float:
        here = self._current.tell() if self._current is not None else 0
        return min(1.0, (self._done + here) / self._total)

    def _files(self) -> Iterator[tuple[str, int, IO[bytes]]]:
        """(name, size, opened file) of each conversation file, in order."""
        if self.path.is_dir():
            found = sorted(p for p in self.path.iterdir() if FILE_NAME.fullmatch(p.name))
            self._total = max(1, sum(p.stat().st_size for p in found))
            for p in found:
                with p.open("rb") as f:
                    yield p.name, p.stat().st_size, f
            return
        if self.path.suffix.lower() == ".json":  # conversations.json on its own
            self._total = max(1, self.path.stat().st_size)
            with self.path.open("rb") as f:
                yield self.path.name, self._total, f
            return
        try:
            with zipfile.ZipFile(self.path) as z:
                members = sorted((i for i in z.infolist() if FILE_NAME.fullmatch(Path(i.filename).name)),
                                 key=lambda i: Path(i.filename).name)
                if not members:
                    raise ImportFormatError(f"{self.path.name} holds no conversations.json")
                self._total = max(1, sum(i.file_size for i in members))
                for info in members:
                    with z.open(info) as f:
                        yield info.filename, info.file_size, f
        except zipfile.BadZipFile as exc:
            raise ImportFormatError(f"{self.path.name} is a damaged zip ({exc})") from None

    def conversations(self, tally: Tally) -> Iterator[Conversation]:
        for name, size, f in self._files():
            self._current = f
            if jsonstream.first_char(f) != "[":
                raise ImportFormatError(f"{name} is not a list of conversations")
            f.seek(0)
            try:
                for raw in jsonstream.items(f, name):
                    conv = convert(raw, tally)
                    if conv is not None:
                        yield conv
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ImportFormatError(f"{name} in {self.path.name} is damaged ({exc})") from None
            except ImportFormatError as exc:
                if self.path.is_dir() or self.path.suffix.lower() == ".json":
                    raise
                raise ImportFormatError(f"{name} in {self.path.name} is damaged ({exc})") from None
            self._current = None
            self._done += size


def convert(raw: Any, tally: Tally) -> Conversation | None:
    """One conversation of the export; None (counted in `tally`) if it cannot be read."""
    if not isinstance(raw, dict) or not isinstance(raw.get("mapping"), dict):
        tally.skip("conversations without a readable mapping")
        return None
    source_id = text_of(raw.get("conversation_id")) or text_of(raw.get("id"))
    if not source_id:  # (never seen, but then the title and time name it)
        source_id = stable_id(text_of(raw.get("title")), repr(raw.get("create_time")))
    created = iso_from_epoch(raw.get("create_time"), EPOCH)
    nodes: dict[str, Node] = {}
    for key, node in raw["mapping"].items():
        if not isinstance(node, dict):
            tally.skip("malformed nodes")
            continue
        node_id = text_of(node.get("id")) or str(key)
        children = node.get("children")
        nodes[node_id] = Node(
            id=node_id, parent=node.get("parent") if isinstance(node.get("parent"), str) else None,
            children=[c for c in children if isinstance(c, str)] if isinstance(children, list) else [],
            message=_message(node.get("message"), stable_id(SOURCE, source_id, node_id), created,
                             tally))
    messages = flatten(nodes, text_of(raw.get("current_node")) or None)
    if not messages:
        tally.skip("conversations with no messages")
        return None
    tally.count(messages)
    return Conversation(
        id=stable_id(SOURCE, source_id), title=text_of(raw.get("title")).strip() or "Untitled",
        created_at=created, title_source="user", archived=raw.get("is_archived") is True,
        messages=messages)


def _message(raw: Any, ident: str, fallback_time: str, tally: Tally) -> Message | None:
    if raw is None:
        return None  # the tree's root placeholder
    if not isinstance(raw, dict):
        tally.skip("malformed messages")
        return None
    author = as_dict(raw.get("author"))
    role = author.get("role")
    metadata = as_dict(raw.get("metadata"))
    content = as_dict(raw.get("content"))
    kind = content.get("content_type")
    if metadata.get("is_visually_hidden_from_conversation"):
        tally.skip("hidden system messages")
        return None
    if role == "tool":
        tally.skip("tool output")
        return None
    if role not in ("user", "assistant", "system"):
        tally.skip(f"messages from {role!r}" if isinstance(role, str) else "malformed messages")
        return None
    if kind in SKIPPED_TYPES:
        tally.skip(SKIPPED_TYPES[kind])
        return None
    text = _text(kind, content, tally)
    if text is None:
        return None
    if not text.strip():
        tally.skip("empty messages")
        return None
    model = metadata.get("model_slug")
    return Message(id=ident, role=role, text=text,
                   created_at=iso_from_epoch(raw.get("create_time"), fallback_time),
                   model=model if role == "assistant" and isinstance(model, str) else None)


def _text(kind: Any, content: dict[str, Any], tally: Tally) -> str | None:
    """The words of a message; other parts are kept as a marker (counted) or left out."""
    if kind in ("text", "multimodal_text"):
        parts = as_list(content.get("parts"))
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                what = (text_of(part.get("content_type")) or "attachment").removesuffix("_asset_pointer")
                tally.skip(f"{what.replace('_', ' ')} parts (kept as [{what}])")
                out.append(f"[{what}]")
        return "\n".join(p for p in out if p)
    if kind == "code" and isinstance(content.get("text"), str):
        language = text_of(content.get("language"))
        language = "" if language == "unknown" else language
        return f"```{language}\n{content['text']}\n```"
    if isinstance(content.get("text"), str):  # a kind new to us, with text: kept, marked
        tally.skip(f"{kind} content (kept as text)")
        return f"[{kind}]\n{content['text']}"
    tally.skip(f"{kind} content" if isinstance(kind, str) else "messages without content")
    return None
