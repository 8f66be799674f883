"""The sync protocol as a state machine with no networking (sans-IO, as h11/h2 do it).

Feed it what arrived (`receive_data`), take events out (`next_event`), send what it produced
(`data_to_send`). Flow, the same on both sides:

    HELLO  ──►  equal digests: live at once
                otherwise: INDEX (document, version)… ──► PLAN (how many documents follow)
                           ──► UPDATEs the peer lacks, as the send window allows ──► CAUGHT_UP
    live:  UPDATE (pushed as commits happen) ◄──► ACK once the receiver has persisted it

Every frame is sized by bytes, never by a count of entries. The catch-up is a queue of document
ids that the caller drains (`send_catch_up`) while its window of unacknowledged bytes allows, so
neither side ever holds the whole difference in memory; the receiver persists each document as
it comes, so a catch-up cut short resumes where it stopped.

Anything the peer gets wrong ends the session: an ERROR frame with the reason is queued for the
peer, a `Closed` event is emitted, and nothing more is accepted. The replica (the store) is only
ever asked for data here; what arrives is handed out as `UpdateReceived` events for the caller
to persist — and only then to `acknowledge`.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from models.errors import CoveyError
from sync import live, update_parts
from sync.frames import MAX_FRAME, Frame, FrameDecoder, FrameError, FrameType, encode
from sync.protocol_events import (
    PIECES,
    PROTOCOL_VERSIONS,
    SCHEMA_VERSION,
    Acknowledged,
    CatchUpPlanned,
    CaughtUp,
    Closed,
    Event,
    Hello,
    LocalProtocolError,
    PeerHello,
    PieceReceived,
    ProtocolViolation,
    UpdateReceived,
)
from sync.update_parts import MAX_UPDATE, PART_SIZE

__all__ = ["MAX_UPDATE", "PART_SIZE", "PROTOCOL_VERSIONS", "SCHEMA_VERSION", "Acknowledged",
           "CatchUpPlanned", "CaughtUp", "Closed", "Event", "Hello", "LocalProtocolError",
           "PeerHello", "PieceReceived", "ProtocolViolation", "Replica", "Session", "State",
           "UpdateReceived"]

# What one peer may make us hold at once: an index of a household's documents (an update's
# limit is in sync/update_parts.py).
MAX_INDEX_ENTRIES = 500_000
INDEX_PART = MAX_FRAME - 1024  # body bytes per INDEX frame (its entries, as JSON)


class State(StrEnum):
    IDLE = "idle"
    HELLO_SENT = "hello_sent"
    SYNCING = "syncing"
    LIVE = "live"
    CLOSED = "closed"


#: Every move a session makes; CLOSED is reachable from any state, and is the end.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.HELLO_SENT}),
    State.HELLO_SENT: frozenset({State.SYNCING, State.LIVE}),  # (the peer's HELLO came)
    State.SYNCING: frozenset({State.LIVE}),  # (the peer's CAUGHT_UP came)
    State.LIVE: frozenset(),
    State.CLOSED: frozenset(),
}

#: The frames each state takes from the peer once its HELLO is in (before it, only HELLO;
#: PING, PONG and ERROR in any state). Anything else ends the session as a violation. LIVE
#: still takes ACKs for the catch-up it sent, and UPDATEs as commits happen.
ACCEPTS: dict[State, frozenset[FrameType]] = {
    State.SYNCING: frozenset({FrameType.INDEX, FrameType.PLAN, FrameType.UPDATE, FrameType.ACK,
                              FrameType.CAUGHT_UP, FrameType.PIECE}),
    State.LIVE: frozenset({FrameType.UPDATE, FrameType.ACK, FrameType.PIECE}),
}


class Replica(Protocol):
    """What the session needs from the local store."""

    def sync_index(self) -> list[tuple[str, bytes]]: ...
    def lacks(self, doc_id: str, their_version: bytes | None) -> bool: ...
    def export_updates(self, doc_id: str, since: bytes | None = None) -> bytes: ...


class Session:
    """One connection's worth of sync state. Throw it away on disconnect."""

    def __init__(self, replica: Replica, hello: Hello) -> None:
        self.replica = replica
        self.local = hello
        self.peer: Hello | None = None
        self.state = State.IDLE  # see TRANSITIONS
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._peer_index: dict[str, bytes] = {}
        self._catch_up: deque[tuple[str, bytes | None]] | None = None  # (doc, their version)
        self._parts = update_parts.Assembly()
        self._ack_ids = itertools.count(1)
        self.in_flight: dict[int, int] = {}  # ack id → bytes, sent and not yet acknowledged
        self.bytes_sent = 0
        self.bytes_received = 0

    # -- driving ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.state != State.IDLE:
            raise LocalProtocolError("session already started")
        self._send(Frame(FrameType.HELLO, self.local.to_header()))
        self._move(State.HELLO_SENT)

    @property
    def is_open(self) -> bool:
        return self.state != State.CLOSED

    def _move(self, to: State) -> None:
        if to != State.CLOSED and to not in TRANSITIONS[self.state]:
            raise LocalProtocolError(f"no move from {self.state} to {to}")
        self.state = to

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means the peer closed the connection."""
        if self.state == State.CLOSED:
            return
        if not data:
            self._close("connection closed by peer", by_peer=True, tell_peer=False)
            return
        self.bytes_received += len(data)
        try:
            self._decoder.feed(data)
            while self.is_open and (frame := self._decoder.next_frame()) is not None:
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
        if self.state != State.CLOSED:
            self._close(reason, by_peer=False)

    # -- sending ----------------------------------------------------------------------------

    def send_update(self, doc_id: str, blobs: Sequence[bytes]) -> int:
        """Queue update bytes for `doc_id` (split into frames as needed); returns the ack id."""
        if self.state not in (State.SYNCING, State.LIVE):
            raise LocalProtocolError(f"cannot send updates in state {self.state}")
        ack = next(self._ack_ids)
        for frame in update_parts.split(doc_id, ack, blobs):
            self._send(frame)
        self.in_flight[ack] = sum(len(b) for b in blobs)
        return ack

    def acknowledge(self, ack: int) -> None:
        """Tell the peer its update `ack` is persisted here."""
        if self.state != State.CLOSED:
            self._send(Frame(FrameType.ACK, {"ack": ack}))

    @property
    def catching_up(self) -> int:
        """Documents still to send in the catch-up (0 when none is under way)."""
        return len(self._catch_up) if self._catch_up else 0

    def send_catch_up(self, max_bytes: int) -> int:
        """Send queued catch-up documents until about `max_bytes` went out; returns how many.

        The caller decides how much: it drains the queue only while its window of
        unacknowledged bytes allows. CAUGHT_UP follows the last document.
        """
        queue, sent, size = self._catch_up, 0, 0
        if queue is None or self.state not in (State.SYNCING, State.LIVE):
            return 0
        try:
            while queue and size < max_bytes:
                doc_id, theirs = queue.popleft()
                if not self.replica.lacks(doc_id, theirs):
                    continue  # (it arrived there meanwhile, through another peer)
                update = self.replica.export_updates(doc_id, theirs)
                self.send_update(doc_id, [update])
                size += len(update)
                sent += 1
        except CoveyError as exc:  # e.g. a version vector of theirs the store cannot read
            self._close(f"protocol violation: bad INDEX: {exc}", by_peer=False)
            return sent
        if not queue:
            self._catch_up = None
            self._send(Frame(FrameType.CAUGHT_UP))
        return sent

    @property
    def takes_pieces(self) -> bool:
        """The peer speaks PIECE (sent by the node straight onto the stream: a piece changes
        no session state)."""
        return self.is_open and self.peer is not None and PIECES in self.peer.protocols

    def ping(self, nonce: int) -> None:
        if self.state != State.CLOSED:
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
        if frame.type not in ACCEPTS.get(self.state, frozenset()):
            raise ProtocolViolation(f"unexpected {frame.type.name} ({self.state})")
        {
            FrameType.INDEX: self._on_index,
            FrameType.PLAN: self._on_plan,
            FrameType.UPDATE: self._on_update,
            FrameType.ACK: self._on_ack,
            FrameType.CAUGHT_UP: self._on_caught_up,
            FrameType.PIECE: self._on_piece,
        }[frame.type](frame)

    def _on_hello(self, hello: Hello) -> None:
        if self.state == State.IDLE:
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
            self._move(State.LIVE)
            self._events.append(CaughtUp())
            return
        self._move(State.SYNCING)
        part: list[bytes] = []
        size = 2
        for doc, vv in self.replica.sync_index():
            entry = json.dumps([doc, vv.hex()], separators=(",", ":")).encode()
            if part and size + len(entry) + 1 > INDEX_PART:
                self._send_index(part, last=False)
                part, size = [], 2
            part.append(entry)
            size += len(entry) + 1
        self._send_index(part, last=True)

    def _send_index(self, entries: list[bytes], last: bool) -> None:
        body = b"[" + b",".join(entries) + b"]"
        self._send(Frame(FrameType.INDEX, {"last": last}, body))

    def _on_index(self, frame: Frame) -> None:
        last = frame.header.get("last")
        try:
            entries = json.loads(frame.body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ProtocolViolation("INDEX entries are not JSON") from None
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
                self._plan_catch_up()
            except CoveyError as exc:  # e.g. a version vector the store cannot read
                raise ProtocolViolation(f"bad INDEX: {exc}") from None

    def _plan_catch_up(self) -> None:
        """Queue the documents the peer lacks; they go out as the caller's window allows."""
        queue: deque[tuple[str, bytes | None]] = deque()
        for doc_id, ours in self.replica.sync_index():
            theirs = self._peer_index.get(doc_id)
            if theirs != ours and self.replica.lacks(doc_id, theirs):
                queue.append((doc_id, theirs or None))
        self._peer_index.clear()
        self._send(Frame(FrameType.PLAN, {"documents": len(queue)}))
        self._catch_up = queue
        self.send_catch_up(0)  # nothing to send: CAUGHT_UP at once

    def _on_plan(self, frame: Frame) -> None:
        documents = frame.header.get("documents")
        if type(documents) is not int or documents < 0:
            raise ProtocolViolation("malformed PLAN")
        self._events.append(CatchUpPlanned(documents))

    def _on_caught_up(self, frame: Frame) -> None:
        self._move(State.LIVE)
        self._events.append(CaughtUp())

    def _on_update(self, frame: Frame) -> None:
        update = self._parts.add(frame)
        if update is not None:
            self._events.append(update)

    def _on_piece(self, frame: Frame) -> None:
        piece = live.from_frame(frame)
        if piece is None:
            raise ProtocolViolation("malformed PIECE")
        self._events.append(PieceReceived(piece))

    def _on_ack(self, frame: Frame) -> None:
        ack = frame.header.get("ack")
        if type(ack) is not int or ack not in self.in_flight:
            raise ProtocolViolation("ACK for nothing we sent")
        self._events.append(Acknowledged(ack, self.in_flight.pop(ack)))

    def _close(self, reason: str, by_peer: bool, tell_peer: bool = True) -> None:
        if tell_peer and not by_peer:
            self._send(Frame(FrameType.ERROR, {"reason": reason[:500]}))
        self._move(State.CLOSED)
        # What the peer made us hold goes with the connection (a half-sent update, its index).
        self._parts.clear()
        self._catch_up = None
        self._peer_index = {}
        self._events.append(Closed(reason, by_peer))
