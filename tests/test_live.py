"""Live pieces (sync/live.py): an answer's text reaches its watchers as it is generated — by
datagram within a device, by PIECE frame between devices — and never changes a store."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from app.assistant import Assistant
from app.bench.sync import Running, paired, wait_for
from app.config import Config, Paths
from app.context import Context
from app.delegation import JobRef, request_job
from app.remote_ask import watch
from models.base import GenerationParams
from models.fake import FakeModel
from sync import live
from sync.frames import Frame, FrameType, encode
from sync.live import Fanout, Listener, LivePiece
from sync.protocol import Closed, PieceReceived
from tests.sync_helpers import hello_for, new_link, open_store, pump_links


def test_a_piece_reaches_every_watcher_on_the_device_and_a_gone_one_is_forgotten(
        tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    deep = tmp_path / ("d" * 90) / "locks"  # too long a path for a socket: an abstract name
    fanout, far = Fanout(locks), Fanout(deep)
    with Listener(locks) as one, Listener(locks) as two, Listener(deep) as three:
        gone = Listener(locks)
        gone._sock.close()  # (its process died: the entry stays, nobody reads it)
        piece = LivePiece("c" * 32, "m" * 32, "1-dev", 5, "héllo")
        assert fanout.send(piece) == 2
        assert far.send(piece) == 1
        assert one.wait(1.0) == [piece] and two.wait(1.0) == [piece]
        assert three.wait(1.0) == [piece]
        assert len(list((locks / live.DIR).iterdir())) == 2  # the dead one's entry went


def test_a_watcher_ignores_what_is_not_a_piece(tmp_path: Path) -> None:
    with Listener(tmp_path) as listener:
        entry = next((tmp_path / live.DIR).iterdir())
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
            for junk in (b"\xff\xfe", b"[1,2]", b'["c","m","a",-1,"x"]', b'{"a": 1}',
                         b'["c","m","a",0,' + b'"' + b"x" * (live.MAX_TEXT + 1) + b'"]'):
                raw.sendto(junk, str(entry))
        good = LivePiece("c", "m", "a", 0, "ok")
        Fanout(tmp_path).send(good)
        assert listener.wait(1.0) == [good]


def test_a_piece_frame_is_an_event_and_a_malformed_one_ends_the_session(tmp_path: Path) -> None:
    a, b = open_store(tmp_path / "a", "dev-a"), open_store(tmp_path / "b", "dev-b")
    link_a, link_b = new_link(a), new_link(b)
    pump_links(link_a, link_b)
    assert link_a.session.takes_pieces and link_b.session.takes_pieces
    heard: list[LivePiece] = []
    link_a.on_piece = heard.append
    piece = LivePiece("c" * 32, "m" * 32, "2-dev-b", 40, "a storm ")
    events = link_a.receive(encode(live.to_frame(piece)))
    assert events == [PieceReceived(piece)] and heard == [piece]
    before = a.sync_index()
    bad = Frame(FrameType.PIECE, {"doc": "c", "msg": "m", "att": "x", "at": -3}, b"text")
    events = link_a.receive(encode(bad))
    closed = [e for e in events if isinstance(e, Closed)]
    assert closed and "malformed PIECE" in closed[0].reason
    assert heard == [piece] and a.sync_index() == before


def test_a_peer_that_speaks_only_protocol_2_is_sent_no_pieces(tmp_path: Path) -> None:
    from sync.link import Link
    from sync.protocol import Session

    a, b = open_store(tmp_path / "a", "dev-a"), open_store(tmp_path / "b", "dev-b")
    old = hello_for(b)
    old = type(old)(**{**old.__dict__, "protocols": (2,)})
    link_a, link_b = new_link(a), Link(b, Session(b, old))
    link_b.start()
    pump_links(link_a, link_b)
    assert link_a.session.peer is not None and not link_a.session.takes_pieces


def test_pieces_from_the_runner_reach_the_asking_device_and_no_one_else_s_do(
        tmp_path: Path) -> None:
    a, b = paired(tmp_path)
    try:
        with Running(a, b) as running:
            wait_for(running.caught_up)
            requester = Assistant(a.store, FakeModel(name="asker"), Config(auto_title=False))
            turn, aid = request_job(requester, "tell me", None, None, b.store.device_id)
            own, own_aid = request_job(requester, "mine", None, None, a.store.device_id)
            wait_for(lambda: turn.conversation_id in b.store.doc_ids())
            versions = dict(a.store.sync_index())
            with Listener(a.store.locks_dir) as listener:
                node_b = running.nodes["b"]
                # b does not run `own`'s attempt: its piece is dropped; the next one is b's own
                forged = LivePiece(own.conversation_id, own.answer_id, own_aid, 0, "forged")
                real = LivePiece(turn.conversation_id, turn.answer_id, aid, 0, "Once upon")
                assert node_b.send_piece(a.store.device_id, forged)
                assert node_b.send_piece(a.store.device_id, real)
                got: list[LivePiece] = []
                deadline = time.monotonic() + 10
                while not got and time.monotonic() < deadline:
                    got += listener.wait(0.2)
                assert got == [real]
            assert dict(a.store.sync_index()) == versions  # (a piece is never stored)
            assert a.store.text_length(turn.answer_id) == 0
            assert not node_b.send_piece("no-such-device", real)
    finally:
        a.close()
        b.close()


def test_a_watcher_shows_live_and_stored_text_once_each_gap_filled_by_the_store(
        tmp_path: Path) -> None:
    ctx = Context(model="fake", paths=Paths(tmp_path, tmp_path))
    store = ctx.store
    asker = Assistant(store, FakeModel(name="asker"), Config(auto_title=False))
    turn, aid = request_job(asker, "tell me", None, None, "a-runner-elsewhere")
    ref = JobRef(turn.conversation_id, turn.answer_id)
    shown: list[str] = []
    listener = Listener(store.locks_dir)
    watching = threading.Thread(target=lambda: shown.append(watch(
        ctx, ref, GenerationParams(), lease=60, on_piece=shown.append, live=listener)))
    watching.start()
    fanout = Fanout(store.locks_dir)
    text = "The keeper climbed the stairs as the storm came in."

    def send(offset: int, end: int, attempt: str = aid) -> None:
        fanout.send(LivePiece(ref.conversation_id, ref.answer_id, attempt, offset,
                              text[offset:end]))

    send(0, 4)
    send(4, 11)
    send(2, 15)  # overlaps what was shown: only the new part is
    send(0, 40, attempt="2-someone-else")  # another attempt's: not shown
    wait_for(lambda: "".join(shown) == text[:15], timeout=10)
    send(30, 40)  # a gap (15..30 never came live): shown only once the store has it
    time.sleep(0.2)
    assert "".join(shown) == text[:15]
    from sync import jobs

    store.write(ref.conversation_id, lambda doc: jobs.claim(doc, ref.answer_id, aid, "m"),
                touched={ref.answer_id})
    store.write(ref.conversation_id, lambda doc: jobs.append(
        doc, ref.answer_id, aid, text, False, "done"), touched={ref.answer_id})
    watching.join(10)
    assert shown[-1] == "done"
    assert "".join(shown[:-1]) == text
    ctx.close()
