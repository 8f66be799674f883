"""Headless node footprint: RSS with the default model loaded, and idle CPU over a minute.

    python tests/bench_headless.py [--seconds 60] [--json]

Starts `covey serve` (real bundled model, mDNS confined to loopback) in a scratch home, waits
until it listens, then reads its resident memory and CPU time from /proc. The baseline in the
same run: the same node with --no-model. Targets: RSS ≤ 300 MB, idle CPU ≤ 1% of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def measure(extra: list[str], seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="covey-headless-") as tmp:
        home = Path(tmp)
        (home / "config.toml").write_text('listen = "127.0.0.1:0"\nmdns = true\n'
                                          'mdns_interfaces = ["127.0.0.1"]\n')
        log = home / "serve.log"
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "app", "serve", *extra],
                                    env={**os.environ, "COVEY_HOME": str(home)}, cwd=ROOT,
                                    stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        try:
            while "listening on" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() - started > 120:
                    raise SystemExit(f"serve did not start:\n{log.read_text()}")
                time.sleep(0.1)
            ready_s = time.monotonic() - started
            time.sleep(5)  # settle
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            return {"ready_s": round(ready_s, 2), "rss_mb": round(rss_mb(proc.pid), 1),
                    "idle_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 3)}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = {"with_model": measure([], args.seconds),
              "without_model": measure(["--no-model"], args.seconds),
              "idle_seconds": args.seconds}
    print(json.dumps(report, indent=2) if args.json else report)


if __name__ == "__main__":
    main()
