"""A device whose disk fills up, then has room again: sync resumes by itself, nothing is lost.

The joining device's home is a small tmpfs of its own (needs root to mount).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.devices import Device, eventually, pair


def _can_mount() -> str | None:
    return None if os.geteuid() == 0 else "needs root to mount a small tmpfs"


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    if (reason := _can_mount()) is not None:
        pytest.skip(reason)
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 20))
                fh.flush()
        except OSError:
            pass
    return filler


def conversations(device: Device) -> set[str]:
    return {row["title"] for row in device.history()}


def test_sync_resumes_by_itself_once_a_full_disk_has_room_again(tmp_path: Path,
                                                                 small_disk: Path) -> None:
    a = Device(tmp_path, "alpha")
    b = Device(small_disk, "bravo")
    try:
        pair(a, b)
        a.serve()
        b.serve()  # bravo dials alpha, as after any pairing
        assert a.covey("ask", "--model", "fake", "before").returncode == 0
        eventually(lambda: len(b.history()) == 1, timeout=20)
        assert b.proc is not None
        pid = b.proc.pid
        filler = fill(small_disk)
        for i in range(4):
            assert a.covey("ask", "--model", "fake", f"while full {i}").returncode == 0
        log = b.log
        eventually(lambda: "disk is full" in log.read_text(errors="replace"), timeout=30)
        filler.unlink()  # room again
        eventually(lambda: len(b.history()) == 5, timeout=60, interval=0.5)
        assert b.proc is not None and b.proc.pid == pid and b.proc.poll() is None  # no restart
        assert b.contents() == a.contents()
        text = log.read_text(errors="replace")
        assert "Traceback" not in text and "never retrieved" not in text
    finally:
        for d in (a, b):
            d.kill()
