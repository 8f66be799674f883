"""Strangers at a pairing code: they cannot burn it, hold it, or hold our connections.

A real `covey pair` waits with its code; the strangers are this test process, speaking the
pairing protocol (and raw TLS) from other loopback addresses.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.config import Paths
from sync import pair_flow, pairing
from sync.frames import Frame, FrameType, encode
from sync.identity import load_or_create
from sync.pairing import PairingError
from sync.store import Store
from sync.tls import pairing_client_context
from tests.devices import Device, _offer_open, eventually

CODE = "37-amber-anchor"
STRANGERS = 200
SLOW_FRAME = encode(Frame(FrameType.PAIR, {"step": "start", "number": 37, "spake": "00" * 40}))


@pytest.fixture
def devices(make_device):  # type: ignore[no-untyped-def]
    return make_device


def inviting(a: Device):  # type: ignore[no-untyped-def]
    invite = a.popen("pair", "--code", CODE, "--listen", a.address)
    eventually(lambda: _offer_open(a, CODE), timeout=20)
    return invite


async def guess(host: str, port: int, code: str, store: Store, tmp: Path) -> str:
    identity = load_or_create(tmp / "stranger-id", "stranger")
    with ThreadPoolExecutor(1) as executor:
        try:
            await pair_flow.async_join(host, port, code, store, identity, "stranger", executor,
                                 local_addr=("127.0.0.2", 0))  # not the real device's address
            return "paired"
        except PairingError as exc:
            return str(exc)


def test_a_stranger_guessing_cannot_burn_the_code(devices, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("alpha"), devices("bravo")
    invite = inviting(a)
    stranger = Store.open(Paths.at(tmp_path / "stranger"), "STRANGER")
    rng = random.Random(3)
    outcomes: list[str] = []
    started = time.monotonic()
    try:
        async def attack() -> None:
            for number in range(2, 100):  # every number, with words it does not know
                words = rng.sample(pairing.WORDS, 2)
                outcomes.append(await guess(a.host, a.port, f"{number}-{words[0]}-{words[1]}",
                                            stranger, tmp_path))
            for _ in range(10):  # and the right number, again and again
                outcomes.append(await guess(a.host, a.port, "37-apple-acorn", stranger, tmp_path))

        asyncio.run(attack())
        took = time.monotonic() - started
        assert "paired" not in outcomes
        wrong = [o for o in outcomes if "wrong code" in o]
        refused = [o for o in outcomes if "too many wrong tries" in o]
        assert len(wrong) == pairing.TRIES_PER_ADDRESS and len(refused) >= 8
        print(f"\n{len(outcomes)} attempts in {took:.1f} s: {len(wrong)} wrong tries counted, "
              f"{len(refused)} refused; the code stayed open")
        # The real device still pairs with the code.
        joined = b.covey("pair", CODE, "--address", a.address)
        assert joined.returncode == 0, joined.stderr
        _, err = invite.communicate(timeout=30)
        assert invite.returncode == 0, err.decode()
        assert "3 from 127.0.0.2" in err.decode()  # the inviter was told who tried
    finally:
        stranger.close()
        if invite.poll() is None:
            invite.kill()
    assert sorted(m["name"] for m in json.loads(a.covey("devices", "--json").stdout)) == \
        ["alpha", "bravo"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_tricklers_cannot_hold_pairing_connections_or_memory(devices) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("alpha"), devices("bravo")
    invite = inviting(a)
    try:
        held: list[float] = []  # how long the node kept each stranger's connection

        async def trickle(source: str) -> None:
            ctx = pairing_client_context()
            began = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(
                    a.host, a.port, ssl=ctx, local_addr=(source, 0))
            except (OSError, ssl.SSLError):
                held.append(0.0)
                return
            try:
                for byte in SLOW_FRAME[:40]:  # a valid frame, a byte a second: never whole
                    writer.write(bytes([byte]))
                    await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(100), 1.0) == b"":
                            break  # the node closed it
                    except TimeoutError:
                        continue
            except (OSError, ssl.SSLError):
                pass
            finally:
                held.append(time.monotonic() - began)
                writer.close()

        async def wave() -> None:
            await asyncio.gather(*(trickle(f"127.0.0.{2 + i % 50}") for i in range(STRANGERS)))

        rss = [rss_mb(invite.pid)]
        for _ in range(3):  # wave after wave: what one wave takes is given back for the next
            asyncio.run(wave())
            rss.append(rss_mb(invite.pid))
        # Meanwhile and after, the real device (another address) pairs.
        joined = b.covey("pair", CODE, "--address", a.address)
        assert joined.returncode == 0, joined.stderr
        print(f"\n3 waves of {STRANGERS} trickling strangers: longest held {max(held):.1f} s; "
              f"inviter RSS after each wave {[round(x) for x in rss]} MB")
        assert max(held) < 15.0  # the exchange deadline (10 s), not the strangers, decides
        assert rss[3] - rss[1] < 15  # no growth from wave to wave (TLS buffers are reused)
        invite.communicate(timeout=30)
        assert invite.returncode == 0
    finally:
        if invite.poll() is None:
            invite.kill()
