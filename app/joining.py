"""Joining a household and the node's network settings: library code the CLI (`covey pair`,
`covey serve`), the app's pairing screen and its hosted node share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from app.context import Context
from app.errors import UsageError
from sync import household, pair_flow, pairing, peer_state
from sync.dialer import parse_address
from sync.node import NodeOptions
from sync.pairing import PairingError


def node_options(ctx: Context, listen: str | None, peers: list[str] | None,
                 mdns: bool | None = None) -> NodeOptions:
    return NodeOptions(
        listen=parse_address(listen or ctx.config.listen),
        peers=[parse_address(p) for p in (ctx.config.peers + (peers or []))],
        mdns=ctx.config.mdns if mdns is None else mdns,
        mdns_interfaces=ctx.config.mdns_interfaces or None,
    )


def switch_warning(ctx: Context) -> str | None:
    """What joining another household would do to this one, if this one has other members."""
    household.ensure(ctx.store, ctx.identity, ctx.config.device_name)
    others = [d for d in household.devices(ctx.store)
              if d.device_id != ctx.identity.device_id and not d.revoked]
    if not others:
        return None
    names = ", ".join(d.name for d in others[:5]) + (" …" if len(others) > 5 else "")
    count = len(ctx.store.list_conversations(include_archived=True))
    return (f"this device already belongs to a household with {len(others)} other device(s) "
            f"({names}). Joining another household leaves that one: they stop syncing with "
            f"this device, and this device's {count:,} conversation(s) go with it into the "
            "new household (the old members keep their copies).")


def join_household(ctx: Context, code_text: str, address: str | None,
                   say: Callable[[str], None] = print) -> pair_flow.Paired:
    """Join the household of the device showing `code_text` (found by mDNS unless `address`)."""
    code = pairing.normalize_code(code_text)
    store, identity = ctx.store, ctx.identity
    candidates = [parse_address(address)] if address else _find_inviters(ctx, say)
    from concurrent.futures import ThreadPoolExecutor

    inviter, failures = None, []
    with ThreadPoolExecutor(1) as executor:
        for host, port in candidates:
            try:
                inviter = asyncio.run(pair_flow.async_join(host, port, code, store, identity,
                                                     ctx.config.device_name, executor))
                break
            except PairingError as exc:
                failures.append(str(exc))
                if "wrong code" in str(exc):
                    raise  # the right device said no: do not try the code elsewhere
    if inviter is None:
        raise PairingError(failures[-1] if failures else "pairing failed")
    if address:  # found by mDNS, it will be found again; a typed address is remembered
        peer_state.remember_address(store, address)
    return inviter


def _find_inviters(ctx: Context, say: Callable[[str], None]) -> list[tuple[str, int]]:
    from sync.discovery import async_browse_for_pairing

    if not ctx.config.mdns:
        raise UsageError("mDNS is off in the config: give the address (HOST:PORT) too")
    say("Looking for the inviting device on the LAN (mDNS)…")
    found = asyncio.run(async_browse_for_pairing(ctx.config.mdns_interfaces or None, seconds=8))
    own = ctx.identity.device_id.replace("-", "")
    addresses = [(a, s.port) for s in found if not own.startswith(s.device_prefix)
                 for a in s.addresses]
    if not addresses:
        raise PairingError("no device with an open pairing code was found on this network; "
                           "run `covey pair` there first, or give --address HOST:PORT")
    return addresses
