"""The membership log: planted, forged, self-revoking and deleting members count for nothing.

Each household here is built through the public paths (founding, `pair_locally`, `revoke`);
a hostile member's moves are what its own store lets it write, synced like any change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loro import LoroDoc, LoroMap

from app.bench.sync import Device
from sync import adoption, household, membership
from sync.household import HouseholdError
from sync.identity import Identity, load_or_create
from sync.ids import now_iso
from sync.store import HOUSEHOLD_DOC


class Dev(Device):
    """A device of the household in this process (the bench's, with its id at hand)."""

    @property
    def id(self) -> str:
        return self.identity.device_id


def sync_all(*devs: Dev) -> None:
    """Every household change reaches every device (twice round: what arrives is relayed)."""
    for _ in range(2):
        for a in devs:
            for b in devs:
                if a is not b:
                    b.store.import_updates(HOUSEHOLD_DOC, a.store.export_updates(HOUSEHOLD_DOC))
        for d in devs:
            household.refresh(d.store)


def trusted_ids(dev: Dev) -> set[str]:
    return {d.device_id for d in household.trusted(dev.store).values()}


@pytest.fixture
def home(tmp_path: Path) -> tuple[Dev, Dev, Dev]:
    """A founded the household and paired B and M."""
    a, b, m = Dev(tmp_path, "a"), Dev(tmp_path, "b"), Dev(tmp_path, "m")
    household.ensure(a.store, a.identity, "a")
    adoption.pair_locally(a.store, a.identity, b.identity, "b", joiner_store=b.store)
    adoption.pair_locally(a.store, a.identity, m.identity, "m", joiner_store=m.store)
    sync_all(a, b, m)
    assert trusted_ids(a) == trusted_ids(b) == trusted_ids(m) == {a.id, b.id, m.id}
    return a, b, m


def write_entry(dev: Dev, entry: membership.Entry) -> None:
    """What a hostile member can do: put any entry it likes into the household document."""
    def put(doc: LoroDoc) -> None:
        doc.get_map("log").insert(entry.hash, entry.encoded())

    dev.store.write(HOUSEHOLD_DOC, put, touched=None)


def body(dev: Dev, kind: str, prev: list[str], **more: Any) -> dict[str, Any]:
    return {"kind": kind, "household": household.household_id(dev.store), "by": dev.id,
            "prev": prev, "at": now_iso()} | more


def heads(dev: Dev) -> list[str]:
    result = household.current(dev.store)
    assert result is not None
    return result.heads


def add_body(dev: Dev, x: Identity, proof: dict[str, Any] | None) -> dict[str, Any]:
    return body(dev, "add", heads(dev), subject=x.device_id, fingerprint=x.fingerprint,
                cert=x.cert_pem, name="x", **({"proof": proof} if proof else {}))


def test_a_device_written_into_the_document_without_an_entry_is_not_trusted(
        home: tuple[Dev, Dev, Dev], tmp_path: Path) -> None:
    a, b, m = home
    x = load_or_create(tmp_path / "x", "x")

    def plant(doc: LoroDoc) -> None:  # the old way in: a row in the devices map
        entry = doc.get_map("devices").get_or_create_container(x.device_id, LoroMap())
        for key, value in (("fingerprint", x.fingerprint), ("cert", x.cert_pem), ("name", "x"),
                           ("added_by", m.id), ("added_at", now_iso()), ("revoked", False)):
            entry.insert(key, value)  # type: ignore[attr-defined]

    m.store.write(HOUSEHOLD_DOC, plant, touched=None)
    sync_all(a, b, m)
    assert x.device_id not in trusted_ids(a) | trusted_ids(b)


def test_forged_and_unproven_entries_count_for_nothing(home: tuple[Dev, Dev, Dev],
                                                       tmp_path: Path) -> None:
    a, b, m = home
    x = load_or_create(tmp_path / "x", "x")
    no_proof = membership.make(m.identity, add_body(m, x, None))
    bad_proof = membership.make(m.identity, add_body(m, x, {"transcript": "00", "sig": "00"}))
    # X signs an entry adding itself as if M had: the signature is not M's
    forged = membership.make(x, body(m, "add", heads(m), subject=x.device_id,
                                     fingerprint=x.fingerprint, cert=x.cert_pem, name="x",
                                     proof={"legacy": True}))
    # An entry whose body was changed after signing has another id: ignored on sight
    signed = membership.make(m.identity, add_body(m, x, {"legacy": True}) | {"name": "y"})
    tampered = membership.Entry(signed.hash, dict(signed.body, by=a.id), signed.sig)
    # A second founding entry, signed by M, naming X
    refound = membership.make(x, body(m, "found", [], subject=x.device_id, by=x.device_id,
                                      fingerprint=x.fingerprint, cert=x.cert_pem, name="x"))
    for e in (no_proof, bad_proof, forged, tampered, refound):
        write_entry(m, e)
    sync_all(a, b, m)
    for dev in (a, b, m):
        assert x.device_id not in trusted_ids(dev)
    reasons = dict(household.refused_entries(a.store))
    assert reasons[no_proof.hash] == "adds a device without proof of a pairing"
    assert reasons[bad_proof.hash] == "adds a device whose proof of pairing does not verify"
    assert reasons[forged.hash] == "bad signature"
    assert reasons[refound.hash] == "a second founding entry"
    assert tampered.hash not in reasons  # not even an entry: its id is not its body's


def test_a_planted_device_goes_with_the_member_that_planted_it(home: tuple[Dev, Dev, Dev],
                                                               tmp_path: Path) -> None:
    a, b, m = home
    x = load_or_create(tmp_path / "x", "x")  # M made X itself, so it can prove a "pairing"
    adoption.pair_locally(m.store, m.identity, x, "x")
    sync_all(a, b, m)
    assert x.device_id in trusted_ids(a)
    gone = household.revoke(a.store, a.identity, m.id[:10])
    assert [d.device_id for d in gone] == [m.id, x.device_id]
    assert all(d.revoked for d in gone)
    sync_all(a, b)
    assert trusted_ids(a) == trusted_ids(b) == {a.id, b.id}


def test_a_member_cannot_revoke_the_device_that_brought_it_in(home: tuple[Dev, Dev, Dev]) -> None:
    a, b, m = home
    # Through the public path: a vote, not a revocation
    gone = household.revoke(m.store, m.identity, a.id)
    assert [d.device_id for d in gone] == [a.id] and not gone[0].revoked
    # Written by hand, without the vote mark: refused
    by_hand = membership.make(m.identity, body(m, "revoke", heads(m), revokes=[a.id]))
    write_entry(m, by_hand)
    sync_all(a, b, m)
    for dev in (a, b, m):
        assert trusted_ids(dev) == {a.id, b.id, m.id}
    assert "brought the signer in" in dict(household.refused_entries(b.store))[by_hand.hash]
    # Most of the other members (B and M, of B and M) can remove it: a lost founder
    household.revoke(b.store, b.identity, a.id)
    sync_all(a, b, m)
    assert trusted_ids(b) == trusted_ids(m) == {b.id, m.id}


def test_a_revoked_member_cannot_act_after_the_fact(home: tuple[Dev, Dev, Dev]) -> None:
    a, b, m = home
    before = heads(m)  # what M knew before it was revoked
    household.revoke(a.store, a.identity, m.id)
    sync_all(a, b)
    # M, cut off, writes entries that do not know of its revocation: revoke B, re-add itself
    late = membership.make(m.identity, body(m, "revoke", before, revokes=[b.id]))
    write_entry(m, late)
    for x in (a, b):  # (a revoked device cannot sync; here its entries arrive anyway)
        x.store.import_updates(HOUSEHOLD_DOC, m.store.export_updates(HOUSEHOLD_DOC))
        household.refresh(x.store)
    assert trusted_ids(a) == trusted_ids(b) == {a.id, b.id}
    assert dict(household.refused_entries(a.store))[late.hash] == \
        "written by a revoked device after its revocation"


def test_concurrent_mutual_revocation_the_earlier_member_wins(home: tuple[Dev, Dev, Dev]) -> None:
    a, b, m = home
    household.revoke(b.store, b.identity, m.id)  # neither has seen the other's
    household.revoke(m.store, m.identity, b.id)
    sync_all(a, b, m)
    assert trusted_ids(a) == trusted_ids(b) == {a.id, b.id}  # B joined before M


def test_entries_deleted_from_the_document_are_remembered_and_written_back(
        home: tuple[Dev, Dev, Dev]) -> None:
    a, b, m = home
    household.revoke(a.store, a.identity, m.id)
    sync_all(a, b)

    def wipe(doc: LoroDoc) -> None:  # b's document loses the log (a member could do this)
        log_map = doc.get_map("log")
        for key in list(log_map.keys()):
            log_map.delete(key)

    b.store.write(HOUSEHOLD_DOC, wipe, touched=None)
    assert trusted_ids(b) == {a.id, b.id}  # b still knows every entry
    assert household.republish(b.store) >= 4  # and writes them back into the document
    fresh_a = a.store.export_updates(HOUSEHOLD_DOC)
    a.store.import_updates(HOUSEHOLD_DOC, b.store.export_updates(HOUSEHOLD_DOC))
    assert fresh_a and trusted_ids(a) == {a.id, b.id}


def test_revoking_asks_for_a_member_and_refuses_itself(home: tuple[Dev, Dev, Dev]) -> None:
    a, _, _ = home
    with pytest.raises(HouseholdError, match="cannot revoke itself"):
        household.revoke(a.store, a.identity, a.id)
    with pytest.raises(HouseholdError, match="no single member"):
        household.revoke(a.store, a.identity, "ZZZZ")


def test_a_household_from_before_the_log_is_upgraded_by_its_founder(tmp_path: Path) -> None:
    a, b = Dev(tmp_path, "a"), Dev(tmp_path, "b")

    def legacy(doc: LoroDoc) -> None:  # what covey wrote before the membership log
        meta = doc.get_map("meta")
        meta.insert("id", "f" * 32)
        meta.insert("created_by", a.id)
        for dev in (a, b):
            entry = doc.get_map("devices").get_or_create_container(dev.id, LoroMap())
            for key, value in (("fingerprint", dev.identity.fingerprint),
                               ("cert", dev.identity.cert_pem), ("name", dev.name),
                               ("added_by", a.id), ("added_at", now_iso()), ("revoked", False)):
                entry.insert(key, value)  # type: ignore[attr-defined]

    a.store.write(HOUSEHOLD_DOC, legacy, touched=None, create=True)
    b.store.import_updates(HOUSEHOLD_DOC, a.store.export_updates(HOUSEHOLD_DOC))
    assert trusted_ids(b) == {a.id, b.id}  # as before, until the founder writes the log
    household.ensure(a.store, a.identity, "a")  # any start of the founder's covey does this
    sync_all(a, b)
    assert household.current(b.store) is not None  # b pinned the founder's entry
    assert trusted_ids(a) == trusted_ids(b) == {a.id, b.id}
