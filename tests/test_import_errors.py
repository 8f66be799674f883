"""Bad input to `covey import`: one clear line, no traceback, and nothing half-written."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import assert_clean_error, run_covey
from tests.import_samples import chatgpt_conversations, openwebui_chats, write_chatgpt


def _truncated_zip(tmp: Path) -> Path:
    whole = write_chatgpt(tmp / "w", "zip").read_bytes()
    path = tmp / "cut.zip"
    path.write_bytes(whole[: len(whole) // 2])  # a download cut off half-way
    return path


def _zip_without_conversations(tmp: Path) -> Path:
    path = tmp / "photos.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("holiday.txt", "no chats here")
    return path


def _zip_with_a_damaged_member(tmp: Path) -> Path:
    path = tmp / "damaged.zip"
    data = json.dumps(chatgpt_conversations() * 40).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("conversations.json", data)
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = b"\x00" * 64  # bits rotted inside the compressed data
    path.write_bytes(bytes(raw))
    return path


def _truncated_json(tmp: Path) -> Path:
    path = tmp / "conversations.json"
    text = json.dumps(chatgpt_conversations())
    path.write_text(text[: len(text) * 2 // 3])
    return path


def _not_llms_db(tmp: Path) -> Path:
    path = tmp / "notes.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.commit()
    conn.close()
    return path


def _corrupt_db(tmp: Path) -> Path:
    path = tmp / "logs.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\x13" * 2000)
    return path


def _write(name: str, data: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path
    return make


def _folder_without_export(tmp: Path) -> Path:
    (tmp / "Downloads").mkdir()
    (tmp / "Downloads" / "readme.txt").write_text("hi")
    return tmp / "Downloads"


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated zip": (_truncated_zip, "damaged zip"),
    "zip without conversations": (_zip_without_conversations, "not a ChatGPT export"),
    "damaged zip member": (_zip_with_a_damaged_member, "damaged"),
    "truncated JSON": (_truncated_json, "ends in the middle"),
    "not llm's database": (_not_llms_db, "not simonw/llm's logs.db"),
    "corrupt database": (_corrupt_db, "not a readable SQLite database"),
    "empty file": (_write("empty.json", ""), "is empty"),
    "binary garbage": (_write("x.json", b"\x89PNG\r\n\x1a\n\xff\xfe\x00"), "not UTF-8"),
    "plain text": (_write("notes.txt", "Dear diary"), "not JSON"),
    "an empty list": (_write("c.json", "[]"), "empty list"),
    "a list of numbers": (_write("c.json", "[1, 2, 3]"), "does not know"),
    "a list of unknown objects": (_write("c.json", '[{"name": "x"}]'), "does not know"),
    "an object that is not covey's": (_write("c.json", '{"chats": []}'), "not a covey export"),
    "covey JSON, wrong version": (_write("c.json", '{"format": "covey-export", "version": 9, '
                                                   '"conversations": []}'), "unsupported export version"),
    "covey JSON, wrong types": (_write("c.json", json.dumps({
        "format": "covey-export", "version": 1, "conversations": [
            {"id": "0" * 32, "title": ["not", "text"], "created_at": "2026-01-01",
             "messages": []}]})), "\"title\" must be text"),
    "covey JSON, bad rating": (_write("c.json", json.dumps({
        "format": "covey-export", "version": 1, "conversations": [
            {"id": "1" * 32, "title": "T", "created_at": "2026-01-01", "messages": [
                {"id": "m", "role": "assistant", "text": "x", "created_at": "2026-01-01",
                 "rating": "meh"}]}]})), "unknown rating"),
    "covey JSON naming the household document": (_write("c.json", json.dumps({
        "format": "covey-export", "version": 1, "conversations": [
            {"id": "household", "title": "T", "created_at": "2026-01-01", "messages": []}]})),
        "not a conversation id"),
    "a folder that is not an export": (_folder_without_export, "without conversations.json"),
    "a missing file": (lambda tmp: tmp / "nowhere.zip", "cannot read"),
}


#: Damage part-way through a file: the conversations read before it may be imported, whole.
DAMAGED_LATE = {"damaged zip member", "truncated JSON"}
WHOLE = {c["title"]: n for c, n in zip(chatgpt_conversations(), [7, 3, 2, 2, 2])}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line_and_changes_nothing(tmp_path: Path, case: str) -> None:
    make, words = CASES[case]
    home = tmp_path / "home"
    source = make(tmp_path)
    assert_clean_error(run_covey("import", str(source), home=home), words)
    listed = run_covey("history", "--json", "--all", "-n", "100000", home=home)
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    if case in DAMAGED_LATE:
        assert all(r["message_count"] == WHOLE[r["title"]] for r in rows), rows
    else:
        assert rows == []


def test_a_damaged_chat_inside_a_good_export_is_skipped_and_counted(tmp_path: Path) -> None:
    chats = openwebui_chats()
    chats.insert(1, {"id": "broken", "chat": "not an object"})
    chats.append({"id": "odd", "chat": {"history": {"messages": {"x": "not a message"}}}})
    path = tmp_path / "owui.json"
    path.write_text(json.dumps(chats))
    out = run_covey("import", str(path), home=tmp_path / "h")
    assert out.returncode == 0, out.stderr
    assert "2 conversation(s)" in out.stdout
    assert "1 chats without a readable \"chat\"" in out.stdout and "1 malformed messages" in out.stdout


def test_a_wrong_format_named_on_the_command_line_says_so(tmp_path: Path) -> None:
    path = tmp_path / "owui.json"
    path.write_text(json.dumps(openwebui_chats()))
    assert_clean_error(run_covey("import", str(path), "--format", "llm", home=tmp_path / "h"),
                       "not a readable SQLite database")
    assert_clean_error(run_covey("import", str(path), "--format", "covey", home=tmp_path / "h"),
                       "not a covey export")
