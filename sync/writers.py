"""Loro peer ids for the processes of one device.

Two live writers with one Loro peer id diverge silently (their operations get the same ids), yet
a fresh peer id per process would grow every version vector forever. So a device has writer
*slots*, each with a stable random peer id recorded in the store; a process holds a slot by an
exclusive `flock` on its lock file. The kernel releases the lock when the process dies, even by
SIGKILL, so a crashed process's slot is reused by the next one — safely, because a writer only
ever commits after loading everything the slot wrote before (the store refreshes a document
inside the write transaction), and operations never written to SQLite never left the process.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from sync.db import transaction
from sync.errors import StoreError

MAX_SLOTS = 256


@dataclass
class WriterSlot:
    slot: int
    peer_id: int
    fd: int
    locks_dir: Path

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = -1


def claim_writer(db: sqlite_utils.Database, locks_dir: Path) -> WriterSlot:
    """Hold the lowest free writer slot of this device for the life of the process."""
    locks_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        fd = os.open(locks_dir / f"writer-{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return WriterSlot(slot=slot, peer_id=_peer_id_for(db, slot), fd=fd, locks_dir=locks_dir)
    raise StoreError(f"more than {MAX_SLOTS} covey processes use this store at once")


def slot_is_live(locks_dir: Path, slot: int) -> bool:
    """Whether some process holds writer slot `slot` right now."""
    path = locks_dir / f"writer-{slot}.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock if we just took it
    return False


def _peer_id_for(db: sqlite_utils.Database, slot: int) -> int:
    with transaction(db) as conn:
        row = conn.execute("SELECT peer_id FROM writers WHERE slot = ?", [slot]).fetchone()
        if row:
            return int(row[0])
        while True:
            # 63 bits: fits SQLite's signed integers; collisions across devices are negligible.
            peer_id = secrets.randbits(63)
            if not conn.execute("SELECT 1 FROM writers WHERE peer_id = ?", [peer_id]).fetchone():
                conn.execute("INSERT INTO writers (slot, peer_id) VALUES (?, ?)", [slot, peer_id])
                return peer_id
