"""Several covey devices on one machine, each with its own home, as separate processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.config import Paths
from sync.identity import load_or_create
from sync.store import Store
from tests.conftest import ROOT, run_covey


def free_port() -> int:
    """A bindable port below the ephemeral range, so no outgoing connection can take it."""
    from app.bench.clone import free_port as bench_free_port

    return bench_free_port()


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy (bounded); fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


class Device:
    def __init__(self, root: Path, name: str, host: str = "127.0.0.1",
                 mdns: list[str] | None = None, port: int | None = None,
                 model: str = "fake", api: bool = False) -> None:
        self.name = name
        self.home = root / name
        self.home.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        # Tests never multicast on the machine's real interfaces: mDNS is off, or confined to
        # the addresses given (loopback, or a test namespace's own interface).
        mdns_lines = ("mdns = true\nmdns_interfaces = [" + ", ".join(f'"{a}"' for a in mdns) + "]\n"
                      if mdns else "mdns = false\n")
        # The HTTP API only where a test wants it, each on a port of its own.
        self.api_port = free_port() if api else 0
        api_lines = f'api_listen = "{host}:{self.api_port}"\n' if api else "api = false\n"
        (self.home / "config.toml").write_text(
            f'device_name = "{name}"\nlisten = "{host}:{self.port}"\nauto_title = false\n'
            f'model = "{model}"\n' + mdns_lines + api_lines)
        self.device_id = load_or_create(Paths.at(self.home).identity_dir, name).device_id
        self.log = self.home / "serve.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}/v1"

    def env(self) -> dict[str, str]:
        return {**os.environ, "COVEY_HOME": str(self.home)}

    def covey(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return run_covey(*args, home=self.home, input=input)

    def popen(self, *args: str, prefix: list[str] | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*(prefix or []), sys.executable, "-m", "app", *args],
                                env=self.env(), cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def serve(self, *peers: Device, extra: tuple[str, ...] = (), prefix: list[str] | None = None) -> None:
        args = ["--log-level", "info", "serve"]
        for peer in peers:
            args += ["--peer", peer.address]
        log = self.log.open("ab")
        self.proc = subprocess.Popen([*(prefix or []), sys.executable, "-m", "app", *args, *extra],
                                     env=self.env(), cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        eventually(lambda: "listening on" in self.log.read_text(errors="replace")
                   or self.proc.poll() is not None, timeout=30)
        assert self.proc.poll() is None, self.log.read_text()

    def settled(self, timeout: float = 60) -> None:
        """Wait until its node has made its model ready and told the household (its own
        write, in the background after it starts listening)."""
        # (ModelPrep logs "ready" after that write, or "answers nobody" after a failed load)
        eventually(lambda: "ready:" in self.log.read_text(errors="replace")
                   or "answers nobody" in self.log.read_text(errors="replace"), timeout=timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def store(self) -> Store:
        return Store.open(Paths.at(self.home), self.device_id)

    def history(self) -> list[dict[str, Any]]:
        out = self.covey("history", "--json", "--limit", "100000", "--all")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def contents(self) -> dict[str, list[tuple[str, str, str]]]:
        """Every conversation: (message id, role, text), read straight from the store."""
        store = self.store()
        try:
            return {row.id: [(m.id, m.role, m.text) for m in store.messages(row.id)]
                    for row in store.list_conversations(include_archived=True)}
        finally:
            store.close()


def pair(inviter: Device, joiner: Device, code: str = "7-violet-anchor") -> None:
    """Pair two devices the way a user does (`covey pair` on both)."""
    invite = inviter.popen("pair", "--code", code, "--listen", inviter.address)
    try:
        eventually(lambda: _offer_open(inviter, code), timeout=20)
        joined = joiner.covey("pair", code, "--address", inviter.address)
        assert joined.returncode == 0, joined.stderr
        _out, err = invite.communicate(timeout=30)
        assert invite.returncode == 0, err.decode()
    finally:
        if invite.poll() is None:
            invite.kill()


def _offer_open(device: Device, code: str) -> bool:
    import sqlite3

    db = device.home / "covey.db"
    if not db.exists():
        return False
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute("SELECT state FROM pairing_offers WHERE code = ?", [code]).fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    if row is None or row[0] != "open":
        return False
    # and the listener is up
    try:
        with socket.create_connection((device.host, device.port), timeout=1):
            return True
    except OSError:
        return False
