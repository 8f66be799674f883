"""An unpaired device gets nothing: certificates, openssl, revocation, wrong codes, key files."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from app.config import Paths
from sync.frames import Frame, FrameType, encode
from sync.identity import load_or_create
from sync.tls import client_context, pairing_client_context
from tests.devices import Device, eventually, pair

SECRET = "the-secret-llama-recipe"


@pytest.fixture
def devices(make_device):  # type: ignore[no-untyped-def]
    return make_device


def rows(device: Device) -> int:
    conn = sqlite3.connect(device.home / "covey.db")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0])
    finally:
        conn.close()


async def _try_sync_as(identity_dir: Path, name: str, host: str, port: int,
                       trusted_pem: str) -> bytes:
    """Connect with our own (unpaired) certificate and try to start a sync session."""
    stranger = load_or_create(identity_dir, name)
    got = b""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, port, ssl=client_context(stranger, [trusted_pem])), 10)
        writer.write(encode(Frame(FrameType.HELLO, {"protocols": [1], "schema": 1,
                    "device": stranger.device_id, "household": "x", "epoch": "e",
                    "instance": "i", "digest": "00"})))
        await writer.drain()
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            got += chunk
    except (OSError, TimeoutError):
        pass
    return got


def test_unpaired_certificate_gets_nothing_and_writes_nothing(devices, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = devices("a")
    assert a.covey("ask", "--model", "fake", SECRET).returncode == 0
    a.serve()
    a.settled()
    before = rows(a)
    pem = (a.home / "identity" / "device.crt").read_text()
    got = asyncio.run(_try_sync_as(tmp_path / "stranger", "stranger", a.host, a.port, pem))
    assert got == b"" and SECRET.encode() not in got
    assert rows(a) == before
    assert a.proc is not None and a.proc.poll() is None  # the node shrugs it off and stays up


def test_certificate_less_client_may_only_pair(devices) -> None:  # type: ignore[no-untyped-def]
    a = devices("a")
    assert a.covey("ask", "--model", "fake", SECRET).returncode == 0
    a.serve()
    a.settled()
    before = rows(a)

    async def probe() -> bytes:
        reader, writer = await asyncio.open_connection(a.host, a.port, ssl=pairing_client_context())
        writer.write(encode(Frame(FrameType.HELLO, {"protocols": [1], "schema": 1})))
        writer.write(encode(Frame(FrameType.UPDATE, {"doc": "x", "ack": 1, "part": 0,
                                                     "sizes": [3], "last": True}, b"abc")))
        await writer.drain()
        data = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            data += chunk
        return data

    got = asyncio.run(probe())
    assert SECRET.encode() not in got
    assert b"pairing" in got  # told it only speaks pairing, then closed
    assert rows(a) == before


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_s_client_with_its_own_certificate_gets_nothing(devices, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = devices("a")
    assert a.covey("ask", "--model", "fake", SECRET).returncode == 0
    a.serve()
    a.settled()
    before = rows(a)
    stranger = load_or_create(tmp_path / "s", "s")
    result = subprocess.run(
        ["openssl", "s_client", "-connect", a.address, "-tls1_3", "-quiet",
         "-cert", str(stranger.cert_path), "-key", str(stranger.key_path)],
        input=b"\x00\x00\x00\x10garbage-garbage!" * 10, capture_output=True, timeout=30)
    assert SECRET.encode() not in result.stdout
    assert len(result.stdout) < 200  # at most an alert: no conversation bytes
    assert rows(a) == before


def test_revoked_device_is_refused_after_the_revocation_syncs(devices) -> None:  # type: ignore[no-untyped-def]
    a, b, c = devices("a"), devices("b"), devices("c")
    pair(a, b, "5-amber-anchor")
    pair(a, c, "6-amber-anchor")
    a.serve()
    b.serve(a)
    c.serve(a)
    assert c.covey("ask", "--model", "fake", "c is still welcome").returncode == 0
    eventually(lambda: "c is still welcome" in str(b.contents()))
    assert a.covey("devices", "remove", c.device_id[:10]).returncode == 0
    # the revocation reaches b through a; a and b drop c
    eventually(lambda: any(d["revoked"] for d in json.loads(b.covey("devices", "--json").stdout)
                           if d["device_id"] == c.device_id))
    eventually(lambda: "no longer trusted" in c.log.read_text() or
               "no longer a member" in a.log.read_text())
    assert c.covey("ask", "--model", "fake", "written after revocation").returncode == 0
    time.sleep(3)  # give a refused device every chance to get through (bounded wait)
    assert "written after revocation" not in str(a.contents())
    assert "written after revocation" not in str(b.contents())
    members = json.loads(a.covey("devices", "--json").stdout)
    assert [m["revoked"] for m in members if m["device_id"] == c.device_id] == [True]


def test_a_wrong_code_trusts_nothing_and_leaves_the_code_open(devices) -> None:  # type: ignore[no-untyped-def]
    a, b, c = devices("a"), devices("b"), devices("c")
    invite = a.popen("pair", "--code", "8-violet-anchor", "--listen", a.address)
    try:
        from tests.devices import _offer_open

        eventually(lambda: _offer_open(a, "8-violet-anchor"))
        joined = c.covey("pair", "8-violet-apple", "--address", a.address)
        assert joined.returncode != 0 and "wrong code" in joined.stderr
        assert "Traceback" not in joined.stderr
        members = json.loads(c.covey("devices", "--json").stdout)
        assert [m["device_id"] for m in members] == [c.device_id]  # c trusts nothing
        # The wrong try did not use the code up: the real device still pairs with it.
        right = b.covey("pair", "8-violet-anchor", "--address", a.address)
        assert right.returncode == 0, right.stderr
        _, err = invite.communicate(timeout=30)
        assert invite.returncode == 0, err.decode()
        assert "a wrong code was tried: 1 wrong tries so far (1 from 127.0.0.1)" in err.decode()
    finally:
        if invite.poll() is None:
            invite.kill()
    members = json.loads(a.covey("devices", "--json").stdout)
    assert sorted(m["name"] for m in members) == ["a", "b"]  # never c
    # now the code is used up: it works no more
    retry = c.covey("pair", "8-violet-anchor", "--address", a.address)
    assert retry.returncode != 0


def test_bad_codes_are_a_clear_error(devices) -> None:  # type: ignore[no-untyped-def]
    b = devices("b")
    for code in ("hello", "1-violet-anchor", "7-violet-notaword", ""):
        result = b.covey("pair", code, "--address", "127.0.0.1:9")
        assert result.returncode != 0 and "Traceback" not in result.stderr


def test_private_key_is_0600(tmp_path: Path) -> None:
    identity = load_or_create(Paths.at(tmp_path).identity_dir, "x")
    assert stat.S_IMODE(identity.key_path.stat().st_mode) == 0o600


def test_a_certificate_tells_a_stranger_no_device_name(tmp_path: Path) -> None:
    from cryptography import x509

    identity = load_or_create(Paths.at(tmp_path).identity_dir, "Anna's laptop")
    cert = x509.load_pem_x509_certificate(identity.cert_pem.encode())
    assert "Anna" not in cert.subject.rfc4514_string()
    assert "Anna" not in cert.issuer.rfc4514_string()
    if shutil.which("openssl"):  # as a stranger's tool shows it
        shown = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=identity.cert_pem,
                               capture_output=True, text=True, check=True).stdout
        assert "Anna" not in shown and "covey" in shown


def _plant(planter: Device, planted: Device) -> None:
    """A compromised member brings in a device of its own making (it holds both keys, so it
    can sign the planted one's proof of "pairing" too)."""
    from sync import adoption

    planter_id = load_or_create(Paths.at(planter.home).identity_dir, planter.name)
    planted_id = load_or_create(Paths.at(planted.home).identity_dir, planted.name)
    store, joiner = planter.store(), planted.store()
    try:
        adoption.pair_locally(store, planter_id, planted_id, planted.name, joiner_store=joiner)
    finally:
        store.close()
        joiner.close()


def _members(device: Device) -> dict[str, bool]:
    return {d["device_id"]: d["revoked"] for d in json.loads(device.covey("devices", "--json").stdout)}


def test_a_planted_device_is_refused_once_its_planter_is_removed(devices) -> None:  # type: ignore[no-untyped-def]
    a, m, x = devices("a"), devices("m"), devices("x")
    pair(a, m, "5-amber-anchor")
    _plant(m, x)
    a.serve()
    m.serve(a)
    eventually(lambda: _members(a).get(x.device_id) is False)  # the plant reached a
    x.serve(a)
    assert a.covey("ask", "--model", "fake", SECRET).returncode == 0
    eventually(lambda: SECRET in str(x.contents()))  # (so the threat is real)
    removed = a.covey("devices", "remove", m.device_id[:10])
    assert removed.returncode == 0, removed.stderr
    assert "Also revoked what it brought in: x" in removed.stdout
    assert _members(a) == {a.device_id: False, m.device_id: True, x.device_id: True}
    eventually(lambda: "no longer a member" in a.log.read_text())
    assert a.covey("ask", "--model", "fake", "after the removal").returncode == 0
    assert x.covey("ask", "--model", "fake", "from the planted device").returncode == 0
    time.sleep(3)  # every chance to get through (bounded)
    assert "after the removal" not in str(x.contents()) + str(m.contents())
    assert "from the planted device" not in str(a.contents())
    x.stop()
    pem = (a.home / "identity" / "device.crt").read_text()
    got = asyncio.run(_try_sync_as(x.home / "identity", "x", a.host, a.port, pem))
    assert got == b""  # the planted device, with its own key: not one byte
    assert "removed by a" in a.covey("devices").stdout


def test_a_member_cannot_lock_out_the_device_that_invited_it(devices) -> None:  # type: ignore[no-untyped-def]
    a, b, m = devices("a"), devices("b"), devices("m")
    pair(a, b, "5-amber-anchor")
    pair(a, m, "6-amber-anchor")
    a.serve()
    b.serve(a)
    m.serve(a)
    vote = m.covey("devices", "remove", a.device_id[:10])
    assert vote.returncode == 0 and "Your vote to remove a" in vote.stdout
    assert m.covey("ask", "--model", "fake", "after the vote").returncode == 0
    eventually(lambda: "after the vote" in str(b.contents()))  # m's entry reached everyone
    assert b.covey("ask", "--model", "fake", "b still syncs with a").returncode == 0
    eventually(lambda: "b still syncs with a" in str(a.contents()))
    assert _members(a) == _members(b) == {a.device_id: False, b.device_id: False,
                                          m.device_id: False}
