"""covey's own JSON export (`covey export --format json`), read one conversation at a time.

Unlike the other formats, covey's own is read strictly: a conversation that does not fit is an
error naming it, since the file was written by covey and a mistake in it is worth knowing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import IO, Any

import ijson

from app.errors import ImportFormatError
from app.exporting import FORMAT, VERSION
from app.importers import jsonstream
from app.importers.base import Tally
from sync import conversation as schema
from sync.conversation import Conversation, Message

#: covey's conversation ids (other document ids, such as the household's, are not imported).
CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")


class CoveySource(jsonstream.JsonFileSource):
    label = "covey export"

    def conversations(self, tally: Tally) -> Iterator[Conversation]:
        with self.path.open("rb") as f:
            _check_header(f, self.path.name)
        with self.path.open("rb") as f:
            self._file = f
            for index, raw in enumerate(jsonstream.items(f, self.path.name, "conversations.item")):
                conv = conversation(raw, index)
                tally.count(conv.messages)
                yield conv


def _check_header(f: IO[bytes], name: str) -> None:
    """`format` and `version` say it is covey's (they come first in what covey writes)."""
    seen: dict[str, Any] = {}
    kind = None
    try:
        for prefix, event, value in ijson.parse(f, use_float=True):
            if prefix == "" and event in ("start_map", "start_array"):
                kind = event
                if event == "start_array":
                    break
            elif prefix in ("format", "version") and event not in ("start_map", "start_array"):
                seen[prefix] = value
            elif prefix == "conversations" and event == "start_array":
                seen["conversations"] = True
            if len(seen) == 3:
                break
    except ijson.IncompleteJSONError as exc:
        if not seen.get("conversations"):
            first = str(exc).splitlines()[0] if str(exc) else "parse error"
            raise ImportFormatError(f"{name} is not JSON ({first})") from None
    except UnicodeDecodeError:
        raise ImportFormatError(f"{name} is not UTF-8 text") from None
    if kind != "start_map" or seen.get("format") != FORMAT:
        raise ImportFormatError(f"{name} is not a covey export (expected \"format\": \"{FORMAT}\")")
    if seen.get("version") != VERSION:
        raise ImportFormatError(f"unsupported export version {seen.get('version')!r}")
    if not seen.get("conversations"):
        raise ImportFormatError("\"conversations\" must be a list")


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


def conversation(raw: Any, index: int) -> Conversation:
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
    if not CONVERSATION_ID.fullmatch(conv.id):
        raise ImportFormatError(f"{where}: {conv.id[:40]!r} is not a conversation id")
    if not isinstance(conv.title, str):
        raise ImportFormatError(f"{where}: \"title\" must be text")
    for m in conv.messages:
        if m.role not in schema.ROLES or not isinstance(m.text, str) or not isinstance(m.id, str) \
                or not isinstance(m.created_at, str):
            raise ImportFormatError(f"{where}: message {m.id!r} is malformed")
        if m.rating is not None and m.rating not in schema.RATINGS:
            raise ImportFormatError(f"{where}: message {m.id!r} has an unknown rating {m.rating!r}")
    return conv
