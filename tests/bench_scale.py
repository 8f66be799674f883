"""Scale benchmark: a store of 10,000 conversations / 200,000 messages.

Not a unit test (pytest does not collect it): run `python tests/bench_scale.py [--json]`.
It builds the store once through the real document and view code (each conversation is a real
Loro document whose update bytes and view rows are written as the store writes them), then
times the user's commands `covey history` and `covey search` as subprocesses, end to end,
against an empty store measured in the same run as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loro import ExportMode, LoroDoc, VersionVector

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Paths  # noqa: E402
from sync import conversation as schema  # noqa: E402
from sync import view  # noqa: E402
from sync.conversation import Message  # noqa: E402
from sync.db import transaction  # noqa: E402
from sync.ids import new_id  # noqa: E402
from sync.store import Store  # noqa: E402

WORDS = ["llama", "alpaca", "rocket", "garden", "bread", "sourdough", "python", "compiler", "river", "mountain", "volcano", "kitchen", "laptop", "network", "sync", "document", "version", "editor", "music", "guitar", "piano", "recipe", "weather", "storm", "lighthouse", "keeper", "bridge", "castle", "dragon", "planet", "orbit", "galaxy", "atom", "energy", "battery", "solar", "wind", "coffee", "tea", "market", "price", "budget", "travel", "train", "station"]


def build(home: Path, conversations: int, per_conversation: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    store = Store.open(Paths(home, home), "BENCH-DEVICE")
    try:
        batch = 500
        for start in range(0, conversations, batch):
            with transaction(store.db) as conn:
                for _ in range(min(batch, conversations - start)):
                    _one_conversation(conn, store.peer_id, rng, per_conversation)
            print(f"\rbuilding: {min(start + batch, conversations)}/{conversations} conversations",
                  end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        store.close()


def _one_conversation(conn, peer_id: int, rng: random.Random, n: int) -> None:  # type: ignore[no-untyped-def]
    doc = LoroDoc()
    doc.peer_id = peer_id
    conv_id = new_id()
    day = rng.randrange(1, 28)
    schema.init_conversation(doc, conv_id=conv_id, title=" ".join(rng.sample(WORDS, 4)).capitalize(),
                             created_at=f"2026-10-{day:02d}T10:00:00.000+00:00",
                             created_by="BENCH-DEVICE", system_prompt=None)
    parent = None
    for i in range(n):
        mid = new_id()
        text = " ".join(rng.choices(WORDS, k=rng.randrange(8, 40)))
        schema.append_message(doc, Message(
            id=mid, role="user" if i % 2 == 0 else "assistant", text=text,
            created_at=f"2026-10-{day:02d}T10:{i // 60:02d}:{i % 60:02d}.000+00:00",
            device="BENCH-DEVICE", model=None if i % 2 == 0 else "SmolLM2", parent_id=parent,
        ))
        parent = mid
    doc.commit()
    conn.execute("INSERT INTO updates (doc_id, data) VALUES (?, ?)",
                 [conv_id, doc.export(ExportMode.Updates(VersionVector()))])
    conv = schema.read_conversation(conv_id, doc)
    assert conv is not None
    view.refresh(conn, conv, None)


def time_command(home: Path, *args: str, runs: int = 5) -> float:
    env = {**os.environ, "COVEY_HOME": str(home)}
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "app", *args], env=env, cwd=ROOT,
                              capture_output=True)
        samples.append(time.perf_counter() - start)
        assert done.returncode == 0, done.stderr.decode()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20, help="messages per conversation")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        Store.open(Paths(empty, empty), "E").close()
        started = time.perf_counter()
        build(full, args.conversations, args.messages)
        build_s = time.perf_counter() - started
        db_file = full / "covey.db"
        size_mb = sum(p.stat().st_size for p in full.glob("covey.db*")) / 1e6
        report = {
            "conversations": args.conversations,
            "messages": args.conversations * args.messages,
            "build_s": round(build_s, 1),
            "db_mb": round(size_mb, 1),
            "history_empty_s": round(time_command(empty, "history"), 3),
            "history_s": round(time_command(full, "history"), 3),
            "history_json_s": round(time_command(full, "history", "--json"), 3),
            "search_empty_s": round(time_command(empty, "search", "lighthouse", "storm"), 3),
            "search_s": round(time_command(full, "search", "lighthouse", "storm"), 3),
            "search_rare_s": round(time_command(full, "search", "galaxy", "budget", "piano"), 3),
            "show_s": round(time_command(full, "show", _any_id(full)), 3),
        }
        assert db_file.exists()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:<18} {value}")
        print("(*_empty_s: the same command on an empty store, same run: process start-up cost)")


def _any_id(home: Path) -> str:
    store = Store.open(Paths(home, home), "Q")
    try:
        return store.list_conversations(limit=1)[0].id
    finally:
        store.close()


if __name__ == "__main__":
    main()
