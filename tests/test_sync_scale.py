"""Sync at a real household's size, as separate processes on loopback (real TLS, real homes).

Households are built the way a user builds one: `covey import` of an export.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from app.bench.clone import conversations_in
from app.config import Paths
from app.sample_history import write_export
from sync.store import Store
from tests.devices import Device, eventually, pair


@pytest.fixture
def devices(make_device):  # type: ignore[no-untyped-def]
    return make_device


def conversations(device: Device) -> int:
    """How many conversations the device holds (its view, read without opening a store)."""
    return conversations_in(device.home)


def imported(device: Device, tmp_path: Path, n: int, messages: int, seed: int,
             words: int = 40) -> None:
    export = write_export(tmp_path / f"{device.name}-export.json", n, messages, seed, words,
                          label=f"{device.name} ")
    out = device.covey("import", str(export))
    assert out.returncode == 0, out.stderr
    assert f"imported {n:,} conversation(s)" in out.stdout


def no_tracebacks(*devs: Device) -> None:
    for d in devs:
        log = d.log.read_text(errors="replace") if d.log.exists() else ""
        assert "Traceback" not in log, log[-3000:]


def sessions_ended(device: Device, peer: Device) -> list[tuple[int, int, str]]:
    """(bytes sent, bytes received, reason) of each finished session with `peer`, in order."""
    text = device.log.read_text(errors="replace")
    return [(int(s), int(r), why) for s, r, why in re.findall(
        rf"sync with {re.escape(peer.device_id)} ended \((\d+) bytes sent, (\d+) received\): "
        r"(.*)", text)]


def test_a_new_device_joins_a_household_of_2000_conversations(devices, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("alpha"), devices("bravo")
    imported(a, tmp_path, 2000, 6, seed=1)
    pair(a, b)
    a.serve()
    b.serve()
    eventually(lambda: conversations(b) == 2000, timeout=240, interval=0.5)
    assert b.contents() == a.contents()
    no_tracebacks(a, b)


def test_two_devices_with_1000_different_conversations_each_converge(devices, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("alpha"), devices("bravo")
    imported(a, tmp_path, 1000, 6, seed=1)
    imported(b, tmp_path, 1000, 6, seed=2)
    pair(a, b)
    a.serve()
    b.serve()
    eventually(lambda: conversations(a) == conversations(b) == 2000, timeout=240, interval=0.5)
    assert a.contents() == b.contents()
    no_tracebacks(a, b)


def test_a_clone_killed_midway_resumes_without_fetching_again(devices, tmp_path) -> None:  # type: ignore[no-untyped-def]
    total = 3000
    a, b = devices("alpha"), devices("bravo")
    imported(a, tmp_path, total, 10, seed=3, words=60)
    pair(a, b)
    a.serve()
    b.serve()
    progress: list[tuple[int, int]] = []

    def midway() -> bool:
        conn = sqlite3.connect(f"file:{b.home / 'covey.db'}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT catch_up_done, catch_up_total FROM peer_status"
                               " WHERE device_id = ?", [a.device_id]).fetchone()
        finally:
            conn.close()
        if row and row[1]:
            progress.append((int(row[0] or 0), int(row[1])))
        return total * 0.2 <= conversations(b) < total * 0.8

    eventually(midway, timeout=240, interval=0.02)
    b.kill()
    kept = conversations(b)
    assert 0 < kept < total
    # The joining device showed how far it had come, while it came.
    assert any(0 < done < planned for done, planned in progress), progress
    # What the second session should send: exactly what bravo did not store the first time.
    store_a, store_b = Store.open(Paths.at(a.home), a.device_id), b.store()
    try:
        missing = [d for d in store_a.doc_ids() if not store_b.version_vector(d)]
        lacking_bytes = sum(len(store_a.export_updates(d)) for d in missing)
        all_bytes = sum(len(store_a.export_updates(d)) for d in store_a.doc_ids())
    finally:
        store_a.close()
        store_b.close()
    assert len(missing) >= total - kept
    eventually(lambda: len(sessions_ended(a, b)) >= 1, timeout=30)
    b.serve()
    eventually(lambda: conversations(b) == total, timeout=240, interval=0.5)
    assert b.contents() == a.contents()
    b.stop()
    eventually(lambda: len(sessions_ended(a, b)) >= 2, timeout=30)
    second_sent = sessions_ended(a, b)[1][0]
    # Frames, the index and TLS-free headers add a little; a re-fetch would be ~all_bytes.
    assert second_sent <= lacking_bytes * 1.1 + 512 * 1024, (second_sent, lacking_bytes, all_bytes)
    assert second_sent < all_bytes * (1 - kept / total) + 1024 * 1024
    no_tracebacks(a, b)
