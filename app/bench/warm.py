"""`covey bench warm`: `covey ask --continue` with this device's node running (its model warm,
the conversation's prefix in its cache) against without (the process loads the model).

Two scratch homes hold the same 20-turn conversation, made through the store's API. Rounds
alternate: `covey ask --continue --max-tokens 16` in the home without a node, then in the home
whose `covey serve` runs. Figures: the whole command's wall time, and the first piece's time
after the command asked (its own log line), medians.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.bench.clone import free_port, start_serve
from app.config import Paths
from sync.store import Store

TURNS = 20
FIRST = re.compile(r"first piece ([\d.]+) ms after asking")
LINES = [
    ("What should I plant in a shady corner of the garden?",
     "Ferns, hostas and foxgloves do well in shade; they like moist, rich soil."),
    ("How often do they need water?",
     "Once or twice a week in summer, less in spring; the soil should stay damp, not wet."),
    ("And what about slugs?",
     "Hostas attract them: a ring of grit or copper tape around each plant helps."),
]


def run(spec: str | None, rounds: int = 5,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = progress or (lambda _: None)
    with tempfile.TemporaryDirectory(prefix="covey-bench-warm-") as tmp:
        cold, warm = Path(tmp) / "cold", Path(tmp) / "warm"
        for home in (cold, warm):
            _home(home, spec)
        serve = _serve(warm)
        try:
            _ask(warm)  # the first answer of the node loads the prompt's prefix into its cache
            figures: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
            for n in range(rounds):
                say(f"round {n + 1}/{rounds}")
                figures["cold"].append(_ask(cold))
                figures["warm"].append(_ask(warm))
        finally:
            serve.terminate()
            serve.wait(timeout=30)

    def median(mode: str, i: int) -> float:
        return round(statistics.median(f[i] for f in figures[mode]) * 1000, 1)

    return {
        "turns": TURNS, "max_tokens": 16, "rounds": rounds,
        "without_node_wall_ms": median("cold", 0),
        "without_node_first_piece_ms": median("cold", 1),
        "with_node_wall_ms": median("warm", 0),
        "with_node_first_piece_ms": median("warm", 1),
        "targets": "with_node_wall_ms <= 500, with_node_first_piece_ms <= 50",
    }


def _home(home: Path, spec: str | None) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        f'device_name = "bench-warm"\nlisten = "127.0.0.1:{free_port()}"\nmdns = false\n'
        f'api = false\nauto_title = false\nmodel = "{spec or ""}"\n')
    paths = Paths.at(home)
    paths.ensure()
    from sync.identity import load_or_create

    store = Store.open(paths, load_or_create(paths.identity_dir, "bench-warm").device_id)
    try:
        conv = store.create_conversation()
        parent = ""
        for n in range(TURNS // 2):
            question, answer = LINES[n % len(LINES)]
            parent = store.add_message(conv, "user", question, parent_id=parent)
            parent = store.add_message(conv, "assistant", answer, parent_id=parent,
                                       status="done")
    finally:
        store.close()


def _ask(home: Path) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app", "--log-level", "info", "ask", "--continue",
         "--max-tokens", "16", "--temperature", "0", "And which of them flowers longest?"],
        env={**os.environ, "COVEY_HOME": str(home)}, capture_output=True, text=True,
        timeout=300, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"covey ask failed: {done.stderr[-1000:]}")
    found = FIRST.search(done.stderr)
    return wall, float(found.group(1)) / 1000 if found else float("nan")


def _serve(home: Path) -> subprocess.Popen[bytes]:
    proc = start_serve(home, lambda text: "ready:" in text)
    return proc
