"""`covey bench clone`: a new device receives a whole household, two real nodes as processes.

Device A gets N conversations through `covey import` (the public write path); a fresh device B
is paired by code; then B's `covey serve` starts and the clock runs until B's view holds every
conversation. Printed in one run, beside the floor it is compared with:

- clone_s: B's start until it holds all N (process start included)
- wire_bytes: what A sent in that session (covey's frames, TLS excluded)
- snapshot_bytes: the same documents as Loro snapshots, summed
- loro_import_s: Loro alone importing those snapshots into fresh documents, in one process
- rss_max_mb of each node during the clone (sampled from /proc every 50 ms)

Everything happens in scratch homes under a temporary directory, mDNS off, on loopback.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from loro import ExportMode, LoroDoc

from app.config import Paths
from sync import view
from sync.store import HOUSEHOLD_DOC, Store

CODE = "5-amber-anchor"


class _Home:
    def __init__(self, root: Path, name: str) -> None:
        self.home = root / name
        self.home.mkdir(parents=True)
        self.port = free_port()
        (self.home / "config.toml").write_text(
            f'device_name = "{name}"\nlisten = "127.0.0.1:{self.port}"\nmdns = false\n'
            'auto_title = false\nmodel = "fake"\n')
        self.log = self.home / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def covey(self, *args: str, timeout: float = 1800) -> str:
        out = subprocess.run([sys.executable, "-m", "app", *args], env=self._env(),
                             capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise RuntimeError(f"covey {' '.join(args)} failed: {out.stderr.decode()[-2000:]}")
        return out.stdout.decode()

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.log.open("ab")
        return subprocess.Popen([sys.executable, "-m", "app", *args], env=self._env(),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def serve(self, *extra: str) -> None:
        self.proc = self.popen("--log-level", "info", "serve", "--no-model", *extra)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def conversations(self) -> int:
        return conversations_in(self.home)

    def _env(self) -> dict[str, str]:
        return {**os.environ, "COVEY_HOME": str(self.home)}


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A bindable loopback port below the ephemeral range (no outgoing connection takes it),
    never the same twice in one process: two devices made before either listens could
    otherwise both be given one port that is free at the time."""
    while True:
        port = random.randint(20000, 30000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port


def start_serve(home: Path, ready: Callable[[str], bool],
                timeout: float = 180) -> subprocess.Popen[bytes]:
    """`covey serve` in `home` (logging to serve.log there), once `ready(log text)` holds."""
    log = home / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app", "--log-level", "info", "serve"],
                                env={**os.environ, "COVEY_HOME": str(home)},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready(log.read_text(errors="replace")):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the bench's covey serve did not get ready:\n{log.read_text()[-2000:]}")


def conversations_in(home: Path) -> int:
    """How many conversations a home's view holds, read without opening (or locking) a store."""
    return view.count_in_file(home / "covey.db")


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _say(progress: TextIO | None, text: str) -> None:
    if progress is not None:
        print(text, file=progress, flush=True)


def _pair(a: _Home, b: _Home) -> None:
    invite = a.popen("pair", "--code", CODE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                b.covey("pair", CODE, "--address", a.address, timeout=60)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)  # the inviter is still starting
        invite.wait(60)
    finally:
        if invite.poll() is None:
            invite.kill()


def _floor(home: Path) -> tuple[int, float, int]:
    """(snapshot bytes, seconds Loro takes to import them into fresh docs, documents)."""
    store = Store.open(Paths.at(home), "BENCH-READER")
    try:
        snapshots = [store.read(d, lambda doc: bytes(doc.export(ExportMode.Snapshot())))
                     for d in store.doc_ids() if d != HOUSEHOLD_DOC]
    finally:
        store.close()
    blobs = [s for s in snapshots if s]
    started = time.perf_counter()
    for blob in blobs:
        LoroDoc().import_(blob)
    return sum(len(b) for b in blobs), time.perf_counter() - started, len(blobs)


def run(conversations: int = 10_000, messages: int = 20, words: int = 80,
        progress: TextIO | None = None) -> dict[str, Any]:
    from app.sample_history import write_export

    with tempfile.TemporaryDirectory(prefix="covey-bench-clone-") as tmp:
        root = Path(tmp)
        a, b = _Home(root, "clone-a"), _Home(root, "clone-b")
        _say(progress, f"writing an export of {conversations} conversations x {messages} messages…")
        export = write_export(root / "export.json", conversations, messages, words=words)
        _say(progress, "covey import on device A…")
        started = time.perf_counter()
        a.covey("import", str(export))
        import_s = time.perf_counter() - started
        export.unlink()
        _say(progress, f"  {import_s:.1f} s; the floor: Loro snapshots of the same documents…")
        snapshot_bytes, loro_s, documents = _floor(a.home)
        _pair(a, b)
        a.serve()
        try:
            while "listening on" not in a.log.read_text(errors="replace"):
                time.sleep(0.05)
            _say(progress, "cloning to device B…")
            rss = {"a": 0.0, "b": 0.0}
            started = time.perf_counter()
            b.serve("--peer", a.address)
            assert a.proc is not None and b.proc is not None
            deadline = time.monotonic() + 600
            while b.conversations() < conversations:
                rss["a"] = max(rss["a"], _rss_mb(a.proc.pid))
                rss["b"] = max(rss["b"], _rss_mb(b.proc.pid))
                if time.monotonic() > deadline:
                    raise TimeoutError("the clone did not finish in 10 minutes")
                if b.proc.poll() is not None or a.proc.poll() is not None:
                    raise RuntimeError("a node stopped during the clone: "
                                       + b.log.read_text(errors="replace")[-2000:])
                time.sleep(0.05)
            clone_s = time.perf_counter() - started
            b.stop()
            wire = 0
            for _ in range(200):
                found = re.findall(r"ended \((\d+) bytes sent", a.log.read_text(errors="replace"))
                if found:
                    wire = int(found[-1])
                    break
                time.sleep(0.05)
        finally:
            b.stop()
            a.stop()
    return {
        "conversations": conversations, "messages": conversations * messages,
        "documents": documents, "import_s": round(import_s, 2),
        "clone_s": round(clone_s, 2), "wire_bytes": wire, "snapshot_bytes": snapshot_bytes,
        "wire_vs_snapshots": round(wire / snapshot_bytes, 3) if snapshot_bytes else None,
        "loro_import_s": round(loro_s, 3),
        "clone_vs_loro_import": round(clone_s / loro_s, 1) if loro_s else None,
        "rss_max_mb_a": round(rss["a"], 1), "rss_max_mb_b": round(rss["b"], 1),
        "targets": "clone_s <= 20, wire_vs_snapshots <= 1.1, rss_max_mb <= 300",
    }
