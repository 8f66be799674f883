"""Pairing offers: the inviting side's local table of open codes (`pairing_offers`) and the
wrong tries made at them (`pairing_failures`). Only this module reads or writes them; the
exchange itself is sync/pairing.py's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sync.docstore import DocumentStore
from sync.pairing import MAX_WRONG_TRIES, OFFER_TTL, TRIES_PER_ADDRESS, code_number


@dataclass(frozen=True)
class Offer:
    code: str
    expires_at: float


def open_offer(store: DocumentStore, code: str, ttl: float = OFFER_TTL) -> Offer:
    with store.connection() as conn:
        now = time.time()
        conn.execute("DELETE FROM pairing_offers WHERE expires_at < ? OR number = ?",
                     [now - 3600, code_number(code)])
        conn.execute(
            "INSERT INTO pairing_offers (code, number, created_at, expires_at, state)"
            " VALUES (?, ?, ?, ?, 'open')", [code, code_number(code), now, now + ttl])
        return Offer(code, now + ttl)


def take_offer(store: DocumentStore, number: int, address: str) -> tuple[str | None, str]:
    """(the open, unexpired code with this number, "") — or (None, why it is refused).

    Taking it does not use it up: only `claim_offer`, after the exchange succeeded, does."""
    with store.connection() as conn:
        row = conn.execute(
            "SELECT code FROM pairing_offers WHERE number = ? AND state = 'open' AND expires_at > ?",
            [number, time.time()]).fetchone()
        if row is None:
            return None, ("no pairing code with that number is open on this device (expired or "
                          "already used?)")
        tries = conn.execute("SELECT count FROM pairing_failures WHERE code = ? AND address = ?",
                             [row[0], address]).fetchone()
        if tries is not None and tries[0] >= TRIES_PER_ADDRESS:
            return None, f"too many wrong tries from {address}: this code is closed to it"
        return str(row[0]), ""


def wrong_try(store: DocumentStore, code: str, address: str) -> None:
    """Count a failed exchange; close the offer once there were too many in all."""
    with store.connection() as conn:
        conn.execute("INSERT INTO pairing_failures (code, address, count) VALUES (?, ?, 1)"
                     " ON CONFLICT(code, address) DO UPDATE SET count = count + 1", [code, address])
        rows = conn.execute("SELECT address, count FROM pairing_failures WHERE code = ?"
                            " ORDER BY count DESC", [code]).fetchall()
        total = sum(r[1] for r in rows)
        where = ", ".join(f"{n} from {a}" for a, n in rows[:5]) + (" …" if len(rows) > 5 else "")
        if total >= MAX_WRONG_TRIES:
            conn.execute("UPDATE pairing_offers SET state = 'failed', failures = ?, reason = ?"
                         " WHERE code = ? AND state = 'open'",
                         [total, f"closed after {total} wrong tries ({where})", code])
        else:
            conn.execute("UPDATE pairing_offers SET failures = ?, reason = ? WHERE code = ?",
                         [total, f"{total} wrong tries so far ({where})", code])


def claim_offer(store: DocumentStore, code: str) -> bool:
    """Use the offer up for a successful exchange; False if another device just did."""
    with store.connection() as conn:
        cur = conn.execute("UPDATE pairing_offers SET state = 'in_progress' WHERE code = ?"
                           " AND state = 'open' AND expires_at > ?", [code, time.time()])
        return cur.rowcount == 1


def finish_offer(store: DocumentStore, code: str, state: str, device: str | None = None,
                 reason: str | None = None) -> None:
    with store.connection() as conn:
        conn.execute("UPDATE pairing_offers SET state = ?, device = ?, reason = ? WHERE code = ?",
                     [state, device, reason, code])


def wrong_tries(store: DocumentStore, code: str) -> tuple[int, str | None]:
    """(wrong tries so far, what the inviter is told of them) for an offer."""
    with store.connection() as conn:
        row = conn.execute("SELECT failures, reason FROM pairing_offers WHERE code = ?",
                           [code]).fetchone()
        return (int(row[0]), row[1]) if row else (0, None)


def offer_state(store: DocumentStore, code: str) -> tuple[str, str | None, str | None, float]:
    with store.connection() as conn:
        row = conn.execute("SELECT state, device, reason, expires_at FROM pairing_offers WHERE code = ?",
                           [code]).fetchone()
        if row is None:
            return ("gone", None, None, 0.0)
        return (row[0], row[1], row[2], row[3])


def pairing_open(store: DocumentStore) -> bool:
    """Whether an offer is open now (the node then answers pairing on the LAN)."""
    with store.connection() as conn:
        row = conn.execute(
            "SELECT 1 FROM pairing_offers WHERE state = 'open' AND expires_at > ?", [time.time()]
        ).fetchone()
    return row is not None
