"""Nothing deleted is lost, and what a hostile or mistaken device changed can be undone."""

from __future__ import annotations

import json
from pathlib import Path

from app.recovery import undo_device
from app.sample_history import write_export
from tests.devices import Device, eventually, pair

HOUSEHOLD_SIZE = 300


def titles(device: Device) -> list[str]:
    return sorted(c["title"] for c in device.history())


def ids(device: Device) -> set[str]:
    return {c["id"] for c in device.history()}


def test_rm_needs_four_characters_and_restore_brings_it_back(make_device) -> None:  # type: ignore[no-untyped-def]
    a = make_device("a")
    assert a.covey("ask", "--model", "fake", "keep this one").returncode == 0
    conv_id = a.history()[0]["id"]
    short = a.covey("rm", conv_id[:1])
    assert short.returncode != 0 and "at least 4 characters" in short.stderr
    assert "Traceback" not in short.stderr and len(a.history()) == 1
    gone = a.covey("rm", conv_id[:6])
    assert gone.returncode == 0 and f"covey restore {conv_id[:12]}" in gone.stdout
    assert a.history() == []
    listed = a.covey("trash")
    assert conv_id[:12] in listed.stdout and "keep this one" in listed.stdout
    assert a.covey("restore", conv_id[:8]).returncode == 0
    assert [c["id"] for c in a.history()] == [conv_id]
    assert "nothing is deleted" in a.covey("trash").stdout
    bad = a.covey("restore", "zzzz")
    assert bad.returncode != 0 and "no single deleted conversation" in bad.stderr


def test_a_hostile_devices_wipe_is_undone_on_every_device(make_device, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b, h = make_device("a"), make_device("b"), make_device("h")
    export = tmp_path / "history.json"
    write_export(export, HOUSEHOLD_SIZE, 4, seed=5)
    assert a.covey("import", str(export)).returncode == 0
    pair(a, b, "5-amber-anchor")
    pair(a, h, "6-amber-anchor")
    a.serve()
    b.serve(a)
    h.serve(a)
    before = titles(a)
    kept = ids(a)
    eventually(lambda: len(h.history()) == HOUSEHOLD_SIZE, timeout=120)
    eventually(lambda: len(b.history()) == HOUSEHOLD_SIZE, timeout=120)
    # h turns hostile: it renames one conversation and deletes every one (its own store's
    # public write paths, as any covey process of h would)
    store = h.store()
    try:
        convs = store.list_conversations(include_archived=True)
        store.set_title(convs[0].id, "pwned")
        for conv in convs:
            store.delete_conversation(conv.id)
    finally:
        store.close()
    eventually(lambda: b.history() == [], timeout=120)  # the wipe reached every device
    assert b.covey("ask", "--model", "fake", "written after the wipe").returncode == 0
    removed = a.covey("devices", "remove", h.device_id[:10], "--undo-changes")
    assert removed.returncode == 0, removed.stderr
    # (the rename and the deletion of one conversation, moments apart, are one Loro change)
    assert f"undid {HOUSEHOLD_SIZE:,} change(s) by h in {HOUSEHOLD_SIZE:,} conversation(s)" \
        in removed.stdout
    eventually(lambda: len(ids(a) - kept) == 1 and kept <= ids(a), timeout=60)
    assert len(ids(a)) == HOUSEHOLD_SIZE + 1  # all back, and b's later one kept
    assert sorted(titles(a)) == sorted(before + ["New conversation"])  # "pwned" undone too
    eventually(lambda: ids(b) == ids(a), timeout=120)  # and on b, through sync


def test_undo_since_a_time_keeps_what_came_before(make_device, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--since`: only the changes that reached this device after that time are undone."""
    import time

    a, h = make_device("a"), make_device("h")
    pair(a, h)
    a.serve()
    h.serve(a)
    assert h.covey("ask", "--model", "fake", "an early conversation of h").returncode == 0
    eventually(lambda: len(a.history()) == 1)
    time.sleep(1.5)
    cut = time.time()
    time.sleep(0.5)
    assert h.covey("ask", "--model", "fake", "a later conversation of h").returncode == 0
    eventually(lambda: len(a.history()) == 2)
    a.stop()
    store = a.store()
    try:
        report = undo_device(store, h.device_id, cut - 0.2)
        names = [m.text for c in store.list_conversations() for m in store.messages(c.id)
                 if m.role == "user"]
    finally:
        store.close()
    assert report.deleted == 1 and names == ["an early conversation of h"]
    members = json.loads(a.covey("devices", "--json").stdout)
    assert [d["revoked"] for d in members if d["device_id"] == h.device_id] == [False]
