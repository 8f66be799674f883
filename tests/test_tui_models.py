"""The terminal app and the models already on disk: the picker lists them with where they run,
/model chooses one, the answer comes from it, and the conversation keeps it after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from app.ui.app import CoveyApp
from app.ui.models import ModelPicker
from tests import model_layouts as layouts
from tests.tui_helpers import make_context, type_and_send, wait_until


def header(app: CoveyApp) -> str:
    lines = list(app.query(".system-prompt"))
    return str(lines[0].render()) if lines else ""


@pytest.mark.real_model
@pytest.mark.asyncio
async def test_the_picker_chooses_an_ollama_model_and_the_conversation_keeps_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    layouts.ollama(home)  # an Ollama-style folder with llama3.2:3b in it
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    ctx = make_context(tmp_path / "covey", model="")  # the bundled model is the default
    app = CoveyApp(ctx)
    async with app.run_test(size=(100, 30)) as pilot:
        await type_and_send(pilot, "/model")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker)  # (and composed)
                         and bool(app.screen.query(OptionList)), timeout=30)
        options = app.screen.query_one(OptionList)
        texts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(t.startswith("llama3.2:3b  ·  laptop  ·  135M Q4_1") for t in texts), texts
        index = next(i for i, t in enumerate(texts) if t.startswith("llama3.2:3b"))
        options.highlighted = index
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ModelPicker))
        assert app.chat.next_model == "llama3.2:3b"
        await type_and_send(pilot, "Name a colour.")
        await wait_until(pilot, lambda: app.conversation_id is not None and not app.generating
                         and len(ctx.store.conversation(app.conversation_id).messages) == 2,
                         timeout=60)
        conv = ctx.store.conversation(app.conversation_id)  # type: ignore[arg-type]
        assert conv.model == "llama3.2:3b"
        assert conv.messages[-1].model == "llama3.2:3b" and conv.messages[-1].text.strip()
        await wait_until(pilot, lambda: "model: llama3.2:3b" in header(app))
        conv_id = app.conversation_id
    again = CoveyApp(ctx)  # the app opened again: the conversation still has its model
    async with again.run_test(size=(100, 30)) as pilot:
        again.chat.open(conv_id)
        await pilot.pause(0.2)
        assert "model: llama3.2:3b" in header(again)
        assert again.chat.model_name() == "llama3.2:3b"
        await type_and_send(pilot, "/model nothing-like-this")
        await wait_until(pilot, lambda: any(
            "no device of the household has a model named" in str(n.message)
            for n in again._notifications), timeout=20)
    ctx.close()
