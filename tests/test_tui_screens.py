"""Pilot tests of the app's screens: pairing (real nodes, real TLS on loopback), settings,
devices, themes, the command palette and the footer's keys."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Label, Select

from app.config import Config
from app.joining import join_household
from app.node_host import NodeHost
from app.ui.app import CoveyApp
from app.ui.household import DevicesScreen, HouseholdBar
from app.ui.pairing import PairingScreen
from app.ui.settings import SettingsScreen
from sync import adoption, household, offers, pairing
from sync.identity import load_or_create
from tests.devices import free_port
from tests.tui_helpers import make_context, wait_until


@pytest.fixture
def two(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two devices' contexts on loopback ports, each identity its own (as pairing needs)."""
    a = make_context(tmp_path / "a", device_id="", device_name="laptop",
                     listen=f"127.0.0.1:{free_port()}")
    b = make_context(tmp_path / "b", device_id="", device_name="pi",
                     listen=f"127.0.0.1:{free_port()}")
    yield a, b
    a.close()
    b.close()


def label(app: CoveyApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Label).render())


@pytest.mark.asyncio
async def test_pairing_screen_shows_a_code_and_the_other_device_joins(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    node = NodeHost(a)
    assert node.start(), node.error
    app = CoveyApp(a, node)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            assert "no paired devices yet" in str(app.query_one(HouseholdBar).render())
            await pilot.press("ctrl+o")  # devices screen → p: pair
            assert isinstance(app.screen, DevicesScreen)
            await pilot.press("p")
            assert isinstance(app.screen, PairingScreen)
            await pilot.click("#invite")
            screen = app.screen
            await wait_until(pilot, lambda: screen.code is not None)
            code = screen.code
            assert code in label(app, "#code")
            joined: list[object] = []
            port = int(a.config.listen.rsplit(":", 1)[1])
            worker = threading.Thread(target=lambda: joined.append(
                join_household(b, code, f"127.0.0.1:{port}", say=lambda _: None)))
            worker.start()
            await wait_until(pilot, lambda: "Paired with pi" in label(app, "#status"), timeout=30)
            worker.join(10)
            assert joined and joined[0].name == "laptop"  # type: ignore[attr-defined]
            await pilot.press("escape")  # back on the devices screen: two devices now
            assert isinstance(app.screen, DevicesScreen)
            await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 2)
            await pilot.press("escape")
            await wait_until(pilot, lambda: "pi" in str(app.query_one(HouseholdBar).render()))
            bar = str(app.query_one(HouseholdBar).render())
            assert "○ pi" in bar and "sync on" in bar  # paired, not connected (b has no node)
    finally:
        node.stop()
    assert {d.name for d in household.devices(a.store)} == {"laptop", "pi"}
    assert offers.offer_state(a.store, code)[0] == "used"


@pytest.mark.asyncio
async def test_pairing_screen_enters_the_code_another_device_shows(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    node_b = NodeHost(b)
    assert node_b.start(), node_b.error
    try:
        household.ensure(b.store, b.identity, "pi")
        code = pairing.new_code()
        offers.open_offer(b.store, code)
        app = CoveyApp(a)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("ctrl+p")  # the command palette reaches the pairing screen too
            await pilot.press(*list("pair a device"), "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, PairingScreen))
            await pilot.click("#join")
            await pilot.click("#join-code")
            await pilot.press(*list("wrong-words-here"), "enter")
            await wait_until(pilot, lambda: "is not a pairing code" in label(app, "#status"))
            app.screen.query_one("#join-code", Input).value = code
            app.screen.query_one("#join-address", Input).value = b.config.listen
            await pilot.click("#join-go")
            await wait_until(pilot, lambda: "Paired with pi" in label(app, "#status"), timeout=30)
    finally:
        node_b.stop()
    assert {d.name for d in household.devices(a.store)} == {"laptop", "pi"}


@pytest.mark.asyncio
async def test_settings_persist_and_bad_values_are_refused(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home")
    app = CoveyApp(ctx)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("f2")
        assert isinstance(app.screen, SettingsScreen)
        screen = app.screen
        screen.query_one("#temperature", Input).value = "hot"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)  # refused, still open, nothing written
        assert Config.load(ctx.paths.config_file).temperature == 0.7
        screen.query_one("#temperature", Input).value = "0.2"
        screen.query_one("#max_tokens", Input).value = "64"
        screen.query_one("#device_name", Input).value = "kitchen-pi"
        screen.query_one("#seed", Input).value = "42"
        screen.query_one("#run_on", Select).value = "local"
        screen.query_one("#theme", Select).value = "textual-light"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert app.theme == "textual-light"
        params = ctx.assistant.params()  # this session uses them at once
        assert (params.temperature, params.max_tokens, params.seed) == (0.2, 64, 42)
    saved = Config.load(ctx.paths.config_file)
    assert (saved.temperature, saved.max_tokens, saved.device_name, saved.seed, saved.run_on,
            saved.theme) == (0.2, 64, "kitchen-pi", 42, "local", "textual-light")
    assert saved.mdns is False and saved.model == "fake"  # untouched settings kept
    ctx.close()


@pytest.mark.asyncio
async def test_theme_toggle_is_saved(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home")
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light" and not app.current_theme.dark
    assert Config.load(ctx.paths.config_file).theme == "textual-light"
    again = CoveyApp(ctx)
    async with again.run_test():
        assert again.theme == "textual-light"  # remembered
    ctx.close()


@pytest.mark.asyncio
async def test_every_footer_key_does_what_it_says(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home", model="fake:delay=0.02,words=400")
    app = CoveyApp(ctx)
    async with app.run_test(size=(160, 40)) as pilot:
        shown = {b.key: b.description for (_, b, enabled, _) in app.active_bindings.values()
                 if b.show}
        assert shown == {"ctrl+n": "New", "ctrl+f": "Find", "escape": "Stop",
                         "ctrl+r": "Regenerate", "ctrl+o": "Devices", "f2": "Settings",
                         "ctrl+t": "Theme", "ctrl+q": "Quit", "ctrl+up": "Messages"}
        await pilot.press(*list("go"), "enter")
        await wait_until(pilot, lambda: app.generating)
        await pilot.press("escape")  # Stop
        await wait_until(pilot, lambda: not app.generating)
        conv = app.conversation_id
        await pilot.press("ctrl+r")  # Regenerate: a second answer beside the stopped one
        await wait_until(pilot, lambda: app.generating)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.generating)
        assert len(ctx.store.conversation(conv).messages) == 3  # type: ignore[arg-type]
        await pilot.press("ctrl+up")  # Messages
        assert app.focused is list(app.query("MessageView"))[-1]
        await pilot.press("ctrl+f")  # Find
        assert app.focused is app.query_one("#filter")
        await pilot.press("ctrl+n")  # New
        assert app.conversation_id is None and app.focused is app.chat.prompt
        await pilot.press("ctrl+o")  # Devices
        assert isinstance(app.screen, DevicesScreen)
        await pilot.press("escape")
        await pilot.press("f2")  # Settings
        assert isinstance(app.screen, SettingsScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+t")  # Theme
        assert app.theme == "textual-light"
        await pilot.press("ctrl+q")  # Quit
    assert app.return_code == 0


@pytest.mark.asyncio
async def test_errors_are_notifications_not_crashes(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home", model=str(tmp_path / "missing.gguf"))
    app = CoveyApp(ctx)
    async with app.run_test() as pilot:
        await pilot.press(*list("hello"), "enter")
        await wait_until(pilot, lambda: any("missing.gguf" in str(n.message)
                                            for n in app._notifications))
        assert not app.generating
        await ask_nothing(pilot)
    ctx.close()


async def ask_nothing(pilot) -> None:  # type: ignore[no-untyped-def]
    """An empty prompt sends nothing (and says nothing)."""
    before = len(pilot.app.store.list_conversations())
    await pilot.press("enter")
    await pilot.pause(0.2)
    assert len(pilot.app.store.list_conversations()) == before



@pytest.mark.asyncio
async def test_answers_run_on_the_device_chosen_in_settings(make_device) -> None:  # type: ignore[no-untyped-def]
    from app import routing
    from app.config import Paths
    from app.context import Context
    from tests.devices import pair

    laptop = make_device("laptop", "fake:name=laptop-model")
    pi = make_device("pi", "fake:delay=0.02,words=300,name=pi-model")
    pair(laptop, pi)
    pi.serve()
    ctx = Context(paths=Paths.at(laptop.home))
    ctx.config.run_on = "pi"
    node = NodeHost(ctx)
    assert node.start(), node.error
    app = CoveyApp(ctx, node)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: any(c.name == "pi" for c in routing.candidates(ctx.store)),
                             timeout=30)
            await wait_until(pilot, lambda: "● pi online runs" in str(app.query_one(HouseholdBar).render()),
                             timeout=30)
            await pilot.press(*list("stop me"), "enter")
            await wait_until(pilot, lambda: len(app.query("MessageView")) == 2 and
                             len(list(app.query("MessageView"))[1].message.text) > 10, timeout=30)
            await pilot.press("escape")  # cancels the job on the other device too
            await wait_until(pilot, lambda: not app.generating, timeout=30)
            await pilot.press(*list("all of it"), "enter")
            full = "".join(f"w{i} " for i in range(300))

            def ahead_of_the_store() -> bool:  # the pi's pieces shown live, before its commits
                shown = list(app.query("MessageView"))[-1].message
                stored = ctx.store.text_length(shown.id) or 0
                return shown.role == "assistant" and len(shown.text) > stored

            await wait_until(pilot, ahead_of_the_store, timeout=30)
            await wait_until(pilot, lambda: not app.generating and
                             list(app.query("MessageView"))[-1].message.text == full, timeout=60)
            await pilot.pause(0.3)
            caption = str(list(app.query("MessageView"))[-1].query_one(".caption").render())
            assert "pi-model · on pi" in caption
            await pilot.press("ctrl+r")  # regenerating follows the setting too
            await wait_until(pilot, lambda: not app.generating and
                             list(app.query("MessageView"))[-1].branch == (2, 2) and
                             list(app.query("MessageView"))[-1].message.text == full, timeout=60)
            first = app.conversation_id
            ctx.config.auto_title = True
            await pilot.press("ctrl+n", *list("name me"), "enter")  # the runner titles it
            await wait_until(pilot, lambda: app.conversation_id not in (None, first) and
                             ctx.store.summary(app.conversation_id).title != "New conversation",
                             timeout=60)
            assert ctx.store.conversation(app.conversation_id).title_source == "auto"
            await wait_until(pilot, lambda: ctx.store.summary(app.conversation_id).title in [
                i.row.title for i in app.query("ConversationItem")])  # and the list shows it
            app.chat.open(first)
    finally:
        node.stop()
    messages = ctx.store.conversation(app.conversation_id).messages  # type: ignore[arg-type]
    assert [m.status for m in messages if m.role == "assistant"] == ["cancelled", "done", "done"]
    assert messages[-1].text == messages[-2].text == full
    assert messages[-1].model == messages[-2].model == "pi-model"
    assert messages[-1].parent_id == messages[-2].parent_id  # two answers to one prompt
    assert messages[1].device == pi.device_id and 10 < len(messages[1].text) < len(full)
    ctx.close()


@pytest.mark.asyncio
async def test_devices_screen_details_and_removing_a_device(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "home", device_id="")
    household.ensure(ctx.store, ctx.identity, "laptop")
    pi = load_or_create(tmp_path / "pi", "pi")
    adoption.pair_locally(ctx.store, ctx.identity, pi, "pi")
    household.set_capability(ctx.store, pi.device_id, "smollm2", 78.0, serves=True)
    app = CoveyApp(ctx)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_until(pilot, lambda: "○ pi last seen never runs 78 tok/s"
                         in str(app.query_one(HouseholdBar).render()))
        await pilot.click(HouseholdBar)  # the bar opens the devices screen too
        assert isinstance(app.screen, DevicesScreen)
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 2)
        table.move_cursor(row=0)
        await pilot.pause(0.1)
        await pilot.press("x")  # on this device: refused
        assert isinstance(app.screen, DevicesScreen) and not any(
            d.revoked for d in household.devices(ctx.store))
        await pilot.press("down")
        await wait_until(pilot, lambda: pi.device_id in label(app, "#details"))
        assert "answers for the household" in label(app, "#details")
        await pilot.press("x")
        await pilot.press("n")  # changed their mind
        assert not any(d.revoked for d in household.devices(ctx.store))
        await pilot.press("x")
        await pilot.press("y")
        await wait_until(pilot, lambda: any(d.revoked for d in household.devices(ctx.store)))
        await wait_until(pilot, lambda: "revoked" in str(table.get_row_at(1)))
    ctx.close()


@pytest.mark.asyncio
async def test_a_node_that_cannot_start_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:  # the configured port is in use by someone else
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ctx = make_context(tmp_path / "home", device_id="", listen=f"127.0.0.1:{port}")
        node = NodeHost(ctx)
        assert not node.start() and node.error
        app = CoveyApp(ctx, node)
        async with app.run_test() as pilot:
            bar = app.query_one(HouseholdBar)
            await wait_until(pilot, lambda: "sync off (the node failed" in str(bar.render()))
            assert any("Sync is off" in str(n.message) for n in app._notifications)
            await ask_nothing(pilot)  # the app works on
        node.stop()
    ctx.close()
