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
from dataclasses import dataclass
from typing import Any, cast

from loro import LoroDoc, LoroMap

from app.errors import CoveyError
from sync.identity import Identity
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
        return household_id(store)

    def found(doc: LoroDoc) -> None:
        meta = doc.get_map("meta")
        meta.insert("id", secrets.token_hex(16))
        meta.insert("created_at", now_iso())
        meta.insert("created_by", identity.device_id)
        _put_device(doc, identity.device_id, identity.fingerprint, identity.cert_pem, name,
                    identity.device_id)

    store.write(HOUSEHOLD_DOC, found, touched=None, create=True)
    return household_id(store)


def devices(store: Store) -> list[Device]:
    return members_of(_value(store))


def members_of(value: Any) -> list[Device]:
    """The devices listed in a household document's value."""
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


def add_device(store: Store, device_id: str, fingerprint: str, cert_pem: str, name: str,
               added_by: str) -> None:
    store.write(HOUSEHOLD_DOC, lambda doc: _put_device(
        doc, device_id, fingerprint, cert_pem, name, added_by), touched=None)


def revoke(store: Store, device_id: str, by: str) -> Device:
    """Revoke a member (a unique prefix of its id will do); it is refused everywhere."""
    wanted = device_id.upper().replace("-", "")
    matches = [d for d in devices(store) if d.device_id.replace("-", "").startswith(wanted)]
    if not wanted or len(matches) != 1:
        raise HouseholdError(f"no single device matches {device_id!r}; see `covey devices`")
    target = matches[0]
    if target.device_id == by:
        raise HouseholdError("this device cannot revoke itself; revoke it from another member")

    def mark(doc: LoroDoc) -> None:
        entry = _device_map(doc, target.device_id)
        entry.insert("revoked", True)
        entry.insert("revoked_by", by)
        entry.insert("revoked_at", now_iso())

    store.write(HOUSEHOLD_DOC, mark, touched=None)
    return target


def _device_map(doc: LoroDoc, device_id: str) -> LoroMap:
    return doc.get_map("devices").get_or_create_container(device_id, LoroMap())  # type: ignore[return-value]


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
