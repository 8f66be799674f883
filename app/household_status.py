"""What the household looks like from this device: who is paired, online, syncing, able to run
models — read from the state the node keeps in the store (peer_status) and the household doc.

The terminal app (its household bar, the devices and settings screens) reads it here, at most
once a second, on its UI thread: one read of the household document and one query, whatever the size
of the household. The app never talks to the sync layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from models.errors import CoveyError
from sync import household, peer_state
from sync.nodelock import NodeLock
from sync.store import Store


@dataclass(frozen=True)
class DeviceStatus:
    device_id: str
    name: str
    fingerprint: str
    this_device: bool
    revoked: bool
    online: bool
    syncing: bool  # connected, and not caught up since it connected
    address: str | None
    last_seen: float | None  # epoch seconds
    last_sync: float | None
    model: str
    tok_s: float
    serves: bool  # runs generations for the household
    measured_at: float | None = None  # when its speed was measured
    last_error: str | None = None  # why the last session with it ended (None: a clean end)
    catch_up_total: int | None = None  # documents it is sending us in a catch-up under way
    catch_up_done: int = 0
    clock_offset: float = 0.0  # how far its clock is from ours (seconds; + = ahead)
    revoked_by: str | None = None  # the name of the member that removed it

    @property
    def progress(self) -> str | None:
        """"syncing with bravo: 4,210 / 10,000 conversations" while a catch-up runs."""
        if not self.online or not self.catch_up_total:
            return None
        return (f"syncing with {self.name}: {self.catch_up_done:,} / {self.catch_up_total:,}"
                " conversations")

    @property
    def can_run_models(self) -> bool:
        return self.serves and bool(self.model)

    @property
    def state(self) -> str:
        if self.revoked:
            return "revoked"
        if self.this_device:
            return "this device"
        if self.online:
            return "syncing" if self.syncing else "online"
        return "offline"


@dataclass(frozen=True)
class HouseholdStatus:
    node_running: bool
    devices: list[DeviceStatus]

    @property
    def others(self) -> list[DeviceStatus]:
        return [d for d in self.devices if not d.this_device and not d.revoked]


def read_status(store: Store, locks_dir: Path) -> HouseholdStatus:
    running = NodeLock.held(locks_dir)
    rows = peer_state.statuses(store)
    value = household.snapshot(store)
    devices = []
    members = household.devices(store)
    names = {d.device_id: d.name for d in members}
    for d in members:
        s = rows.get(d.device_id)
        cap = household.capability_in(value, d.device_id)
        this = d.device_id == store.device_id
        online = bool(s and s.online) and running  # a stopped node leaves no one connected
        last_seen, last_sync = (s.last_seen, s.last_sync) if s else (None, None)
        total = s.catch_up_total if s and online else None
        measured = cap.get("measured_at")
        devices.append(DeviceStatus(
            device_id=d.device_id, name=d.name, fingerprint=d.fingerprint,
            this_device=this, revoked=d.revoked, online=online,
            revoked_by=names.get(d.revoked_by or "", d.revoked_by) if d.revoked else None,
            syncing=online and (total is not None or last_sync is None),
            address=s.address if s else None, last_seen=time.time() if this else last_seen,
            last_sync=last_sync, model=str(cap.get("model") or ""),
            tok_s=float(cap.get("tok_s") or 0.0), serves=bool(cap.get("serves")),
            measured_at=float(measured) if isinstance(measured, (int, float)) else None,
            last_error=s.last_error if s else None, catch_up_total=total,
            catch_up_done=s.catch_up_done if s and total is not None else 0,
            clock_offset=s.clock_offset if s else 0.0,
        ))
    return HouseholdStatus(running, devices)


def ago(stamp: float | None, now: float | None = None, coarse: bool = False) -> str:
    """"12 s ago", "5 min ago", "3 h ago", "2 d ago", or "never". `coarse` (a line that is
    always on screen) says "under a minute ago" rather than counting seconds: a text that
    changes every second repaints the screen every second."""
    if stamp is None:
        return "never"
    seconds = max(0.0, (now or time.time()) - stamp)
    if coarse and seconds < 60:
        return "under a minute ago"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def device_names(store: Store, own_name: str) -> dict[str, str]:
    """Device id → name, as the household names them (this device by `own_name`), to say
    which device produced an answer."""
    names = {store.device_id: own_name}
    try:
        names |= {d.device_id: d.name for d in household.members_of(household.snapshot(store))
                  if d.device_id != store.device_id}
    except CoveyError:
        pass
    return names
