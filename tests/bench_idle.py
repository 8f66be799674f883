"""Idle CPU of the terminal app, in a real terminal (tmux): what it costs to leave it open.

Not a unit test (pytest does not collect it): run `python tests/bench_idle.py [--json]`.

The app is started, left alone until it settled (the prompt's cursor stops blinking after 10 s),
and its process's CPU time (user + system, /proc) is read over a window:
- with its node, alone (the usual laptop with nothing paired online);
- with its node and a paired device online (a `covey serve` on loopback, connected);
- baseline, the same run: the app without its node (`sync_in_app = false`).
Target (issue 17): ≤ 0.5 % of a core, idle. mDNS is off: nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.devices import Device, pair  # noqa: E402

SETTLE = 25.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_percent(home: Path, window: float, name: str) -> float:
    session = f"covey-idle-{name}-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "45",
                    f"COVEY_HOME={home} exec {sys.executable} -m app"], check=True, cwd=ROOT)
    try:
        pid = int(subprocess.run(["tmux", "display-message", "-p", "-t", session,
                                  "#{pane_pid}"], capture_output=True, text=True,
                                 check=True).stdout)
        time.sleep(SETTLE)
        before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(window)
        return (cpu_seconds(pid) - before) / (time.monotonic() - started) * 100
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="covey-bench-idle-") as tmp:
        root = Path(tmp)
        laptop = Device(root, "laptop", model="fake")
        pi = Device(root, "pi", model="fake")
        pair(laptop, pi)
        report: dict[str, object] = {"window_s": args.window}
        report["app_with_node_alone_pct"] = round(idle_percent(laptop.home, args.window,
                                                               "alone"), 2)
        pi.serve(laptop)
        try:
            report["app_with_node_and_a_peer_online_pct"] = round(
                idle_percent(laptop.home, args.window, "peer"), 2)
            connected = f"connected to laptop ({laptop.device_id})" in pi.log.read_text(
                errors="replace")
            report["peer_was_connected"] = connected
        finally:
            pi.stop()
        with (laptop.home / "config.toml").open("a") as f:
            f.write("sync_in_app = false\n")
        report["baseline_app_without_node_pct"] = round(
            idle_percent(laptop.home, args.window, "nonode"), 2)
        report["target"] = "<= 0.5 % of a core"
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:<40}{value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
