"""What the node records about other devices, in local (unsynced) tables of the store.

`peer_status`: members we connected to — online, where they listen, when we last heard from
them, when we were last caught up, why the last session ended, and how far a catch-up from them
has come. `peers_seen`: devices seen by mDNS. Readers (`covey devices/peers/status`, the terminal
app) read them through this module's typed rows, via `app.household_status`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync.errors import StoreError
from sync.store import Store

if TYPE_CHECKING:  # (discovery needs zeroconf: readers of these tables do not)
    from sync.discovery import Seen


def span(seconds: float) -> str:
    """How far a clock is off, in words: "3 d ahead", "25 s behind"."""
    size = abs(seconds)
    for unit, length in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            return f"{size / length:.0f} {unit} {'ahead' if seconds > 0 else 'behind'}"
    return f"{size:.0f} s {'ahead' if seconds > 0 else 'behind'}"


def _write(store: Store, sql: str, params: Sequence[object] | list[Sequence[object]],
           many: bool = False) -> None:
    """One autocommit write; a full or read-only disk is a StoreError, as in the store."""
    try:
        if many:
            store.db.conn.executemany(sql, params)  # type: ignore[arg-type]  # (rows of plain values)
        else:
            store.db.conn.execute(sql, params)
    except sqlite3.OperationalError as exc:
        raise StoreError(f"cannot write to the store: {exc}") from None


@dataclass(frozen=True)
class Presence:
    """One live connection's state, as the node writes it every moment."""

    device_id: str
    last_heard: float
    catch_up_total: int | None
    catch_up_done: int


class PresenceLog:
    """Writes live connections' presence when it changed: when catch-up progress moved, or
    "last seen" is STALE seconds behind. Every write is a synced commit (an SD card's life);
    the exact last-heard time is written at disconnect anyway."""

    STALE = 5.0

    def __init__(self) -> None:
        self._written: dict[str, Presence] = {}

    def due(self, presences: Iterable[Presence]) -> list[Presence]:
        def changed(p: Presence) -> bool:
            w = self._written.get(p.device_id)
            return (w is None or (p.catch_up_total, p.catch_up_done)
                    != (w.catch_up_total, w.catch_up_done)
                    or p.last_heard - w.last_heard >= self.STALE)

        return [p for p in presences if changed(p)]

    def write(self, store: Store, presences: list[Presence]) -> None:
        heard(store, presences)
        self._written.update((p.device_id, p) for p in presences)

    def forget(self, device_id: str) -> None:
        self._written.pop(device_id, None)


def connected(store: Store, device_id: str, address: str, listen_address: str | None,
              clock_offset: float = 0.0) -> None:
    """A session with `device_id` began (its HELLO arrived; its clock is `clock_offset` s off)."""
    now = time.time()
    _write(
        store, "INSERT INTO peer_status (device_id, address, listen_address, last_seen, online,"
        " last_error, clock_offset) VALUES (?, ?, ?, ?, 1, NULL, ?) ON CONFLICT(device_id) DO"
        " UPDATE SET address = excluded.address, last_seen = excluded.last_seen, online = 1,"
        " listen_address = COALESCE(excluded.listen_address, peer_status.listen_address),"
        " last_error = NULL, catch_up_total = NULL, catch_up_done = NULL,"
        " clock_offset = excluded.clock_offset",
        [device_id, listen_address or address, listen_address, now, clock_offset])


def caught_up(store: Store, device_id: str) -> None:
    now = time.time()
    _write(
        store, "UPDATE peer_status SET last_sync = ?, last_seen = ?, catch_up_total = NULL,"
        " catch_up_done = NULL WHERE device_id = ?", [now, now, device_id])


def heard(store: Store, presences: Iterable[Presence]) -> None:
    """Refresh last-seen and catch-up progress of the live connections (one transaction)."""
    rows = [(p.last_heard, p.catch_up_total, p.catch_up_done if p.catch_up_total is not None
             else None, p.device_id) for p in presences]
    if rows:
        _write(store, "UPDATE peer_status SET last_seen = ?, catch_up_total = ?,"
               " catch_up_done = ? WHERE device_id = ?", rows, many=True)


def progress(store: Store, device_id: str, total: int | None, done: int) -> None:
    """How far the catch-up from `device_id` has come (written as it goes)."""
    _write(store, "UPDATE peer_status SET catch_up_total = ?, catch_up_done = ?"
           " WHERE device_id = ?", [total, done if total is not None else None, device_id])


def disconnected(store: Store, device_id: str, last_heard: float, reason: str | None) -> None:
    _write(
        store, "UPDATE peer_status SET online = 0, last_seen = MAX(COALESCE(last_seen, 0), ?),"
        " last_error = ?, catch_up_total = NULL, catch_up_done = NULL WHERE device_id = ?",
        [last_heard, reason, device_id])


def all_offline(store: Store) -> None:
    """At node start: whatever a previous (perhaps killed) node left marked online is not."""
    _write(store, "UPDATE peer_status SET online = 0, catch_up_total = NULL,"
           " catch_up_done = NULL WHERE online = 1 OR catch_up_total IS NOT NULL", [])


def known_addresses(store: Store, members: set[str]) -> dict[str, str]:
    """Addresses worth dialling: typed by the user ("" = whose is not known yet), and where
    members said they listen (their device id)."""
    with store.connection() as conn:
        found = {r[0]: "" for r in conn.execute("SELECT address FROM peer_addresses")}
        listening = conn.execute("SELECT device_id, listen_address FROM peer_status"
                                 " WHERE listen_address IS NOT NULL").fetchall()
    for device_id, address in listening:
        if device_id in members:
            found[address] = device_id
    return found


def record_seen(store: Store, seen: Seen) -> None:
    _write(
        store, "INSERT INTO peers_seen (name, device_prefix, household_hash, addresses, port,"
        " can_run_models, model, tok_s, online, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET addresses = excluded.addresses, port = excluded.port,"
        " household_hash = excluded.household_hash, can_run_models = excluded.can_run_models,"
        " model = excluded.model, tok_s = excluded.tok_s, online = excluded.online,"
        " last_seen = excluded.last_seen",
        [seen.name, seen.device_prefix, seen.household_hash, ",".join(seen.addresses),
         seen.port, int(seen.can_run_models), seen.model, seen.tok_s, int(seen.online),
         time.time()])


# -- reading (the only readers of these tables: every screen tells the same story) --------------

@dataclass(frozen=True)
class PeerStatus:
    """What this device's node last knew of one member it connects to."""

    device_id: str
    address: str | None
    last_seen: float | None
    last_sync: float | None
    online: bool
    last_error: str | None
    catch_up_total: int | None
    catch_up_done: int
    clock_offset: float


def statuses(store: Store) -> dict[str, PeerStatus]:
    with store.connection() as conn:
        rows = conn.execute(
            "SELECT device_id, address, last_seen, last_sync, online, last_error, catch_up_total,"
            " catch_up_done, clock_offset FROM peer_status").fetchall()
    return {r[0]: PeerStatus(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], int(r[7] or 0),
                             float(r[8] or 0.0)) for r in rows}


def online_devices(store: Store) -> set[str]:
    """Members this device's node holds a live session with (ask only while it runs)."""
    with store.connection() as conn:
        return {r[0] for r in conn.execute("SELECT device_id FROM peer_status WHERE online = 1")}


@dataclass(frozen=True)
class SeenPeer:
    """A covey device seen on the LAN by mDNS (paired or not)."""

    name: str
    device_prefix: str | None
    household_hash: str | None
    addresses: list[str]
    port: int
    can_run_models: bool
    model: str | None
    tok_s: float | None
    online: bool
    last_seen: float


def seen_peers(store: Store) -> list[SeenPeer]:
    """Devices seen by mDNS, the most recently seen first."""
    with store.connection() as conn:
        rows = conn.execute(
            "SELECT name, device_prefix, household_hash, addresses, port, can_run_models, model,"
            " tok_s, online, last_seen FROM peers_seen ORDER BY last_seen DESC").fetchall()
    return [SeenPeer(r[0], r[1], r[2], [a for a in (r[3] or "").split(",") if a], int(r[4] or 0),
                     bool(r[5]), r[6], r[7], bool(r[8]), float(r[9] or 0.0)) for r in rows]


def remember_address(store: Store, address: str) -> None:
    """An address the user typed (`covey pair HOST:PORT`): dialled from now on."""
    with store.connection():
        _write(store, "INSERT OR IGNORE INTO peer_addresses (address, added_at) VALUES (?, ?)",
               [address, time.time()])
