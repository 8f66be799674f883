"""The models a node keeps loaded: its own, and others a job asks for by name, under a memory
budget (`model_memory`, MB; 0 = half the RAM). The least recently used one goes first to make
room; the node's own model stays. A model that could never fit is refused, saying how much it
needs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import ModelError
from models.base import ChatModel
from models.registry import build_model

if TYPE_CHECKING:
    from app.context import Context

log = logging.getLogger(__name__)
OVERHEAD_MB = 120  # llama.cpp's buffers beside the weights (seen: 98 MB of compute buffer)


def default_budget_mb() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 / 2)
    except (ValueError, OSError, AttributeError):
        return 4096


def need_mb(path: str) -> int:
    """About what a model takes loaded: its file (the weights are mapped whole) and buffers."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return OVERHEAD_MB
    return int(size / 2**20) + OVERHEAD_MB


class WarmModels:
    def __init__(self, ctx: Context, own: ChatModel, budget_mb: int | None = None) -> None:
        self.ctx = ctx
        self.own = own
        self.budget_mb = budget_mb or ctx.config.model_memory or default_budget_mb()
        self._own_mb = need_mb(own.info.path) if own.info.path != "fake" else 0
        self._warm: OrderedDict[str, tuple[ChatModel, int]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def loaded(self) -> list[str]:
        return [self.own.info.name, *self._warm]

    def used_mb(self) -> int:
        return self._own_mb + sum(mb for _, mb in self._warm.values())

    def get(self, name: str | None) -> ChatModel:
        """The model called `name` on this device (None: the node's own), loaded if need be."""
        if not name or name == self.own.info.name:
            return self.own
        with self._lock:
            if name in self._warm:
                self._warm.move_to_end(name)
                return self._warm[name][0]
            from app.model_choice import choose

            choice = choose(self.ctx, name)
            if choice.device_id is not None or choice.spec is None:
                raise ModelError(f"this device has no model named {name!r}")
            if choice.name is not None and choice.name in self._warm:  # (by a prefix of its name)
                self._warm.move_to_end(choice.name)
                return self._warm[choice.name][0]
            need = need_mb(choice.spec) if not choice.spec.startswith("fake") else 1
            room = self.budget_mb - self._own_mb
            if need > room:
                raise ModelError(
                    f"{choice.name or name} needs about {need:,} MB loaded, and model_memory "
                    f"leaves {max(room, 0):,} MB beside this device's own model "
                    f"({self.budget_mb:,} MB in all): raise model_memory or choose a smaller "
                    "model")
            while self._warm and self.used_mb() + need > self.budget_mb:
                old, (model, mb) = self._warm.popitem(last=False)
                log.info("unloading %s (%d MB) to make room for %s", old, mb, choice.name)
                self._unload(model)
            model = build_model(choice.spec, self.ctx.config.context_length,
                                self.ctx.config.threads, name=choice.name)
            self._warm[choice.name or name] = (model, need)
            log.info("loaded %s (about %d MB; %d of %d MB in use)", choice.name, need,
                     self.used_mb(), self.budget_mb)
            return model

    @staticmethod
    def _unload(model: ChatModel) -> None:
        close = getattr(model, "close", None)
        if callable(close):
            close()
