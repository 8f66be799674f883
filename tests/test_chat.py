"""The interactive chat, driven with scripted input (fake model)."""

from __future__ import annotations

import io
from pathlib import Path

from app.chat import ChatSession
from app.config import Paths
from app.context import Context
from tests.conftest import run_covey


def session(home: Path, script: str) -> tuple[ChatSession, io.StringIO]:
    out = io.StringIO()
    ctx = Context(model="fake", paths=Paths(home, home))
    ctx.config.auto_title = False
    return ChatSession(ctx, stdin=io.StringIO(script), stdout=out), out


def test_chat_answers_and_keeps_one_conversation(covey_home: Path) -> None:
    chat, out = session(covey_home, "hello\nsecond line\n/quit\n")
    assert chat.run() == 0
    text = out.getvalue()
    assert "You said: hello" in text and "You said: second line" in text
    rows = chat.ctx.store.list_conversations()
    assert len(rows) == 1 and rows[0].message_count == 4
    chat.ctx.close()


def test_chat_commands(covey_home: Path) -> None:
    script = "/system Be terse\nfirst\n/new\nsecond\n/history\n/title Renamed\n/help\n/bogus\n"
    chat, out = session(covey_home, script)  # ends at EOF, like Ctrl-D
    assert chat.run() == 0
    text = out.getvalue()
    assert "System prompt set." in text and "New conversation." in text
    assert "/quit" in text and "unknown command /bogus" in text
    rows = chat.ctx.store.list_conversations()
    assert len(rows) == 2
    titles = {r.title for r in rows}
    assert "Renamed" in titles
    first = next(r for r in rows if r.title != "Renamed")
    assert first.system_prompt == "Be terse"
    chat.ctx.close()


def test_chat_open_continues_a_conversation(covey_home: Path) -> None:
    run_covey("ask", "--model", "fake", "remember this", home=covey_home)
    reader = Context(paths=Paths(covey_home, covey_home))
    conv = reader.store.list_conversations()[0].id
    reader.close()
    chat, out = session(covey_home, f"/open {conv[:8]}\nand this\n/open nope\n/quit\n")
    chat.run()
    assert "Continuing" in out.getvalue()
    assert "error: no conversation 'nope'" in out.getvalue()
    assert chat.ctx.store.summary(conv).message_count == 4
    prompt = chat.ctx.model.prompts[-1]  # type: ignore[attr-defined]
    assert prompt[0]["content"] == "remember this"
    chat.ctx.close()


def test_covey_without_a_command_starts_the_chat(covey_home: Path) -> None:
    result = run_covey("--model", "fake", home=covey_home, input=b"hi there\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "covey" in result.stdout and "You said: hi there" in result.stdout
