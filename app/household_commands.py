"""`covey devices`, `covey peers`, `covey status`: the household as this device sees it.

All three read `app.household_status` (as the terminal app does), so they agree: a device is
online only while this device's node runs and holds a live session with it; "last seen" is the
last time we heard from it; capabilities (model, speed) come from the household document, so
they are right with mDNS off.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import cast

from app import recovery
from app.context import Context
from app.errors import UsageError
from app.household_status import DeviceStatus, ago, read_status
from sync import household, peer_state


def _stamp(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


def _record(d: DeviceStatus) -> dict[str, object]:
    row = asdict(d) | {"state": d.state, "can_run_models": d.can_run_models,
                       "progress": d.progress}
    return row


def describe_revocation(gone: list[household.Device]) -> str:
    """What `covey devices remove` (and the app) tell the user it did."""
    target, also = gone[0], gone[1:]
    if not target.revoked:
        return (f"Your vote to remove {target.name} ({target.device_id}) is recorded. It brought "
                "this device into the household, so most of the other members must remove it "
                "too (run the same command on them).")
    text = f"Revoked {target.name} ({target.device_id}); every member refuses it once synced."
    if also:
        names = ", ".join(d.name for d in also)
        text += (f"\nAlso revoked what it brought in: {names} (pair them again from this "
                 "device if they are yours).")
    return text


def devices(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    household.ensure(store, ctx.identity, ctx.config.device_name)
    if args.action == "remove":
        if not args.device:
            raise UsageError("which device? covey devices remove DEVICE_ID")
        since = recovery.parse_since(args.since)  # (a bad --since before anything is done)
        if args.since and not args.undo_changes:
            raise UsageError("--since goes with --undo-changes")
        gone = household.revoke(store, ctx.identity, args.device)
        print(describe_revocation(gone))
        if args.undo_changes:
            for member in gone if gone[0].revoked else []:
                print(recovery.undo_device(store, member.device_id, since).describe())
        return 0
    status = read_status(store, ctx.paths.locks_dir)
    if args.json:
        print(json.dumps([_record(d) for d in status.devices], indent=2))
        return 0
    for d in status.devices:
        mark = "REVOKED" if d.revoked else d.state
        seen = "now" if d.this_device or d.online else f"{_stamp(d.last_seen)} ({ago(d.last_seen)})"
        line = f"{d.device_id}  {d.name:<20} {mark:<12} last seen {seen}"
        if d.revoked:
            line += f"  · removed by {d.revoked_by or 'most members'}"
        if d.progress:
            line += f"  · {d.progress}"
        if abs(d.clock_offset) > 120:
            from sync.peer_state import span

            line += f"  · its clock is {span(d.clock_offset)}"
        elif not d.online and d.last_error and not d.this_device:
            line += f"  · last session ended: {d.last_error}"
        print(line)
    refused = household.refused_entries(store)
    if refused:
        print(f"{len(refused)} change(s) to the members count for nothing:")
        for entry, why in refused[:10]:
            print(f"  {entry[:12]}  {why}")
    if not status.node_running and len(status.devices) > 1:
        print("(no node runs on this device: `covey serve` connects to the others)")
    return 0


def peers(ctx: Context, args: argparse.Namespace) -> int:
    """Devices seen on the LAN and paired: online or not, last sync, model capability."""
    from sync.discovery import household_hash

    store = ctx.store
    household.ensure(store, ctx.identity, ctx.config.device_name)
    ours = household_hash(household.household_id(store))
    status = read_status(store, ctx.paths.locks_dir)
    members = {d.device_id.replace("-", ""): d for d in status.devices}
    rows: list[dict[str, object]] = []
    shown: set[str] = set()
    for seen in peer_state.seen_peers(store):
        prefix = seen.device_prefix
        member = next((d for k, d in members.items() if k.startswith(prefix)), None) \
            if prefix else None
        where = [f"{a}:{seen.port}" for a in seen.addresses]
        if member is not None:
            if member.this_device or member.device_id in shown:
                continue
            shown.add(member.device_id)
            rows.append(_member_row(member, where))
            continue
        rows.append({"name": None, "device_id": prefix, "paired": False,
                     "same_household": seen.household_hash == ours, "addresses": where,
                     "online": seen.online, "last_seen": seen.last_seen, "last_sync": None,
                     "can_run_models": seen.can_run_models, "model": seen.model,
                     "tok_s": seen.tok_s, "measured_at": None, "last_error": None,
                     "progress": None})
    for d in status.devices:
        if d.device_id not in shown and not d.this_device:
            rows.append(_member_row(d, []))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No other devices seen or paired yet. `covey pair` adds one.")
    for r in rows:
        state = "online" if r["online"] else "offline"
        kind = "paired" if r["paired"] else ("other household" if not r["same_household"] else "unpaired")
        sync_at = r["last_sync"]
        synced = time.strftime("%H:%M:%S", time.localtime(sync_at)) if isinstance(sync_at, float) else "never"
        models = f"runs {r['model']} at {r['tok_s']} tok/s" if r["can_run_models"] else "no model"
        if r["can_run_models"] and isinstance(r["measured_at"], float):
            models += f" (measured {ago(r['measured_at'])})"
        print(f"{r['name'] or '?':<16} {str(r['device_id'])[:23]:<24} {kind:<15} {state:<8} "
              f"synced {synced:<9} {models}  {' '.join(cast(list[str], r['addresses']))}")
        if r["progress"]:
            print(f"  {r['progress']}")
    return 0


def _member_row(d: DeviceStatus, lan: list[str]) -> dict[str, object]:
    # Where it listens, as it told us itself; what mDNS says otherwise.
    addresses = [d.address] if d.address else lan
    return {"name": d.name, "device_id": d.device_id, "paired": not d.revoked,
            "same_household": True, "addresses": addresses, "online": d.online,
            "last_seen": d.last_seen, "last_sync": d.last_sync,
            "can_run_models": d.can_run_models, "model": d.model, "tok_s": d.tok_s,
            "measured_at": d.measured_at, "last_error": d.last_error, "progress": d.progress}


def status(ctx: Context, args: argparse.Namespace) -> int:
    """The local node: running or not, identity, household, peers online, syncing."""
    store = ctx.store
    household.ensure(store, ctx.identity, ctx.config.device_name)
    state = read_status(store, ctx.paths.locks_dir)
    others = state.others
    report: dict[str, object] = {
        "device_id": ctx.identity.device_id, "name": ctx.config.device_name,
        "node_running": state.node_running, "listen": ctx.config.listen, "mdns": ctx.config.mdns,
        "household_members": len([d for d in state.devices if not d.revoked]),
        "peers_online": sum(1 for d in others if d.online),
        "conversations": len(store.list_conversations(include_archived=True)),
        "model": ctx.config.model or "bundled SmolLM2-135M-Instruct",
    }
    syncing = [d.progress for d in others if d.progress]
    if syncing or args.json:
        report["syncing"] = syncing if args.json else "; ".join(syncing)
    from app.console import print_report

    print_report(report, args.json)
    return 0
