"""A joining device taking the household it was given (sync/adoption.py).

Found by CI: a device's running node rewrote its old household's founding entry into the
household it had just joined (between the pairing's steps, in another process); the entry
synced to every member, and no device could join that household again. The households here
are built through the public paths, each device's node a second store on its files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sync import adoption, household, membership
from sync.pairing import PairingError
from sync.store import HOUSEHOLD_DOC, Store
from tests.test_membership import Dev, body, sync_all, trusted_ids, write_entry


def founding_entries(store: Store) -> list[str]:
    log = store.read(HOUSEHOLD_DOC, lambda doc: doc.get_deep_value()["log"]) or {}
    parsed = [membership.parse(h, raw) for h, raw in log.items()]
    return sorted(e.hash for e in parsed if e is not None and not e.prev)


def test_a_node_rewriting_the_log_while_its_device_joins_carries_nothing_old_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = Dev(tmp_path, "a"), Dev(tmp_path, "b"), Dev(tmp_path, "c")
    household.ensure(a.store, a.identity, "a")
    household.ensure(b.store, b.identity, "b")  # b's first `covey serve` founded its own
    [real_root] = founding_entries(a.store)
    node = Store.open(b.paths, b.identity.device_id)  # b's running node
    try:
        household.refresh(node)
        real_write = node.write

        def write_after_the_pairing(*args: Any, **kwargs: Any) -> Any:
            # The node looked at its log, then the pairing in the other process ran, then
            # the node writes what it found missing.
            monkeypatch.setattr(node, "write", real_write)
            adoption.pair_locally(a.store, a.identity, b.identity, "b", joiner_store=b.store)
            return real_write(*args, **kwargs)

        # The old household's root is missing from the document (as if a member deleted it),
        # so the node means to write it back.
        [old_root] = founding_entries(node)
        node.write(HOUSEHOLD_DOC, lambda doc: doc.get_map("log").delete(old_root), touched=None)
        monkeypatch.setattr(node, "write", write_after_the_pairing)
        household.republish(node)
        assert founding_entries(node) == founding_entries(b.store) == [real_root]
        a.store.import_updates(HOUSEHOLD_DOC, node.export_updates(HOUSEHOLD_DOC))
        assert founding_entries(a.store) == [real_root]
        adoption.pair_locally(a.store, a.identity, c.identity, "c", joiner_store=c.store)
        sync_all(a, b, c)
        assert trusted_ids(a) == trusted_ids(b) == trusted_ids(c) == {a.id, b.id, c.id}
    finally:
        node.close()


def test_a_second_founding_entry_in_the_log_does_not_stop_devices_joining(tmp_path: Path) -> None:
    a, m, x = Dev(tmp_path, "a"), Dev(tmp_path, "m"), Dev(tmp_path, "x")
    household.ensure(a.store, a.identity, "a")
    adoption.pair_locally(a.store, a.identity, m.identity, "m", joiner_store=m.store)
    # m misbehaves: a founding entry of its own, for this household and for another
    for hid in (household.household_id(m.store), "another household"):
        write_entry(m, membership.make(m.identity, body(
            m, "found", [], household=hid, subject=m.id, fingerprint=m.identity.fingerprint,
            cert=m.identity.cert_pem, name="m")))
    sync_all(a, m)
    assert len(founding_entries(a.store)) == 3
    adoption.pair_locally(a.store, a.identity, x.identity, "x", joiner_store=x.store)
    sync_all(a, m, x)
    assert trusted_ids(x) == trusted_ids(a) == {a.id, m.id, x.id}
    assert household.current(x.store) is not None


def test_a_household_that_does_not_admit_the_joiner_changes_nothing(tmp_path: Path) -> None:
    a, b = Dev(tmp_path, "a"), Dev(tmp_path, "b")
    household.ensure(a.store, a.identity, "a")
    household.ensure(b.store, b.identity, "b")
    before = b.store.export_updates(HOUSEHOLD_DOC)
    own = household.household_id(b.store)
    with pytest.raises(PairingError, match="does not include both devices"):
        adoption.adopt(b.store, a.store.export_updates(HOUSEHOLD_DOC), b.identity,
                       a.identity.fingerprint)  # a never admitted b
    with pytest.raises(PairingError, match="malformed"):
        adoption.adopt(b.store, b"\x00garbage", b.identity, a.identity.fingerprint)
    assert b.store.export_updates(HOUSEHOLD_DOC) == before
    assert household.household_id(b.store) == own
    assert trusted_ids(b) == {b.id}
