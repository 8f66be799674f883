"""Standard mDNS tools see covey's service as they see any other (issue 17, 19): a legacy
unicast query from dig (a non-5353 port, RFC 6762 §6.7) is answered, and avahi-browse — a
real avahi-daemon in a network namespace of its own — lists and resolves it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devices import Device, eventually
from tests.netns import Lan, lan_for_a_test

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
"""
AVAHI_CONF = """[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
disable-publishing=yes
"""


def needs(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install bind9-dnsutils avahi-utils "
                    "avahi-daemon dbus)")


def dig_ptr(server: str, prefix: list[str] | None = None) -> str:
    out = subprocess.run([*(prefix or []), "dig", "-p", "5353", f"@{server}",
                          "_covey._tcp.local.", "PTR", "+time=2", "+tries=2"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout


def instance(device: Device) -> str:
    return f"covey-{device.device_id.replace('-', '')[:10].lower()}"


def test_dig_gets_a_legacy_unicast_answer_on_loopback(tmp_path: Path) -> None:
    needs("dig")
    device = Device(tmp_path, "dug", mdns=["127.0.0.1"])
    try:
        device.serve()
        answer = eventually(lambda: (lambda out: out if instance(device) in out else "")(
            dig_ptr("127.0.0.1")), timeout=20)
        assert "status: NOERROR" in answer and "flags: qr aa" in answer
        assert f"PTR\t{instance(device)}._covey._tcp.local." in answer
        assert f"SRV\t0 0 {device.port} {instance(device)}.local." in answer  # where to dial
    finally:
        device.stop()


@pytest.fixture
def lan() -> Iterator[Lan]:
    yield from lan_for_a_test("mc")


def test_avahi_browse_and_dig_in_another_namespace_see_covey(lan: Lan, tmp_path: Path) -> None:
    needs("dig", "avahi-browse", "avahi-daemon", "dbus-daemon")
    ns_covey, address = lan.plug(1)
    ns_tools, _ = lan.plug(2)
    inside = ["ip", "netns", "exec", ns_tools]
    device = Device(tmp_path, "seen", host=address, mdns=[address])
    bus_path = tmp_path / "bus"
    (tmp_path / "bus.conf").write_text(BUS_CONF.format(path=bus_path))
    (tmp_path / "avahi.conf").write_text(AVAHI_CONF)
    # A system bus and an avahi-daemon of the test's own (nothing of the machine's is touched).
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={bus_path}"}
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        device.serve(prefix=["ip", "netns", "exec", ns_covey])
        helpers.append(subprocess.Popen(["dbus-daemon", f"--config-file={tmp_path / 'bus.conf'}",
                                         "--nofork", "--nopidfile"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        eventually(bus_path.exists, timeout=10)
        log = (tmp_path / "avahi.log").open("wb")
        helpers.append(subprocess.Popen([*inside, "avahi-daemon", "-f", str(tmp_path / "avahi.conf"),
                                         "--no-drop-root", "--no-chroot", "--no-rlimits"],
                                        env=env, stdout=log, stderr=log))
        eventually(lambda: "Server startup complete" in (tmp_path / "avahi.log").read_text(),
                   timeout=20)

        def browse() -> str:
            out = subprocess.run([*inside, "avahi-browse", "-rpt", "_covey._tcp"], env=env,
                                 capture_output=True, text=True, timeout=30)
            resolved = [line for line in out.stdout.splitlines() if line.startswith("=")]
            return "\n".join(resolved)

        resolved = eventually(browse, timeout=30)
        fields = resolved.splitlines()[0].split(";")
        assert fields[3] == instance(device) and fields[4] == "_covey._tcp"
        assert fields[7] == address and fields[8] == str(device.port)
        assert '"v=1"' in fields[9] and f'"id={device.device_id.replace("-", "")[:14]}"' in fields[9]
        answer = dig_ptr(address, inside)  # legacy unicast from the other namespace
        assert f"PTR\t{instance(device)}._covey._tcp.local." in answer
        assert f"A\t{address}" in answer
    finally:
        device.stop()
        for helper in reversed(helpers):
            helper.terminate()
            try:
                helper.wait(10)
            except subprocess.TimeoutExpired:
                helper.kill()

