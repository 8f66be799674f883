"""Where an answer runs: `local`, a named device, or `auto` (whoever finishes soonest).

`auto` estimates each candidate's time to finish from its measured decode speed and the answer
length, and prefers this device unless another is clearly (1.5×) faster. Candidates are the
household's members that serve peers, advertise a model and are online now.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import UsageError
from sync import household
from sync.store import Store

CLEARLY_FASTER = 1.5


@dataclass(frozen=True)
class Candidate:
    device_id: str
    name: str
    model: str
    tok_s: float


def candidates(store: Store) -> list[Candidate]:
    """Online members (not us) that run a model for peers."""
    online = {r[0] for r in store.db.conn.execute(
        "SELECT device_id FROM peer_status WHERE online = 1")}
    found = []
    for d in household.devices(store):
        cap = household.capability(store, d.device_id)
        if (d.device_id != store.device_id and not d.revoked and d.device_id in online
                and cap.get("serves") and cap.get("tok_s", 0) > 0):
            found.append(Candidate(d.device_id, d.name, str(cap.get("model", "")),
                                   float(cap["tok_s"])))
    return found


def best_peer(store: Store) -> str | None:
    peers = sorted(candidates(store), key=lambda c: -c.tok_s)
    return peers[0].device_id if peers else None


def choose(store: Store, where: str, local_tok_s: float) -> str:
    """The device id to run on ("" = queue it until a capable peer is online)."""
    me = store.device_id
    if where == "local":
        return me
    if where == "auto":
        peer = max(candidates(store), key=lambda c: c.tok_s, default=None)
        if peer is not None and peer.tok_s >= CLEARLY_FASTER * max(local_tok_s, 0.01):
            return peer.device_id
        return me
    wanted = where.lower().replace("-", "")
    for d in household.devices(store):
        if d.revoked:
            continue
        if d.name.lower() == where.lower() or d.device_id.lower().replace("-", "").startswith(wanted):
            return d.device_id
    raise UsageError(f"no device {where!r} in this household (see `covey devices`)")
