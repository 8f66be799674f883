"""A loop of the node that dies anyway is reported and started again (never silently gone)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from sync import errors


@pytest.mark.asyncio
async def test_a_loop_that_fails_is_reported_and_restarted(caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "RESTART_AFTER", 0.01)
    runs: list[int] = []
    stopping = False

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError(f"broken run {len(runs)}")
        await asyncio.sleep(3600)  # the third run keeps going

    tasks: list[asyncio.Task[None]] = []

    def spawn(coro: Coroutine[Any, Any, None],
              again: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.append(task)
        task.add_done_callback(lambda t: errors.supervise(t, "test loop", again, spawn, stopping))

    with caplog.at_level(logging.ERROR, logger="covey.errors"):
        spawn(loop(), loop)
        for _ in range(200):
            if len(runs) >= 3:
                break
            await asyncio.sleep(0.01)
    assert len(runs) == 3 and not tasks[-1].done()
    assert "RuntimeError: broken run 1" in caplog.text
    assert caplog.text.count("starting it again") == 2
    stopping = True
    tasks[-1].cancel()
    await asyncio.sleep(0.05)
    assert len(runs) == 3  # cancelled on shutdown: not restarted
