"""The household: which devices trust each other. A Loro document like any other, so it syncs.

    meta     map: id (the household id), created_at, created_by
    devices  map: device id → map {fingerprint, cert (PEM), name, added_by, added_at,
                                    revoked, revoked_by, revoked_at}

A device trusts a certificate when its fingerprint belongs to a member that is not revoked.
Pairing adds the joiner here (on the inviting side), and the document then carries the trusted
set to every member; revoking a member is a flag every member obeys once it has synced.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any, cast

from loro import LoroDoc, LoroMap

from models.errors import CoveyError
from sync import membership
from sync.db import transaction
from sync.identity import Identity, cert_der, device_id_from_cert, fingerprint
from sync.ids import now_iso
from sync.store import HOUSEHOLD_DOC, Store


class HouseholdError(CoveyError):
    """A household operation cannot be done (unknown device, revoking ourselves…)."""


@dataclass(frozen=True)
class Device:
    device_id: str
    fingerprint: str
    cert_pem: str
    name: str
    added_by: str
    added_at: str
    revoked: bool = False
    revoked_by: str | None = None
    revoked_at: str | None = None


def _value(store: Store) -> dict[str, Any]:
    value = store.read(HOUSEHOLD_DOC, lambda doc: doc.get_deep_value())
    return value if isinstance(value, dict) else {}


def snapshot(store: Store) -> dict[str, Any]:
    """The household document's value, read once (for callers that look at several parts)."""
    return _value(store)


def exists(store: Store) -> bool:
    return isinstance(_value(store).get("meta", {}).get("id"), str)


def household_id(store: Store) -> str:
    hid = _value(store).get("meta", {}).get("id")
    if not isinstance(hid, str):
        raise HouseholdError("this device has no household yet; run `covey serve` or `covey pair`")
    return hid


def ensure(store: Store, identity: Identity, name: str) -> str:
    """This device's household id, founding a one-device household on first use."""
    if exists(store):
        hid = household_id(store)
        if _root(store) is None and not _doc_entries(store):
            _upgrade_legacy(store, identity, hid)
        _publish_writers(store, identity.device_id)
        return hid
    hid = secrets.token_hex(16)

    def found(doc: LoroDoc) -> None:
        meta = doc.get_map("meta")
        meta.insert("id", hid)
        meta.insert("created_at", now_iso())
        meta.insert("created_by", identity.device_id)
        _put_device(doc, identity.device_id, identity.fingerprint, identity.cert_pem, name,
                    identity.device_id)

    store.write(HOUSEHOLD_DOC, found, touched=None, create=True)
    entry = membership.make(identity, _member_body(
        "found", hid, identity.device_id, [], identity.cert_pem, name))
    _append(store, [entry], pin_root=True)
    _publish_writers(store, identity.device_id)
    return hid


def writer_peers(store: Store) -> set[int]:
    """The Loro peer ids this device's processes write with."""
    return {int(r[0]) for r in store.db.conn.execute("SELECT peer_id FROM writers")}


def _publish_writers(store: Store, device_id: str) -> None:
    """Say which Loro peers write for this device, so its changes can be told apart (and
    undone, `covey restore --undo-device`)."""
    entry = _value(store).get("devices", {}).get(device_id)
    known = entry.get("peers") if isinstance(entry, dict) else None
    mine = sorted(writer_peers(store))
    if not isinstance(entry, dict) or known == mine:
        return
    listed: list[Any] = list(mine)  # (LoroValue's list is invariant: a list of ints is one)
    store.write(HOUSEHOLD_DOC, lambda doc: _device_map(doc, device_id).insert("peers", listed),
                touched=None)


def _member_body(kind: str, hid: str, by: str, prev: list[str], cert_pem: str, name: str,
                 proof: dict[str, Any] | None = None) -> dict[str, Any]:
    der = cert_der(cert_pem) or b""
    body: dict[str, Any] = {
        "kind": kind, "household": hid, "by": by, "prev": prev, "at": now_iso(),
        "subject": device_id_from_cert(der), "fingerprint": fingerprint(der), "cert": cert_pem,
        "name": name}
    if proof is not None:
        body["proof"] = proof
    return body


def _upgrade_legacy(store: Store, identity: Identity, hid: str) -> None:
    """A household from before the membership log: its founder writes the log once, adding
    the members it lists (they were trusted already); other devices wait for that."""
    value = _value(store)
    if value.get("meta", {}).get("created_by") != identity.device_id:
        return
    root = membership.make(identity, _member_body(
        "found", hid, identity.device_id, [], identity.cert_pem,
        next((d.name for d in members_of(value) if d.device_id == identity.device_id), "")))
    entries = [root]
    for d in members_of(value):
        if d.device_id != identity.device_id and not d.revoked and cert_der(d.cert_pem):
            entries.append(membership.make(identity, _member_body(
                "add", hid, identity.device_id, [entries[-1].hash], d.cert_pem, d.name,
                {"legacy": True})))
    _append(store, entries, pin_root=True)


# -- the membership log in the store -----------------------------------------------------

def _doc_entries(store: Store) -> dict[str, Any]:
    raw = _value(store).get("log")
    return raw if isinstance(raw, dict) else {}


def _root(store: Store) -> str | None:
    row = store.db.conn.execute("SELECT hash FROM membership_log WHERE root = 1").fetchone()
    return str(row[0]) if row else None


def _entries(store: Store) -> dict[str, membership.Entry]:
    """Every entry known here: the document's and those this device remembers."""
    found: dict[str, membership.Entry] = {}
    sources = list(_doc_entries(store).items()) + list(
        store.db.conn.execute("SELECT hash, entry FROM membership_log"))
    for key, raw in sources:
        entry = membership.parse(str(key), raw)
        if entry is not None:
            found[entry.hash] = entry
    return found


def current(store: Store) -> membership.Membership | None:
    """The members as the log says, remembering every entry that chains to the root (the
    document may lose entries: a member can delete keys; this device never forgets them).
    None for a household from before the log whose founder has not written it yet."""
    root = _root(store)
    entries = _entries(store)
    if root is None:
        root = _legacy_root(store, entries)
        if root is None:
            return None
    result = membership.evaluate(entries, root, household_id(store))
    known = {r[0] for r in store.db.conn.execute("SELECT hash FROM membership_log")}
    new = [e for h, e in result.known.items() if h not in known]
    if new:
        with transaction(store.db) as conn:
            conn.executemany("INSERT OR IGNORE INTO membership_log (hash, entry, root)"
                             " VALUES (?, ?, ?)", [(e.hash, e.encoded(), int(e.hash == root))
                                                   for e in new])
    return result


def _legacy_root(store: Store, entries: dict[str, membership.Entry]) -> str | None:
    """The founding entry of an upgraded legacy household, if it is signed by the founder
    this device already trusted."""
    value = _value(store)
    founder = value.get("meta", {}).get("created_by")
    legacy = {d.device_id: d for d in members_of(value)}
    for e in entries.values():
        if e.kind == "found" and not e.prev and e.by == founder and founder in legacy and \
                e.body.get("fingerprint") == legacy[founder].fingerprint:
            return e.hash
    return None


def _append(store: Store, entries: list[membership.Entry], pin_root: bool = False) -> None:
    """Record entries here and in the document, with any entry the document lost."""
    with transaction(store.db) as conn:
        conn.executemany("INSERT OR IGNORE INTO membership_log (hash, entry, root) VALUES (?, ?, ?)",
                         [(e.hash, e.encoded(), int(pin_root and i == 0))
                          for i, e in enumerate(entries)])
    republish(store)


def republish(store: Store) -> int:
    """Write back into the document the entries it lacks (deleted by a member, say)."""
    def missing(doc: LoroDoc) -> list[tuple[str, str]]:
        in_doc = set(doc.get_map("log").keys())
        return [(h, raw) for h, raw in store.db.conn.execute(
            "SELECT hash, entry FROM membership_log") if h not in in_doc]

    if not store.read(HOUSEHOLD_DOC, missing):
        return 0

    def put(doc: LoroDoc) -> int:
        # Looked at again inside the write's transaction: the log may have been replaced
        # since (a pairing in another process), and the old one's entries must not come back.
        found = missing(doc)
        log_map = doc.get_map("log")
        for h, raw in found:
            log_map.insert(h, raw)
        return len(found)

    return store.write(HOUSEHOLD_DOC, put, touched=None)


def pin_root(conn: sqlite3.Connection, root: membership.Entry) -> None:
    """Forget the previous household's log and pin the root of the one being joined (inside
    the transaction that puts its document in place: see adoption.py)."""
    conn.execute("DELETE FROM membership_log")
    conn.execute("INSERT INTO membership_log (hash, entry, root) VALUES (?, ?, 1)",
                 [root.hash, root.encoded()])


def devices(store: Store) -> list[Device]:
    """The members (revoked ones too), as the verified log says."""
    result = current(store)
    if result is None:
        return members_of(_value(store))
    return sorted((_device(m) for m in result.members.values()),
                  key=lambda d: (d.added_at, d.device_id))


def _device(m: membership.Member) -> Device:
    return Device(device_id=m.device_id, fingerprint=m.fingerprint, cert_pem=m.cert_pem,
                  name=m.name, added_by=m.added_by, added_at=m.added_at, revoked=m.revoked,
                  revoked_by=m.revoked_by, revoked_at=m.revoked_at)


def refused_entries(store: Store) -> list[tuple[str, str]]:
    """Membership entries that count for nothing, with why (shown by `covey devices`)."""
    result = current(store)
    return result.refused if result else []


def members_of(value: Any) -> list[Device]:
    """The devices listed in a household document's value (names for display; trust comes
    from the membership log, see `devices`)."""
    raw = value.get("devices", {}) if isinstance(value, dict) else {}
    found = []
    for device_id, d in (raw.items() if isinstance(raw, dict) else []):
        if not isinstance(d, dict) or not isinstance(d.get("fingerprint"), str):
            continue
        found.append(Device(
            device_id=device_id, fingerprint=d["fingerprint"], cert_pem=str(d.get("cert", "")),
            name=str(d.get("name", "")), added_by=str(d.get("added_by", "")),
            added_at=str(d.get("added_at", "")), revoked=d.get("revoked") is True,
            revoked_by=d.get("revoked_by"), revoked_at=d.get("revoked_at"),
        ))
    return sorted(found, key=lambda d: (d.added_at, d.device_id))


def trusted(store: Store) -> dict[str, Device]:
    """Members not revoked, by certificate fingerprint."""
    return {d.fingerprint: d for d in devices(store) if not d.revoked}


def refresh(store: Store) -> dict[str, Device]:
    """The node's view after the household changed: entries the document lost written back,
    then the trusted members."""
    republish(store)
    return trusted(store)


def admit(store: Store, inviter: Identity, cert_pem: str, name: str,
          proof: dict[str, Any]) -> None:
    """Add a paired device: an `add` entry signed by us, carrying the joiner's proof."""
    result = current(store)
    heads = result.heads if result else []
    entry = membership.make(inviter, _member_body(
        "add", household_id(store), inviter.device_id, heads, cert_pem, name, proof))
    der = cert_der(cert_pem) or b""
    store.write(HOUSEHOLD_DOC, lambda doc: _put_device(
        doc, device_id_from_cert(der), fingerprint(der), cert_pem, name, inviter.device_id),
        touched=None)
    _append(store, [entry])
    after = current(store)
    if after is None or device_id_from_cert(der) not in after.active():
        why = dict(after.refused).get(entry.hash, "?") if after else "no membership log"
        raise HouseholdError(f"the household refused the new member: {why}")


def revoke(store: Store, identity: Identity, device_id: str) -> list[Device]:
    """Revoke a member (a unique prefix of its id will do), with the devices it brought in;
    every member refuses them once synced. A device that brought this one in takes most of
    the other members (each one's revocation is a vote). Returns the revoked devices (the
    target first); for a vote not yet carried, the target alone, still a member."""
    wanted = device_id.upper().replace("-", "")
    members = devices(store)
    matches = [d for d in members if d.device_id.replace("-", "").startswith(wanted)
               and not d.revoked]
    if not wanted or len(matches) != 1:
        raise HouseholdError(f"no single member matches {device_id!r}; see `covey devices`")
    target = matches[0]
    if target.device_id == identity.device_id:
        raise HouseholdError("this device cannot revoke itself; revoke it from another member")
    result = current(store)
    if result is None:
        raise HouseholdError("this household's membership log is not here yet: run `covey "
                             "serve` on the device that founded it once, then try again")
    active = result.active()
    senior = target.device_id in membership.inviter_chain(active, identity.device_id)
    subjects = [target.device_id] + ([] if senior else [
        d for d in membership.brought_in(active, target.device_id) if d != identity.device_id])
    body: dict[str, Any] = {"kind": "revoke", "household": household_id(store),
                            "by": identity.device_id, "prev": result.heads, "at": now_iso(),
                            "revokes": subjects}
    if senior:
        body["vote"] = True
    entry = membership.make(identity, body)

    def mark(doc: LoroDoc) -> None:  # the legacy flag too, for display by older code paths
        for subject in subjects if not senior else []:
            entry_map = _device_map(doc, subject)
            entry_map.insert("revoked", True)
            entry_map.insert("revoked_by", identity.device_id)
            entry_map.insert("revoked_at", now_iso())

    store.write(HOUSEHOLD_DOC, mark, touched=None)
    _append(store, [entry])
    by_id = {d.device_id: d for d in devices(store)}
    return [by_id[s] for s in subjects if s in by_id]


def _device_map(doc: LoroDoc, device_id: str) -> LoroMap:
    return cast(LoroMap, doc.get_map("devices").get_or_create_container(device_id, LoroMap()))


def _put_device(doc: LoroDoc, device_id: str, fingerprint: str, cert_pem: str, name: str,
                added_by: str) -> None:
    entry = _device_map(doc, device_id)
    for key, value in (("fingerprint", fingerprint), ("cert", cert_pem), ("name", name),
                       ("added_by", added_by), ("added_at", now_iso()), ("revoked", False)):
        entry.insert(key, value)


def set_capability(store: Store, device_id: str, model: str, tok_s: float, serves: bool,
                   measured_at: float | None = None) -> None:
    """What this device can run for others; synced so every member can route to it."""
    def put(doc: LoroDoc) -> None:
        entry = _device_map(doc, device_id)
        cap = cast(LoroMap, entry.get_or_create_container("capability", LoroMap()))
        cap.insert("model", model)
        cap.insert("tok_s", float(tok_s))
        cap.insert("serves", bool(serves))
        if measured_at is not None:
            cap.insert("measured_at", float(measured_at))

    store.write(HOUSEHOLD_DOC, put, touched=None)


def capability(store: Store, device_id: str) -> dict[str, Any]:
    return capability_in(_value(store), device_id)


def capability_in(value: dict[str, Any], device_id: str) -> dict[str, Any]:
    """What `device_id` can run, from a household document's value."""
    devices = value.get("devices", {})
    raw = devices.get(device_id, {}) if isinstance(devices, dict) else {}
    cap = raw.get("capability") if isinstance(raw, dict) else None
    return cap if isinstance(cap, dict) else {}
