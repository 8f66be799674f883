"""Hypothesis: random edits and message loss on N in-memory replicas; fuzzed input never hurts."""

from __future__ import annotations

import itertools
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.frames import Frame, FrameType, encode
from sync.link import Link
from sync.protocol import Closed
from tests.sync_helpers import contents, hello_for, new_link, open_store, pump_links

N = 3
PAIRS = list(itertools.combinations(range(N), 2))

op = st.one_of(
    st.tuples(st.just("edit"), st.integers(0, N - 1), st.integers(0, 3), st.text(max_size=12)),
    st.tuples(st.just("connect"), st.sampled_from(PAIRS)),
    st.tuples(st.just("deliver"), st.sampled_from(PAIRS), st.booleans(), st.floats(0, 1)),
    st.tuples(st.just("drop"), st.sampled_from(PAIRS)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=40))
def test_random_edits_and_lossy_delivery_converge(ops: list) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        stores = [open_store(Path(tmp) / f"s{i}", f"DEV-{i}") for i in range(N)]
        known: list[list[str]] = [[] for _ in range(N)]
        links: dict[tuple[int, int], tuple[Link, Link]] = {}
        wires: dict[tuple[int, int], bytearray] = {}
        try:
            for step in ops:
                if step[0] == "edit":
                    _, i, k, text = step
                    convs = sorted(set(known[i]) | set(stores[i].doc_ids()))
                    if k < len(convs):
                        stores[i].add_message(convs[k], "user", text or "x")
                    else:
                        known[i].append(stores[i].create_conversation())
                elif step[0] == "connect" and step[1] not in links:
                    i, j = step[1]
                    links[(i, j)] = (new_link(stores[i]), new_link(stores[j]))
                    wires[(i, j)], wires[(j, i)] = bytearray(), bytearray()
                elif step[0] == "deliver" and step[1] in links:
                    (i, j), forward, fraction = step[1], step[2], step[3]
                    src, dst = (i, j) if forward else (j, i)
                    a, b = links[(i, j)]
                    sender, receiver = (a, b) if forward else (b, a)
                    sender.push()
                    wires[(src, dst)] += sender.outgoing()
                    cut = int(len(wires[(src, dst)]) * fraction)
                    chunk = bytes(wires[(src, dst)][:cut])
                    del wires[(src, dst)][:cut]
                    if chunk:
                        receiver.receive(chunk)
                elif step[0] == "drop" and step[1] in links:
                    del links[step[1]]  # the connection is gone, and whatever was in flight
            links.clear()
            for _ in range(2):  # heal: connect everyone, twice round, until quiet
                for i, j in PAIRS:
                    a, b = new_link(stores[i]), new_link(stores[j])
                    pump_links(a, b)
                    assert a.closed is None and b.closed is None
            first = contents(stores[0])
            for store in stores[1:]:
                assert contents(store) == first
                assert store.sync_index() == stores[0].sync_index()
        finally:
            for store in stores:
                store.close()


# -- fuzzing: random and mutated input from a peer ------------------------------------------

_FUZZ: dict[str, object] = {}


def fuzz_target():  # type: ignore[no-untyped-def]
    """A store A and a valid transcript of peer B (whose data A already has)."""
    if not _FUZZ:
        tmp = Path(tempfile.mkdtemp(prefix="covey-fuzz-"))
        a, b = open_store(tmp / "a", "DEV-A"), open_store(tmp / "b", "DEV-B")
        for i in range(3):
            conv = b.create_conversation()
            b.add_message(conv, "user", f"hello {i}")
        la, lb = new_link(a), new_link(b)
        pump_links(la, lb)
        a.create_conversation()  # A has one more: digests differ, so B sends an INDEX
        session = new_link(b).session
        session.receive_data(encode(Frame(FrameType.HELLO, hello_for(a).to_header())))
        transcript = session.data_to_send()
        for doc in b.doc_ids():
            transcript += encode(Frame(FrameType.UPDATE, {"doc": doc, "ack": 99, "part": 0,
                                       "sizes": [len(d := b.export_updates(doc))], "last": True}, d))
        _FUZZ.update(store=a, transcript=transcript, rows=a.last_seq(), index=a.sync_index())
    return _FUZZ


def check_unharmed(data: bytes, chunks: list[int]) -> None:
    target = fuzz_target()
    store = target["store"]
    link = new_link(store)  # type: ignore[arg-type]
    events = []
    pos = 0
    for size in chunks + [len(data)]:
        events += link.receive(data[pos : pos + size])
        pos += size
        if pos >= len(data):
            break
    assert store.last_seq() == target["rows"]  # type: ignore[attr-defined]
    assert store.sync_index() == target["index"]  # type: ignore[attr-defined]
    if link.session.state == "closed":
        closed = [e for e in events if isinstance(e, Closed)]
        assert closed and closed[-1].reason


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=5))
def test_fuzz_random_bytes(data: bytes, chunks: list[int]) -> None:
    check_unharmed(data, chunks)


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from(
    ["flip", "insert", "delete", "truncate"])), min_size=1, max_size=4),
    st.lists(st.integers(1, 500), max_size=4))
def test_fuzz_mutated_transcripts(mutations: list, chunks: list[int]) -> None:  # type: ignore[type-arg]
    data = bytearray(fuzz_target()["transcript"])  # type: ignore[arg-type]
    for pos, value, kind in mutations:
        if not data:
            break
        at = pos % len(data)
        if kind == "flip":
            data[at] ^= value or 1
        elif kind == "insert":
            data[at:at] = bytes([value])
        elif kind == "delete":
            del data[at]
        else:
            del data[at:]
    check_unharmed(bytes(data), chunks)


def test_the_unmutated_transcript_is_accepted() -> None:
    """The fuzz base case is valid: the harness can tell harm from health."""
    target = fuzz_target()
    link = new_link(target["store"])  # type: ignore[arg-type]
    link.receive(target["transcript"])  # type: ignore[arg-type]
    assert link.session.state in ("syncing", "live") and link.closed is None
    assert link.received_updates == 3


def test_random_frames_with_valid_framing() -> None:
    rng = random.Random(5)
    types = list(FrameType)
    for _ in range(2000):
        frames = b""
        for _ in range(rng.randint(1, 5)):
            header = {k: rng.choice([None, 1, -1, "x", [], {}, [1, "a"], True, 2**70])
                      for k in rng.sample(["doc", "ack", "part", "last", "sizes", "entries",
                                           "protocols", "schema", "device", "household"], 4)}
            frames += encode(Frame(rng.choice(types), header, rng.randbytes(rng.randint(0, 64))))
        check_unharmed(frames, [])
