"""The household's members as a signed, hash-linked log (who may sync with whom).

Each change to the members is an entry: its body names its kind (`found`, `add`, `revoke`), the
device that signs it (`by`), the entries it follows (`prev`, the heads its writer knew) and what
it changes; its id is the SHA-256 of the body, and the signer's device key signs that id. An
`add` also carries the joiner's own signature over both certificates and the pairing's PAKE
transcript, so nobody can add a device that did not take part in a pairing. Entries live in the
household document (map `log`, so they sync) and in a local table that only grows (an entry
deleted from the document is still known here, and written back).

Every device evaluates the whole log before trusting a certificate. The rules:

1. An entry counts only if its signer was a member, not revoked, in the state its own `prev`
   entries describe, and its signature and (for `add`) the joiner's proof verify.
2. Any member may revoke any other, and the revocation takes with it the devices the revoked
   one brought in (they could be planted); they can be paired again from a sound device.
3. A device cannot alone revoke a device that brought it in (directly or through others):
   that takes a revocation from most of the other members (both of three others, two of
   three…), so one stolen device cannot lock out the devices that let it in.
4. A revoked device's entries that its revocation had not seen count for nothing: it cannot
   revoke anyone, or add anyone, after the fact. When two members revoke each other without
   seeing each other's entry, the one that joined first wins.
5. The founding entry is pinned by each device when it founds or joins the household (the
   pairing is the trust on first use); another founding entry counts for nothing.

Refused entries are reported with a reason (`covey devices` shows them).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from sync.identity import Identity, cert_der, device_id_from_cert, fingerprint, verify

MAX_ENTRIES = 1000  # a household has tens; more is someone filling the log
MAX_ROUNDS = 8


@dataclass(frozen=True)
class Entry:
    hash: str
    body: dict[str, Any]
    sig: str

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def by(self) -> str:
        return str(self.body.get("by"))

    @property
    def prev(self) -> list[str]:
        return list(self.body.get("prev", []))

    def encoded(self) -> str:
        return json.dumps({"body": self.body, "sig": self.sig}, sort_keys=True)


@dataclass(frozen=True)
class Member:
    device_id: str
    fingerprint: str
    cert_pem: str
    name: str
    added_by: str
    added_at: str
    added_in: str  # the entry that (last) added it
    revoked_by: str | None = None
    revoked_at: str | None = None
    revoked_in: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_in is not None


@dataclass
class Membership:
    members: dict[str, Member] = field(default_factory=dict)  # device id → member (revoked too)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (entry hash, why)
    heads: list[str] = field(default_factory=list)
    known: dict[str, Entry] = field(default_factory=dict)  # entries that chain to the root

    def active(self) -> dict[str, Member]:
        return {m.device_id: m for m in self.members.values() if not m.revoked}


@functools.lru_cache(maxsize=4096)
def _verified(cert_pem: str, sig: str, data: bytes) -> bool:
    """Signatures are checked each time the log is read: remember the answers."""
    return verify(cert_pem, sig, data)


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=True).encode()).hexdigest()


def parse(key: str, raw: Any) -> Entry | None:
    """An entry from the document or the local table; None if malformed or its id is wrong."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    body, sig = value.get("body"), value.get("sig")
    if not isinstance(body, dict) or not isinstance(sig, str):
        return None
    prev = body.get("prev")
    if not isinstance(prev, list) or not all(isinstance(p, str) for p in prev):
        return None
    if digest(body) != key:
        return None
    return Entry(key, body, sig)


def make(identity: Identity, body: dict[str, Any]) -> Entry:
    h = digest(body)
    return Entry(h, body, identity.sign(h.encode()))


def proof_message(inviter_fp: str, joiner_fp: str, transcript: str) -> bytes:
    return f"covey-join|{inviter_fp}|{joiner_fp}|{transcript}".encode()


def transcript_of(joiner_message: bytes, inviter_message: bytes) -> str:
    """What both sides of a pairing saw, bound into the joiner's proof."""
    return hashlib.sha256(b"covey-pair|" + joiner_message + b"|" + inviter_message).hexdigest()


def inviter_chain(members: dict[str, Member], device_id: str) -> set[str]:
    """The devices that brought `device_id` in, directly or through others."""
    chain: set[str] = set()
    current = members.get(device_id)
    while current is not None and current.added_by != current.device_id \
            and current.added_by not in chain:
        chain.add(current.added_by)
        current = members.get(current.added_by)
    return chain


def brought_in(members: dict[str, Member], device_id: str) -> list[str]:
    """Active devices `device_id` brought in, directly or through others."""
    found: list[str] = []
    for m in members.values():
        if not m.revoked and m.device_id != device_id and \
                device_id in inviter_chain(members, m.device_id):
            found.append(m.device_id)
    return sorted(found)


class _Log:
    """One evaluation of a set of entries from a pinned root."""

    def __init__(self, entries: dict[str, Entry], root: str, household: str) -> None:
        self.entries, self.root, self.household = entries, root, household
        self.refused: dict[str, str] = {}
        self.order = self._order()
        self.ancestors: dict[str, frozenset[str]] = {}
        for h in self.order:
            anc: set[str] = set()
            for p in self.entries[h].prev:
                anc.add(p)
                anc |= self.ancestors[p]
            self.ancestors[h] = frozenset(anc)
        self.position = {h: i for i, h in enumerate(self.order)}

    def _order(self) -> list[str]:
        """Entries reachable from the root, parents first (ties by id: the same everywhere)."""
        if self.root not in self.entries:
            return []
        children: dict[str, list[str]] = {}
        waiting: dict[str, int] = {}
        for h, e in self.entries.items():
            if h == self.root:
                continue
            if not e.prev:
                self.refused[h] = "a second founding entry"
                continue
            waiting[h] = len(set(e.prev))
            for p in set(e.prev):
                children.setdefault(p, []).append(h)
        order: list[str] = []
        ready = [self.root]
        while ready and len(order) < MAX_ENTRIES:
            ready.sort()
            h = ready.pop(0)
            order.append(h)
            for c in children.get(h, []):
                waiting[c] -= 1
                if waiting[c] == 0:
                    ready.append(c)
        for h in waiting:
            if h not in order and h not in self.refused:
                self.refused[h] = "follows entries this device does not have"
        return order

    def _verify(self, cert_pem: str, sig: str, data: bytes) -> bool:
        return _verified(cert_pem, sig, data)

    def fold(self, members: dict[str, Member], e: Entry) -> None:
        b = e.body
        if e.kind in ("found", "add"):
            subject = str(b["subject"])
            old = members.get(subject)
            if old is not None and old.revoked and old.revoked_in not in self.ancestors[e.hash]:
                return  # an add concurrent with a revocation does not undo it
            members[subject] = Member(subject, str(b["fingerprint"]), str(b["cert"]),
                                      str(b.get("name", "")), e.by, str(b.get("at", "")), e.hash)
        elif e.kind == "revoke":
            for subject in b["revokes"]:
                if subject in members and not members[subject].revoked:
                    members[subject] = replace(members[subject], revoked_by=e.by,
                                               revoked_at=str(b.get("at", "")), revoked_in=e.hash)

    def check(self, members: dict[str, Member], e: Entry) -> str | None:
        """Why `e` does not count in the state `members` (its ancestors'), or None."""
        b = e.body
        if b.get("household") != self.household:
            return "belongs to another household"
        if e.hash == self.root:
            if e.kind != "found" or b.get("subject") != e.by:
                return "a founding entry that founds nothing"
            problem = self._check_cert(b)
            if problem:
                return problem
            return None if self._verify(str(b["cert"]), e.sig, e.hash.encode()) else \
                "bad signature"
        signer = members.get(e.by)
        if signer is None:
            return "signed by a device that is not a member"
        if signer.revoked:
            return "signed by a revoked device"
        if not self._verify(signer.cert_pem, e.sig, e.hash.encode()):
            return "bad signature"
        if e.kind == "add":
            problem = self._check_cert(b)
            if problem:
                return problem
            current = members.get(str(b["subject"]))
            if current is not None and not current.revoked:
                return "adds a device that is already a member"
            proof = b.get("proof")
            if not isinstance(proof, dict):
                return "adds a device without proof of a pairing"
            if proof.get("legacy") is True:
                founder = self.entries[self.root].by
                return None if e.by == founder else "a legacy member not added by the founder"
            transcript, sig = proof.get("transcript"), proof.get("sig")
            if not isinstance(transcript, str) or not isinstance(sig, str) or not self._verify(
                    str(b["cert"]), sig,
                    proof_message(signer.fingerprint, str(b["fingerprint"]), transcript)):
                return "adds a device whose proof of pairing does not verify"
            return None
        if e.kind == "revoke":
            revokes = b.get("revokes")
            if not isinstance(revokes, list) or not revokes or len(revokes) > 256:
                return "revokes nothing"
            for subject in revokes:
                target = members.get(subject) if isinstance(subject, str) else None
                if target is None or target.revoked:
                    return "revokes a device that is not a member"
                if subject == e.by:
                    return "a device cannot revoke itself"
            if b.get("vote") is not True and set(revokes) & inviter_chain(members, e.by):
                return "revokes a device that brought the signer in (that takes most members)"
            return None
        return f"unknown kind of entry {e.kind!r}"

    def _check_cert(self, b: dict[str, Any]) -> str | None:
        der = cert_der(b["cert"]) if isinstance(b.get("cert"), str) else None
        if der is None:
            return "carries no usable certificate"
        if b.get("subject") != device_id_from_cert(der) or b.get("fingerprint") != fingerprint(der):
            return "names a device that is not its certificate's"
        return None

    def evaluate(self) -> Membership:
        void: set[str] = set()
        accepted: list[str] = []
        for _ in range(MAX_ROUNDS):
            accepted, reasons = self._pass(void)
            new_void = self._voided(accepted)
            if new_void == void:
                break
            void = new_void
        members: dict[str, Member] = {}
        for h in accepted:
            if self.entries[h].body.get("vote") is not True:
                self.fold(members, self.entries[h])
        for target, (by, votes) in self._quorums(accepted, members).items():
            if target in members and not members[target].revoked:
                members[target] = replace(members[target], revoked_by=by,
                                          revoked_in=votes[-1], revoked_at="by most members")
        refused = dict(self.refused) | reasons
        known = {h: self.entries[h] for h in self.order}
        parents = {p for e in known.values() for p in e.prev}
        return Membership(members, sorted(refused.items()),
                          sorted(h for h in known if h not in parents), known)

    def _pass(self, void: set[str]) -> tuple[list[str], dict[str, str]]:
        accepted: list[str] = []
        reasons: dict[str, str] = {}
        for h in self.order:
            if h in void:
                reasons[h] = "written by a revoked device after its revocation"
                continue
            state: dict[str, Member] = {}
            for a in accepted:
                if a in self.ancestors[h] and self.entries[a].body.get("vote") is not True:
                    self.fold(state, self.entries[a])
            why = self.check(state, self.entries[h])
            if why is None:
                accepted.append(h)
            else:
                reasons[h] = why
        return accepted, reasons

    def _quorums(self, accepted: list[str], members: dict[str, Member]
                 ) -> dict[str, tuple[str, list[str]]]:
        """Senior devices revoked by most of the other members (rule 3)."""
        votes: dict[str, dict[str, str]] = {}
        for h in accepted:
            e = self.entries[h]
            if e.body.get("vote") is True:
                for target in e.body["revokes"]:
                    votes.setdefault(target, {})[e.by] = h
        done: dict[str, tuple[str, list[str]]] = {}
        for target, by in votes.items():
            voters = {d for d in by if d in members and not members[d].revoked}
            others = [m for m in members.values() if not m.revoked and m.device_id != target]
            if others and len(voters) * 2 > len(others):
                done[target] = (sorted(voters)[0], [by[v] for v in sorted(voters)])
        return done

    def _voided(self, accepted: list[str]) -> set[str]:
        """Entries of revoked devices that their revocation had not seen (rule 4)."""
        members: dict[str, Member] = {}
        for h in accepted:
            if self.entries[h].body.get("vote") is not True:
                self.fold(members, self.entries[h])
        revocations: list[tuple[int, str, list[str], frozenset[str]]] = []
        for h in accepted:
            e = self.entries[h]
            if e.kind == "revoke" and e.body.get("vote") is not True:
                seen = self.ancestors[h] | {h}
                revocations.append((self._joined(members, e.by), h, list(e.body["revokes"]), seen))
        for target, (_, votes) in self._quorums(accepted, members).items():
            seen = frozenset().union(*(self.ancestors[v] | {v} for v in votes))
            joined = min(self._joined(members, self.entries[v].by) for v in votes)
            revocations.append((joined, votes[0], [target], seen))
        void: set[str] = set()
        for _, h, subjects, seen in sorted(revocations):
            if h in void:
                continue
            for a in accepted:
                e = self.entries[a]
                if e.by in subjects and a not in seen and not self._readmitted(e.by, seen, a):
                    void.add(a)
        return void

    def _joined(self, members: dict[str, Member], device_id: str) -> int:
        m = members.get(device_id)
        return self.position.get(m.added_in, len(self.order)) if m else len(self.order)

    def _readmitted(self, device_id: str, revocation_seen: frozenset[str], entry: str) -> bool:
        """Whether `device_id` was added again after the revocation, before writing `entry`."""
        for a in self.ancestors[entry]:
            e = self.entries[a]
            if e.kind == "add" and e.body.get("subject") == device_id and \
                    revocation_seen <= (self.ancestors[a] | {a}):
                return True
        return False


def evaluate(entries: dict[str, Entry], root: str, household: str) -> Membership:
    return _Log(entries, root, household).evaluate()
