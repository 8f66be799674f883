"""The device-network commands: serve, pair, devices, id."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
import time
from dataclasses import asdict

from app.context import Context
from app.errors import UsageError
from sync import household, pair_flow, pairing
from sync.node import Node, NodeError, NodeLock, NodeOptions, parse_address
from sync.pairing import PairingError


def node_options(ctx: Context, listen: str | None, peers: list[str] | None) -> NodeOptions:
    return NodeOptions(
        listen=parse_address(listen or ctx.config.listen),
        peers=[parse_address(p) for p in (ctx.config.peers + (peers or []))],
    )


def serve(ctx: Context, args: argparse.Namespace) -> int:
    lock = NodeLock(ctx.paths.locks_dir)
    lock.acquire()
    try:
        node = Node(ctx.store, ctx.identity, ctx.config.device_name,
                    node_options(ctx, args.listen, args.peer))
        asyncio.run(_serve(node))
    finally:
        lock.release()
    return 0


async def _serve(node: Node) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def ready(n: Node) -> None:
        where = f"{n.bound[0]}:{n.bound[1]}" if n.bound else "nowhere (dial only)"
        print(f"covey node {n.identity.device_id} ({n.name}) listening on {where}",
              file=sys.stderr, flush=True)

    await node.run(stop, ready)
    print("covey node stopped", file=sys.stderr, flush=True)


def pair(ctx: Context, args: argparse.Namespace) -> int:
    if args.code_to_join is not None:
        return _join(ctx, args)
    if args.address:
        raise UsageError("--address is for joining: covey pair CODE --address HOST:PORT")
    return _invite(ctx, args)


def _join(ctx: Context, args: argparse.Namespace) -> int:
    code = pairing.normalize_code(args.code_to_join)
    if not args.address:
        raise UsageError("give the inviting device's address: covey pair CODE --address HOST:PORT")
    host, port = parse_address(args.address)
    store, identity = ctx.store, ctx.identity
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as executor:
        inviter = asyncio.run(pair_flow.join(host, port, code, store, identity,
                                             ctx.config.device_name, executor))
    store.db.conn.execute("INSERT OR IGNORE INTO peer_addresses (address, added_at) VALUES (?, ?)",
                          [f"{host}:{port}", time.time()])
    print(f"Paired with {inviter.name} ({inviter.device_id})")
    print(f"  their fingerprint: {_fp(inviter.fingerprint)}")
    print(f"  this device:       {identity.device_id}, fingerprint {_fp(identity.fingerprint)}")
    print("Run `covey serve` on both devices to keep them in sync.")
    return 0


def _invite(ctx: Context, args: argparse.Namespace) -> int:
    code = pairing.normalize_code(args.code) if args.code else pairing.new_code()
    store, identity = ctx.store, ctx.identity
    household.ensure(store, identity, ctx.config.device_name)
    offer = pairing.open_offer(store.db.conn, code, ttl=args.timeout)
    lock = NodeLock(ctx.paths.locks_dir)
    try:
        lock.acquire()
        own_node = True
    except NodeError:
        own_node = False  # a running node answers the pairing
    try:
        options = node_options(ctx, args.listen, None)
        host = options.listen[0] if options.listen else "0.0.0.0"
        shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
        port = options.listen[1] if options.listen else 7420
        print(f"Pairing code: {code}   (valid {int(args.timeout // 60)} min, works once)")
        print(f"On the other device run:  covey pair {code} --address {shown}:{port}", flush=True)
        if own_node:
            result = asyncio.run(_wait_with_node(ctx, options, code, offer.expires_at))
        else:
            result = _wait_for_offer(ctx, code, offer.expires_at)
    finally:
        if own_node:
            lock.release()
    state, device_id, reason = result
    if state != "used" or device_id is None:
        raise PairingError(f"pairing did not complete: {reason or state}")
    joined = next(d for d in household.devices(store) if d.device_id == device_id)
    print(f"Paired with {joined.name} ({joined.device_id})")
    print(f"  their fingerprint: {_fp(joined.fingerprint)}")
    print(f"  this device:       {identity.device_id}, fingerprint {_fp(identity.fingerprint)}")
    return 0


def _wait_for_offer(ctx: Context, code: str, expires_at: float) -> tuple[str, str | None, str | None]:
    while True:
        state, device, reason, _ = pairing.offer_state(ctx.store.db.conn, code)
        if state in ("used", "failed"):
            return state, device, reason
        if time.time() > expires_at:
            return "expired", None, "the code expired before anyone used it"
        time.sleep(0.2)


async def _wait_with_node(ctx: Context, options: NodeOptions, code: str,
                          expires_at: float) -> tuple[str, str | None, str | None]:
    stop = asyncio.Event()
    node = Node(ctx.store, ctx.identity, ctx.config.device_name, options)
    task = asyncio.create_task(node.run(stop))
    try:
        while not task.done():
            state, device, reason, _ = await asyncio.to_thread(
                pairing.offer_state, ctx.store.db.conn, code)
            if state in ("used", "failed"):
                return state, device, reason
            if time.time() > expires_at:
                return "expired", None, "the code expired before anyone used it"
            await asyncio.sleep(0.2)
        task.result()  # the node failed to start: raise its error
        return "failed", None, "the node stopped"
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


def devices(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    household.ensure(store, ctx.identity, ctx.config.device_name)
    if args.action == "remove":
        if not args.device:
            raise UsageError("which device? covey devices remove DEVICE_ID")
        gone = household.revoke(store, args.device, ctx.identity.device_id)
        print(f"Revoked {gone.name} ({gone.device_id}); every member refuses it once synced.")
        return 0
    status = {r[0]: r for r in store.db.conn.execute(
        "SELECT device_id, address, last_seen, last_sync, online FROM peer_status")}
    rows = []
    for d in household.devices(store):
        s = status.get(d.device_id)
        rows.append(asdict(d) | {
            "this_device": d.device_id == ctx.identity.device_id,
            "online": bool(s and s[4]), "address": s[1] if s else None,
            "last_seen": s[2] if s else None, "last_sync": s[3] if s else None,
        })
    if args.json:
        for r in rows:
            r.pop("cert_pem")
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mark = "this device" if r["this_device"] else ("online" if r["online"] else "offline")
        if r["revoked"]:
            mark = "REVOKED"
        seen = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["last_seen"])) if r["last_seen"] else "never"
        print(f"{r['device_id']}  {r['name']:<20} {mark:<12} last seen {seen}")
    return 0


def device_id(ctx: Context, args: argparse.Namespace) -> int:
    print(ctx.identity.device_id)
    if args.verbose:
        print(f"name:        {ctx.config.device_name}")
        print(f"fingerprint: {_fp(ctx.identity.fingerprint)}")
    return 0


def _fp(fingerprint: str) -> str:
    return ":".join(fingerprint[i:i + 4] for i in range(0, 32, 4)) + "…"
