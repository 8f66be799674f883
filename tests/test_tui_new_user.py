"""What a new user tripped over in the terminal app (issue 17, items 2-7): Pilot tests at the
sizes they used (80x24 and 160x45)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import Button, DataTable, Input, Markdown, Select

from app.config import Config
from app.ui.app import CoveyApp
from app.ui.household import DevicesScreen
from app.ui.settings import SettingsScreen
from app.ui.sidebar import ConversationList
from app.ui.widgets import MessageView, PromptArea
from sync import household
from tests.tui_helpers import fake, make_context, type_and_send, wait_until


def visible(app: CoveyApp, widget: object) -> bool:
    """The widget is wholly on the screen as it is, with nothing scrolled."""
    region = widget.region  # type: ignore[attr-defined]
    width, height = app.size
    return region.width > 0 and region.x >= 0 and region.y >= 0 and \
        region.right <= width and region.bottom <= height


@pytest.mark.asyncio
async def test_an_answers_single_line_breaks_are_kept(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home")
    fake(ctx).enqueue(["Old pond,\nA frog jumps in,", "\nthe sound of water."])
    app = CoveyApp(ctx)
    async with app.run_test(size=(160, 45)) as pilot:
        await type_and_send(pilot, "a haiku")
        await wait_until(pilot, lambda: not app.generating and len(app.query(MessageView)) == 2)
        await pilot.pause(0.2)
        answer = app.query(MessageView)[1]
        shown = [strip.text.strip() for block in answer.query_one(Markdown).query(
            "MarkdownParagraph") for strip in block.render_lines(
            Region(0, 0, block.size.width, block.size.height))]
        shown = [line for line in shown if line]  # the lines as they are drawn
        assert shown[:3] == ["Old pond,", "A frog jumps in,", "the sound of water."], shown
    ctx.close()


@pytest.mark.asyncio
async def test_settings_fit_80x24_and_empty_fields_take_their_defaults(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home", temperature=0.2)
    app = CoveyApp(ctx)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        await pilot.pause(0.1)
        box = screen.query_one("#settings-box")
        assert box.max_scroll_y == 0  # nothing hidden below
        for widget in (screen.query_one("#save", Button), screen.query_one("#run_on", Select),
                       screen.query_one("#cancel", Button)):
            assert visible(app, widget), widget
        field = screen.query_one("#temperature", Input)
        assert "0.7" in str(field.placeholder)  # the hint says the default …
        field.value = ""  # … and an empty field means it
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
    assert Config.load(ctx.paths.config_file).temperature == 0.7
    ctx.close()


@pytest.mark.asyncio
async def test_down_from_the_filter_and_ctrl_l_reach_the_list(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home")
    for _n in range(3):
        ctx.store.create_conversation()
    app = CoveyApp(ctx)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#filter", Input).focus()
        await pilot.press("down")
        assert isinstance(app.focused, ConversationList)
        app.query_one(PromptArea).focus()
        await pilot.press("ctrl+l")
        assert isinstance(app.focused, ConversationList)
    ctx.close()


@pytest.mark.asyncio
async def test_notices_do_not_cover_the_prompt(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home")
    app = CoveyApp(ctx)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        app.notify("Something happened that the user should read", timeout=30)
        await pilot.pause(0.3)
        prompt = app.query_one(PromptArea).region
        toasts = [t.region for t in app.screen.query("Toast")]
        assert toasts, "no notice shown"
        for toast in toasts:
            assert toast.overlaps(prompt) is False, (toast, prompt)
            assert toast.right == app.size.width or toast.right >= app.size.width - 2  # right
            assert toast.y < app.size.height // 2  # top
    ctx.close()


@pytest.mark.asyncio
async def test_this_device_is_never_last_seen_never(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home", device_id="")
    household.ensure(ctx.store, ctx.identity, "laptop")
    app = CoveyApp(ctx)
    async with app.run_test(size=(160, 45)) as pilot:
        bar = str(app.query_one("#household").render())
        assert "laptop" in bar and "never" not in bar
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, DevicesScreen)
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        row = table.get_row_at(0)
        assert row[0] == "laptop" and row[2] == "now", row
    ctx.close()


def test_the_bar_does_not_count_seconds() -> None:
    """An offline device's "last seen" on the always-visible bar changes once a minute, not
    every second (each change repaints the screen: an idle app would never rest)."""
    import time

    from app.household_status import DeviceStatus
    from app.ui.household import describe

    def pi(seen: float) -> DeviceStatus:
        return DeviceStatus(device_id="P", name="pi", fingerprint="", this_device=False,
                            revoked=False, online=False, syncing=False, address=None,
                            last_seen=seen, last_sync=None, model="", tok_s=0.0, serves=False)

    now = time.time()
    assert describe(pi(now - 5)) == describe(pi(now - 40)) == "○ pi last seen under a minute ago"
    assert describe(pi(now - 150)) == "○ pi last seen 2 min ago"
