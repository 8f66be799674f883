"""The sans-IO sync session, driven in memory (h11-style): two endpoints and a fake link."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Paths
from app.errors import InvalidUpdateError
from sync import versions
from sync.frames import MAX_FRAME, Frame, FrameType, encode
from sync.protocol import (
    PART_SIZE,
    CaughtUp,
    Closed,
    Hello,
    PeerHello,
    Session,
    UpdateReceived,
)
from sync.store import Store


def hello_for(store: Store, household: str = "H") -> Hello:
    return Hello(device=store.device_id, household=household, epoch=store.epoch,
                 instance="i-" + store.device_id,
                 digest=versions.digest(store.sync_index()).hex())


def pump(a: tuple[Store, Session], b: tuple[Store, Session], rounds: int = 50) -> list:
    """Move bytes both ways until quiet; persist and ack updates like the transport does (and
    drain the catch-up as a Link would, here with no window)."""
    events = []
    for _ in range(rounds):
        moved = False
        for (src_store, src), (dst_store, dst) in ((a, b), (b, a)):
            src.send_catch_up(1 << 40)
            data = src.data_to_send()
            if data:
                moved = True
                dst.receive_data(data)
            while (ev := dst.next_event()) is not None:
                events.append((dst_store.device_id, ev))
                if isinstance(ev, UpdateReceived):
                    try:
                        dst_store.import_updates(ev.doc_id, ev.blobs, source=src_store.device_id)
                    except InvalidUpdateError as exc:
                        dst.close(str(exc))
                        continue
                    dst.acknowledge(ev.ack)
        if not moved:
            return events
    raise AssertionError("link never went quiet")


def connect(sa: Store, sb: Store, ha: str = "H", hb: str = "H") -> tuple[Session, Session, list]:
    a, b = Session(sa, hello_for(sa, ha)), Session(sb, hello_for(sb, hb))
    a.start()
    b.start()
    events = pump((sa, a), (sb, b))
    return a, b, events


@pytest.fixture
def two(tmp_path: Path):  # type: ignore[no-untyped-def]
    a = Store.open(Paths.at(tmp_path / "a"), "DEV-A")
    b = Store.open(Paths.at(tmp_path / "b"), "DEV-B")
    yield a, b
    a.close()
    b.close()


def conversation(store: Store, n: int, text: str = "msg") -> str:
    conv = store.create_conversation()
    for i in range(n):
        store.add_message(conv, "user", f"{text} {i}")
    return conv


def test_catch_up_both_ways_then_equal(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    ca, cb = conversation(a, 3, "from a"), conversation(b, 2, "from b")
    sa, sb, events = connect(a, b)
    assert sa.state == sb.state == "live"
    assert a.sync_index() == b.sync_index()
    assert a.conversation(cb) == b.conversation(cb) and a.conversation(ca) == b.conversation(ca)
    assert sum(isinstance(e, CaughtUp) for _, e in events) == 2
    assert sa.in_flight == {} and sb.in_flight == {}  # everything was acknowledged


def test_equal_stores_exchange_only_hellos(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    conv = conversation(a, 2)
    connect(a, b)
    sa, sb, events = connect(a, b)  # reconnect between now-equal stores
    assert sa.state == "live" and [type(e) for _, e in events].count(CaughtUp) == 2
    assert sa.bytes_sent < 1024 and sb.bytes_sent < 1024
    assert not any(isinstance(e, UpdateReceived) for _, e in events)
    assert a.conversation(conv) == b.conversation(conv)


def test_only_the_missing_delta_is_sent(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    conv = conversation(a, 50)
    connect(a, b)
    before = bytes.fromhex(b.version_vector(conv).hex())
    a.add_message(conv, "user", "one more")
    delta = a.export_updates(conv, before)
    sa, _sb, _ = connect(a, b)
    assert b.conversation(conv) == a.conversation(conv)
    assert sa.bytes_sent <= 1.1 * len(delta) + 5 * 1024
    assert sa.bytes_sent < len(a.export_updates(conv))


def test_live_push_and_ack(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    sa, sb, _ = connect(a, b)
    conv = conversation(a, 1)
    ack = sa.send_update(conv, [a.export_updates(conv)])
    events = pump((a, sa), (b, sb))
    assert b.conversation(conv) == a.conversation(conv)
    assert ack not in sa.in_flight
    assert any(isinstance(e, UpdateReceived) and e.doc_id == conv for _, e in events)


def test_large_update_is_split_into_frames(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    conv = a.create_conversation()
    a.add_message(conv, "user", "x" * (3 * MAX_FRAME))
    sa, _sb, _ = connect(a, b)
    assert sa.bytes_sent > 3 * MAX_FRAME and len(a.export_updates(conv)) > 2 * PART_SIZE
    assert b.conversation(conv) == a.conversation(conv)


@pytest.mark.parametrize(
    ("ha", "hb", "reason"),
    [("H", "OTHER", "another household")],
)
def test_other_household_is_refused_and_nothing_applied(two, ha, hb, reason) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    conversation(a, 2)
    sa, sb, events = connect(a, b, ha, hb)
    assert sa.state == sb.state == "closed"
    closes = [e for _, e in events if isinstance(e, Closed)]
    assert closes and all(reason in e.reason for e in closes)
    assert b.doc_ids() == []


def test_version_mismatch_is_an_explicit_error_to_both(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    conversation(a, 1)
    sa = Session(a, hello_for(a))
    sb = Session(b, Hello(**{**hello_for(b).__dict__, "protocols": (99,)}))
    sa.start()
    sb.start()
    events = pump((a, sa), (b, sb))
    reasons = {dev: e.reason for dev, e in events if isinstance(e, Closed)}
    assert "protocol version mismatch" in reasons["DEV-A"]
    assert "protocol version mismatch" in reasons["DEV-B"]
    assert b.doc_ids() == []


def test_talking_to_ourselves_is_dropped(two) -> None:  # type: ignore[no-untyped-def]
    a, _ = two
    s1, s2 = Session(a, hello_for(a)), Session(a, hello_for(a))
    s1.start()
    s2.start()
    s2.receive_data(s1.data_to_send())
    assert s2.state == "closed"
    ev = s2.next_event()
    assert isinstance(ev, Closed) and "ourselves" in ev.reason


def test_malformed_loro_payload_closes_and_changes_nothing(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    sa, sb, _ = connect(a, b)
    conv = conversation(a, 1)
    good = a.export_updates(conv)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    sa.send_update(conv, [bytes(bad)])
    events = pump((a, sa), (b, sb))
    assert b.doc_ids() == []
    assert sb.state == "closed" and sa.state == "closed"
    assert any(isinstance(e, Closed) and e.by_peer for d, e in events if d == "DEV-A")


def test_update_before_hello_is_a_violation(two) -> None:  # type: ignore[no-untyped-def]
    _, b = two
    sb = Session(b, hello_for(b))
    sb.start()
    sb.receive_data(encode(Frame(FrameType.UPDATE, {"doc": "x", "ack": 1, "part": 0,
                                                     "sizes": [1], "last": True}, b"x")))
    ev = [sb.next_event()]
    assert isinstance(ev[0], Closed) and "before HELLO" in ev[0].reason
    assert b.doc_ids() == []


def test_oversized_length_is_refused_before_the_body_arrives(two) -> None:  # type: ignore[no-untyped-def]
    _, b = two
    sb = Session(b, hello_for(b))
    sb.start()
    sb.receive_data((MAX_FRAME + 1).to_bytes(4, "big"))  # only the length: no body sent
    ev = sb.next_event()
    assert isinstance(ev, Closed) and "exceeds the limit" in ev.reason
    sb2 = Session(b, hello_for(b))
    sb2.receive_data((2**32 - 1).to_bytes(4, "big"))  # "-1" as a signed length
    assert isinstance(sb2.next_event(), Closed)


def test_peer_hello_event_carries_identity(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    _, _, events = connect(a, b)
    hellos = {dev: e.hello for dev, e in events if isinstance(e, PeerHello)}
    assert hellos["DEV-A"].device == "DEV-B" and hellos["DEV-B"].device == "DEV-A"
    assert hellos["DEV-A"].epoch == b.epoch


@pytest.mark.parametrize("frame", [
    Frame(FrameType.CAUGHT_UP),
    Frame(FrameType.PLAN, {"documents": 0}),
    Frame(FrameType.INDEX, {"last": True}, b"[]"),
    Frame(FrameType.HELLO, {}),
])
def test_a_live_session_takes_only_what_its_state_accepts(two, frame: Frame) -> None:  # type: ignore[no-untyped-def]
    """The transition table: once live, catch-up frames (or a second HELLO) end the session."""
    from sync.protocol import ACCEPTS, TRANSITIONS, State

    a, b = two
    conversation(a, 1)
    sa, sb, _ = connect(a, b)
    assert sa.state == sb.state == State.LIVE and frame.type not in ACCEPTS[State.LIVE]
    before = b.sync_index()
    sb.receive_data(encode(frame))
    events = []
    while (ev := sb.next_event()) is not None:
        events.append(ev)
    assert sb.state == State.CLOSED and TRANSITIONS[State.CLOSED] == frozenset()
    assert [type(e) for e in events] == [Closed]
    assert f"unexpected {frame.type.name} (live)" in events[0].reason
    assert b.sync_index() == before  # nothing in the store changed
    from sync.frames import FrameDecoder

    told = FrameDecoder()
    told.feed(sb.data_to_send())
    error = told.next_frame()  # the reason is queued for the peer, and nothing else
    assert error is not None and error.type == FrameType.ERROR and told.next_frame() is None
    assert "unexpected" in error.header["reason"]
