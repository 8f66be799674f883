"""Terminal app benchmark, in a real terminal (tmux): first paint and input latency.

Not a unit test (pytest does not collect it): run `python tests/bench_tui.py [--json]`.

- First paint: from starting `covey` to the newest conversation's title on screen, with a store
  of 10,000 conversations / 200,000 messages (built as tests/bench_scale.py builds it), against
  an empty store in the same run (the baseline: Python, Textual and the app starting).
- Input latency: from a key sent to the terminal to that character on screen, while the real
  bundled model streams an answer, against the same with the app idle (the baseline).

The app hosts its node as usual (on loopback, mDNS off: nothing leaves this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Paths  # noqa: E402
from sync.store import Store  # noqa: E402
from tests.bench_scale import build  # noqa: E402
from tests.devices import free_port  # noqa: E402

COVEY = Path(sys.executable).parent / "covey"
SIZE = ("120", "40")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-t", session, "-p")


def prepare(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f'mdns = false\nlisten = "127.0.0.1:{free_port()}"\n'
                                      'device_name = "bench"\n')


class App:
    """`covey` running in a tmux session of its own."""

    def __init__(self, home: Path, name: str) -> None:
        self.session = f"covey-bench-{name}-{os.getpid()}"
        self.home = home

    def start(self) -> float:
        started = time.monotonic()
        tmux("new-session", "-d", "-s", self.session, "-x", SIZE[0], "-y", SIZE[1],
             f"cd {ROOT} && COVEY_HOME={self.home} {COVEY}; sleep 30")
        return started

    def wait_for(self, text: str, timeout: float = 60.0, lines: slice = slice(None)) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = "\n".join(screen(self.session).splitlines()[lines])
            if text in shown:
                return time.monotonic()
            time.sleep(0.005)
        raise TimeoutError(f"{text!r} did not appear:\n{screen(self.session)}")

    def stop(self) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, "C-q"], capture_output=True)
        time.sleep(1.0)
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


def first_paint(home: Path, expect: str, rounds: int) -> list[float]:
    times = []
    for i in range(rounds):
        app = App(home, f"paint{i}")
        started = app.start()
        try:
            times.append(app.wait_for(expect, timeout=120) - started)
        finally:
            app.stop()
    return times


def typing_latency(app: App, keys: int) -> list[float]:
    """Send `keys` characters one at a time; time each until it is on screen (prompt area)."""
    times = []
    for n in range(1, keys + 1):
        sent = time.monotonic()
        tmux("send-keys", "-t", app.session, "-l", "#")
        seen = app.wait_for("#" * n, timeout=10, lines=slice(-8, None))
        times.append(seen - sent)
        time.sleep(0.05)
    tmux("send-keys", "-t", app.session, *["BSpace"] * keys)
    return times


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered) * 1000, 1),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20, help="per conversation")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="covey-bench-tui-") as tmp:
        big, empty, chat = Path(tmp) / "big", Path(tmp) / "empty", Path(tmp) / "chat"
        for home in (big, empty, chat):
            prepare(home)
        build(big, args.conversations, args.messages)
        store = Store.open(Paths.at(big), "BENCH-READER")
        newest = store.list_conversations(limit=1)[0].title[:20]
        store.close()
        print(f"first paint ({args.rounds} rounds each)…", file=sys.stderr)
        baseline = first_paint(empty, "Ask anything", args.rounds)
        loaded = first_paint(big, newest, args.rounds)
        report["first_paint"] = {
            "store": f"{args.conversations} conversations / "
                     f"{args.conversations * args.messages} messages",
            "big_store_s": [round(t, 3) for t in loaded],
            "empty_store_s": [round(t, 3) for t in baseline],
            "median_big_s": round(statistics.median(loaded), 3),
            "median_empty_s": round(statistics.median(baseline), 3),
            "target_s": 1.0,
        }
        print("input latency, idle and while the real model streams…", file=sys.stderr)
        app = App(chat, "typing")
        app.start()
        try:
            app.wait_for("Ask anything", timeout=120)
            idle = typing_latency(app, args.keys)
            tmux("send-keys", "-t", app.session, "Write a long story about a lighthouse keeper "
                 "and a storm, with many details.", "Enter")
            app.wait_for("[streaming]", timeout=120)
            time.sleep(0.5)
            streaming_from = time.monotonic()
            busy = typing_latency(app, args.keys)
            still = "[streaming]" in screen(app.session)
            busy_seconds = time.monotonic() - streaming_from
        finally:
            app.stop()
        report["input_latency"] = {
            "idle": summary(idle), "while_streaming": summary(busy),
            "keys": args.keys, "answer_still_streaming_at_the_end": still,
            "measured_over_s": round(busy_seconds, 2),
        }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        fp, lat = report["first_paint"], report["input_latency"]
        print(f"first paint, {fp['store']}: median {fp['median_big_s']} s "  # type: ignore[index]
              f"(empty store {fp['median_empty_s']} s; target ≤ {fp['target_s']} s)")  # type: ignore[index]
        print(f"key → screen while streaming: {lat['while_streaming']}  "  # type: ignore[index]
              f"(idle: {lat['idle']})")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
