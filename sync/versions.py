"""Version vectors in a canonical byte form, and the per-document version table.

Loro's own `VersionVector.encode()` follows hash-map order, so two equal vectors may encode
differently; sync compares and hashes versions, so covey encodes them canonically: big-endian
(peer, end counter) pairs sorted by peer. `doc_versions` holds every document's current version,
kept in the same transaction as each appended update, so an index or a digest of all documents
never loads a document.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct

from loro import ID, VersionVector

PAIR = struct.Struct(">QQ")
MAX_COUNTER = 2**31 - 1  # Loro's counters are signed 32-bit


class VersionError(ValueError):
    """Bytes that are not a canonical version vector."""


def encode_vv(vv: VersionVector) -> bytes:
    spans = vv.to_spans().inner()
    return b"".join(PAIR.pack(peer, end) for peer, (_start, end) in sorted(spans.items()))


def decode_vv(data: bytes) -> VersionVector:
    if len(data) % PAIR.size:
        raise VersionError(f"version vector of {len(data)} bytes is not a whole number of pairs")
    vv = VersionVector()
    last = -1
    for peer, end in PAIR.iter_unpack(data):
        if peer <= last:
            raise VersionError("version vector peers are not sorted and unique")
        last = peer
        if end > MAX_COUNTER:
            raise VersionError(f"version counter {end} is out of range")
        if end > 0:
            vv.set_end(ID(peer, end))
    return vv


def record(conn: sqlite3.Connection, doc_id: str, vv: VersionVector) -> None:
    conn.execute(
        "INSERT INTO doc_versions (doc_id, vv) VALUES (?, ?)"
        " ON CONFLICT(doc_id) DO UPDATE SET vv = excluded.vv",
        [doc_id, encode_vv(vv)],
    )


def index(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
    """(document id, canonical version) of every document, sorted by id."""
    return [(r[0], bytes(r[1])) for r in conn.execute("SELECT doc_id, vv FROM doc_versions ORDER BY doc_id")]


def digest(entries: list[tuple[str, bytes]]) -> bytes:
    """One hash over every document's version: equal digests mean equal stores."""
    h = hashlib.sha256()
    for doc_id, vv in entries:
        encoded = doc_id.encode("utf-8")
        h.update(len(encoded).to_bytes(2, "big") + encoded + len(vv).to_bytes(4, "big") + vv)
    return h.digest()
