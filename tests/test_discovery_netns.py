"""Real network separation: each device in its own network namespace on a virtual bridge.

The test builds (and tears down) its own LAN: a namespace holding a bridge, and one namespace
per device joined to it by a veth pair, addresses 10.77.0.N/24 that exist only inside those
namespaces. Traffic never leaves them. Needs root and `ip netns`; without them the loopback
variant (test_discovery_loopback.py) still runs, so discovery is always tested.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devices import Device, eventually
from tests.netns import Lan, can_netns

FAKE = ("--model", "fake")
REASON = can_netns()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"network namespaces: {REASON}")


@pytest.fixture
def lan() -> Iterator[Lan]:
    network = Lan(f"cv{os.getpid() % 100000}")
    try:
        yield network
    finally:
        network.close()


def same(*devs: Device) -> bool:
    first = devs[0].contents()
    return bool(first) and all(d.contents() == first for d in devs[1:])


def test_devices_in_namespaces_discover_pair_converge_and_survive_a_cut(lan: Lan, tmp_path: Path) -> None:
    devices: list[tuple[Device, list[str]]] = []
    try:
        for n in (1, 2, 3):
            ns, address = lan.plug(n)
            device = Device(tmp_path, f"dev{n}", host=address, mdns=[address], port=7420)
            devices.append((device, ["ip", "netns", "exec", ns]))
        started = time.monotonic()
        for device, prefix in devices:
            device.serve(prefix=prefix)
        (a, _in_a), (b, in_b), (c, in_c) = devices
        # pairing by code with no address: the joiner finds the inviter by mDNS
        for joiner, inside, code in ((b, in_b, "21-amber-anchor"), (c, in_c, "22-amber-anchor")):
            invite = a.popen("pair", "--code", code)
            joined = joiner.popen("pair", code, prefix=inside)
            _out, err = joined.communicate(timeout=60)
            assert joined.returncode == 0, err.decode()
            assert invite.wait(timeout=60) == 0
        paired_at = time.monotonic()
        for device, _ in devices:
            assert device.covey("ask", *FAKE, f"hello from {device.name}").returncode == 0
        eventually(lambda: same(a, b, c) and len(a.contents()) == 3, timeout=60)
        converged = time.monotonic() - paired_at
        print(f"\nnamespaces: start→paired {paired_at - started:.2f}s, converged {converged:.2f}s")
        # cut c's link while the others keep writing; restore it; c catches up
        lan.link(f"{lan.prefix}d3", up=False)
        for i in range(3):
            assert a.covey("ask", *FAKE, f"while c was cut {i}").returncode == 0
            assert b.covey("ask", *FAKE, f"b while c was cut {i}").returncode == 0
        time.sleep(1.0)
        assert "while c was cut" not in str(c.contents())
        lan.link(f"{lan.prefix}d3", up=True)
        healed = time.monotonic()
        eventually(lambda: same(a, b, c) and len(c.contents()) == 9, timeout=90)
        print(f"namespaces: link restored → converged {time.monotonic() - healed:.2f}s")
        # discovery alone: c restarts with no address known; a and b find it by mDNS
        c.stop()
        restarted = time.monotonic()
        c.serve(prefix=in_c)
        assert a.covey("ask", *FAKE, "after c restarted").returncode == 0
        eventually(lambda: "after c restarted" in str(c.contents()), timeout=60)
        print(f"namespaces: restart → rediscovered and synced {time.monotonic() - restarted:.2f}s")
    finally:
        for device, _ in devices:
            device.kill()
