"""The `covey` command line, run as a real subprocess (fake model: fast)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.conftest import assert_clean_error, run_covey

FAKE = ("--model", "fake")


def ask(home: Path, *args: str, input: bytes | None = None) -> str:
    result = run_covey("ask", *FAKE, *args, home=home, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def history(home: Path) -> list[dict]:
    result = run_covey("history", "--json", home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_ask_streams_and_stores(covey_home: Path) -> None:
    assert ask(covey_home, "hello", "world") == "You said: hello world\n"
    rows = history(covey_home)
    assert len(rows) == 1 and rows[0]["message_count"] == 2
    shown = json.loads(run_covey("show", rows[0]["id"], "--json", home=covey_home).stdout)
    assert [m["text"] for m in shown["messages"]] == ["hello world", "You said: hello world"]
    assert shown["messages"][1]["model"] == "fake"


def test_continue_and_conversation_prefix(covey_home: Path) -> None:
    ask(covey_home, "first")
    ask(covey_home, "--continue", "second")
    rows = history(covey_home)
    assert len(rows) == 1 and rows[0]["message_count"] == 4
    ask(covey_home, "other conversation")
    ask(covey_home, "--conversation", rows[0]["id"][:8], "third")
    counts = sorted(r["message_count"] for r in history(covey_home))
    assert counts == [2, 6]


def test_stdin_is_appended_to_the_prompt(covey_home: Path) -> None:
    out = ask(covey_home, "summarize", input=b"long text here")
    assert out == "You said: summarize long text here\n"
    out = ask(covey_home, input="only stdin ✓".encode())
    assert out == "You said: only stdin ✓\n"


def test_options_are_accepted(covey_home: Path) -> None:
    out = ask(covey_home, "--system", "You are terse", "--max-tokens", "2", "--temperature", "0.2",
              "--seed", "7", "--top-p", "0.9", "a b c d")
    assert out == "You said:\n"
    row = history(covey_home)[0]
    assert json.loads(run_covey("show", row["id"], "--json", home=covey_home).stdout)["system_prompt"] == "You are terse"


def test_search_title_rm(covey_home: Path) -> None:
    ask(covey_home, "tell me about alpacas")
    ask(covey_home, "tell me about rockets")
    hits = json.loads(run_covey("search", "alpacas", "--json", home=covey_home).stdout)
    assert len(hits) == 2 and len({h["conversation_id"] for h in hits}) == 1
    conv = hits[0]["conversation_id"]
    assert "[alpacas]" in run_covey("search", "alpacas", home=covey_home).stdout
    assert run_covey("title", conv[:10], "Alpaca", "facts", home=covey_home).returncode == 0
    assert {r["title"] for r in history(covey_home)} >= {"Alpaca facts"}
    assert run_covey("rm", conv, home=covey_home).returncode == 0
    assert [r["id"] for r in history(covey_home) if r["id"] == conv] == []
    assert json.loads(run_covey("search", "alpacas", "--json", home=covey_home).stdout) == []


def test_export_import_round_trip(covey_home: Path, tmp_path: Path) -> None:
    ask(covey_home, "one")
    ask(covey_home, "--continue", "two ünïcode")
    ask(covey_home, "three")
    out = tmp_path / "all.json"
    assert run_covey("export", "--format", "json", "-o", str(out), home=covey_home).returncode == 0
    other = tmp_path / "other-home"
    result = run_covey("import", str(out), home=other)
    assert result.returncode == 0 and "2 conversation(s), 6 new" in result.stdout
    again = run_covey("export", "--format", "json", home=other).stdout
    original = json.loads(out.read_text())
    assert json.loads(again)["conversations"] == original["conversations"]
    # importing twice adds nothing
    assert "0 new message(s)" in run_covey("import", str(out), home=other).stdout
    md = run_covey("export", history(covey_home)[0]["id"], "--format", "markdown", home=covey_home).stdout
    assert md.startswith("# ") and "**You**" in md


def test_deleted_conversation_comes_back_on_import(covey_home: Path, tmp_path: Path) -> None:
    ask(covey_home, "keep me")
    conv = history(covey_home)[0]["id"]
    dump = tmp_path / "d.json"
    run_covey("export", conv, "--format", "json", "-o", str(dump), home=covey_home)
    run_covey("rm", conv, home=covey_home)
    assert history(covey_home) == []
    assert run_covey("import", str(dump), home=covey_home).returncode == 0
    assert [r["id"] for r in history(covey_home)] == [conv]


def test_every_command_has_help(covey_home: Path) -> None:
    for command in ["ask", "history", "show", "search", "export", "import", "rm", "title",
                    "bench", "doctor", "chat"]:
        result = run_covey(command, "--help", home=covey_home)
        assert result.returncode == 0 and "usage: covey" in result.stdout, command
    assert "usage: covey bench model" in run_covey("bench", "model", "--help", home=covey_home).stdout


# -- bad input: one clear line, no traceback ------------------------------------------------

def test_unknown_conversation_id(covey_home: Path) -> None:
    assert_clean_error(run_covey("show", "deadbeef", home=covey_home), "no conversation")
    assert_clean_error(run_covey("ask", *FAKE, "--conversation", "nope", "hi", home=covey_home),
                       "no conversation")
    assert_clean_error(run_covey("rm", "nope", home=covey_home), "no conversation")


def test_empty_prompt(covey_home: Path) -> None:
    assert_clean_error(run_covey("ask", *FAKE, home=covey_home), "nothing to ask")
    assert_clean_error(run_covey("ask", *FAKE, "   ", home=covey_home), "nothing to ask")
    assert_clean_error(run_covey("ask", *FAKE, "--continue", "x", home=covey_home), "no conversation")


def test_missing_and_unreadable_model(covey_home: Path, tmp_path: Path) -> None:
    assert_clean_error(run_covey("ask", "--model", str(tmp_path / "none.gguf"), "hi", home=covey_home),
                       "model file not found")
    assert_clean_error(run_covey("ask", "--model", str(tmp_path), "hi", home=covey_home), "directory")
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    assert_clean_error(run_covey("ask", "--model", str(text), "hi", home=covey_home), "not a GGUF")
    locked = tmp_path / "locked.gguf"
    locked.write_bytes(b"GGUF")
    locked.chmod(0)
    result = run_covey("ask", "--model", str(locked), "hi", home=covey_home)
    assert_clean_error(result)


def test_gguf_that_is_not_a_model(covey_home: Path, tmp_path: Path) -> None:
    # A valid GGUF header (version 3) with no tensors and no metadata: a GGUF, but no model.
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    assert_clean_error(run_covey("ask", "--model", str(empty), "hi", home=covey_home),
                       "cannot load model")


def test_non_utf8_stdin(covey_home: Path) -> None:
    assert_clean_error(run_covey("ask", *FAKE, "x", input=b"\xff\xfe\xfa bad", home=covey_home),
                       "not UTF-8")
    assert history(covey_home) == []


def test_prompt_far_longer_than_the_context_is_trimmed(covey_home: Path) -> None:
    huge = ("word " * 50_000).encode()
    result = run_covey("ask", "--model", "fake:ctx=512", "summarize", input=huge, home=covey_home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("You said: summarize")
    assert "trimmed" in result.stdout


def test_bad_option_values(covey_home: Path) -> None:
    for args in (["--max-tokens", "0"], ["--temperature", "hot"], ["--top-p", "2"]):
        result = run_covey("ask", *FAKE, *args, "hi", home=covey_home)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "error:" in result.stderr


def test_import_of_bad_files(covey_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_clean_error(run_covey("import", str(bad), home=covey_home), "not JSON")
    bad.write_text(json.dumps({"hello": 1}))
    assert_clean_error(run_covey("import", str(bad), home=covey_home), "not a covey export")
    bad.write_bytes(b"\xff\xfe")
    assert_clean_error(run_covey("import", str(bad), home=covey_home), "not UTF-8")
    assert_clean_error(run_covey("import", str(tmp_path / "missing.json"), home=covey_home), "cannot read")


def test_bad_config_file(covey_home: Path) -> None:
    covey_home.mkdir(parents=True, exist_ok=True)
    (covey_home / "config.toml").write_text("max_tokens = 'lots'\n")
    assert_clean_error(run_covey("history", home=covey_home), "max_tokens")


def test_corrupt_store_file(covey_home: Path) -> None:
    covey_home.mkdir(parents=True, exist_ok=True)
    (covey_home / "covey.db").write_bytes(b"garbage" * 1000)
    assert_clean_error(run_covey("history", home=covey_home), "not a covey store")


@pytest.mark.parametrize("command", [["history"], ["search", "x"]])
def test_empty_store_commands(covey_home: Path, command: list[str]) -> None:
    result = run_covey(*command, home=covey_home)
    assert result.returncode == 0 and result.stdout.strip()


def test_doctor_reports_a_healthy_home(covey_home: Path) -> None:
    ask(covey_home, "hi")
    result = run_covey("doctor", home=covey_home)
    assert result.returncode == 0, result.stdout
    assert "integrity ok" in result.stdout and "all checks passed" in result.stdout
    assert "SmolLM2" in result.stdout


def test_status_peers_and_id_on_a_lone_device(covey_home: Path) -> None:
    status = json.loads(run_covey("status", "--json", home=covey_home).stdout)
    assert status["node_running"] is False and status["household_members"] == 1
    assert json.loads(run_covey("peers", "--json", home=covey_home).stdout) == []
    ident = run_covey("id", "-v", home=covey_home).stdout.splitlines()
    assert ident[0] == status["device_id"] and ident[2].startswith("fingerprint:")
    assert "No other devices" in run_covey("peers", home=covey_home).stdout


def test_a_refused_request_leaves_nothing_behind(covey_home: Path) -> None:
    out = run_covey("ask", "--model", "fake", "--max-tokens", "60000", "hello", home=covey_home)
    assert_clean_error(out, "leaves no room for a prompt")
    history = run_covey("history", "--json", home=covey_home)
    assert history.returncode == 0 and json.loads(history.stdout) == []
