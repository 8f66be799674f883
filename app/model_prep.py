"""A node's model, made ready in the background: the node is online while it loads.

`covey serve` (and the terminal app's hosted node) listen and sync at once; this thread loads
the model, measures its speed (cached per model file), hands it to the job worker, and only
then tells the household what this device can run — in the household document (synced, so it
is right with mDNS off) and in the mDNS advertisement. When the device has been idle a while
and its measurement is old, it measures again, so one busy moment does not steer routing for
good.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.context import Context
from app.errors import CoveyError
from app.job_worker import JobWorker
from sync import household

if TYPE_CHECKING:
    from app.warm_models import WarmModels

log = logging.getLogger(__name__)
REMEASURE_AFTER = 3600.0  # a measurement older than this is taken again …
IDLE_FOR = 120.0  # … once no job has run for this long
LOOK_EVERY = 30.0


class ModelPrep:
    def __init__(self, ctx: Context, worker: JobWorker,
                 advertise: Callable[[str, float], None]) -> None:
        self.ctx = ctx
        self.worker = worker
        self.advertise = advertise
        self.ready = threading.Event()
        self.error: str | None = None
        self.warm: WarmModels | None = None  # the models kept loaded, once the own one is
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="covey-model-prep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is None:
            return  # never started (the node failed first: its own error is the one to tell)
        # A measurement under way is not waited for long: stopping must stay prompt.
        self._thread.join(timeout=2)

    def _run(self) -> None:
        from app.speed import measured_at, measured_speed

        try:
            name, tok_s = measured_speed(self.ctx)
        except CoveyError as exc:  # a model that cannot load: the node syncs without one
            self.error = str(exc)
            log.error("the model is not available, this device answers nobody: %s", exc)
            self.worker.attach_model(None)
            self._publish("", 0.0)
            return
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("loading the model failed")
            self.worker.attach_model(None)
            self._publish("", 0.0)
            return
        from app.warm_models import WarmModels

        self.warm = WarmModels(self.ctx, self.ctx.model)
        self.worker.attach_model(self.ctx.model, self.warm.get)
        self._publish(name, tok_s)
        self._publish_catalog()  # (before "ready": what a node tells the household, it has told)
        self.ready.set()
        log.info("model %s ready: %.1f tokens/s", name, tok_s)
        while not self._stop.wait(LOOK_EVERY):
            stamp = measured_at(self.ctx) or 0.0
            if (time.time() - stamp > REMEASURE_AFTER
                    and time.monotonic() - self.worker.last_busy > IDLE_FOR):
                try:
                    name, tok_s = measured_speed(self.ctx, fresh=True)
                    self._publish(name, tok_s)
                except Exception as exc:  # keep the old figure; try again later
                    log.warning("re-measuring the model's speed failed: %s", exc)

    def _publish_catalog(self) -> None:
        """Every model this device has, for `covey models` and `--model NAME` on the others."""
        from app import model_choice

        try:
            found = model_choice.local_models(self.ctx)
            model_choice.publish(self.ctx, found, model_choice.known_speeds(self.ctx))
            log.info("models on this device: %d usable, %d not",
                     sum(m.usable for m in found), sum(not m.usable for m in found))
        except Exception:  # the list is a courtesy: the node runs on without it
            log.exception("listing this device's models failed")

    def _publish(self, model: str, tok_s: float) -> None:
        from app.speed import measured_at

        serves = self.ctx.config.serve_peers and bool(model)
        try:
            household.set_capability(self.ctx.store, self.ctx.identity.device_id, model, tok_s,
                                     serves=serves, measured_at=measured_at(self.ctx))
        except CoveyError as exc:
            log.warning("could not record this device's capability: %s", exc)
        self.advertise(model, tok_s)
