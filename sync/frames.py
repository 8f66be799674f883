"""Covey's wire frames: length-prefixed, typed, capped — checked before anything is allocated.

    frame  = length:u32be  type:u8  header_len:u16be  header:JSON object  body:bytes
    length = 3 + header_len + len(body), at most MAX_FRAME

The length is unsigned; anything above MAX_FRAME (so also anything that would be negative as a
signed number) is refused as soon as its four bytes arrive, before the body is buffered.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass, field
from typing import Any

LENGTH = struct.Struct(">I")
PREFIX = struct.Struct(">BH")
MAX_FRAME = 1 << 20  # 1 MiB: larger payloads are split into parts
MAX_HEADER = 64 * 1024


class FrameType(enum.IntEnum):
    HELLO = 1
    INDEX = 2
    UPDATE = 3
    ACK = 4
    CAUGHT_UP = 5
    PING = 6
    PONG = 7
    ERROR = 8
    PAIR = 9
    PLAN = 10  # how many documents the catch-up that follows will send
    PIECE = 11  # a piece of an answer as it is generated (protocol 3; never stored)


class FrameTooLarge(ValueError):
    """We tried to encode a frame over a limit: a bug in the sender (split or batch by bytes)."""


class FrameError(Exception):
    """The peer sent bytes that are not a valid frame."""


@dataclass(frozen=True)
class Frame:
    type: FrameType
    header: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""


def encode(frame: Frame) -> bytes:
    header = json.dumps(frame.header, separators=(",", ":")).encode("utf-8")
    if len(header) > MAX_HEADER:
        raise FrameTooLarge(f"frame header of {len(header)} bytes is too large")
    length = PREFIX.size + len(header) + len(frame.body)
    if length > MAX_FRAME:
        raise FrameTooLarge(f"frame of {length} bytes exceeds {MAX_FRAME}; split the payload")
    return LENGTH.pack(length) + PREFIX.pack(frame.type, len(header)) + header + frame.body


class FrameDecoder:
    """Feed bytes in; take whole frames out. Raises FrameError on anything malformed."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._need: int | None = None  # length of the frame being received, once known

    def feed(self, data: bytes) -> None:
        self._buffer += data
        self._check_length()

    def _check_length(self) -> None:
        if self._need is None and len(self._buffer) >= LENGTH.size:
            (length,) = LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise FrameError(f"frame length {length} exceeds the limit of {MAX_FRAME}")
            if length < PREFIX.size:
                raise FrameError(f"frame length {length} is too short")
            self._need = length

    def next_frame(self) -> Frame | None:
        self._check_length()
        if self._need is None or len(self._buffer) < LENGTH.size + self._need:
            return None
        raw = bytes(self._buffer[LENGTH.size : LENGTH.size + self._need])
        del self._buffer[: LENGTH.size + self._need]
        self._need = None
        return _parse(raw)

    @property
    def buffered(self) -> int:
        return len(self._buffer)


def _parse(raw: bytes) -> Frame:
    kind, header_len = PREFIX.unpack_from(raw)
    try:
        frame_type = FrameType(kind)
    except ValueError:
        raise FrameError(f"unknown frame type {kind}") from None
    if PREFIX.size + header_len > len(raw):
        raise FrameError("frame header runs past the end of the frame")
    try:
        header = json.loads(raw[PREFIX.size : PREFIX.size + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise FrameError("frame header is not JSON") from None
    if not isinstance(header, dict):
        raise FrameError("frame header is not a JSON object")
    return Frame(frame_type, header, raw[PREFIX.size + header_len :])
