"""A joining device taking the household it was given: checked apart, then put in place of its
own in one transaction.

The check: the household's own signed log must admit both devices, the joiner added by the
inviter. The log may hold founding entries that count for nothing (a member can write any entry;
a device that joined once carried its own old one in): the founding entry taken is the one of
this household, under which both devices are members, and it is pinned here from then on.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from loro import LoroDoc

from sync import household, membership
from sync.identity import Identity
from sync.pairing import PairingError
from sync.store import HOUSEHOLD_DOC, Store


def adopt(store: Store, data: bytes, identity: Identity, inviter_fp: str) -> membership.Member:
    """Make the household in `data` this device's, once its log admits us by the inviter
    (whose certificate fingerprint is `inviter_fp`); returns the inviter as a member."""
    doc = LoroDoc()
    try:
        doc.import_(data)  # inspected apart from our store before anything is replaced
    except BaseException as exc:  # loro raises bare BaseException on bad bytes
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise PairingError("the other device sent a malformed household") from None
    value = doc.get_deep_value()
    root, inviter = _founding_entry(value if isinstance(value, dict) else {}, identity, inviter_fp)

    def pin(conn: sqlite3.Connection) -> None:
        household.pin_root(conn, root)

    store.replace_document(HOUSEHOLD_DOC, data, source=inviter.device_id, also=pin)
    household.refresh(store)  # the entries of the log that chain to the root, remembered
    return inviter


def _founding_entry(value: dict[str, Any], identity: Identity, inviter_fp: str,
                    ) -> tuple[membership.Entry, membership.Member]:
    raw_log, meta = value.get("log"), value.get("meta")
    hid = meta.get("id") if isinstance(meta, dict) else None
    entries = {e.hash: e for k, v in (raw_log.items() if isinstance(raw_log, dict) else [])
               if (e := membership.parse(str(k), v)) is not None}
    roots = [e for e in entries.values()
             if not e.prev and e.kind == "found" and e.body.get("household") == hid]
    if not roots or not isinstance(hid, str):
        raise PairingError("the household we were given has no sound membership log")
    admitting: list[tuple[membership.Entry, membership.Member]] = []
    for root in roots:
        members = {m.fingerprint: m for m in
                   membership.evaluate(entries, root.hash, hid).active().values()}
        me, inviter = members.get(identity.fingerprint), members.get(inviter_fp)
        if (me is not None and inviter is not None and me.device_id == identity.device_id
                and me.added_by == inviter.device_id):
            admitting.append((root, inviter))
    if not admitting:
        raise PairingError("the household we were given does not include both devices")
    if len(admitting) > 1:  # only a forger writes a second founding that admits us too
        raise PairingError("the household we were given has two founding entries that both "
                           "admit us; not guessing which is real")
    return admitting[0]


def pair_locally(store: Store, inviter: Identity, joiner: Identity, name: str,
                 joiner_store: Store | None = None) -> None:
    """Admit a device whose identity is on this machine too (benchmarks, tests): the joiner's
    proof is made here instead of in a pairing exchange; `joiner_store` then joins, as a
    pairing would have it."""
    transcript = membership.transcript_of(b"local", joiner.fingerprint.encode())
    household.admit(store, inviter, joiner.cert_pem, name, {
        "transcript": transcript, "sig": joiner.sign(
            membership.proof_message(inviter.fingerprint, joiner.fingerprint, transcript))})
    if joiner_store is not None:
        adopt(joiner_store, store.export_updates(HOUSEHOLD_DOC), joiner, inviter.fingerprint)
