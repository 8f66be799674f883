"""SVG snapshots of the terminal app's main layouts (pytest-textual-snapshot).

The store is filled with fixed timestamps and a fixed device id and home, so a screen is the
same on every machine. After an intended change of the layout, look at the new pictures
(`pytest tests/test_tui_snapshots.py --snapshot-report`) and accept them with
`pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.ui.app import CoveyApp
from tests.tui_helpers import make_context

HOME = Path("/tmp/covey-snapshots/home")  # shown on the settings screen: fixed on purpose
SIZE = (110, 32)

ANSWER = """Sure. A **CRDT** lets every device edit on its own and still agree:

```python
def merge(a: set[str], b: set[str]) -> set[str]:
    return a | b  # union: order does not matter
```

- no server
- no conflicts
"""


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    shutil.rmtree(HOME.parent, ignore_errors=True)
    ticks = itertools.count()
    monkeypatch.setattr("sync.store.now_iso",
                        lambda: f"2026-11-23T10:{next(ticks) % 60:02d}:00.000+00:00")
    ctx = make_context(HOME, model="fake")
    store = ctx.store
    older = store.create_conversation(title="Packing list for the coast")
    store.add_message(older, "user", "What should I pack for a weekend by the sea?")
    store.add_message(older, "assistant", "A windproof jacket, sunscreen and a good book.",
                      model="SmolLM2-135M-Instruct")
    conv = store.create_conversation(title="What is a CRDT?")
    store.add_message(conv, "user", "What is a CRDT? Show me a tiny example.")
    store.add_message(conv, "assistant", ANSWER, model="SmolLM2-135M-Instruct")
    app = CoveyApp(ctx)
    app.snapshot_conversation = conv  # type: ignore[attr-defined]
    yield app
    ctx.close()
    shutil.rmtree(HOME.parent, ignore_errors=True)


async def steady(pilot: Any) -> None:
    """No cursor (it blinks): a picture must not depend on when it is taken."""
    pilot.app.screen.set_focus(None)
    await pilot.pause(0.1)


async def open_conversation(pilot: Any) -> None:
    pilot.app.chat.open(pilot.app.snapshot_conversation)
    await pilot.pause(0.3)
    await steady(pilot)


def test_chat_with_a_conversation_open(app: CoveyApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=open_conversation)


def test_new_conversation_light_theme(app: CoveyApp, snap_compare: Any) -> None:
    async def light(pilot: Any) -> None:
        await pilot.press("ctrl+t")
        await pilot.pause(0.3)
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=light)


def test_settings_screen(app: CoveyApp, snap_compare: Any) -> None:
    async def settings(pilot: Any) -> None:
        await pilot.press("f2")
        await pilot.pause(0.2)
        await steady(pilot)

    assert snap_compare(app, terminal_size=(110, 60), run_before=settings)


def test_pairing_screen(app: CoveyApp, snap_compare: Any) -> None:
    async def pairing(pilot: Any) -> None:
        pilot.app.action_pair()
        await pilot.pause(0.3)
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=pairing)


def test_search_results(app: CoveyApp, snap_compare: Any) -> None:
    async def search(pilot: Any) -> None:
        await pilot.press("ctrl+f", *list("sea"), "enter")
        await pilot.pause(0.3)
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=search)
