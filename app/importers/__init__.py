"""Importing history from elsewhere: covey's own JSON, ChatGPT's export, simonw/llm's logs.db,
Open WebUI's export. `open_source` tells them apart by their contents (or `--format`); each
source streams conversations, `writer.restore_many` stores them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import ijson

from app.errors import ImportFormatError, UsageError
from app.importers import jsonstream
from app.importers.base import Source, Tally
from app.importers.chatgpt import ChatGPTSource, is_export
from app.importers.covey_json import CoveySource
from app.importers.llm_logs import LlmLogsSource
from app.importers.openwebui import OpenWebUISource

FORMATS: dict[str, Callable[[Path], Source]] = {"covey": CoveySource, "chatgpt": ChatGPTSource, "llm": LlmLogsSource,
           "openwebui": OpenWebUISource}
KNOWN = ("covey's JSON export, a ChatGPT export (.zip or folder), an Open WebUI export "
         "(.json) or simonw/llm's logs.db")
#: How far into a list to look for what its items are (a first conversation can be long).
PEEK_EVENTS = 200_000


def open_source(path: Path, fmt: str | None = None) -> Source:
    """The importer for `path`: the one `fmt` names, or the one its contents call for."""
    if not path.exists():
        raise UsageError(f"cannot read {path}: No such file or directory")
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
        if fmt != "chatgpt" and path.is_dir():
            raise UsageError(f"{path} is a folder; only a ChatGPT export can be a folder")
        return FORMATS[fmt](path)
    if path.is_dir():
        if is_export(path):
            return ChatGPTSource(path)
        raise ImportFormatError(f"{path} is a folder without conversations.json (is it an "
                                "unzipped ChatGPT export?)")
    try:
        with path.open("rb") as f:
            head = f.read(16)
            f.seek(0)
            first = jsonstream.first_char(f)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if head.startswith(b"SQLite format 3\0"):
        return LlmLogsSource(path)
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path):
            raise ImportFormatError(f"{path.name} is a damaged zip (truncated download?)")
        if not is_export(path):
            raise ImportFormatError(f"{path.name} holds no conversations.json: not a ChatGPT export")
        return ChatGPTSource(path)
    if first == "{":
        return CoveySource(path)
    if first == "[":
        return _list_source(path)
    head_text = _head(path)
    try:
        head_text.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or len(head_text) < 4096:  # (not a cut char)
            raise ImportFormatError(f"{path.name} is not UTF-8 text; covey imports {KNOWN}") from None
    if not first:
        raise ImportFormatError(f"{path.name} is empty")
    raise ImportFormatError(f"{path.name} is not JSON; covey imports {KNOWN}")


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(4096)


def _list_source(path: Path) -> Source:
    """A JSON list: ChatGPT's conversations have a `mapping`, Open WebUI's chats a `chat`."""
    with path.open("rb") as f:
        try:
            for n, (prefix, event, value) in enumerate(ijson.parse(f)):
                if prefix == "item" and event == "map_key":
                    if value == "mapping":
                        return ChatGPTSource(path)
                    if value == "chat":
                        return OpenWebUISource(path)
                if (prefix == "item" and event not in ("start_map", "map_key")) or n > PEEK_EVENTS:
                    break  # (the end of the first item, or an item that is not an object)
                if (prefix, event) == ("", "end_array"):
                    raise ImportFormatError(f"{path.name} is an empty list: nothing to import")
        except ijson.JSONError as exc:
            raise ImportFormatError(f"{path.name} is not JSON ({str(exc).splitlines()[0]})") from None
        except UnicodeDecodeError:
            raise ImportFormatError(f"{path.name} is not UTF-8 text") from None
    raise ImportFormatError(f"{path.name} is a list of something covey does not know; it imports "
                            f"{KNOWN}")


__all__ = ["FORMATS", "Source", "Tally", "open_source"]
