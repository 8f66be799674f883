"""The pairing steps without a network (sync/pair_steps.py): both sides fed each other's frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sync.frames import FrameDecoder, FrameType
from sync.identity import Identity, load_or_create
from sync.pair_steps import InviterSteps, JoinerSteps
from sync.pairing import PairingError, code_number
from sync.protocol_events import LocalProtocolError

CODE = "7-violet-anchor"


def header(frame: bytes) -> dict[str, Any]:
    decoder = FrameDecoder()
    decoder.feed(frame)
    got = decoder.next_frame()
    assert got is not None and got.type == FrameType.PAIR and decoder.next_frame() is None
    return got.header


@pytest.fixture
def pair_of(tmp_path: Path) -> tuple[Identity, Identity]:
    return load_or_create(tmp_path / "inviter", "pi"), load_or_create(tmp_path / "joiner", "laptop")


def test_the_right_code_pairs_and_each_side_proves_it(pair_of) -> None:  # type: ignore[no-untyped-def]
    inviter_id, joiner_id = pair_of
    joiner = JoinerSteps(CODE, joiner_id, "laptop", inviter_id.fingerprint)
    inviter = InviterSteps(inviter_id)
    start = header(joiner.start())
    assert inviter.on_start(start) == code_number(CODE) and "code" not in str(start)
    confirm = joiner.on_spake(header(inviter.with_code(CODE)))
    admitted = inviter.on_confirm(header(confirm))
    assert (admitted.device_id, admitted.fingerprint, admitted.name) == (
        joiner_id.device_id, joiner_id.fingerprint, "laptop")
    assert admitted.proof["transcript"] and admitted.proof["sig"]
    assert joiner.on_accept(header(inviter.accept(b"household bytes"))) == b"household bytes"


def test_a_wrong_code_is_refused_by_the_inviter_and_nothing_is_admitted(pair_of) -> None:  # type: ignore[no-untyped-def]
    inviter_id, joiner_id = pair_of
    joiner = JoinerSteps("7-violet-almond", joiner_id, "laptop", inviter_id.fingerprint)
    inviter = InviterSteps(inviter_id)
    inviter.on_start(header(joiner.start()))  # (the same number: only the words differ)
    confirm = joiner.on_spake(header(inviter.with_code(CODE)))
    with pytest.raises(PairingError, match="wrong code"):
        inviter.on_confirm(header(confirm))
    assert inviter.step == "failed"  # a failed pairing is over: no step is taken after it
    with pytest.raises(LocalProtocolError):
        inviter.accept(b"household")  # no household for a device that did not prove the code
    with pytest.raises(LocalProtocolError):
        inviter.on_confirm(header(confirm))  # nor a second guess on the same exchange


def test_an_inviter_that_does_not_know_the_code_is_refused_by_the_joiner(pair_of) -> None:  # type: ignore[no-untyped-def]
    inviter_id, joiner_id = pair_of
    joiner = JoinerSteps(CODE, joiner_id, "laptop", inviter_id.fingerprint)
    impostor = InviterSteps(inviter_id)
    impostor.on_start(header(joiner.start()))
    joiner.on_spake(header(impostor.with_code("7-violet-almond")))
    forged = {"step": "accept", "household": b"theirs".hex(), "mac": "0" * 64}
    with pytest.raises(PairingError, match="wrong code"):
        joiner.on_accept(forged)


def test_a_joiner_that_does_not_sign_the_transcript_is_refused(pair_of) -> None:  # type: ignore[no-untyped-def]
    inviter_id, joiner_id = pair_of
    joiner = JoinerSteps(CODE, joiner_id, "laptop", inviter_id.fingerprint)
    inviter = InviterSteps(inviter_id)
    inviter.on_start(header(joiner.start()))
    confirm = header(joiner.on_spake(header(inviter.with_code(CODE))))
    confirm["proof"] = {"transcript": confirm["proof"]["transcript"], "sig": "00"}
    with pytest.raises(PairingError, match="did not sign"):
        inviter.on_confirm(confirm)


def test_malformed_or_out_of_order_steps(pair_of) -> None:  # type: ignore[no-untyped-def]
    inviter_id, joiner_id = pair_of
    with pytest.raises(PairingError, match="malformed"):
        InviterSteps(inviter_id).on_start({"step": "start", "number": "7"})
    with pytest.raises(LocalProtocolError):
        InviterSteps(inviter_id).with_code(CODE)  # before the joiner's start
    joiner = JoinerSteps(CODE, joiner_id, "laptop", inviter_id.fingerprint)
    with pytest.raises(LocalProtocolError):
        joiner.on_spake({"spake": "00"})  # before our own start
    joiner.start()
    with pytest.raises(PairingError):
        joiner.on_spake({"spake": "not hex"})
