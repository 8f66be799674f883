"""Discovery by mDNS with several devices on 127.0.0.1 (no namespaces needed).

mDNS traffic stays on loopback (each device's config confines zeroconf to 127.0.0.1).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.devices import Device, eventually

FAKE = ("--model", "fake")
LOOPBACK = ["127.0.0.1"]


@pytest.fixture
def devices(make_device):  # type: ignore[no-untyped-def]
    def make(name: str) -> Device:
        return make_device(name, mdns=LOOPBACK)  # type: ignore[no-any-return]

    return None, make


def pair_by_mdns(inviter: Device, joiner: Device, code: str) -> float:
    """`covey pair --code` on the inviter (its node running), `covey pair CODE` (no address)."""
    invite = inviter.popen("pair", "--code", code)
    try:
        started = time.monotonic()
        joined = joiner.covey("pair", code)
        assert joined.returncode == 0, joined.stderr
        _out, err = invite.communicate(timeout=60)
        assert invite.returncode == 0, err.decode()
        return time.monotonic() - started
    finally:
        if invite.poll() is None:
            invite.kill()


def peers(device: Device) -> list[dict]:  # type: ignore[type-arg]
    result = device.covey("peers", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def same(*devs: Device) -> bool:
    first = devs[0].contents()
    return bool(first) and all(d.contents() == first for d in devs[1:])


def test_three_devices_find_each_other_pair_and_converge_by_mdns_alone(devices) -> None:  # type: ignore[no-untyped-def]
    _made, make = devices
    a, b, c = make("a"), make("b"), make("c")
    stranger = make("stranger")  # another household on the same LAN
    for dev in (a, b, c, stranger):
        dev.serve()  # no --peer anywhere
    assert stranger.covey("ask", *FAKE, "the stranger's secret").returncode == 0
    pair_by_mdns(a, b, "11-amber-anchor")
    pair_by_mdns(a, c, "12-amber-anchor")
    started = time.monotonic()
    for dev in (a, b, c):
        assert dev.covey("ask", *FAKE, f"hello from {dev.name}").returncode == 0
    eventually(lambda: same(a, b, c) and len(a.contents()) == 3, timeout=60)
    print(f"converged {time.monotonic() - started:.2f}s after the writes")
    # the stranger is seen, and ignored: no connection, nothing sent or received
    seen = eventually(lambda: [p for p in peers(a) if not p["same_household"]], timeout=20)
    assert seen and not seen[0]["paired"]
    assert "the stranger's secret" not in str(a.contents())
    assert len(stranger.contents()) == 1
    assert "sync with" not in stranger.log.read_text()
    # a clean shutdown is seen by the others within seconds (mDNS goodbye + closed connections)
    b_id = b.device_id
    b.stop()
    gone_at = time.monotonic()
    eventually(lambda: not next(p for p in peers(a) if p["device_id"] == b_id)["online"], timeout=10)
    print(f"departure seen after {time.monotonic() - gone_at:.2f}s")


def test_killed_device_is_marked_offline_and_comes_back(devices) -> None:  # type: ignore[no-untyped-def]
    _made, make = devices
    a, b = make("a"), make("b")
    a.serve()
    b.serve()
    pair_by_mdns(a, b, "13-amber-anchor")
    assert a.covey("ask", *FAKE, "before the kill").returncode == 0
    eventually(lambda: same(a, b))
    b.kill()
    # no goodbye from a killed device: its connection breaking marks it offline
    eventually(lambda: not next(p for p in peers(a) if p["device_id"] == b.device_id)["online"],
               timeout=15)
    assert a.covey("ask", *FAKE, "while b was dead").returncode == 0
    b.serve()
    eventually(lambda: "while b was dead" in str(b.contents()), timeout=60)


def test_doctor_reports_mdns_working_on_loopback(devices) -> None:  # type: ignore[no-untyped-def]
    _made, make = devices
    a = make("a")
    result = a.covey("doctor", "--network")
    assert "[ok  ] mdns" in result.stdout and "working" in result.stdout, result.stdout


def test_doctor_without_network_flag_sends_nothing(devices) -> None:  # type: ignore[no-untyped-def]
    _made, make = devices
    a = make("a")
    result = a.covey("doctor")
    assert "covey doctor --network" in result.stdout
