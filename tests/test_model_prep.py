"""The node's model made ready in the background: published when ready, re-measured when idle."""

from __future__ import annotations

import time

import pytest

from app import model_prep
from app.config import Paths
from app.context import Context
from app.job_worker import JobWorker
from sync import household
from tests.devices import eventually


def prepared(home, model: str) -> tuple[Context, JobWorker, model_prep.ModelPrep, list]:  # type: ignore[no-untyped-def,type-arg]
    """A context on `model`, its worker waiting for it, and a ModelPrep recording adverts."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f'model = "{model}"\nmdns = false\n')
    ctx = Context(paths=Paths.at(home))
    household.ensure(ctx.store, ctx.identity, "prep")
    worker = JobWorker(ctx.store, None, ctx.assistant.params(), True)
    worker.loading = True
    advertised: list[tuple[str, float]] = []
    return ctx, worker, model_prep.ModelPrep(ctx, worker, lambda m, t: advertised.append((m, t))), \
        advertised


def test_the_model_is_published_when_ready_and_measured_again_when_idle(
        covey_home, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ctx, worker, prep, advertised = prepared(covey_home, "fake:delay=0.002,name=prep-model")
    monkeypatch.setattr(model_prep, "LOOK_EVERY", 0.05)
    monkeypatch.setattr(model_prep, "REMEASURE_AFTER", 0.0)  # every figure is "old" …
    monkeypatch.setattr(model_prep, "IDLE_FOR", 0.0)  # … and the device is always idle
    started = time.monotonic()
    prep.start()
    try:
        assert prep.ready.wait(30)
        assert worker.runner is not None and worker.loading is False
        cap = household.capability(ctx.store, ctx.identity.device_id)
        assert cap["model"] == "prep-model" and cap["tok_s"] > 0 and cap["serves"] is True
        assert started < time.monotonic() and cap["measured_at"] > time.time() - 60
        first = cap["measured_at"]
        eventually(lambda: len(advertised) >= 3, timeout=30)  # measured again, and again
        again = household.capability(ctx.store, ctx.identity.device_id)["measured_at"]
        assert again > first
    finally:
        prep.stop()
        ctx.close()


def test_a_model_that_cannot_load_leaves_a_node_that_answers_nobody(covey_home) -> None:  # type: ignore[no-untyped-def]
    covey_home.mkdir(parents=True, exist_ok=True)
    broken = covey_home / "broken.gguf"  # starts like a GGUF file; llama.cpp refuses the rest
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    ctx, worker, prep, advertised = prepared(covey_home, str(broken))
    prep.start()
    try:
        eventually(lambda: advertised, timeout=30)
        assert advertised == [("", 0.0)] and prep.error and "broken.gguf" in prep.error
        assert worker.loading is False and worker.runner is None  # jobs are refused, not kept
        assert household.capability(ctx.store, ctx.identity.device_id)["serves"] is False
    finally:
        prep.stop()
        ctx.close()
