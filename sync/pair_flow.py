"""The pairing exchange over a TLS stream, for both roles: the I/O, the deadlines and the store
around the steps of sync/pair_steps.py (see pairing.py for the design)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from sync import adoption, household, offers
from sync.frames import FrameDecoder, FrameError, FrameType
from sync.identity import Identity
from sync.pair_steps import InviterSteps, Joiner, JoinerSteps, fail_frame
from sync.pairing import PairingError
from sync.store import HOUSEHOLD_DOC, Store
from sync.tls import pairing_client_context, peer_fingerprint

log = logging.getLogger(__name__)
T = TypeVar("T")
STEP_TIMEOUT = 30.0
EXCHANGE_DEADLINE = 10.0  # the inviter's limit for a whole exchange with an unknown device


@dataclass(frozen=True)
class Paired:
    device_id: str
    fingerprint: str
    name: str


async def _async_read_pair(reader: asyncio.StreamReader, decoder: FrameDecoder) -> dict[str, Any]:
    while True:
        try:
            frame = decoder.next_frame()
        except FrameError as exc:
            raise PairingError(f"the other device sent garbage ({exc})") from None
        if frame is not None:
            if frame.type != FrameType.PAIR:
                raise PairingError("a device without a certificate may only use the pairing "
                                   "protocol; pair it first (`covey pair`)")
            if frame.header.get("step") == "fail":
                raise PairingError(f"the other device refused: {frame.header.get('reason')}")
            return frame.header
        data = await asyncio.wait_for(reader.read(1 << 16), STEP_TIMEOUT)
        if not data:
            raise PairingError("the other device closed the connection")
        try:
            decoder.feed(data)
        except FrameError as exc:
            raise PairingError(f"the other device sent garbage ({exc})") from None


async def async_join(host: str, port: int, code: str, store: Store, identity: Identity, name: str,
               executor: Executor, local_addr: tuple[str, int] | None = None) -> Paired:
    """Join the household of the device at host:port that shows `code` (from `local_addr`,
    on a device with several addresses)."""
    loop = asyncio.get_running_loop()

    async def async_run(fn: Callable[[], T]) -> T:
        return await loop.run_in_executor(executor, fn)

    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=pairing_client_context(),
                                    local_addr=local_addr), STEP_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise PairingError(f"cannot reach {host}:{port} ({exc!r}); is `covey pair` or "
                           "`covey serve` running there?") from None
    decoder = FrameDecoder()
    try:
        inviter_fp = peer_fingerprint(writer.get_extra_info("ssl_object"))
        if inviter_fp is None:
            raise PairingError("the other device presented no certificate")
        steps = JoinerSteps(code, identity, name, inviter_fp)
        writer.write(steps.start())
        writer.write(steps.on_spake(await _async_read_pair(reader, decoder)))
        data = steps.on_accept(await _async_read_pair(reader, decoder))
        return await async_run(lambda: _adopt_household(store, data, identity, inviter_fp))
    except (TimeoutError, ConnectionError) as exc:
        raise PairingError(f"pairing with {host}:{port} broke off ({exc or 'timeout'})") from None
    except ValueError:
        raise PairingError("the other device sent a malformed household") from None
    finally:
        writer.close()


def _adopt_household(store: Store, data: bytes, identity: Identity, inviter_fp: str) -> Paired:
    inviter = adoption.adopt(store, data, identity, inviter_fp)
    return Paired(inviter.device_id, inviter.fingerprint, inviter.name)


class Strangers:
    """The node's pairing connections (clients without a certificate), within limits: at
    most MAX_TOTAL at once and MAX_PER_HOST from one address; the rest are cut at once."""

    MAX_TOTAL = 16
    MAX_PER_HOST = 4

    def __init__(self) -> None:
        self._hosts: dict[object, str] = {}  # connections under way → their host

    async def async_serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
                    store: Store, identity: Identity, executor: Executor) -> Paired | None:
        if (len(self._hosts) >= self.MAX_TOTAL
                or sum(1 for h in self._hosts.values() if h == host) >= self.MAX_PER_HOST):
            writer.transport.abort()  # strangers do not get to hold our connections
            return None
        token = object()
        self._hosts[token] = host
        try:
            return await async_serve(reader, writer, store, identity, executor, host)
        finally:
            del self._hosts[token]


async def async_serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, store: Store,
                identity: Identity, executor: Executor, address: str = "?") -> Paired | None:
    """Answer a pairing attempt on a connection whose client presented no certificate.

    The whole exchange has one deadline (a stranger trickling bytes cannot hold it open), and
    a failed exchange is a wrong try that leaves the code open for the real device."""
    loop = asyncio.get_running_loop()

    async def async_run(fn: Callable[[], T]) -> T:
        return await loop.run_in_executor(executor, fn)

    decoder = FrameDecoder()
    code: str | None = None
    steps = InviterSteps(identity)
    try:
        async with asyncio.timeout(EXCHANGE_DEADLINE):
            number = steps.on_start(await _async_read_pair(reader, decoder))
            code, refusal = await async_run(lambda: offers.take_offer(store, number, address))
            if code is None:
                writer.write(fail_frame(refusal))
                await writer.drain()
                return None
            writer.write(steps.with_code(code))
            joiner = steps.on_confirm(await _async_read_pair(reader, decoder))
            taken = code
            if not await async_run(lambda: offers.claim_offer(store, taken)):
                code = None  # (not a wrong try: another device was quicker)
                raise PairingError("that code was used by another device a moment ago")
            try:
                data = await async_run(lambda: _admit(store, joiner, identity))
            except BaseException:
                await async_run(lambda: offers.finish_offer(store, taken, "open"))
                code = None
                raise
            code = None  # from here on, the offer is used, whatever the joiner does
            writer.write(steps.accept(data))
            await async_run(lambda: offers.finish_offer(store, taken, "used", joiner.device_id))
            await writer.drain()
            return Paired(joiner.device_id, joiner.fingerprint, joiner.name)
    except PairingError as exc:
        try:  # tell the other side why, if it is still listening
            writer.write(fail_frame(str(exc)))
            await asyncio.wait_for(writer.drain(), 2)
        except (ConnectionError, TimeoutError):
            pass
        await _async_wrong_try(async_run, store, code, address)
        log.warning("pairing attempt from %s failed: %s", address, exc)
        return None
    except (TimeoutError, ConnectionError):
        # Cut at once: a graceful TLS close would wait (up to 30 s) for a stranger that
        # trickles bytes and never answers the close.
        writer.transport.abort()
        await _async_wrong_try(async_run, store, code, address)
        log.info("pairing attempt from %s broke off or ran out of time", address)
        return None
    finally:
        writer.close()


async def _async_wrong_try(async_run: Callable[[Callable[[], None]], Awaitable[None]],
                           store: Store, code: str | None, address: str) -> None:
    if code is not None:  # an exchange at an open offer that did not succeed
        taken = code
        await async_run(lambda: offers.wrong_try(store, taken, address))


def _admit(store: Store, joiner: Joiner, identity: Identity) -> bytes:
    try:
        household.admit(store, identity, joiner.cert_pem, joiner.name, joiner.proof)
    except household.HouseholdError as exc:
        raise PairingError(str(exc)) from None
    return store.export_updates(HOUSEHOLD_DOC)

