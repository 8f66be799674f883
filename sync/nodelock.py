"""One node per device: the lock that says whether this device's node is running.

Kept apart from sync/node.py so that asking "is a node running?" (the terminal app's first
paint, `covey status`) does not import the network stack.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from models.errors import CoveyError


class NodeError(CoveyError):
    """The node cannot start (another is running, the address is taken…)."""


class NodeLock:
    """Only one process per device runs the network side."""

    def __init__(self, locks_dir: Path) -> None:
        self.path = locks_dir / "node.lock"
        self.fd = -1

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="ignore").strip() or "?"
            os.close(fd)
            raise NodeError(f"a covey node is already running for this home (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @staticmethod
    def holder(locks_dir: Path) -> int | None:
        """The pid of the process that is this device's node (None: no node runs). A process
        that holds the lock itself sees its own pid (the app hosting its node)."""
        if not NodeLock.held(locks_dir):
            return None
        try:
            return int((locks_dir / "node.lock").read_text().strip() or "0")
        except (OSError, ValueError):
            return 0  # held, by a process that has not written its pid yet

    @staticmethod
    def held(locks_dir: Path) -> bool:
        path = locks_dir / "node.lock"
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
