"""A LAN of network namespaces for multi-device tests (needs root and iproute2).

A namespace holds a bridge; each device gets a namespace of its own, joined to the bridge by a
veth pair, with an address 10.77.0.N/24 that exists only inside these namespaces, so traffic
never leaves them. Cutting a device's link is `ip link set eth0 down` inside its namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def can_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    probe = f"cvprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if made.returncode != 0:
        return f"ip netns unavailable: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class Lan:
    """A bridge in its own namespace, and device namespaces plugged into it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lan = f"{prefix}lan"
        self.namespaces: list[str] = [self.lan]
        sh("ip", "netns", "add", self.lan)
        sh("ip", "-n", self.lan, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.lan, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0")
        sh("ip", "-n", self.lan, "link", "set", "br0", "up")

    def plug(self, n: int) -> tuple[str, str]:
        ns, veth = f"{self.prefix}d{n}", f"{self.prefix}v{n}"
        address = f"10.77.0.{n}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "link", "add", veth, "netns", self.lan, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", self.lan, "link", "set", veth, "master", "br0")
        sh("ip", "-n", self.lan, "link", "set", veth, "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.link(ns, up=True)
        return ns, address

    def link(self, ns: str, up: bool) -> None:
        sh("ip", "-n", ns, "link", "set", "eth0", "up" if up else "down")
        if up:  # taking the link down removes the multicast route: put it back
            subprocess.run(["ip", "-n", ns, "route", "replace", "224.0.0.0/4", "dev", "eth0"],
                           check=True, capture_output=True)

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def lan_for_a_test(prefix: str):  # type: ignore[no-untyped-def]
    """A Lan for one test (skipped, saying why, where namespaces cannot be made); use as
    `yield from lan_for_a_test("ab")` in a fixture."""
    import os as _os

    import pytest

    reason = can_netns()
    if reason is not None:
        pytest.skip(f"network namespaces: {reason}")
    network = Lan(f"{prefix}{_os.getpid() % 100000}")
    try:
        yield network
    finally:
        network.close()
