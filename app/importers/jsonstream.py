"""Reading big JSON files one item at a time (ijson, its C parser): memory stays bounded by
the largest single conversation, not the file, so a 1 GB export imports in a few hundred MB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import ijson

from app.errors import ImportFormatError


def first_char(f: IO[bytes]) -> str:
    """The first character that is not whitespace (or a byte-order mark); "" if none.
    Reads from the current position: open the file again to parse it."""
    while True:
        chunk = f.read(4096)
        if not chunk:
            return ""
        stripped = chunk.lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
        if stripped:
            return chr(stripped[0])


def items(f: IO[bytes], name: str, prefix: str = "item") -> Iterator[Any]:
    """Each value under `prefix` ("item": each element of a top-level list), floats as floats.
    A file that ends early or is not JSON raises ImportFormatError, after the items before the
    damage were handed out."""
    try:
        yield from ijson.items(f, prefix, use_float=True)
    except ijson.IncompleteJSONError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        if "premature EOF" in first:
            raise ImportFormatError(f"{name} ends in the middle (a truncated or unfinished "
                                    "download?)") from None
        raise ImportFormatError(f"{name} is not JSON ({first})") from None
    except UnicodeDecodeError:
        raise ImportFormatError(f"{name} is not UTF-8 text") from None
    except ijson.JSONError as exc:
        raise ImportFormatError(f"{name} is not JSON ({str(exc).splitlines()[0]})") from None


class JsonFileSource:
    """A source read from one JSON file: how far through it is how far into the file reading
    has come (set `_file` to the open file while reading)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._size = max(1, path.stat().st_size)

    def progress(self) -> float:
        return min(1.0, self._file.tell() / self._size) if self._file is not None else 0.0
