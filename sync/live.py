"""Live pieces: an answer's text passed on as it is generated, ahead of the store.

The store gets a job's text in batches (a commit per piece would cost the model its speed, on
the runner and on every device that imports it); whoever watches the answer gets each piece at
once, from here, and the store's text catches up a moment later. A live piece is a hint, never
a record: it says "attempt A of answer M has text T at offset N"; the watcher shows it if it
continues what it has shown of that attempt, and otherwise waits for the store, whose text is
the same (the pieces are exactly what the runner appends). Nothing here writes to the store.

Within a device the pieces travel as datagrams: each watcher (`covey ask`, the app, the API)
binds a Unix datagram socket in `locks/live/`, and the device's node (or the process that runs
the answer) sends every piece to every socket there. Between devices they are PIECE frames of
the sync session (sync/protocol.py), sent only to the device that asked for the answer and
accepted only from the device its attempt is assigned to (sync/node.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import select
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sync import jobs
from sync.docstore import DocumentStore
from sync.frames import Frame, FrameType

log = logging.getLogger(__name__)

DIR = "live"
MAX_PATH = 100  # (sun_path holds 108 bytes)
MAX_TEXT = 16 << 10  # characters of one piece; a datagram stays well under the socket's limit
MAX_ID = 64
RESCAN = 0.25  # seconds a list of watchers is trusted while the directory looks unchanged
MAX_BUFFERED = 256 << 10  # bytes waiting for a peer beyond which its pieces are dropped


@dataclass(frozen=True)
class LivePiece:
    doc_id: str  # the conversation
    message_id: str  # the answer
    attempt: str  # the attempt that produced it (a take-over starts a new one)
    offset: int  # where `text` starts in that attempt's text, in characters
    text: str

    @classmethod
    def of(cls, doc_id: object, message_id: object, attempt: object, offset: object,
           text: object) -> LivePiece | None:
        """The piece these fields make, or None if they do not make one (from a peer, or a
        datagram: checked before anything else looks at them)."""
        ids = (doc_id, message_id, attempt)
        if (not all(isinstance(s, str) and 0 < len(s) <= MAX_ID for s in ids)
                or type(offset) is not int or offset < 0
                or not isinstance(text, str) or len(text) > MAX_TEXT):
            return None
        return cls(str(doc_id), str(message_id), str(attempt), offset, text)


def encode(piece: LivePiece) -> bytes:
    return json.dumps([piece.doc_id, piece.message_id, piece.attempt, piece.offset,
                       piece.text], separators=(",", ":")).encode()


def to_frame(piece: LivePiece) -> Frame:
    return Frame(FrameType.PIECE, {"doc": piece.doc_id, "msg": piece.message_id,
                                   "att": piece.attempt, "at": piece.offset}, piece.text.encode())


def from_frame(frame: Frame) -> LivePiece | None:
    """The piece in a PIECE frame, or None if it is malformed (the session then ends)."""
    h = frame.header
    try:
        text = frame.body.decode()
    except UnicodeDecodeError:
        return None
    return LivePiece.of(h.get("doc"), h.get("msg"), h.get("att"), h.get("at"), text)


def decode(data: bytes) -> LivePiece | None:
    """The piece in a datagram, or None for anything that is not one (it is ignored)."""
    try:
        fields = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(fields, list) or len(fields) != 5:
        return None
    return LivePiece.of(*fields)


def _directory(locks_dir: Path) -> Path:
    return locks_dir / DIR


class Listener:
    """A watcher's end: pieces sent on this device, for whichever answers it is after."""

    def __init__(self, locks_dir: Path) -> None:
        self._dir = _directory(locks_dir)
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._entry = self._dir / f"{os.getpid()}-{secrets.token_hex(4)}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if len(str(self._entry).encode()) < MAX_PATH:
            self._sock.bind(str(self._entry))  # the entry is the socket itself
        else:  # too long a path for a socket (Linux): an abstract name, written in the entry
            name = "\0covey-live-" + hashlib.sha256(str(self._entry).encode()).hexdigest()[:24]
            self._sock.bind(name)
            draft = self._dir / f".{self._entry.name}"  # (whole or absent, for Fanout)
            draft.write_text(name[1:])
            os.replace(draft, self._entry)
        self._sock.setblocking(False)

    def wait(self, timeout: float) -> list[LivePiece]:
        """The pieces that arrive within `timeout` seconds (returns as soon as any do)."""
        ready, _, _ = select.select([self._sock], [], [], timeout)
        pieces: list[LivePiece] = []
        if not ready:
            return pieces
        try:
            while True:
                piece = decode(self._sock.recv(1 << 17))
                if piece is not None:
                    pieces.append(piece)
        except (BlockingIOError, InterruptedError):
            pass
        return pieces

    def close(self) -> None:
        self._sock.close()
        self._entry.unlink(missing_ok=True)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Fanout:
    """The sending end: every piece to every watcher on this device. Never blocks, never
    raises: a watcher that is gone is forgotten, one that is slow loses pieces (it still has
    the store)."""

    def __init__(self, locks_dir: Path) -> None:
        self._dir = _directory(locks_dir)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        # The watchers, looked up again when the directory changes (a watcher came or went)
        # or RESCAN seconds passed (a change within the file system's timestamp tick).
        self._watchers: list[tuple[str, str]] = []  # (entry, address)
        self._listed: tuple[int, float] = (-1, 0.0)  # (the directory's mtime, when)

    def send(self, piece: LivePiece) -> int:
        """Send `piece` to every watcher; returns how many took it."""
        watchers = self._list()
        if not watchers:
            return 0
        data, sent = encode(piece), 0
        for entry, address in watchers:
            try:
                self._sock.sendto(data, address)
                sent += 1
            except (ConnectionRefusedError, FileNotFoundError):  # its process is gone
                Path(entry).unlink(missing_ok=True)
            except OSError:  # its queue is full, or it is not a watcher: skip it
                pass
        return sent

    def _list(self) -> list[tuple[str, str]]:
        now = time.monotonic()
        try:
            mtime = os.stat(self._dir).st_mtime_ns
        except OSError:  # no watcher has ever been here
            return []
        if mtime != self._listed[0] or now - self._listed[1] > RESCAN:
            found = []
            for entry in os.scandir(self._dir):
                if entry.name.startswith("."):
                    continue  # (a watcher still writing its entry)
                try:
                    found.append((entry.path, entry.path if stat.S_ISSOCK(entry.stat().st_mode)
                                  else "\0" + Path(entry.path).read_text()))
                except OSError:  # gone meanwhile
                    pass
            self._watchers, self._listed = found, (mtime, now)
        return self._watchers

    def close(self) -> None:
        self._sock.close()


class Inbound:
    """The node's end for pieces from peers: each goes to this device's watchers only if the
    peer that sent it runs that attempt, as this store knows it. Anything else is dropped,
    unshown (a take-over this store has not seen yet looks the same: not worth a connection)."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._fanout = Fanout(store.locks_dir)
        self._runners: dict[tuple[str, str], str] = {}  # (answer, attempt) → its runner

    def arrived(self, device_id: str, piece: LivePiece) -> None:
        """On the store thread, as the piece arrives."""
        key = (piece.message_id, piece.attempt)
        if self._runners.get(key) != device_id:
            runner = self.store.read(piece.doc_id, lambda doc: jobs.assignee(
                doc, piece.message_id, piece.attempt))
            if runner != device_id:
                log.info("dropped a live piece from %s for an attempt it does not run",
                         device_id)
                return
            if len(self._runners) > 256:
                self._runners.clear()
            self._runners[key] = device_id
        self._fanout.send(piece)

    def close(self) -> None:
        self._fanout.close()


class Sender(Protocol):
    """What a publisher needs of the node: a piece to another device, if it takes one now."""

    def send_piece(self, device_id: str, piece: LivePiece) -> bool: ...
    def takes_pieces(self, device_id: str) -> bool: ...


class Publisher:
    """The runner's end: each piece of an attempt to this device's watchers and, when another
    device asked for the answer, to that device over its sync session."""

    def __init__(self, locks_dir: Path, device_id: str, node: Sender | None = None) -> None:
        self._fanout = Fanout(locks_dir)
        self.device_id = device_id
        self.node = node

    def reaches(self, requester: str) -> bool:
        """Whether whoever asked (on `requester`) hears the pieces live: the store may then be
        written at a local answer's pace."""
        return requester == self.device_id or (
            self.node is not None and self.node.takes_pieces(requester))

    def publish(self, requester: str, piece: LivePiece) -> None:
        self._fanout.send(piece)
        if requester != self.device_id and self.node is not None:
            self.node.send_piece(requester, piece)

    def close(self) -> None:
        self._fanout.close()
