"""Waking this device's node when another process commits to the store, instead of polling.

The node listens on a Unix datagram socket in the locks directory; a store in any other process
(`covey ask`, `covey import`, `covey pair`) sends it one byte after each commit. The node then
reads the store at once; without a wake-up (another OS, a socket that cannot be made) it still
looks by itself, only less often. A nudge never blocks and never fails a write.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (asyncio at run time only in the node: every store nudges, few are nodes)
    import asyncio

NAME = "node.wake"
MAX_PATH = 100  # (sun_path holds 108 bytes)


def address(locks_dir: Path) -> str:
    """The socket's address: a file in the locks directory, or an abstract name (Linux) when
    that path would be too long for a socket."""
    path = str(locks_dir / NAME)
    if len(path.encode()) < MAX_PATH:
        return path
    return "\0covey-wake-" + hashlib.sha256(path.encode()).hexdigest()[:24]


def nudge(locks_dir: Path) -> None:
    """Tell the node (if one listens) that the store changed."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"!", address(locks_dir))
    except OSError:  # no node, or its queue is full (it is awake anyway)
        pass


class Waker:
    """The node's end: calls `woken` (on the loop) after one or more nudges."""

    def __init__(self, locks_dir: Path) -> None:
        self._address = address(locks_dir)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, woken: Callable[[], None]) -> bool:
        """Listen; False if this system cannot (the node then looks by itself)."""
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except (OSError, AttributeError):
            return False
        try:
            if not self._address.startswith("\0"):
                try:
                    os.unlink(self._address)  # a socket left by a node that died
                except FileNotFoundError:
                    pass
            sock.bind(self._address)
            sock.setblocking(False)
        except OSError:
            sock.close()
            return False
        self._sock = sock
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._drain, woken)
        return True

    def _drain(self, woken: Callable[[], None]) -> None:
        assert self._sock is not None
        try:
            while self._sock.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        woken()

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        if not self._address.startswith("\0"):
            try:
                os.unlink(self._address)
            except FileNotFoundError:
                pass


def change_probe(db_path: str) -> Callable[[], int]:
    """A cheap "has anyone committed since?" for a loop that polls: PRAGMA data_version on a
    connection of its own (no lock shared with the store, no thread hop). The number it
    returns changes after every commit by any other connection, the caller's store included."""
    probe = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    return lambda: int(probe.execute("PRAGMA data_version").fetchone()[0])
