"""A device whose disk fills up, then has room again: sync resumes by itself, nothing is lost.

The joining device's home is a small tmpfs of its own (needs root to mount).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_covey
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


def test_full_and_read_only_disks_are_said_plainly(tmp_path: Path, small_disk: Path) -> None:
    from tests.conftest import assert_clean_error

    home = small_disk / "home"
    (home).mkdir()
    (home / "config.toml").write_text('model = "fake"\nmdns = false\nauto_title = false\n')
    first = run_covey("ask", "hello", home=home)
    assert first.returncode == 0, first.stderr
    filler = fill(small_disk)
    for args in (("history",), ("ask", "more")):
        out = run_covey(*args, home=home)
        if out.returncode != 0:  # reading may still work; what fails says why, plainly
            assert_clean_error(out, "full")
            assert "damaged" not in out.stderr and "internal error" not in out.stderr
    assert run_covey("ask", "more", home=home).returncode != 0  # a write cannot succeed
    filler.unlink()
    assert run_covey("ask", "room again", home=home).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        out = run_covey("ask", "on a read-only disk", home=home)
        assert_clean_error(out)
        assert "read-only" in out.stderr and "internal error" not in out.stderr
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    texts = [m["text"] for c in json.loads(run_covey("history", "--json", home=home).stdout)
             for m in json.loads(run_covey("show", c["id"], "--json", home=home).stdout)["messages"]]
    assert "hello" in texts and "room again" in texts  # nothing stored was lost


def test_a_store_from_a_newer_covey_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from tests.conftest import assert_clean_error

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('model = "fake"\nmdns = false\nauto_title = false\n')
    assert run_covey("ask", "hello", home=home).returncode == 0
    conn = sqlite3.connect(home / "covey.db")  # what a newer covey's migration leaves behind
    conn.execute("INSERT INTO _covey_migrations VALUES ('m099_from_the_future', 0)")
    conn.commit()
    conn.close()
    assert_clean_error(run_covey("history", home=home), "made by a newer covey", "update covey")
    doctor = run_covey("doctor", home=home)
    assert doctor.returncode != 0 and "made by a newer covey" in doctor.stdout + doctor.stderr
