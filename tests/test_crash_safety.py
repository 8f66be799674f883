"""SIGKILL a process in the middle of streaming an answer, again and again.

After every kill the store opens, passes SQLite's integrity check, every message committed
before the kill is intact, and the interrupted answer holds a prefix of what was generated.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.config import Paths
from sync.identity import load_or_create
from sync.store import Store
from tests.conftest import ROOT

KILLS = 22
WORDS = 20_000
FULL_ANSWER = "".join(f"w{i} " for i in range(WORDS))


def start_asker(home: Path, turn: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "app", "ask", "--model", f"fake:words={WORDS},delay=0.0002,ctx=1000000",
            "--max-tokens", str(WORDS)]
    if turn:
        args.append("--continue")
    args.append(f"turn {turn}")
    return subprocess.Popen(args, env={**os.environ, "COVEY_HOME": str(home)}, cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_for_streaming(reader: Store, turn: int, proc: subprocess.Popen[bytes]) -> None:
    """Until this turn's answer has some committed text (bounded: 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        reader.poll()
        conv_id = reader.latest_conversation_id()
        if conv_id:
            msgs = reader.conversation(conv_id).messages
            if len(msgs) == 2 * turn + 2 and msgs[-1].text:
                return
        time.sleep(0.02)
    raise AssertionError("the asking process never started streaming")


def test_sigkill_while_streaming_loses_nothing_committed(covey_home: Path) -> None:
    rng = random.Random(20261123)
    paths = Paths(covey_home, covey_home)
    paths.ensure()
    reader = Store.open(paths, "TEST-READER")
    try:
        for turn in range(KILLS):
            proc = start_asker(covey_home, turn)
            wait_for_streaming(reader, turn, proc)
            time.sleep(rng.uniform(0.0, 0.3))  # a random point in the stream
            conv_id = reader.latest_conversation_id()
            assert conv_id is not None
            before = reader.conversation(conv_id).messages
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL

            # the same device as the killed process (recovery only touches this device's answers)
            device_id = load_or_create(paths.identity_dir, "test").device_id
            fresh = Store.open(paths, device_id)
            try:
                assert fresh.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                after = fresh.conversation(conv_id).messages
                assert len(after) == len(before) == 2 * turn + 2
                for old, new in zip(before, after):
                    assert new.id == old.id and new.role == old.role
                    assert new.text.startswith(old.text)  # committed before the kill: kept
                    if old.status in ("done", "interrupted"):
                        assert new == old
                partial = after[-1]
                assert partial.role == "assistant" and partial.status == "streaming"
                assert 0 < len(partial.text) < len(FULL_ANSWER)
                assert FULL_ANSWER.startswith(partial.text)
                # the dead writer's answer is marked interrupted (the text stays as it was)
                assert fresh.recover_interrupted() == [partial.id]
                recovered = fresh.conversation(conv_id).messages[-1]
                assert (recovered.status, recovered.text) == ("interrupted", partial.text)
                assert fresh.recover_interrupted() == []
                assert [m.text for m in after[0::2]] == [f"turn {t}" for t in range(turn + 1)]
                # the view agrees with the documents after every crash
                assert fresh.messages(conv_id) == fresh.conversation(conv_id).messages
            finally:
                fresh.close()
    finally:
        reader.close()
