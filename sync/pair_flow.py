"""The pairing exchange over a TLS stream, for both roles (see pairing.py for the design)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from loro import LoroDoc

from sync import household, pairing
from sync.frames import Frame, FrameDecoder, FrameError, FrameType, encode
from sync.identity import Identity
from sync.pairing import PairingError
from sync.store import HOUSEHOLD_DOC, Store
from sync.tls import pairing_client_context, peer_fingerprint

log = logging.getLogger(__name__)
T = TypeVar("T")
STEP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Paired:
    device_id: str
    fingerprint: str
    name: str


async def _read_pair(reader: asyncio.StreamReader, decoder: FrameDecoder) -> dict[str, Any]:
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


def _pair_frame(**header: Any) -> bytes:
    return encode(Frame(FrameType.PAIR, header))


async def join(host: str, port: int, code: str, store: Store, identity: Identity, name: str,
               executor: Executor) -> Paired:
    """Join the household of the device at host:port that shows `code`."""
    loop = asyncio.get_running_loop()

    async def run(fn: Callable[[], T]) -> T:
        return await loop.run_in_executor(executor, fn)

    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=pairing_client_context()), STEP_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise PairingError(f"cannot reach {host}:{port} ({exc!r}); is `covey pair` or "
                           "`covey serve` running there?") from None
    decoder = FrameDecoder()
    try:
        inviter_fp = peer_fingerprint(writer.get_extra_info("ssl_object"))
        if inviter_fp is None:
            raise PairingError("the other device presented no certificate")
        spake, message = pairing.joiner_start(code)
        writer.write(_pair_frame(step="start", number=pairing.code_number(code),
                                 spake=message.hex(), name=name, device=identity.device_id))
        reply = await _read_pair(reader, decoder)
        key = pairing.finish(spake, reply.get("spake"))
        writer.write(_pair_frame(step="confirm", cert=identity.cert_pem, mac=pairing.confirmation(
            key, pairing.ID_JOINER, inviter_fp, identity.fingerprint)))
        accept = await _read_pair(reader, decoder)
        expected = pairing.confirmation(key, pairing.ID_INVITER, inviter_fp, identity.fingerprint)
        if not hmac.compare_digest(str(accept.get("mac")), expected):
            raise PairingError("wrong code (or someone in between): nothing was trusted")
        data = bytes.fromhex(str(accept.get("household", "")))
        return await run(lambda: _adopt_household(store, data, identity, inviter_fp))
    except (TimeoutError, ConnectionError) as exc:
        raise PairingError(f"pairing with {host}:{port} broke off ({exc or 'timeout'})") from None
    except ValueError:
        raise PairingError("the other device sent a malformed household") from None
    finally:
        writer.close()


def _adopt_household(store: Store, data: bytes, identity: Identity, inviter_fp: str) -> Paired:
    """Check the household we were given names both of us, then make it ours."""
    doc = LoroDoc()
    try:
        doc.import_(data)  # inspected apart from our store before anything is replaced
    except BaseException as exc:  # loro raises bare BaseException on bad bytes
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise PairingError("the other device sent a malformed household") from None
    members = {d.fingerprint: d for d in household.members_of(doc.get_deep_value()) if not d.revoked}
    me, inviter = members.get(identity.fingerprint), members.get(inviter_fp)
    if me is None or inviter is None or me.device_id != identity.device_id:
        raise PairingError("the household we were given does not include both devices")
    store.drop_document(HOUSEHOLD_DOC)
    store.import_updates(HOUSEHOLD_DOC, data, source=inviter.device_id)
    return Paired(inviter.device_id, inviter.fingerprint, inviter.name)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, store: Store,
                identity: Identity, executor: Executor) -> Paired | None:
    """Answer a pairing attempt on a connection whose client presented no certificate."""
    loop = asyncio.get_running_loop()

    async def run(fn: Callable[[], T]) -> T:
        return await loop.run_in_executor(executor, fn)

    decoder = FrameDecoder()
    code: str | None = None
    try:
        start = await _read_pair(reader, decoder)
        number = start.get("number")
        if start.get("step") != "start" or type(number) is not int:
            raise PairingError("malformed pairing request")
        code = await run(lambda: pairing.take_offer(store.db.conn, number))
        if code is None:
            writer.write(_pair_frame(step="fail", reason="no pairing code with that number is "
                                     "open on this device (expired or already used?)"))
            await writer.drain()
            return None
        spake, message = pairing.inviter_start(code)
        key = pairing.finish(spake, start.get("spake"))
        writer.write(_pair_frame(step="spake", spake=message.hex()))
        confirm = await _read_pair(reader, decoder)
        device_id, joiner_fp, pem = pairing.cert_identity(confirm.get("cert"))
        expected = pairing.confirmation(key, pairing.ID_JOINER, identity.fingerprint, joiner_fp)
        if not hmac.compare_digest(str(confirm.get("mac")), expected):
            raise PairingError("wrong code: nothing was trusted")
        name = pairing.clean_name(start.get("name"))
        data = await run(lambda: _admit(store, device_id, joiner_fp, pem, name, identity))
        writer.write(_pair_frame(step="accept", household=data.hex(), mac=pairing.confirmation(
            key, pairing.ID_INVITER, identity.fingerprint, joiner_fp)))
        await writer.drain()
        await run(lambda: pairing.finish_offer(store.db.conn, code, "used", device_id))  # type: ignore[arg-type]
        return Paired(device_id, joiner_fp, name)
    except PairingError as exc:
        try:  # tell the other side why, if it is still listening
            writer.write(_pair_frame(step="fail", reason=str(exc)))
            await asyncio.wait_for(writer.drain(), 5)
        except (ConnectionError, TimeoutError):
            pass
        if code is not None:
            reason = str(exc)
            await run(lambda: pairing.finish_offer(store.db.conn, code, "failed", None, reason))  # type: ignore[arg-type]
        log.warning("pairing attempt failed: %s", exc)
        return None
    except (TimeoutError, ConnectionError):
        if code is not None:
            await run(lambda: pairing.finish_offer(store.db.conn, code, "failed", None, "broke off"))  # type: ignore[arg-type]
        return None
    finally:
        writer.close()


def _admit(store: Store, device_id: str, fp: str, pem: str, name: str, identity: Identity) -> bytes:
    household.add_device(store, device_id, fp, pem, name, identity.device_id)
    return store.export_updates(HOUSEHOLD_DOC)

