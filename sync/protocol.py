"""The sync protocol as a state machine with no networking (sans-IO, as h11/h2 do it).

Feed it what arrived (`receive_data`), take events out (`next_event`), send what it produced
(`data_to_send`). Flow, the same on both sides:

    HELLO  ──►  equal digests: live at once
                otherwise: INDEX (document, version)… ──► UPDATEs the peer lacks ──► CAUGHT_UP
    live:  UPDATE (pushed as commits happen) ◄──► ACK once the receiver has persisted it

Anything the peer gets wrong ends the session: an ERROR frame with the reason is queued for the
peer, a `Closed` event is emitted, and nothing more is accepted. The replica (the store) is only
ever asked for data here; what arrives is handed out as `UpdateReceived` events for the caller
to persist — and only then to `acknowledge`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.errors import CoveyError
from sync.frames import MAX_FRAME, Frame, FrameDecoder, FrameError, FrameType, encode

PROTOCOL_VERSIONS = (1,)
SCHEMA_VERSION = 1
PART_SIZE = MAX_FRAME - 4096  # body bytes per UPDATE frame, leaving room for the header
MAX_UPDATE = 256 << 20  # a reassembled update larger than this is refused
MAX_INDEX_ENTRIES = 5_000_000
INDEX_BATCH = 4000  # entries per INDEX frame


class Replica(Protocol):
    """What the session needs from the local store."""

    def sync_index(self) -> list[tuple[str, bytes]]: ...
    def lacks(self, doc_id: str, their_version: bytes | None) -> bool: ...
    def export_updates(self, doc_id: str, since: bytes | None = None) -> bytes: ...


@dataclass(frozen=True)
class Hello:
    device: str
    household: str
    epoch: str
    instance: str
    digest: str  # hex
    protocols: tuple[int, ...] = PROTOCOL_VERSIONS
    schema: int = SCHEMA_VERSION

    def to_header(self) -> dict[str, Any]:
        return {"protocols": list(self.protocols), "schema": self.schema, "device": self.device,
                "household": self.household, "epoch": self.epoch, "instance": self.instance,
                "digest": self.digest}

    @classmethod
    def from_header(cls, h: dict[str, Any]) -> Hello:
        protocols = h.get("protocols")
        strings = [h.get(k) for k in ("device", "household", "epoch", "instance", "digest")]
        if (not isinstance(protocols, list) or not all(type(p) is int for p in protocols)
                or type(h.get("schema")) is not int
                or not all(isinstance(s, str) and len(s) <= 256 for s in strings)):
            raise ProtocolViolation("malformed HELLO")
        device, household, epoch, instance, digest = strings
        return cls(device, household, epoch, instance, digest, tuple(protocols), h["schema"])  # type: ignore[arg-type]


# -- events -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PeerHello:
    hello: Hello


@dataclass(frozen=True)
class UpdateReceived:
    ack: int
    doc_id: str
    blobs: list[bytes]


@dataclass(frozen=True)
class Acknowledged:
    ack: int
    size: int


@dataclass(frozen=True)
class CaughtUp:
    """The peer has sent everything it had that we lacked when the session began."""


@dataclass(frozen=True)
class Closed:
    reason: str
    by_peer: bool


Event = PeerHello | UpdateReceived | Acknowledged | CaughtUp | Closed


class ProtocolViolation(Exception):
    """The peer broke the protocol (RemoteProtocolError in h11's words)."""


class LocalProtocolError(Exception):
    """We used the session wrongly."""


@dataclass
class _Partial:
    doc_id: str
    ack: int
    sizes: list[int]
    chunks: list[bytes] = field(default_factory=list)
    received: int = 0


class Session:
    """One connection's worth of sync state. Throw it away on disconnect."""

    def __init__(self, replica: Replica, hello: Hello) -> None:
        self.replica = replica
        self.local = hello
        self.peer: Hello | None = None
        self.state = "idle"  # idle → hello_sent → syncing → live; closed at any point
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._peer_index: dict[str, bytes] = {}
        self._partial: _Partial | None = None
        self._ack_ids = itertools.count(1)
        self.in_flight: dict[int, int] = {}  # ack id → bytes, sent and not yet acknowledged
        self.bytes_sent = 0
        self.bytes_received = 0

    # -- driving ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.state != "idle":
            raise LocalProtocolError("session already started")
        self._send(Frame(FrameType.HELLO, self.local.to_header()))
        self.state = "hello_sent"

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means the peer closed the connection."""
        if self.state == "closed":
            return
        if not data:
            self._close("connection closed by peer", by_peer=True, tell_peer=False)
            return
        self.bytes_received += len(data)
        try:
            self._decoder.feed(data)
            while self.state != "closed" and (frame := self._decoder.next_frame()) is not None:
                self._handle(frame)
        except (FrameError, ProtocolViolation) as exc:
            self._close(f"protocol violation: {exc}", by_peer=False)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def close(self, reason: str) -> None:
        """End the session from our side, telling the peer why."""
        if self.state != "closed":
            self._close(reason, by_peer=False)

    # -- sending ----------------------------------------------------------------------------

    def send_update(self, doc_id: str, blobs: Sequence[bytes]) -> int:
        """Queue update bytes for `doc_id` (split into frames as needed); returns the ack id."""
        if self.state not in ("syncing", "live"):
            raise LocalProtocolError(f"cannot send updates in state {self.state}")
        ack = next(self._ack_ids)
        body = b"".join(blobs)
        sizes = [len(b) for b in blobs]
        parts = [body[i : i + PART_SIZE] for i in range(0, len(body), PART_SIZE)] or [b""]
        for n, part in enumerate(parts):
            header: dict[str, Any] = {"doc": doc_id, "ack": ack, "part": n}
            if n == 0:
                header["sizes"] = sizes
            header["last"] = n == len(parts) - 1
            self._send(Frame(FrameType.UPDATE, header, part))
        self.in_flight[ack] = len(body)
        return ack

    def acknowledge(self, ack: int) -> None:
        """Tell the peer its update `ack` is persisted here."""
        if self.state != "closed":
            self._send(Frame(FrameType.ACK, {"ack": ack}))

    def ping(self, nonce: int) -> None:
        if self.state != "closed":
            self._send(Frame(FrameType.PING, {"n": nonce}))

    def _send(self, frame: Frame) -> None:
        data = encode(frame)
        self.bytes_sent += len(data)
        self._out += data

    # -- receiving --------------------------------------------------------------------------

    def _handle(self, frame: Frame) -> None:
        if frame.type == FrameType.ERROR:
            reason = frame.header.get("reason")
            self._close(f"peer refused: {reason if isinstance(reason, str) else 'no reason'}",
                        by_peer=True, tell_peer=False)
            return
        if frame.type == FrameType.PING:
            self._send(Frame(FrameType.PONG, {"n": frame.header.get("n")}))
            return
        if frame.type == FrameType.PONG:
            return
        if self.peer is None:
            if frame.type != FrameType.HELLO:
                raise ProtocolViolation(f"{frame.type.name} before HELLO")
            self._on_hello(Hello.from_header(frame.header))
            return
        handler = {
            FrameType.INDEX: self._on_index,
            FrameType.UPDATE: self._on_update,
            FrameType.ACK: self._on_ack,
            FrameType.CAUGHT_UP: self._on_caught_up,
        }.get(frame.type)
        if handler is None:
            raise ProtocolViolation(f"unexpected {frame.type.name}")
        handler(frame)

    def _on_hello(self, hello: Hello) -> None:
        if self.state == "idle":
            self.start()
        if not set(hello.protocols) & set(PROTOCOL_VERSIONS):
            self._close(f"protocol version mismatch: we speak {list(PROTOCOL_VERSIONS)}, "
                        f"the peer speaks {list(hello.protocols)}; update covey", by_peer=False)
            return
        if hello.schema != SCHEMA_VERSION:
            self._close(f"schema version mismatch: ours {SCHEMA_VERSION}, the peer's "
                        f"{hello.schema}; update covey on both devices", by_peer=False)
            return
        if hello.household != self.local.household:
            self._close("the peer belongs to another household", by_peer=False)
            return
        if hello.device == self.local.device:
            self._close("connected to ourselves", by_peer=False)
            return
        self.peer = hello
        self._events.append(PeerHello(hello))
        if hello.digest == self.local.digest:
            self.state = "live"
            self._events.append(CaughtUp())
            return
        self.state = "syncing"
        entries = self.replica.sync_index()
        for i in range(0, max(len(entries), 1), INDEX_BATCH):
            batch = [[doc, vv.hex()] for doc, vv in entries[i : i + INDEX_BATCH]]
            last = i + INDEX_BATCH >= len(entries)
            self._send(Frame(FrameType.INDEX, {"entries": batch, "last": last}))

    def _on_index(self, frame: Frame) -> None:
        if self.state != "syncing":
            raise ProtocolViolation("INDEX outside of catch-up")
        entries, last = frame.header.get("entries"), frame.header.get("last")
        if not isinstance(entries, list) or not isinstance(last, bool):
            raise ProtocolViolation("malformed INDEX")
        for entry in entries:
            if (not isinstance(entry, list) or len(entry) != 2
                    or not all(isinstance(x, str) for x in entry)):
                raise ProtocolViolation("malformed INDEX entry")
            try:
                self._peer_index[entry[0]] = bytes.fromhex(entry[1])
            except ValueError:
                raise ProtocolViolation("INDEX version is not hex") from None
        if len(self._peer_index) > MAX_INDEX_ENTRIES:
            raise ProtocolViolation("INDEX too large")
        if last:
            try:
                self._send_what_peer_lacks()
            except CoveyError as exc:  # e.g. a version vector the store cannot read
                raise ProtocolViolation(f"bad INDEX: {exc}") from None

    def _send_what_peer_lacks(self) -> None:
        for doc_id, ours in self.replica.sync_index():
            theirs = self._peer_index.get(doc_id)
            if theirs == ours or not self.replica.lacks(doc_id, theirs):
                continue
            self.send_update(doc_id, [self.replica.export_updates(doc_id, theirs or None)])
        self._peer_index.clear()
        self._send(Frame(FrameType.CAUGHT_UP))

    def _on_caught_up(self, frame: Frame) -> None:
        if self.state != "syncing":
            raise ProtocolViolation("CAUGHT_UP outside of catch-up")
        self.state = "live"
        self._events.append(CaughtUp())

    def _on_update(self, frame: Frame) -> None:
        h = frame.header
        doc_id, ack, part, last = h.get("doc"), h.get("ack"), h.get("part"), h.get("last")
        if (not isinstance(doc_id, str) or not 0 < len(doc_id) <= 64 or type(ack) is not int
                or type(part) is not int or not isinstance(last, bool)):
            raise ProtocolViolation("malformed UPDATE")
        if part == 0:
            if self._partial is not None:
                raise ProtocolViolation("new UPDATE before the previous one ended")
            sizes = h.get("sizes")
            if (not isinstance(sizes, list) or not sizes
                    or not all(type(s) is int and s >= 0 for s in sizes)
                    or sum(sizes) > MAX_UPDATE):
                raise ProtocolViolation("UPDATE sizes missing or too large")
            self._partial = _Partial(doc_id, ack, sizes)
        partial = self._partial
        if partial is None or (partial.doc_id, partial.ack) != (doc_id, ack) or part != len(partial.chunks):
            raise ProtocolViolation("UPDATE part out of order")
        partial.chunks.append(frame.body)
        partial.received += len(frame.body)
        if partial.received > sum(partial.sizes):
            raise ProtocolViolation("UPDATE longer than announced")
        if last:
            self._partial = None
            if partial.received != sum(partial.sizes):
                raise ProtocolViolation("UPDATE shorter than announced")
            body = b"".join(partial.chunks)
            blobs, offset = [], 0
            for size in partial.sizes:
                blobs.append(body[offset : offset + size])
                offset += size
            self._events.append(UpdateReceived(ack, doc_id, blobs))

    def _on_ack(self, frame: Frame) -> None:
        ack = frame.header.get("ack")
        if type(ack) is not int or ack not in self.in_flight:
            raise ProtocolViolation("ACK for nothing we sent")
        self._events.append(Acknowledged(ack, self.in_flight.pop(ack)))

    def _close(self, reason: str, by_peer: bool, tell_peer: bool = True) -> None:
        if tell_peer and not by_peer:
            self._send(Frame(FrameType.ERROR, {"reason": reason[:500]}))
        self.state = "closed"
        self._partial = None
        self._events.append(Closed(reason, by_peer))
