"""The node the terminal app hosts answers like `covey serve`: the OpenAI-compatible API and the
jobs paired devices hand it, on the app's own model, in turn with the app's own answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from app.config import Paths
from app.context import Context
from app.node_host import NodeHost
from app.ui.app import CoveyApp
from tests.devices import Device, eventually, pair
from tests.tui_helpers import type_and_send, wait_until

openai = pytest.importorskip("openai")


@pytest.fixture
def household(make_device) -> Iterator[tuple[Device, Device, Context, NodeHost]]:  # type: ignore[no-untyped-def]
    """A laptop whose node the app hosts (in this process; its API on) and a pi serving."""
    laptop = make_device("laptop", "fake:name=laptop-model,delay=0.01", api=True)
    pi = make_device("pi", "fake:name=pi-model,delay=0.01")
    pair(laptop, pi)
    ctx = Context(paths=Paths.at(laptop.home))
    host = NodeHost(ctx)
    assert host.start(), host.error
    pi.serve(laptop)
    pi.settled()
    assert host.prep is not None
    assert host.prep.ready.wait(30), host.prep.error
    try:
        yield laptop, pi, ctx, host
    finally:
        host.stop()
        ctx.close()


def _client(laptop: Device) -> openai.OpenAI:
    return openai.OpenAI(base_url=laptop.api_url, api_key="unused-on-localhost", max_retries=0,
                         timeout=60)


def test_the_app_hosted_node_serves_the_api_and_its_peers(household) -> None:  # type: ignore[no-untyped-def]
    laptop, pi, ctx, host = household
    assert host.api is not None and host.notices == []
    api = _client(laptop)
    # Both devices' models: the laptop's own (the app's), the pi's (over sync).
    eventually(lambda: sorted(m.id for m in api.models.list().data) == [
        "SmolLM2-135M-Instruct.Q4_1", "laptop-model", "pi-model"], timeout=30)
    here = api.chat.completions.create(model="laptop-model",
                                       messages=[{"role": "user", "content": "hello app"}])
    assert here.choices[0].message.content == "You said: hello app"
    there = api.chat.completions.create(model="pi-model",
                                        messages=[{"role": "user", "content": "hello pi"}])
    assert there.choices[0].message.content == "You said: hello pi"
    # The pi hands a job to the laptop, whose node the app hosts: the app's model answers it.
    asked = pi.covey("ask", "--on", "laptop", "who answers the pi?")
    assert asked.returncode == 0, asked.stderr
    assert "You said: who answers the pi?" in asked.stdout
    ctx.store.poll()
    answers = {m.text: m for row in ctx.store.list_conversations()
               for m in ctx.store.messages(row.id) if m.role == "assistant"}
    assert answers["You said: hello app"].model == "laptop-model"
    assert answers["You said: hello pi"].model == "pi-model"
    asked_by_pi = answers["You said: who answers the pi?"]
    assert asked_by_pi.model == "laptop-model" and asked_by_pi.requested_by == pi.device_id
    assert asked_by_pi.device == ctx.store.device_id


@pytest.mark.asyncio
async def test_the_apps_answers_and_the_apis_take_turns(household) -> None:  # type: ignore[no-untyped-def]
    laptop, _, ctx, host = household
    app = CoveyApp(ctx, host)
    got: list[str] = []

    def ask_api() -> None:
        reply = _client(laptop).chat.completions.create(
            model="laptop-model", messages=[{"role": "user", "content": "from the editor"}])
        got.append(reply.choices[0].message.content or "")

    async with app.run_test(size=(100, 30)) as pilot:
        client = threading.Thread(target=ask_api)
        client.start()
        await type_and_send(pilot, "from the app")
        await wait_until(pilot, lambda: not app.generating and bool(got), timeout=30)
        client.join(30)
        texts = [m.text for row in ctx.store.list_conversations()
                 for m in ctx.store.messages(row.id) if m.role == "assistant"]
    assert got == ["You said: from the editor"]
    assert sorted(texts) == ["You said: from the app", "You said: from the editor"]


def test_a_busy_api_port_is_a_notice_and_the_node_still_syncs(make_device) -> None:  # type: ignore[no-untyped-def]
    laptop = make_device("laptop", "fake", api=True)
    taken = socket.socket()
    taken.bind(("127.0.0.1", laptop.api_port))
    taken.listen()
    ctx = Context(paths=Paths.at(laptop.home))
    host = NodeHost(ctx)
    try:
        assert host.start(), host.error
        assert host.listening is not None and host.api is None
        assert len(host.notices) == 1 and "the API cannot listen" in host.notices[0]
    finally:
        host.stop()
        ctx.close()
        taken.close()
