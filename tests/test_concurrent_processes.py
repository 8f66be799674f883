"""Several covey processes writing to one home at the same time: nothing lost, never locked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, run_covey

ANSWER_WORDS = 400


def spawn(home: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "ask", "--model",
         f"fake:words={ANSWER_WORDS},delay=0.001,ctx=100000", *args],
        env={**os.environ, "COVEY_HOME": str(home)}, cwd=ROOT,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_simultaneous_asks_into_one_and_into_different_conversations(covey_home: Path) -> None:
    assert run_covey("ask", "--model", "fake", "start", home=covey_home).returncode == 0
    shared = json.loads(run_covey("history", "--json", home=covey_home).stdout)[0]["id"]
    procs = [spawn(covey_home, "--conversation", shared, f"same {i}") for i in range(3)]
    procs += [spawn(covey_home, f"separate {i}") for i in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
        assert b"locked" not in err
        assert out.decode().count("w") == ANSWER_WORDS

    rows = json.loads(run_covey("history", "--json", home=covey_home).stdout)
    assert len(rows) == 4
    conv = json.loads(run_covey("show", shared, "--json", home=covey_home).stdout)
    prompts = sorted(m["text"] for m in conv["messages"] if m["role"] == "user")
    assert prompts == ["same 0", "same 1", "same 2", "start"]
    answers = [m for m in conv["messages"] if m["role"] == "assistant"]
    full = "".join(f"w{i} " for i in range(ANSWER_WORDS))
    assert len(answers) == 4 and all(a["status"] == "done" for a in answers)
    assert sum(a["text"] == full for a in answers) == 3
    # each answer is attached to its own prompt (no interleaving between writers)
    by_id = {m["id"]: m for m in conv["messages"]}
    for answer in answers[1:]:
        assert by_id[answer["parent_id"]]["role"] == "user"
    parents = [a["parent_id"] for a in answers]
    assert len(set(parents)) == 4
    for row in rows:
        if row["id"] != shared:
            detail = json.loads(run_covey("show", row["id"], "--json", home=covey_home).stdout)
            assert [m["status"] for m in detail["messages"]] == ["done", "done"]


def test_processes_see_each_others_messages(covey_home: Path) -> None:
    """A long-lived process (the chat, later the node) picks up what `covey ask` wrote."""
    from app.config import Paths
    from sync.store import Store

    paths = Paths(covey_home, covey_home)
    paths.ensure()
    live = Store.open(paths, "LIVE")
    try:
        conv = live.create_conversation()
        live.add_message(conv, "user", "from the live process")
        assert run_covey("ask", "--model", "fake", "--conversation", conv, "from the cli",
                         home=covey_home).returncode == 0
        assert live.poll() == {conv}
        texts = [m.text for m in live.conversation(conv).messages]
        assert texts == ["from the live process", "from the cli", "You said: from the cli"]
        live.add_message(conv, "user", "live again")
        shown = json.loads(run_covey("show", conv, "--json", home=covey_home).stdout)
        assert [m["text"] for m in shown["messages"]][-1] == "live again"
    finally:
        live.close()
