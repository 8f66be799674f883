"""The device-network commands: serve, pair, devices, id."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
import time
from collections.abc import Callable

from app.context import Context
from app.errors import UsageError
from app.job_worker import JobWorker
from app.joining import join_household, node_options, switch_warning
from sync import household, offers, pairing
from sync.live import Publisher
from sync.node import Node, NodeOptions
from sync.nodelock import NodeError, NodeLock
from sync.pairing import PairingError


def serve(ctx: Context, args: argparse.Namespace) -> int:
    # Several threads here (the model's, the job worker, the event loop) take the GIL between
    # tokens; with Python's default 5 ms switch interval the model's thread could wait that
    # long for it after each token.
    sys.setswitchinterval(0.0005)
    lock = NodeLock(ctx.paths.locks_dir)
    lock.acquire()
    try:
        options = node_options(ctx, args.listen, args.peer)
        household.ensure(ctx.store, ctx.identity, ctx.config.device_name)
        node = Node(ctx.store, ctx.identity, ctx.config.device_name, options)
        live = Publisher(ctx.store.locks_dir, ctx.store.device_id, node)
        worker = JobWorker(ctx.store, None, ctx.assistant.params(), ctx.config.serve_peers,
                           ctx.config.max_queue, live)
        prep = None
        if args.no_model:
            household.set_capability(ctx.store, ctx.identity.device_id, "", 0.0, serves=False)
        else:
            from app.model_prep import ModelPrep

            # Online at once: the node listens now, the model loads and is measured meanwhile
            # (then advertised); jobs handed to us wait for it rather than being refused.
            worker.loading = True
            prep = ModelPrep(ctx, worker, node.advertise)
        worker.start()
        api = None
        if ctx.config.api and not args.no_api:
            from app.config import listen_problem

            problem = args.api_listen and listen_problem(args.api_listen)
            if problem:
                raise UsageError(f"--api-listen {args.api_listen!r}: {problem}")
            api = (ctx, worker, args.api_listen)
        try:
            asyncio.run(_serve(node, prep.start if prep else None, api))
        finally:
            if prep is not None:
                prep.stop()
            worker.stop()
    finally:
        lock.release()
    return 0


async def _serve(node: Node, then: Callable[[], None] | None = None,
                 api: tuple[Context, JobWorker, str | None] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def ready(n: Node) -> None:
        where = f"{n.bound[0]}:{n.bound[1]}" if n.bound else "nowhere (dial only)"
        print(f"covey node {n.identity.device_id} ({n.name}) listening on {where}",
              file=sys.stderr, flush=True)
        if then is not None:
            then()

    server = None
    if api is not None:
        from app.api.commands import start_api

        server = await start_api(*api)
    try:
        await node.async_run(stop, ready)
    finally:
        if server is not None:
            await server.stop()
    print("covey node stopped", file=sys.stderr, flush=True)


def pair(ctx: Context, args: argparse.Namespace) -> int:
    if args.code_to_join is not None:
        return _join(ctx, args)
    if args.address:
        raise UsageError("--address is for joining: covey pair CODE --address HOST:PORT")
    return _invite(ctx, args)


def _join(ctx: Context, args: argparse.Namespace) -> int:
    warning = switch_warning(ctx)
    if warning and not args.switch:
        raise UsageError(f"{warning} To do that, run again with --switch.")
    if warning:
        print(f"Switching households: {warning}", file=sys.stderr, flush=True)
    inviter = join_household(ctx, args.code_to_join, args.address,
                             say=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"Paired with {inviter.name} ({inviter.device_id})")
    print(f"  their fingerprint: {_fp(inviter.fingerprint)}")
    print(f"  this device:       {ctx.identity.device_id}, fingerprint {_fp(ctx.identity.fingerprint)}")
    print("Run `covey serve` on both devices to keep them in sync.")
    return 0


def _invite(ctx: Context, args: argparse.Namespace) -> int:
    code = pairing.normalize_code(args.code) if args.code else pairing.new_code()
    store, identity = ctx.store, ctx.identity
    household.ensure(store, identity, ctx.config.device_name)
    offer = offers.open_offer(store, code, ttl=args.timeout)
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
        valid = f"{args.timeout} s" if args.timeout < 60 else f"{args.timeout // 60} min" + (
            f" {args.timeout % 60} s" if args.timeout % 60 else "")
        print(f"Pairing code: {code}   (valid {valid}, works once)")
        print(f"On the other device run:  covey pair {code}", flush=True)
        print(f"  (without mDNS on the network: covey pair {code} --address {shown}:{port})",
              flush=True)
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


def _tell_wrong_tries(ctx: Context, code: str, told: int) -> int:
    """Say when someone tried a wrong code here (the code stays open); returns the count."""
    count, what = offers.wrong_tries(ctx.store, code)
    if count > told:
        print(f"covey: a wrong code was tried: {what}; the code stays open (it closes after "
              f"{pairing.MAX_WRONG_TRIES} wrong tries)", file=sys.stderr, flush=True)
    return count


def _wait_for_offer(ctx: Context, code: str, expires_at: float) -> tuple[str, str | None, str | None]:
    told = 0
    while True:
        state, device, reason, _ = offers.offer_state(ctx.store, code)
        if state == "open":
            told = _tell_wrong_tries(ctx, code, told)
        if state in ("used", "failed"):
            return state, device, reason
        if time.time() > expires_at:
            return "expired", None, "the code expired before anyone used it"
        time.sleep(0.2)


async def _wait_with_node(ctx: Context, options: NodeOptions, code: str,
                          expires_at: float) -> tuple[str, str | None, str | None]:
    stop = asyncio.Event()
    node = Node(ctx.store, ctx.identity, ctx.config.device_name, options)
    task = asyncio.create_task(node.async_run(stop))
    told = 0
    try:
        while not task.done():
            state, device, reason, _ = await asyncio.to_thread(
                offers.offer_state, ctx.store, code)
            if state == "open":
                told = _tell_wrong_tries(ctx, code, told)
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


def device_id(ctx: Context, args: argparse.Namespace) -> int:
    print(ctx.identity.device_id)
    if args.verbose:
        print(f"name:        {ctx.config.device_name}")
        print(f"fingerprint: {_fp(ctx.identity.fingerprint)}")
    return 0


def _fp(fingerprint: str) -> str:
    return ":".join(fingerprint[i:i + 4] for i in range(0, 32, 4)) + "…"
