"""Building the terminal app for pilot tests: a Context on a temporary home with a fake model,
mDNS off, and a fixed device id and name (so screens are the same on every machine). A hosted
node answers nobody unless a test asks for it (`serve_peers`, `api`): its speed measurement
would take the fake model's scripted answers."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from app.config import Config, Paths
from app.context import Context
from app.ui.app import CoveyApp
from app.ui.widgets import MessageView, PromptArea
from models.fake import FakeModel
from models.registry import build_model
from sync.store import Store


def make_context(home: Path, model: str = "fake", device_id: str = "DEVICE-A",
                 listen: str = "127.0.0.1:0", **settings: Any) -> Context:
    home.mkdir(parents=True, exist_ok=True)
    settings.setdefault("serve_peers", False)
    settings.setdefault("api", False)
    paths = Paths.at(home)
    config = Config(device_name=settings.pop("device_name", "laptop"), auto_title=False,
                    mdns=False, listen=listen, model=model, **settings)
    config.save(paths.config_file)
    ctx = Context(paths=paths)
    if model.startswith("fake"):  # its own, not the process's cached one (scripted answers)
        ctx.__dict__["model"] = build_model(model, config.context_length, None)
    if device_id:  # a fixed id instead of the identity's (for stable screens)
        ctx.__dict__["store"] = Store.open(paths, device_id)
    return ctx


def fake(ctx: Context) -> FakeModel:
    model = ctx.model
    assert isinstance(model, FakeModel)
    return model


async def wait_until(pilot: Any, check: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    try:
        what = inspect.getsource(check).strip()
    except (OSError, TypeError):
        what = repr(check)
    raise AssertionError(f"not met in the app within {timeout}s: {what}")


async def type_and_send(pilot: Any, text: str) -> None:
    pilot.app.query_one(PromptArea).focus()
    await pilot.press(*list(text))
    await pilot.press("enter")


async def ask(pilot: Any, text: str) -> None:
    """Send a prompt and wait for its answer to finish."""
    app: CoveyApp = pilot.app
    before = len(app.store.conversation(app.conversation_id).messages) if app.conversation_id else 0
    await type_and_send(pilot, text)
    await wait_until(pilot, lambda: app.conversation_id is not None and not app.generating and len(
        app.store.conversation(app.conversation_id).messages) >= before + 2)
    await pilot.pause(0.1)


def texts(app: CoveyApp) -> list[str]:
    return [v.message.text for v in app.query(MessageView)]
