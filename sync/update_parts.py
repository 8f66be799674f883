"""UPDATE frames: an update split into parts by bytes, and put together again on arrival.

One update may be larger than a frame (a conversation's whole history); it goes out as parts
of at most `PART_SIZE` body bytes, numbered, the first announcing the sizes of the blobs that
make it up. The receiver holds at most one update's parts at a time, and refuses anything out
of order, longer or shorter than announced, or larger than `MAX_UPDATE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sync.frames import MAX_FRAME, Frame, FrameType
from sync.protocol_events import ProtocolViolation, UpdateReceived

PART_SIZE = MAX_FRAME - 4096  # body bytes per UPDATE frame, leaving room for the header
# What one peer may make us hold at once: a conversation's whole history in one update (a
# decade of daily chat is a few MB).
MAX_UPDATE = 64 << 20  # a reassembled update larger than this is refused


def split(doc_id: str, ack: int, blobs: Sequence[bytes]) -> list[Frame]:
    """The frames that carry `blobs` (one update of `doc_id`, acknowledged as `ack`)."""
    body = b"".join(blobs)
    parts = [body[i : i + PART_SIZE] for i in range(0, len(body), PART_SIZE)] or [b""]
    frames = []
    for n, part in enumerate(parts):
        header: dict[str, Any] = {"doc": doc_id, "ack": ack, "part": n}
        if n == 0:
            header["sizes"] = [len(b) for b in blobs]
        header["last"] = n == len(parts) - 1
        frames.append(Frame(FrameType.UPDATE, header, part))
    return frames


@dataclass
class _Partial:
    doc_id: str
    ack: int
    sizes: list[int]
    chunks: list[bytes] = field(default_factory=list)
    received: int = 0


class Assembly:
    """The receiving end: feed each UPDATE frame; a whole update comes out of the last."""

    def __init__(self) -> None:
        self._partial: _Partial | None = None

    def clear(self) -> None:
        self._partial = None

    def add(self, frame: Frame) -> UpdateReceived | None:
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
        if partial is None or (partial.doc_id, partial.ack) != (doc_id, ack) \
                or part != len(partial.chunks):
            raise ProtocolViolation("UPDATE part out of order")
        partial.chunks.append(frame.body)
        partial.received += len(frame.body)
        if partial.received > sum(partial.sizes):
            raise ProtocolViolation("UPDATE longer than announced")
        if not last:
            return None
        self._partial = None
        if partial.received != sum(partial.sizes):
            raise ProtocolViolation("UPDATE shorter than announced")
        body = b"".join(partial.chunks)
        blobs, offset = [], 0
        for size in partial.sizes:
            blobs.append(body[offset : offset + size])
            offset += size
        return UpdateReceived(ack, doc_id, blobs)
