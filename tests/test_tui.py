"""Pilot tests of the Textual app with a fake model and a temporary store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.assistant import Assistant
from app.config import Config, Paths
from app.ui.app import CoveyApp, PromptArea
from app.ui.widgets import ConversationItem, MessageView
from models.fake import FakeModel
from sync.store import Store


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    paths = Paths.at(tmp_path / "home")
    store = Store.open(paths, "DEVICE-A")
    model = FakeModel()
    yield paths, store, model
    store.close()


async def wait_until(pilot, check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in the app")


async def type_and_send(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one(PromptArea).focus()
    await pilot.press(*list(text))
    await pilot.press("enter")


@pytest.mark.asyncio
async def test_send_a_prompt_and_see_the_streamed_answer(env) -> None:  # type: ignore[no-untyped-def]
    _, store, model = env
    model.enqueue(["Hello", " from", " the", " fake"])
    app = CoveyApp(store, Assistant(store, model, Config(auto_title=False)))
    async with app.run_test() as pilot:
        await type_and_send(pilot, "hi")
        await wait_until(pilot, lambda: not app.generating and app.conversation_id is not None
                         and len(app.query(MessageView)) == 2)
        views = list(app.query(MessageView))
        assert views[0].message.text == "hi"
        await wait_until(pilot, lambda: list(app.query(MessageView))[1].message.text == "Hello from the fake")
        assert app.query_one(PromptArea).text == ""
        assert len(app.query(ConversationItem)) == 1
    conv = store.conversation(store.latest_conversation_id())  # type: ignore[arg-type]
    assert [m.text for m in conv.messages] == ["hi", "Hello from the fake"]


@pytest.mark.asyncio
async def test_escape_stops_generation(env) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = env
    slow = FakeModel(delay=0.02, answer_words=500)
    app = CoveyApp(store, Assistant(store, slow, Config(auto_title=False)))
    async with app.run_test() as pilot:
        await type_and_send(pilot, "go")
        await wait_until(pilot, lambda: len(app.query(MessageView)) == 2
                         and len(list(app.query(MessageView))[1].message.text) > 10)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.generating)
    answer = store.conversation(store.latest_conversation_id()).messages[1]  # type: ignore[arg-type]
    assert answer.status == "cancelled" and 0 < len(answer.text) < len("w0 " * 500)


@pytest.mark.asyncio
async def test_new_conversation_filter_and_search(env) -> None:  # type: ignore[no-untyped-def]
    _, store, model = env
    app = CoveyApp(store, Assistant(store, model, Config(auto_title=False)))
    async with app.run_test() as pilot:
        await type_and_send(pilot, "alpacas")
        await wait_until(pilot, lambda: not app.generating and len(app.query(MessageView)) == 2)
        await pilot.press("ctrl+n")
        assert app.conversation_id is None and len(app.query(MessageView)) == 0
        await type_and_send(pilot, "rockets")
        await wait_until(pilot, lambda: not app.generating and len(app.query(ConversationItem)) == 2)
        store.set_title(store.latest_conversation_id(), "Rocket talk")  # type: ignore[arg-type]
        app.refresh_list()
        await pilot.press("ctrl+f")
        await pilot.press(*list("rocket"))
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 1)
        # Enter searches every message instead of titles
        filt = app.query_one("#filter")
        filt.value = "alpacas"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 1 and
                         "alpacas" in " ".join(m.text for m in store.conversation(
                             list(app.query(ConversationItem))[0].row.id).messages))


@pytest.mark.asyncio
async def test_regenerate_adds_another_answer_to_the_same_prompt(env) -> None:  # type: ignore[no-untyped-def]
    _, store, model = env
    model.enqueue(["first"])
    model.enqueue(["second"])
    app = CoveyApp(store, Assistant(store, model, Config(auto_title=False)))
    async with app.run_test() as pilot:
        await type_and_send(pilot, "q")
        await wait_until(pilot, lambda: not app.generating and len(app.query(MessageView)) == 2)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.generating and len(app.query(MessageView)) == 3)
    messages = store.conversation(store.latest_conversation_id()).messages  # type: ignore[arg-type]
    assert [m.text for m in messages] == ["q", "first", "second"]
    assert messages[1].parent_id == messages[2].parent_id == messages[0].id  # a branch


@pytest.mark.asyncio
async def test_a_remote_change_appears_while_the_user_types(env) -> None:  # type: ignore[no-untyped-def]
    paths, store, model = env
    app = CoveyApp(store, Assistant(store, model, Config(auto_title=False)))
    async with app.run_test() as pilot:
        await type_and_send(pilot, "start")
        await wait_until(pilot, lambda: not app.generating and len(app.query(MessageView)) == 2)
        conv = app.conversation_id
        prompt = app.query_one(PromptArea)
        prompt.focus()
        await pilot.press(*list("half-typed"))
        scroll_before = app.query_one("#messages").scroll_offset
        other = Store.open(paths, "DEVICE-A")  # another process on this device (or a peer)
        try:
            other.add_message(conv, "user", "written elsewhere")  # type: ignore[arg-type]
        finally:
            other.close()
        await wait_until(pilot, lambda: len(app.query(MessageView)) == 3)
        assert list(app.query(MessageView))[2].message.text == "written elsewhere"
        assert prompt.text == "half-typed" and app.focused is prompt
        assert app.query_one("#messages").scroll_offset == scroll_before


@pytest.mark.asyncio
async def test_slash_commands_rename_set_system_delete_and_undo(env) -> None:  # type: ignore[no-untyped-def]
    _, store, model = env
    app = CoveyApp(store, Assistant(store, model, Config(auto_title=False)))
    async with app.run_test() as pilot:
        await type_and_send(pilot, "hello")
        await wait_until(pilot, lambda: not app.generating and len(app.query(MessageView)) == 2)
        conv = app.conversation_id
        await type_and_send(pilot, "/title Greetings")
        await type_and_send(pilot, "/system Be brief")
        assert store.summary(conv).title == "Greetings"  # type: ignore[arg-type]
        assert store.summary(conv).system_prompt == "Be brief"  # type: ignore[arg-type]
        await wait_until(pilot, lambda: [i.row.title for i in app.query(ConversationItem)] == ["Greetings"])
        await type_and_send(pilot, "/delete")
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 0)
        assert store.list_conversations() == [] and app.conversation_id is None
        await type_and_send(pilot, "/undo")
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 1)
        assert app.conversation_id == conv and len(app.query(MessageView)) == 2
        await type_and_send(pilot, "//etc is a folder")  # an escaped slash is a prompt
        await wait_until(pilot, lambda: not app.generating and len(app.query(MessageView)) == 4)
        assert list(app.query(MessageView))[2].message.text == "/etc is a folder"
