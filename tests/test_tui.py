"""Pilot tests of the terminal app: a fake model, a temporary store, the real widgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ui.app import CoveyApp
from app.ui.dialogs import AskText
from app.ui.sidebar import ConversationList
from app.ui.widgets import ConversationItem, MessageView, PromptArea
from sync.store import Store
from tests.tui_helpers import ask, fake, make_context, texts, type_and_send, wait_until


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    context = make_context(tmp_path / "home")
    yield context
    context.close()


def views(app: CoveyApp) -> list[MessageView]:
    return list(app.query(MessageView))


@pytest.mark.asyncio
async def test_send_a_prompt_and_see_the_streamed_answer(ctx) -> None:  # type: ignore[no-untyped-def]
    fake(ctx).enqueue(["Hello", " from", " the", " fake"])
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await type_and_send(pilot, "hi")
        await wait_until(pilot, lambda: texts(app) == ["hi", "Hello from the fake"])
        assert app.query_one(PromptArea).text == ""
        assert len(app.query(ConversationItem)) == 1
        caption = str(views(app)[1].query_one(".caption").render())
        assert "fake · on laptop" in caption  # which model, which device (by name)
    conv = ctx.store.conversation(ctx.store.latest_conversation_id())
    assert [m.text for m in conv.messages] == ["hi", "Hello from the fake"]


@pytest.mark.asyncio
async def test_escape_stops_generation(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "slow", model="fake:delay=0.02,words=500")
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await type_and_send(pilot, "go")
        await wait_until(pilot, lambda: len(views(app)) == 2 and len(views(app)[1].message.text) > 10)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.generating)
    answer = ctx.store.conversation(ctx.store.latest_conversation_id()).messages[1]
    assert answer.status == "cancelled" and 0 < len(answer.text) < len("w0 " * 500)
    ctx.close()


@pytest.mark.asyncio
async def test_regenerate_then_switch_between_the_answers(ctx) -> None:  # type: ignore[no-untyped-def]
    fake(ctx).enqueue(["first"])
    fake(ctx).enqueue(["second"])
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await ask(pilot, "q")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.generating and texts(app) == ["q", "second"])
        assert views(app)[1].branch == (2, 2)
        views(app)[1].focus()
        await pilot.press("left")  # the earlier answer is still there
        await wait_until(pilot, lambda: texts(app) == ["q", "first"])
        assert views(app)[1].branch == (1, 2) and app.focused is views(app)[1]
        await pilot.press("right")
        await wait_until(pilot, lambda: texts(app) == ["q", "second"])
    messages = ctx.store.conversation(ctx.store.latest_conversation_id()).messages
    assert [m.text for m in messages] == ["q", "first", "second"]
    assert messages[1].parent_id == messages[2].parent_id == messages[0].id  # a branch


@pytest.mark.asyncio
async def test_edit_a_prompt_and_branch_keeping_the_old_branch(ctx) -> None:  # type: ignore[no-untyped-def]
    for answer in (["a1"], ["a2"], ["b1"], ["b2"]):
        fake(ctx).enqueue(answer)
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await ask(pilot, "one")
        await ask(pilot, "two")
        assert texts(app) == ["one", "a1", "two", "a2"]
        await pilot.press("ctrl+up")  # from the prompt to the last message, then up to "two"
        await pilot.press("up")
        assert app.focused is views(app)[2]
        await pilot.press("e")
        prompt = app.query_one(PromptArea)
        assert prompt.text == "two" and app.focused is prompt
        await pilot.press("end", *list(" again"), "enter")
        await wait_until(pilot, lambda: not app.generating and texts(app) == ["one", "a1", "two again", "b1"])
        assert views(app)[2].branch == (2, 2)
        await ask(pilot, "three")  # continues the branch on screen
        assert texts(app) == ["one", "a1", "two again", "b1", "three", "b2"]
        views(app)[2].focus()
        await pilot.press("left")  # the earlier branch, whole
        await wait_until(pilot, lambda: texts(app) == ["one", "a1", "two", "a2"])
        await pilot.press("right")
        await wait_until(pilot, lambda: texts(app) == ["one", "a1", "two again", "b1", "three", "b2"])
    conv = ctx.store.conversation(app.conversation_id)  # type: ignore[arg-type]
    assert len(conv.messages) == 8  # nothing replaced
    two, again = conv.messages[2], conv.messages[4]
    assert two.parent_id == again.parent_id == conv.messages[1].id


@pytest.mark.asyncio
async def test_copy_a_message_and_input_history(ctx) -> None:  # type: ignore[no-untyped-def]
    fake(ctx).enqueue(["copied text"])
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await ask(pilot, "earlier prompt")
        await pilot.press("ctrl+up")
        await pilot.press("c")
        assert app.clipboard == "copied text"
        app.query_one(PromptArea).focus()
        await pilot.press("up")  # ↑ in an empty prompt brings back the last one
        assert app.query_one(PromptArea).text == "earlier prompt"
        await pilot.press("down")
        assert app.query_one(PromptArea).text == ""


@pytest.mark.asyncio
async def test_filter_search_and_jump_to_the_hit(ctx) -> None:  # type: ignore[no-untyped-def]
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await ask(pilot, "alpacas live in the andes")
        first = app.conversation_id
        for i in range(6):
            await ask(pilot, f"filler {i}")
        await pilot.press("ctrl+n")
        assert app.conversation_id is None and not views(app)
        await ask(pilot, "rockets")
        ctx.store.set_title(app.conversation_id, "Rocket talk")  # type: ignore[arg-type]
        await pilot.press("ctrl+f")
        await pilot.press(*list("rocket"))
        await wait_until(pilot, lambda: [i.row.title for i in app.query(ConversationItem)] == ["Rocket talk"])
        await pilot.press(*["backspace"] * 6, *list("andes"), "enter")  # all messages
        # two hits: the prompt, and the fake model's echo of it; both in the first conversation
        await wait_until(pilot, lambda: {i.row.id for i in app.query(ConversationItem)} == {first})
        assert len(app.query(ConversationItem)) == 2
        assert app.focused is app.query_one(ConversationList)
        await pilot.press("enter")  # open the hit: the conversation, at that message
        await wait_until(pilot, lambda: app.conversation_id == first)
        assert isinstance(app.focused, MessageView) and "andes" in app.focused.message.text
        await pilot.press("escape")  # clears the search
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 2)


@pytest.mark.asyncio
async def test_rename_archive_delete_and_undo_from_the_list(ctx) -> None:  # type: ignore[no-untyped-def]
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await ask(pilot, "keep me")
        conv = app.conversation_id
        app.query_one(ConversationList).focus()
        await pilot.press("r")
        assert isinstance(app.screen, AskText)
        await pilot.press(*["backspace"] * 40, *list("My title"), "enter")
        await wait_until(pilot, lambda: [i.row.title for i in app.query(ConversationItem)] == ["My title"])
        assert ctx.store.summary(conv).title == "My title"  # type: ignore[arg-type]
        await pilot.press("a")  # archive: gone from the list, kept in the store
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 0)
        assert ctx.store.summary(conv).archived  # type: ignore[arg-type]
        await pilot.press("s")  # show archived
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 1)
        await pilot.press("a")  # unarchive
        await wait_until(pilot, lambda: not ctx.store.summary(conv).archived)  # type: ignore[arg-type]
        await pilot.press("s")
        await pilot.press("d")
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 0)
        assert ctx.store.list_conversations(include_archived=True) == [] and app.conversation_id is None
        await pilot.press("u")
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == 1)
        assert app.conversation_id == conv and texts(app)[0] == "keep me"


@pytest.mark.asyncio
async def test_a_remote_change_appears_while_the_user_types(ctx) -> None:  # type: ignore[no-untyped-def]
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        for i in range(8):  # enough to scroll
            await ask(pilot, f"line {i}\n\nmore\n\nand more")
        conv = app.conversation_id
        box = app.query_one("#messages")
        box.scroll_to(y=3, animate=False)  # the user scrolled up to read
        await pilot.pause(0.1)
        prompt = app.query_one(PromptArea)
        prompt.focus()
        await pilot.press(*list("half-typed"))
        scroll_before = box.scroll_offset
        other = Store.open(ctx.paths, "DEVICE-B")  # another process or device writes
        try:
            other.add_message(conv, "user", "written elsewhere")  # type: ignore[arg-type]
        finally:
            other.close()
        await wait_until(pilot, lambda: texts(app)[-1:] == ["written elsewhere"])
        assert prompt.text == "half-typed" and app.focused is prompt
        assert box.scroll_offset == scroll_before and scroll_before.y == 3


@pytest.mark.asyncio
async def test_what_arrives_from_elsewhere_is_followed_when_the_user_is_at_the_bottom(ctx) -> None:  # type: ignore[no-untyped-def]
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        for i in range(8):  # enough to scroll
            await ask(pilot, f"line {i}\n\nmore\n\nand more")
        conv = app.conversation_id
        box = app.query_one("#messages")
        await wait_until(pilot, lambda: not app.generating)

        def at_the_bottom() -> bool:  # (the reader is there: scrolled to the end, and it stays)
            box.scroll_end(animate=False)
            return box.max_scroll_y > 0 and box.scroll_offset.y == box.max_scroll_y

        await wait_until(pilot, at_the_bottom)
        bottom = box.max_scroll_y
        other = Store.open(ctx.paths, "DEVICE-B")  # `covey ask` in a terminal, or a peer
        try:
            other.add_message(conv, "user", "asked elsewhere\n\nwith\n\nseveral lines")  # type: ignore[arg-type]
        finally:
            other.close()
        await wait_until(pilot, lambda: texts(app)[-1:] == ["asked elsewhere\n\nwith\n\nseveral lines"])
        await wait_until(pilot, lambda: box.max_scroll_y > bottom
                         and box.scroll_offset.y == box.max_scroll_y)


@pytest.mark.asyncio
async def test_slash_commands(ctx) -> None:  # type: ignore[no-untyped-def]
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await ask(pilot, "hello")
        conv = app.conversation_id
        await type_and_send(pilot, "/title Greetings")
        await type_and_send(pilot, "/system Be brief")
        assert ctx.store.summary(conv).title == "Greetings"  # type: ignore[arg-type]
        assert ctx.store.summary(conv).system_prompt == "Be brief"  # type: ignore[arg-type]
        assert [str(w.render()) for w in app.query(".system-prompt")] == ["system prompt: Be brief"]
        await wait_until(pilot, lambda: [i.row.title for i in app.query(ConversationItem)] == ["Greetings"])
        await type_and_send(pilot, "/archive")
        await wait_until(pilot, lambda: ctx.store.summary(conv).archived)  # type: ignore[arg-type]
        await type_and_send(pilot, "/delete")
        await wait_until(pilot, lambda: app.conversation_id is None)
        assert ctx.store.list_conversations(include_archived=True) == []
        await type_and_send(pilot, "/undo")
        await wait_until(pilot, lambda: app.conversation_id == conv and len(views(app)) == 2)
        assert [str(w.render()) for w in app.query(".system-prompt")] == ["system prompt: Be brief"]
        await ask(pilot, "//etc is a folder")  # an escaped slash is a prompt
        assert texts(app)[2] == "/etc is a folder"
        before = len(ctx.store.conversation(conv).messages)  # type: ignore[arg-type]
        await type_and_send(pilot, "/frobnicate")  # not a command: said so, nothing sent
        await wait_until(pilot, lambda: any("There is no /frobnicate" in str(n.message)
                                            for n in app._notifications))
        assert len(ctx.store.conversation(conv).messages) == before  # type: ignore[arg-type]
        await type_and_send(pilot, "/system")  # clears it
        await wait_until(pilot, lambda: not app.query(".system-prompt"))
        assert not ctx.store.summary(conv).system_prompt  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_the_list_grows_as_it_is_scrolled(ctx) -> None:  # type: ignore[no-untyped-def]
    from app.ui.sidebar import PAGE

    ids = [ctx.store.create_conversation(title=f"topic {i}") for i in range(PAGE * 2 + 5)]
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == PAGE)  # not all at once
        app.query_one(ConversationList).focus()
        await pilot.press(*["down"] * (PAGE - 1))
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == PAGE * 2)
        assert app.query_one(ConversationList).index == PAGE - 1  # the place is kept
        await pilot.press(*["down"] * PAGE)
        await wait_until(pilot, lambda: len(app.query(ConversationItem)) == len(ids))
        listed = [item.row.id for item in app.query(ConversationItem)]
        assert listed == [r.id for r in ctx.store.list_conversations()]  # the store's order
        assert sorted(listed) == sorted(ids)  # each once
