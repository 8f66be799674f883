"""The network side of a device: listen, dial known peers, keep every paired peer in sync.

Exactly one process per device runs it (a lock file says which). It accepts TLS connections
(members sync; certificate-less clients may only pair), dials the addresses it knows with
backoff and jitter, and wakes every connection when the store changes — in this process, in
another process on the device (SQLite is the bus: polled), or through another peer.

It dials every known address at once on start (typed ones, and where members said they
listen), and any contact from a member resets the backoff towards it, so a restarted peer is
back within moments. No failure in a dial loop or a session escapes: it is reported (once, then
rate-limited), the connection ends with a reason that `covey devices` shows, and dialling goes on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sync import errors, household, live, offers, pair_flow, peer_state
from sync.dialer import Dialer, parse_address  # (parse_address: re-exported)
from sync.discovery import Advert, Discovery, Seen, household_hash
from sync.errors import StoreError
from sync.frames import encode
from sync.heartbeat import Heartbeat
from sync.identity import Identity
from sync.link import Link
from sync.nodelock import NodeError
from sync.protocol import CaughtUp, Event, Hello, PeerHello, Session
from sync.store import HOUSEHOLD_DOC, Store, StoreEvent
from sync.tls import client_context, peer_fingerprint, server_context
from sync.transport import STREAM_LIMIT, Connection, Timing, async_run_connection

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class NodeOptions:
    listen: tuple[str, int] | None = None
    peers: list[tuple[str, int]] = field(default_factory=list)
    poll_interval: float = 0.1  # how often other processes' writes are picked up
    timing: Timing = field(default_factory=Timing)
    backoff: tuple[float, float] = (0.5, 30.0)
    mdns: bool = False  # advertise and browse `_covey._tcp.local.`
    mdns_interfaces: list[str] | None = None  # None: every interface
    model: str = ""  # the model this device can run for others ("" = none), and its speed
    tok_s: float = 0.0


class Node:
    def __init__(self, store: Store, identity: Identity, name: str, options: NodeOptions) -> None:
        self.store = store
        self.identity = identity
        self.name = name
        self.options = options
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="covey-store")
        self.connections: dict[str, Connection] = {}  # peer device id → the live connection
        self.bound: tuple[str, int] | None = None
        self.paired: list[pair_flow.Paired] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._presence = peer_state.PresenceLog()
        self.heartbeat = Heartbeat(self)
        self._strangers = pair_flow.Strangers()
        self.dialer = Dialer(self._async_dial_once, lambda device: device in self.connections,
                             self._spawn, options.backoff)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._household_id = ""
        self._trusted: dict[str, household.Device] = {}
        self._stopping = False
        self.discovery: Discovery | None = None
        self._server_ctx = server_context(identity, [identity.cert_pem])
        self._anchored = {identity.fingerprint}
        self._inbound = live.Inbound(store)  # peers' live pieces, to this device's watchers

    async def _async_run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    # -- life cycle -----------------------------------------------------------------------

    async def async_run(self, stop: asyncio.Event, ready: Callable[[Node], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._household_id = await self._async_run(
            lambda: household.ensure(self.store, self.identity, self.name))
        await self._async_refresh_trust()
        await self._async_run(self.store.sync_digest)  # computed once now, cached for every hello
        await self._async_run(lambda: peer_state.all_offline(self.store))
        unsubscribe = self.store.subscribe(self._on_store_event)
        server = None
        try:
            if self.options.listen:
                host, port = self.options.listen
                try:
                    # TLS from the first byte (upgrading a plain stream later can lose the
                    # ClientHello to the stream's buffer). Revocation cannot remove an anchor
                    # from a live context, so the handshake is followed by a pin check.
                    server = await asyncio.start_server(
                        self._async_accept, host, port, ssl=self._server_ctx, ssl_handshake_timeout=10,
                        limit=STREAM_LIMIT)
                except OSError as exc:
                    raise NodeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
                self.bound = server.sockets[0].getsockname()[:2]
                log.info("listening on %s:%s as %s", *self.bound, self.identity.device_id)
            if self.options.mdns and self.bound:
                await self._async_start_discovery()
            stored = await self._async_run(self._stored_addresses)
            for address in sorted(set(self.options.peers) | set(stored)):
                self.dial(address, stored.get(address, ""))
            self._spawn(self.heartbeat.async_run(), self.heartbeat.async_run)
            if ready is not None:
                ready(self)
            await stop.wait()
        finally:
            self._stopping = True
            unsubscribe()
            if self.discovery is not None:
                await self.discovery.async_close()  # says goodbye on the LAN
            if server is not None:
                server.close()
            for conn in list(self.connections.values()):
                conn.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if server is not None:
                await server.wait_closed()
            self.executor.shutdown(wait=True)
            self._inbound.close()

    def _spawn(self, coro: Coroutine[Any, Any, None],
               again: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run `coro` in the background; `again` makes it a loop that is restarted if it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._ended(t, again))

    def _ended(self, task: asyncio.Task[None],
               again: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
        self._tasks.discard(task)  # no background task ends silently (sync/errors.py)
        errors.supervise(task, "a background task of the node", again, self._spawn,
                         self._stopping)

    def _stored_addresses(self) -> dict[tuple[str, int], str]:
        """Addresses to dial, with the member known to listen there ("" if not known yet)."""
        members = {d.device_id for d in self._trusted.values()}
        found = {}
        for text, device_id in peer_state.known_addresses(self.store, members).items():
            try:
                found[parse_address(text)] = device_id
            except NodeError:
                log.warning("ignoring a stored peer address that is not HOST:PORT: %r", text)
        return found

    def advertise(self, model: str, tok_s: float) -> None:
        """What this device can run changed (its model finished loading): tell the LAN.

        Thread-safe; the household document (synced) is updated by the caller.
        """
        self.options.model, self.options.tok_s = model, tok_s
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: self._spawn(self._async_update_advert()))

    async def _async_update_advert(self) -> None:
        if self.discovery is not None:
            await self.discovery.async_update(can_run_models=bool(self.options.model),
                                        model=self.options.model, tok_s=self.options.tok_s)

    # -- store changes ----------------------------------------------------------------------

    def _on_store_event(self, event: StoreEvent) -> None:
        # Called on whatever thread wrote; hop to the loop.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._changed, event.doc_id)

    def _changed(self, doc_id: str) -> None:
        for conn in self.connections.values():
            conn.wakeup.set()
        if doc_id == HOUSEHOLD_DOC:
            self._spawn(self._async_refresh_trust())

    # -- live pieces (sync/live.py) --------------------------------------------------------

    def send_piece(self, device_id: str, piece: live.LivePiece) -> bool:
        """Pass a piece of an answer this device generates to `device_id`, live (thread-safe);
        False if no connection to it takes pieces now (it gets the text through the store)."""
        conn, loop = self.connections.get(device_id), self._loop
        if conn is None or not self.takes_pieces(device_id) or loop is None or loop.is_closed():
            return False
        loop.call_soon_threadsafe(self._queue_piece, conn, piece)
        return True

    def takes_pieces(self, device_id: str) -> bool:
        conn = self.connections.get(device_id)
        return conn is not None and not conn.closing and conn.link.session.takes_pieces

    def _queue_piece(self, conn: Connection, piece: live.LivePiece) -> None:
        # Straight onto the stream, on the loop: a PIECE changes no session state, so it needs
        # no trip through the store thread (each hop costs the model's threads on a small
        # machine). Whole frames are written, in order; a peer slow to read loses pieces.
        writer = conn.writer
        if not conn.closing and not writer.is_closing() and \
                writer.transport.get_write_buffer_size() < live.MAX_BUFFERED:
            writer.write(encode(live.to_frame(piece)))

    # -- discovery --------------------------------------------------------------------------

    async def _async_start_discovery(self) -> None:
        assert self.bound is not None
        advert = Advert(self.identity.device_id, self._household_id, self.bound[1],
                        can_run_models=bool(self.options.model), model=self.options.model,
                        tok_s=self.options.tok_s,
                        pairing=await self._async_run(lambda: offers.pairing_open(self.store)))
        self.discovery = Discovery(advert, self.options.mdns_interfaces, self._seen, self._gone)
        try:
            await self.discovery.async_start()
        except OSError as exc:  # no multicast here (VPN, container): manual peers still work
            log.warning("mDNS discovery unavailable: %s", exc)
            self.discovery = None

    def _seen(self, seen: Seen) -> None:
        ours = household_hash(self._household_id)
        self._spawn(self._async_run_void(lambda: peer_state.record_seen(self.store, seen)))
        if seen.household_hash != ours or self.identity.device_id.replace("-", "").startswith(
                seen.device_prefix):
            return  # another household's device (ignored), or ourselves
        for address in seen.addresses:
            self.dial((address, seen.port))

    def _gone(self, seen: Seen) -> None:
        log.info("%s left the LAN (mDNS goodbye)", seen.name)
        # Its connection ends by itself (or the keepalive notices): nothing to tear down here.
        self._spawn(self._async_run_void(lambda: peer_state.record_seen(self.store, seen)))

    async def _async_run_void(self, fn: Callable[[], None]) -> None:
        await self._async_run(fn)

    async def _async_refresh_trust(self) -> None:
        self._trusted = await self._async_run(lambda: household.refresh(self.store))
        for fp, member in self._trusted.items():
            if fp not in self._anchored:  # new members become trust anchors for handshakes
                self._server_ctx.load_verify_locations(cadata=member.cert_pem)
                self._anchored.add(fp)
        household_id = await self._async_run(lambda: household.household_id(self.store))
        if household_id != self._household_id and self.discovery is not None:
            await self.discovery.async_update(household_id=household_id)
        self._household_id = household_id
        trusted_ids = {d.device_id for d in self._trusted.values()}
        for device_id, conn in list(self.connections.items()):
            if device_id not in trusted_ids:
                log.warning("closing connection to %s: no longer a member", device_id)
                conn.link.session.close("this device is no longer trusted")
                conn.wakeup.set()

    # -- connections ------------------------------------------------------------------------

    async def _async_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # cancelled and awaited on shutdown like our own tasks
        try:
            await self._async_accept_tls(reader, writer)
        except asyncio.CancelledError:
            writer.close()  # shutting down; asyncio's stream callback must not see a cancel
        except Exception as exc:  # this connection fails; accepting goes on (and says why)
            writer.close()
            errors.report("accepting a connection", f"{type(exc).__name__}: {exc}", exc)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _async_accept_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if peer else "?"
        fp = peer_fingerprint(writer.get_extra_info("ssl_object"))
        if fp is None:  # no certificate: it may only try to pair, within limits
            paired = await self._strangers.async_serve(reader, writer, peer[0] if peer else "?",
                                                 self.store, self.identity, self.executor)
            if paired is not None:
                self.paired.append(paired)
                await self._async_refresh_trust()
            return
        member = self._trusted.get(fp)
        if member is None:
            log.warning("refused %s: certificate %s… is not a household member", address, fp[:16])
            writer.transport.abort()  # at once: nothing to say to it
            return
        await self._async_sync(reader, writer, member.device_id, initiator=member.device_id,
                         address=address)

    def dial(self, address: tuple[str, int], device_id: str = "") -> None:
        self.dialer.dial(address, device_id)

    async def _async_dial_once(self, address: tuple[str, int]) -> tuple[str | None, bool]:
        """One connection to `address`: (the household member that answered there, if one did;
        whether the session was refused, by us or by it, rather than cut)."""
        pems = [d.cert_pem for d in self._trusted.values()]
        ctx = client_context(self.identity, pems)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address[0], address[1], ssl=ctx, limit=STREAM_LIMIT), 10)
        fp = peer_fingerprint(writer.get_extra_info("ssl_object"))
        member = self._trusted.get(fp or "")
        if member is None or member.device_id == self.identity.device_id:
            writer.close()  # not a member, or ourselves
            return None, False
        if member.device_id in self.connections:
            # Connected already (it dialled us meanwhile): a second session would make the
            # pair drop one of the two as a duplicate, perhaps mid-catch-up.
            writer.close()
            return member.device_id, False
        refused = await self._async_sync(reader, writer, member.device_id,
                                   initiator=self.identity.device_id,
                                   address=f"{address[0]}:{address[1]}")
        return member.device_id, refused

    async def _async_sync(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    device_id: str, initiator: str, address: str) -> bool:
        """Run one session to its end; True if it was refused (by either side, or by our own
        store) rather than cut by the network."""
        self.dialer.contact_from(device_id)
        session = await self._async_run(lambda: Session(self.store, self._hello()))
        conn = Connection(Link(self.store, session), writer, initiator, address, device_id)
        conn.link.on_progress = lambda total, done: peer_state.progress(
            self.store, device_id, total, done)
        conn.link.on_piece = lambda piece: self._inbound.arrived(device_id, piece)
        try:
            await async_run_connection(conn, reader, self.executor, self.options.timing, self._async_event)
        finally:  # however it ended, it is no longer a connection (and says why)
            closed = conn.link.closed
            reason = conn.error or (closed.reason if closed else "connection closed")
            if self.connections.get(device_id) is conn:
                del self.connections[device_id]
                self._presence.forget(device_id)
                if reason != "duplicate connection":
                    try:
                        await self._async_run(lambda: peer_state.disconnected(
                            self.store, device_id, conn.last_heard, reason))
                    except StoreError as exc:  # (our disk is full: it says offline next start)
                        errors.report("recording a disconnection", str(exc), exc)
            log.info("sync with %s ended (%d bytes sent, %d received): %s", device_id,
                     conn.link.session.bytes_sent, conn.link.session.bytes_received, reason)
        if conn.error is not None:
            return conn.error.startswith("internal error")
        return closed is not None and closed.reason not in CUT

    def _hello(self) -> Hello:
        listen = self.bound[1] if self.bound else 0
        return Hello(device=self.identity.device_id, household=self._household_id,
                     epoch=self.store.epoch, instance=INSTANCE, digest=self.store.sync_digest(),
                     name=self.name[:64], listen=listen, time=time.time())

    async def _async_event(self, conn: Connection, event: Event) -> None:
        expected = conn.device
        if isinstance(event, PeerHello):
            if event.hello.device != expected:
                await self._async_run(lambda: conn.link.session.close("device id does not match certificate"))
                conn.wakeup.set()
                return
            existing = self.connections.get(expected)
            if existing is not None and existing is not conn and not existing.closing:
                keep_new = conn.initiator == min(self.identity.device_id, expected) and \
                    existing.initiator != conn.initiator
                loser = existing if keep_new else conn
                await self._async_run(lambda: loser.link.session.close("duplicate connection"))
                loser.wakeup.set()
                if loser is conn:
                    return
            self.connections[expected] = conn
            self.heartbeat.wake()  # (its presence is written now, not at the next idle look)
            log.info("connected to %s (%s) at %s", event.hello.name or "?", expected, conn.address)
            host = conn.address.rpartition(":")[0].strip("[]")
            listening = f"{host}:{event.hello.listen}" if event.hello.listen else None
            offset = event.hello.time - time.time() if event.hello.time else 0.0
            if abs(offset) > CLOCK_TOLERANCE:
                errors.report(f"{event.hello.name or expected}'s clock",
                              f"differs from this device's by {peer_state.span(offset)}; sync does not "
                              "depend on it, but the times it writes will look wrong")
            await self._async_run(lambda: peer_state.connected(self.store, expected, conn.address,
                                                         listening, offset))
        elif isinstance(event, CaughtUp):
            await self._async_run(lambda: peer_state.caught_up(self.store, expected))


INSTANCE = os.urandom(8).hex()
CLOCK_TOLERANCE = 120.0  # seconds a peer's clock may differ before we say so
#: How a session ends when the network, not a decision, ended it.
CUT = ("connection closed by peer", "no sign of life (keepalive timeout)", "duplicate connection",
       "peer refused: duplicate connection")
