"""What a new user tripped over (issue 17), on the command line: each as the user met it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.config import Paths
from sync.store import Store
from tests.conftest import run_covey
from tests.devices import Device, eventually, pair

ROOT = Path(__file__).resolve().parent.parent


def branched(home: Path) -> tuple[str, list[str]]:
    """A conversation where two devices answered one prompt at once (two sibling answers)."""
    assert run_covey("ask", "--model", "fake", "first question", home=home).returncode == 0
    conv_id = json.loads(run_covey("history", "--json", home=home).stdout)[0]["id"]
    store = Store.open(Paths.at(home), "")
    try:
        prompt = store.messages(conv_id)[0].id
        ids = [store.add_message(conv_id, "assistant", f"concurrent reply {n}", parent_id=prompt)
               for n in (1, 2)]
    finally:
        store.close()
    return conv_id, ids


def test_show_prints_the_current_branch_and_marks_forks(covey_home: Path) -> None:
    conv_id, _ = branched(covey_home)
    out = run_covey("show", conv_id[:8], home=covey_home).stdout
    assert "concurrent reply 2" in out and "concurrent reply 1" not in out
    assert "‹3/3›" in out  # the first answer, and the two replies: three answers to one prompt
    assert "--all-branches" in out
    tree = run_covey("show", conv_id[:8], "--all-branches", home=covey_home).stdout
    assert "concurrent reply 1" in tree and "concurrent reply 2" in tree
    assert "‹1/3›" in tree and "‹2/3›" in tree and "‹3/3›" in tree


def test_show_names_devices(make_device) -> None:  # type: ignore[no-untyped-def]
    laptop = make_device("laptop", "fake:name=laptop-model")
    pi = make_device("pi", "fake:name=pi-model")
    pair(laptop, pi)
    pi.serve()
    laptop.serve(pi)
    eventually(lambda: '"serves": true' in laptop.covey("status", "--json").stdout
               or "pi" in laptop.covey("devices").stdout)
    assert laptop.covey("ask", "--on", "pi", "who answers?").returncode == 0
    conv = laptop.history()[0]["id"]
    out = laptop.covey("show", conv).stdout
    assert "on pi, handed over by laptop" in out, out
    assert pi.device_id not in out
    assert pi.device_id in laptop.covey("show", conv, "-v").stdout


def test_a_bad_import_says_what_is_wrong_in_the_users_words(covey_home: Path,
                                                            tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "covey-export", "version": 1, "conversations": [
        {"id": "c1", "title": "Trip", "created_at": "2026-01-01T10:00:00",
         "messages": [{"id": "m1", "role": "user"}]}]}))
    out = run_covey("import", str(bad), home=covey_home)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "conversation #1 ('Trip'), message #1 has no 'text' and no 'created_at'" in out.stderr
    assert "__init__" not in out.stderr and "positional" not in out.stderr


def test_a_short_pairing_timeout_is_shown_in_seconds(covey_home: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "app", "pair", "--code", "9-amber-anchor",
                             "--timeout", "2", "--listen", "127.0.0.1:0"], cwd=ROOT,
                            env={**__import__("os").environ, "COVEY_HOME": str(covey_home)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    assert "(valid 2 s, works once)" in out


def test_a_nonsense_listen_address_is_refused_when_the_config_is_read(covey_home: Path) -> None:
    covey_home.mkdir(parents=True, exist_ok=True)
    (covey_home / "config.toml").write_text('listen = "nonsense"\nmdns = false\n')
    out = run_covey("history", home=covey_home)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "config.toml: listen = 'nonsense': expected ADDRESS:PORT" in out.stderr
    (covey_home / "config.toml").write_text('peers = ["pi.local:7420", "bad host"]\nmdns = false\n')
    out = run_covey("history", home=covey_home)
    assert "peers: 'bad host': 'bad host' is neither an IP address nor a host name" in out.stderr


def test_serve_logs_connections_catch_ups_and_departures(tmp_path: Path) -> None:
    a, b = Device(tmp_path, "alpha"), Device(tmp_path, "bravo")
    try:
        pair(a, b)
        for n in range(3):
            assert a.covey("ask", "--model", "fake", f"before bravo came {n}").returncode == 0
        a.serve()
        b.serve(a)  # (info: serve's default level)
        eventually(lambda: "caught up with" in b.log.read_text())
        log_b = b.log.read_text()
        assert f"connected to alpha ({a.device_id})" in log_b
        assert "catching up from" in log_b and "conversation(s) to receive" in log_b
        b.stop()
        eventually(lambda: f"sync with {b.device_id} ended" in a.log.read_text())
        assert f"connected to bravo ({b.device_id})" in a.log.read_text()
    finally:
        a.stop()
        b.stop()


def test_a_conversation_whose_first_answer_was_stopped_is_titled_by_the_next(
        covey_home: Path) -> None:
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "app", "ask", "--model",
                             "fake:delay=0.05,words=400", "tell me a long story"], cwd=ROOT,
                            env={**os.environ, "COVEY_HOME": str(covey_home)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.read(20)  # the answer is streaming
    proc.send_signal(signal.SIGINT)  # Ctrl+C
    _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err
    rows = json.loads(run_covey("history", "--json", home=covey_home).stdout)
    assert [r["title"] for r in rows] == ["New conversation"]
    time.sleep(0.1)
    done = run_covey("ask", "--model", "fake", "--continue", "a short one then", home=covey_home)
    assert done.returncode == 0, done.stderr
    rows = json.loads(run_covey("history", "--json", home=covey_home).stdout)
    assert len(rows) == 1 and rows[0]["title"] != "New conversation"


def test_ctrl_c_at_any_moment_is_a_clean_exit(covey_home: Path) -> None:
    import os
    import random
    import signal
    import time

    rng = random.Random(13)
    assert run_covey("ask", "--model", "fake", "warm up", home=covey_home).returncode == 0
    for _ in range(12):  # at random moments: while starting, streaming, finishing, exiting
        proc = subprocess.Popen([sys.executable, "-m", "app", "ask", "--model",
                                 "fake:delay=0.01,words=30", "count to thirty"], cwd=ROOT,
                                env={**os.environ, "COVEY_HOME": str(covey_home)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 1.5))  # (from importing its modules to exiting)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err.decode()
        # 0 (it had finished), 130 (interrupted), or ended by the signal itself: Python puts
        # SIGINT's default action back as it finalizes, and a shell reports that as 130 too.
        assert proc.returncode in (0, 130, -signal.SIGINT)


def test_a_long_piped_prompt_says_what_was_cut_and_that_it_is_being_read(
        covey_home: Path) -> None:
    text = "The kettle recipe travels slowly across mountains of paper. " * 4700  # 282 KB
    out = run_covey("ask", "--model", "fake:prefill=2.5", "summarize this",
                    home=covey_home, input=text.encode())
    assert out.returncode == 0, out.stderr
    assert "covey: the prompt is too long: kept" in out.stderr
    assert "of its 282,015 characters, the beginning and the end" in out.stderr
    assert "the model's context holds 4,096 tokens" in out.stderr
    assert "reading the prompt (" in out.stderr  # shown while the model reads it


def test_the_readme_documents_every_config_key() -> None:
    """Each setting covey reads has a line in the README's config.toml example (issue 17, 18)."""
    import dataclasses
    import re

    from app.config import Config

    readme = (ROOT / "README.md").read_text()
    example = readme.split("## Configuration", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    documented = set(re.findall(r"^([a-z_]+) *=", example, re.M))
    keys = {f.name for f in dataclasses.fields(Config)}
    assert keys - documented == set(), "undocumented config keys"
    assert documented - keys == set(), "documented keys covey does not read"
