"""Pairing two devices with a short one-time code, e.g. "7-violet-anchor".

The code is the password of a SPAKE2 exchange run inside TLS. The joiner presents no TLS
certificate (nobody trusts it yet); instead each side proves knowledge of the code with a MAC
over both certificates' fingerprints as each side saw them, so a wrong code, or anyone in the
middle, fails on both sides and trusts nothing. On success the inviter adds the joiner to its
household and hands over the household document; the joiner adopts it. A code works once and
expires after a few minutes.

Strangers cannot burn or hold a code: a wrong try does not use it up. Each address gets
`TRIES_PER_ADDRESS` wrong tries at an offer, then is refused for it; after `MAX_WRONG_TRIES` in
all the offer is closed (an online guess of two words in 40,000 then succeeds with odds of at
most 1 in 2,000), and the inviter is told how many wrong tries came from where. Exchanges do
not lock the offer (only success uses it), and the node gives each unauthenticated connection
one overall deadline.

    joiner                                   inviter
    PAIR start {number, spake, name, device} ─►
                                            ◄─ PAIR spake {spake}
    PAIR confirm {mac_j, cert}               ─►   (checks mac_j; adds joiner to household)
                                            ◄─ PAIR accept {mac_i, household}   | PAIR fail
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from spake2 import SPAKE2_A, SPAKE2_B
from spake2.spake2 import SPAKEError

from models.errors import CoveyError
from sync.identity import device_id_from_cert, fingerprint

WORDS = ["acid", "acorn", "actor", "amber", "anchor", "apple", "april", "arrow", "aspen", "atlas", "autumn", "bacon", "badge", "bamboo", "banjo", "basil", "beach", "berry", "birch", "bison", "blaze", "bloom", "bonus", "brave", "bread", "brick", "bridge", "brook", "cabin", "cactus", "camel", "candle", "canoe", "cargo", "cedar", "chalk", "cherry", "cider", "cliff", "clover", "cobalt", "comet", "copper", "coral", "cosmos", "cotton", "crane", "crystal", "daisy", "delta", "denim", "desert", "dingo", "dolphin", "dragon", "eagle", "echo", "ember", "falcon", "fern", "fiddle", "flame", "forest", "fossil", "fox", "galaxy", "garden", "garlic", "gecko", "ginger", "glacier", "glow", "granite", "gravel", "harbor", "hazel", "heron", "honey", "igloo", "indigo", "iris", "ivory", "jade", "jasmine", "jelly", "jungle", "kayak", "kettle", "kiwi", "koala", "lagoon", "lantern", "lemon", "lilac", "lily", "linen", "lotus", "magnet", "mango", "maple", "marble", "meadow", "melon", "mint", "mirror", "mocha", "moss", "nectar", "nickel", "noble", "nutmeg", "oasis", "ocean", "olive", "onyx", "orbit", "orchid", "otter", "oyster", "paddle", "panda", "pebble", "pepper", "pilot", "pine", "planet", "plum", "polar", "poppy", "prism", "pumpkin", "quartz", "quill", "radar", "raven", "reef", "river", "robin", "rocket", "ruby", "saffron", "salmon", "sapphire", "satin", "shadow", "silver", "sparrow", "spruce", "falls", "summit", "sunset", "tango", "thistle", "thunder", "tiger", "topaz", "tulip", "tundra", "umber", "velvet", "violet", "walnut", "willow", "winter", "zebra", "zephyr"]
CODE = re.compile(r"^([2-9]|[1-9][0-9])-([a-z]+)-([a-z]+)$")
OFFER_TTL = 300.0  # seconds a code stays valid
TRIES_PER_ADDRESS = 3  # wrong tries one address may make at one offer
MAX_WRONG_TRIES = 20  # wrong tries in all before the offer is closed
ID_JOINER, ID_INVITER = b"covey-joiner", b"covey-inviter"


class PairingError(CoveyError):
    """Pairing failed; nothing was trusted."""




def new_code() -> str:
    return f"{secrets.randbelow(98) + 2}-{secrets.choice(WORDS)}-{secrets.choice(WORDS)}"


def normalize_code(text: str) -> str:
    """Forgiving input: case, spaces or dots between the parts; a clear error otherwise."""
    code = re.sub(r"[\s._]+", "-", text.strip().lower())
    match = CODE.match(code)
    if not match or match.group(2) not in WORDS or match.group(3) not in WORDS:
        raise PairingError(
            f"{text!r} is not a pairing code (it looks like 7-violet-anchor: a number and two "
            "words, shown by `covey pair` on the other device)"
        )
    return code


def code_number(code: str) -> int:
    return int(code.split("-", 1)[0])


# -- the exchange ---------------------------------------------------------------------------

def confirmation(key: bytes, role: bytes, inviter_fp: str, joiner_fp: str) -> str:
    message = role + b"|" + inviter_fp.encode() + b"|" + joiner_fp.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def joiner_start(code: str) -> tuple[SPAKE2_A, bytes]:
    spake = SPAKE2_A(code.encode(), idA=ID_JOINER, idB=ID_INVITER)
    return spake, spake.start()


def inviter_start(code: str) -> tuple[SPAKE2_B, bytes]:
    spake = SPAKE2_B(code.encode(), idA=ID_JOINER, idB=ID_INVITER)
    return spake, spake.start()


def finish(spake: SPAKE2_A | SPAKE2_B, their_message: Any) -> bytes:
    try:
        message = bytes.fromhex(their_message) if isinstance(their_message, str) else b""
        return bytes(spake.finish(message))
    except (ValueError, SPAKEError):
        raise PairingError("the other device sent a malformed pairing message") from None


def cert_identity(pem: Any) -> tuple[str, str, str]:
    """(device id, fingerprint, PEM) of a certificate sent during pairing."""
    if not isinstance(pem, str) or len(pem) > 16_384:
        raise PairingError("the other device sent no usable certificate")
    try:
        der = x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(
            serialization.Encoding.DER)
    except (ValueError, UnicodeEncodeError):
        raise PairingError("the other device sent a malformed certificate") from None
    return device_id_from_cert(der), fingerprint(der), pem


def clean_name(name: Any) -> str:
    text = name if isinstance(name, str) else ""
    return re.sub(r"[^\w .@'-]", "", text)[:64].strip() or "unnamed device"
