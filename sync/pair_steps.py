"""The pairing exchange's steps with no networking (sans-IO, as `protocol.Session` is).

Each side is an object fed the other device's PAIR headers, returning the frames to send; the
socket reads, the deadlines and the store (the offer of a code, admitting a member) belong to
the adapter, sync/pair_flow.py. The exchange (pairing.py has the design):

    joiner  start(number, SPAKE2 message, name, device) ──►  inviter: the offer for `number`
    joiner  ◄── spake(SPAKE2 message)
    joiner  confirm(certificate, signed transcript, MAC)  ──►  inviter checks MAC and signature
    joiner  ◄── accept(household, MAC)                 joiner checks MAC, then the household

Steps out of order are the caller's bug (LocalProtocolError); anything the other device gets
wrong is a PairingError, and nothing was trusted.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from sync import membership, pairing
from sync.frames import Frame, FrameType, encode
from sync.identity import Identity, verify
from sync.pairing import PairingError
from sync.protocol_events import LocalProtocolError


def pair_frame(**header: Any) -> bytes:
    return encode(Frame(FrameType.PAIR, header))


def fail_frame(reason: str) -> bytes:
    return pair_frame(step="fail", reason=reason)


def _hex(value: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        raise PairingError(f"the other device sent a malformed {what}") from None


P = ParamSpec("P")
S = TypeVar("S", bound="_Steps")
R = TypeVar("R")


def _step(needs: str, to: str) -> Callable[[Callable[Concatenate[S, P], R]],
                                          Callable[Concatenate[S, P], R]]:
    """A step taken only after `needs`; it moves the side on to `to` — or, when it fails, to
    "failed", after which no step is taken (a failed pairing is over)."""
    def wrap(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        def step(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if self.step != needs:
                raise LocalProtocolError(f"pairing step {to!r} after {self.step!r}")
            try:
                result = method(self, *args, **kwargs)
            except BaseException:
                self.step = "failed"
                raise
            self.step = to
            return result

        step.__name__, step.__doc__ = method.__name__, method.__doc__
        return step

    return wrap


class _Steps:
    step = "new"  # where the side's exchange is (see each step's needs and result)


class JoinerSteps(_Steps):
    """The device that types the code (`covey pair CODE`)."""

    def __init__(self, code: str, identity: Identity, name: str, inviter_fp: str) -> None:
        self.code, self.identity, self.name = code, identity, name
        self.inviter_fp = inviter_fp  # (pinned from the TLS handshake)
        self._key = b""

    @_step("new", "started")
    def start(self) -> bytes:
        self._spake, self._message = pairing.joiner_start(self.code)
        return pair_frame(step="start", number=pairing.code_number(self.code),
                          spake=self._message.hex(), name=self.name,
                          device=self.identity.device_id)

    @_step("started", "confirmed")
    def on_spake(self, reply: dict[str, Any]) -> bytes:
        """The inviter's SPAKE2 message → our certificate, signed transcript and MAC."""
        self._key = pairing.finish(self._spake, reply.get("spake"))
        # Our proof that we took part in this pairing, for every member to check (the log).
        transcript = membership.transcript_of(self._message, _hex(reply.get("spake"), "reply"))
        me = self.identity
        proof = {"transcript": transcript, "sig": me.sign(
            membership.proof_message(self.inviter_fp, me.fingerprint, transcript))}
        return pair_frame(step="confirm", cert=me.cert_pem, proof=proof,
                          mac=pairing.confirmation(self._key, pairing.ID_JOINER, self.inviter_fp,
                                                   me.fingerprint))

    @_step("confirmed", "done")
    def on_accept(self, accept: dict[str, Any]) -> bytes:
        """The inviter's MAC checked → the household it sent (to be checked before use)."""
        expected = pairing.confirmation(self._key, pairing.ID_INVITER, self.inviter_fp,
                                        self.identity.fingerprint)
        if not hmac.compare_digest(str(accept.get("mac")), expected):
            raise PairingError("wrong code (or someone in between): nothing was trusted")
        return _hex(accept.get("household", ""), "household")


@dataclass(frozen=True)
class Joiner:
    """Who proved they know the code: what admitting them needs."""

    device_id: str
    fingerprint: str
    cert_pem: str
    name: str
    proof: dict[str, str]  # the signed transcript, for the membership log


class InviterSteps(_Steps):
    """The device that shows the code (`covey pair`, the app's pairing screen, a node)."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._key = b""

    @_step("new", "started")
    def on_start(self, start: dict[str, Any]) -> int:
        """The joiner's first step → the number of the code it claims to know (whose offer the
        caller looks up, and passes to `with_code`)."""
        number = start.get("number")
        if start.get("step") != "start" or type(number) is not int:
            raise PairingError("malformed pairing request")
        self._start = start
        return number

    @_step("started", "answered")
    def with_code(self, code: str) -> bytes:
        """The open offer's code → our SPAKE2 message."""
        spake, message = pairing.inviter_start(code)
        self._key = pairing.finish(spake, self._start.get("spake"))
        self._transcript = membership.transcript_of(
            _hex(self._start.get("spake"), "pairing request"), message)
        return pair_frame(step="spake", spake=message.hex())

    @_step("answered", "confirmed")
    def on_confirm(self, confirm: dict[str, Any]) -> Joiner:
        """The joiner's certificate, MAC and signature checked → who it is."""
        device_id, joiner_fp, pem = pairing.cert_identity(confirm.get("cert"))
        me = self.identity.fingerprint
        expected = pairing.confirmation(self._key, pairing.ID_JOINER, me, joiner_fp)
        if not hmac.compare_digest(str(confirm.get("mac")), expected):
            raise PairingError("wrong code: nothing was trusted")
        proof = confirm.get("proof")
        if not isinstance(proof, dict) or proof.get("transcript") != self._transcript or \
                not verify(pem, str(proof.get("sig")),
                           membership.proof_message(me, joiner_fp, self._transcript)):
            raise PairingError("the other device did not sign the pairing (an older covey?)")
        self._joiner = Joiner(device_id, joiner_fp, pem, pairing.clean_name(self._start.get("name")),
                              {"transcript": self._transcript, "sig": str(proof.get("sig"))})
        return self._joiner

    @_step("confirmed", "done")
    def accept(self, household: bytes) -> bytes:
        """The household (with the joiner admitted) and our MAC, for the joiner."""
        return pair_frame(step="accept", household=household.hex(), mac=pairing.confirmation(
            self._key, pairing.ID_INVITER, self.identity.fingerprint, self._joiner.fingerprint))
