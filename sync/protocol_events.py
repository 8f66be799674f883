"""What the sync protocol says and hears: the HELLO, the events a session emits, its errors.

Frozen dataclasses, as h11's events are; `sync.protocol.Session` produces and consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.live import LivePiece

# 2: INDEX in the body, sized by bytes; PLAN; name and listen port. 3: PIECE (live text).
PROTOCOL_VERSIONS = (2, 3)
PIECES = 3  # the version that brings PIECE: sent only to a peer that speaks it
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Hello:
    device: str
    household: str
    epoch: str
    instance: str
    digest: str  # hex
    protocols: tuple[int, ...] = PROTOCOL_VERSIONS
    schema: int = SCHEMA_VERSION
    name: str = ""  # the device's name, as its owner set it
    listen: int = 0  # the port it accepts connections on (0: it only dials)
    time: float = 0.0  # its wall clock when it said hello (shown when it differs; never trusted)

    def to_header(self) -> dict[str, Any]:
        return {"protocols": list(self.protocols), "schema": self.schema, "device": self.device,
                "household": self.household, "epoch": self.epoch, "instance": self.instance,
                "digest": self.digest, "name": self.name, "listen": self.listen,
                "time": self.time}

    @classmethod
    def from_header(cls, h: dict[str, Any]) -> Hello:
        protocols = h.get("protocols")
        strings = [h.get(k) for k in ("device", "household", "epoch", "instance", "digest")]
        if (not isinstance(protocols, list) or not all(type(p) is int for p in protocols)
                or type(h.get("schema")) is not int
                or not all(isinstance(s, str) and len(s) <= 256 for s in strings)):
            raise ProtocolViolation("malformed HELLO")
        name, listen, clock = h.get("name", ""), h.get("listen", 0), h.get("time", 0.0)
        if (not isinstance(name, str) or len(name) > 256
                or type(listen) is not int or not 0 <= listen < 65536
                or type(clock) not in (int, float) or not 0 <= clock < 1e11):
            raise ProtocolViolation("malformed HELLO")
        device, household, epoch, instance, digest = strings
        return cls(str(device), str(household), str(epoch), str(instance), str(digest),
                   tuple(protocols), h["schema"], name, listen, float(clock))


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
class PieceReceived:
    """A piece of an answer, live (see sync/live.py): shown by watchers, never stored."""

    piece: LivePiece


@dataclass(frozen=True)
class Acknowledged:
    ack: int
    size: int


@dataclass(frozen=True)
class CatchUpPlanned:
    """The peer is about to send `documents` documents that we lack."""

    documents: int


@dataclass(frozen=True)
class CaughtUp:
    """The peer has sent everything it had that we lacked when the session began."""


@dataclass(frozen=True)
class Closed:
    reason: str
    by_peer: bool


Event = (PeerHello | UpdateReceived | PieceReceived | Acknowledged | CatchUpPlanned | CaughtUp
         | Closed)


class ProtocolViolation(Exception):
    """The peer broke the protocol (RemoteProtocolError in h11's words)."""


class LocalProtocolError(Exception):
    """We used the session wrongly."""
