"""Imported history across the household: two devices that import the same export while apart
end with one copy, and feedback given on one device shows on the other (real nodes, real TLS)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.devices import Device, eventually, pair
from tests.import_samples import write_chatgpt


def counts(device: Device) -> dict[str, int]:
    return {r["title"]: r["message_count"] for r in device.history()}


def rating_of(device: Device, conv_id: str, message_id: str) -> tuple[str | None, str | None]:
    shown = json.loads(device.covey("show", conv_id, "--json").stdout)
    m = next(m for m in shown["messages"] if m["id"] == message_id)
    return m["rating"], m["rating_note"]


def listed_twice(device: Device) -> bool:
    """Every conversation's document holds both devices' copies of its messages (so the two
    imports really met, and reading them must give one of each)."""
    store = device.store()
    try:
        return all(store.read(r.id, lambda doc: len(doc.get_list("messages")))
                   == 2 * r.message_count for r in store.list_conversations(include_archived=True))
    finally:
        store.close()


def test_two_devices_that_import_apart_converge_to_one_copy_and_share_ratings(  # type: ignore[no-untyped-def]
        make_device, tmp_path: Path) -> None:
    a, b = make_device("alpha"), make_device("bravo")
    export = write_chatgpt(tmp_path / "export", "zip")
    for device in (a, b):  # each imports on its own, before they ever talk
        out = device.covey("import", str(export))
        assert out.returncode == 0 and "5 conversation(s), 16 new" in out.stdout, out.stderr
    alone = a.contents()
    assert alone == b.contents()  # the same ids on both, from the export's own ids
    pair(a, b)
    a.serve()
    b.serve()
    conv = next(r["id"] for r in a.history() if r["title"] == "Trip planning")
    shown = json.loads(a.covey("show", conv, "--json").stdout)
    answer = shown["messages"][-1]["id"]
    assert a.covey("rate", answer[:10], "up", "--note", "good plan").returncode == 0
    eventually(lambda: rating_of(b, conv, answer) == ("up", "good plan"), timeout=60)
    eventually(lambda: listed_twice(a) and listed_twice(b), timeout=60)
    # Both copies of every message met: still one of each, in the same order, on both.
    assert a.contents() == b.contents() == alone
    assert counts(a) == counts(b) == {"Trip planning": 7, "Picture and sums": 3, "Chat 0": 2,
                                      "Chat 1": 2, "Chat 2": 2}
    # A rating changed on the other device wins on both (the last one counts).
    assert b.covey("rate", answer, "down").returncode == 0
    eventually(lambda: rating_of(a, conv, answer) == ("down", None), timeout=60)
    # And importing again anywhere adds nothing.
    assert "nothing new" in a.covey("import", str(export)).stdout
    line = a.covey("export", "--format", "finetune", "--rating", "down").stdout.splitlines()
    assert len(line) == 1
    assert json.loads(line[0])["messages"][-1] == {
        "role": "assistant", "content": "Day 2: Livraria Lello.", "weight": 1}
