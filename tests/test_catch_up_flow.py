"""The catch-up at scale, in memory: frames sized by bytes, flow control, progress, failures."""

from __future__ import annotations

import random
from pathlib import Path

from app.errors import StoreError
from sync.frames import MAX_FRAME, MAX_HEADER, FrameDecoder, FrameType
from sync.protocol import CatchUpPlanned, Hello, Session
from tests.sync_helpers import new_link, open_store, pump_links


class BigReplica:
    """A replica of `n` documents with long versions (many writers), and nothing to export."""

    def __init__(self, n: int, writers: int = 40) -> None:
        self.entries = [(f"{i:032x}", bytes(range(16)) * writers) for i in range(n)]

    def sync_index(self) -> list[tuple[str, bytes]]:
        return self.entries

    def lacks(self, doc_id: str, their_version: bytes | None) -> bool:
        return False

    def export_updates(self, doc_id: str, since: bytes | None = None) -> bytes:
        return b""


def test_an_index_of_20000_long_versions_is_split_by_bytes() -> None:
    mine = Session(BigReplica(20_000), Hello("A", "H", "e", "i", "d1"))
    theirs = Session(BigReplica(0), Hello("B", "H", "e", "i", "d2"))
    mine.start()
    theirs.start()
    mine.receive_data(theirs.data_to_send())  # their HELLO: digests differ, so our INDEX goes
    data = mine.data_to_send()
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    index = [f for f in frames if f.type == FrameType.INDEX]
    assert len(index) > 20  # 20,000 × ~1.3 kB of versions: many frames, each under the cap
    assert all(len(f.body) <= MAX_FRAME and len(f.body) > MAX_HEADER for f in index[:-1])
    assert [f.header["last"] for f in index] == [False] * (len(index) - 1) + [True]
    theirs.receive_data(data)
    assert theirs.state == "syncing" and theirs._peer_index == {}  # planned and cleared


def test_the_catch_up_is_drained_under_the_window_and_its_progress_told(tmp_path: Path) -> None:
    a, b = open_store(tmp_path / "a", "DEV-A"), open_store(tmp_path / "b", "DEV-B")
    try:
        rng = random.Random(4)
        for i in range(60):
            conv = a.create_conversation()
            a.add_message(conv, "user", f"{i} " + rng.randbytes(1500).hex())  # 3 kB, incompressible
        la, lb = new_link(a), new_link(b)
        la.window = 16 * 1024  # a slow peer: only a few documents may be unacknowledged
        events = []
        for _ in range(3):  # HELLOs, INDEXes, PLAN (b"" would mean "closed": only real bytes)
            if out := la.outgoing():
                events += lb.receive(out)
            if out := lb.outgoing():
                la.receive(out)
        la.push()
        assert 0 < la.session.catching_up < 60  # some sent, the rest waits for the window
        assert sum(la.session.in_flight.values()) <= la.window + 4096
        events += lb.receive(la.outgoing())
        assert any(isinstance(e, CatchUpPlanned) and e.documents == 60 for e in events)
        assert 0 < lb.catch_up_done < lb.catch_up_total  # type: ignore[operator]
        pump_links(la, lb)
        assert lb.caught_up and lb.catch_up_total is None
        assert sorted(b.doc_ids()) == sorted(a.doc_ids())
    finally:
        a.close()
        b.close()


def test_a_store_that_cannot_write_closes_the_session_with_a_reason(tmp_path: Path,
                                                                   monkeypatch) -> None:  # type: ignore[no-untyped-def]
    a, b = open_store(tmp_path / "a", "DEV-A"), open_store(tmp_path / "b", "DEV-B")
    try:
        a.create_conversation()
        la, lb = new_link(a), new_link(b)

        def full(*args: object, **kwargs: object) -> None:
            raise StoreError("cannot write to the store: database or disk is full")

        monkeypatch.setattr(b, "import_many", full)
        for _ in range(6):
            la.push()
            if out := la.outgoing():
                lb.receive(out)
            if out := lb.outgoing():
                la.receive(out)
        assert lb.closed is not None and "disk is full" in lb.closed.reason
        assert la.closed is not None and "cannot store updates right now" in la.closed.reason
        assert la.session.in_flight  # nothing was acknowledged
    finally:
        a.close()
        b.close()


def test_a_failure_that_repeats_is_reported_once_then_rate_limited(caplog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sync import errors

    now = [1000.0]
    monkeypatch.setattr(errors.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(errors, "_last", {})
    boom = ValueError("frame header of 72074 bytes is too large")
    with caplog.at_level("ERROR", logger="covey.errors"):
        assert errors.report("session with B", str(boom), boom) is True
        for _ in range(50):  # the same failure on every reconnect
            now[0] += 1.0
            assert errors.report("session with B", str(boom), boom) is False
        now[0] += errors.QUIET_FOR
        assert errors.report("session with B", str(boom), boom) is True
    assert len(caplog.records) == 2
    assert caplog.records[0].exc_info is not None  # the first one with its traceback
    assert "50 more like it" in caplog.records[1].getMessage()
    assert caplog.records[1].exc_info is None


def test_what_a_peer_made_us_hold_is_released_when_the_session_ends() -> None:
    import tracemalloc

    from sync.frames import Frame, encode
    from sync.protocol import MAX_UPDATE, PART_SIZE

    replica = BigReplica(0)
    session = Session(replica, Hello("A", "H", "e", "i", "d1"))
    session.start()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        session.receive_data(encode(Frame(FrameType.HELLO, Hello("B", "H", "e", "i", "d2")
                                          .to_header())))
        # A paired peer starts an update of the largest size allowed and never finishes it …
        part = bytes(PART_SIZE)
        session.receive_data(encode(Frame(FrameType.UPDATE, {
            "doc": "d" * 32, "ack": 1, "part": 0, "sizes": [MAX_UPDATE], "last": False}, part)))
        for n in range(1, 40):
            session.receive_data(encode(Frame(FrameType.UPDATE, {
                "doc": "d" * 32, "ack": 1, "part": n, "last": False}, part)))
        holding = tracemalloc.get_traced_memory()[0] - base
        assert holding > 30 << 20  # ~40 MiB held for the half-sent update
        session.receive_data(b"")  # … and the connection ends
        released = tracemalloc.get_traced_memory()[0] - base
        assert released < 2 << 20, released
    finally:
        tracemalloc.stop()
    # An update announced larger than the limit is refused before anything is kept.
    other = Session(replica, Hello("A", "H", "e", "i", "d1"))
    other.start()
    other.receive_data(encode(Frame(FrameType.HELLO, Hello("B", "H", "e", "i", "d2").to_header())))
    other.receive_data(encode(Frame(FrameType.UPDATE, {
        "doc": "d" * 32, "ack": 1, "part": 0, "sizes": [MAX_UPDATE + 1], "last": False}, b"x")))
    assert other.state == "closed"


def test_an_update_whose_dependencies_never_came_is_refused_and_not_acknowledged(
        tmp_path: Path) -> None:
    from loro import ExportMode

    from app.errors import InvalidUpdateError
    from tests.sync_helpers import hello_for

    a, b = open_store(tmp_path / "a", "DEV-A"), open_store(tmp_path / "b", "DEV-B")
    try:
        conv = a.create_conversation()
        middle = a.version_vector(conv)
        a.add_message(conv, "user", "the second change, alone")
        from sync import versions

        later = a.read(conv, lambda doc: bytes(doc.export(
            ExportMode.Updates(versions.decode_vv(middle)))))
        assert later
        rows = b.last_seq()
        try:
            b.import_updates(conv, later, source="DEV-A")
            raise AssertionError("a dangling update was taken")
        except InvalidUpdateError as exc:
            assert "depends on changes this device does not have" in str(exc)
        assert b.last_seq() == rows and not b.version_vector(conv)
        # Over a link: the session ends with the reason, and nothing is acknowledged.
        link = new_link(b)
        session = Session(a, hello_for(a))
        session.start()
        link.receive(session.data_to_send())
        session.receive_data(link.outgoing())
        session.send_catch_up(0)
        ack = session.send_update(conv, [later])
        link.receive(session.data_to_send())
        assert link.closed is not None and "depends on changes" in link.closed.reason
        assert ack in session.in_flight and b.last_seq() == rows
    finally:
        a.close()
        b.close()
