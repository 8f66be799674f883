"""An imported ChatGPT conversation in the terminal app: the branch ChatGPT showed is the one
on screen, ← / → walk the others, and + / - rate an answer (what `covey rate` sets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.importers import Tally, open_source
from app.importers.writer import restore_many
from app.ui.app import CoveyApp
from app.ui.widgets import MessageView
from sync.conversation import Message
from tests.import_samples import write_chatgpt
from tests.tui_helpers import make_context, texts, wait_until

PORTO = ["Plan a trip to Porto", "Day 1: the Douro valley.", "And day 2?", "Day 2: Livraria Lello."]


def caption(view: MessageView) -> str:
    return str(view.query_one(".caption").render())


@pytest.mark.asyncio
async def test_an_imported_tree_is_navigable_and_answers_can_be_rated(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home")
    tally = Tally()
    restore_many(ctx.store, open_source(write_chatgpt(tmp_path / "x", "zip"))
                 .conversations(tally), tally)
    trip = next(r.id for r in ctx.store.list_conversations() if r.title == "Trip planning")
    app = CoveyApp(ctx)
    async with app.run_test(size=(80, 24)) as pilot:
        app.chat.open(trip)
        await wait_until(pilot, lambda: texts(app) == PORTO)
        views = list(app.query(MessageView))
        assert views[0].branch == (2, 2) and views[1].branch == (2, 2)
        views[1].focus()
        await pilot.press("left")  # the first answer to the Porto prompt
        await wait_until(pilot, lambda: texts(app) == ["Plan a trip to Porto", "Day 1: Ribeira."])
        app.query(MessageView).first().focus()
        await pilot.press("left")  # the prompt before it was edited
        await wait_until(pilot, lambda: texts(app) == ["Plan a trip to Lisbon", "Day 1: Alfama."])
        await pilot.press("right")
        await wait_until(pilot, lambda: texts(app)[0] == "Plan a trip to Porto")
        answer = list(app.query(MessageView))[1]
        answer.focus()
        await pilot.press("plus")

        def rated() -> Message:
            found = ctx.store.conversation(trip).message(answer.message.id)
            assert found is not None
            return found

        await wait_until(pilot, lambda: rated().rating == "up" and "▲ good" in caption(
            list(app.query(MessageView))[1]))
        await pilot.press("plus")  # the same key again takes it back
        await wait_until(pilot, lambda: rated().rating is None)
        await pilot.press("minus")
        await wait_until(pilot, lambda: rated().rating == "down" and "▼ bad" in caption(
            list(app.query(MessageView))[1]))
        app.query(MessageView).first().focus()
        await pilot.press("plus")  # a prompt is not rated
        await pilot.pause(0.2)
        assert all(m.rating is None for m in ctx.store.conversation(trip).messages
                   if m.role == "user")
    ctx.close()
