"""The small interface every local model offers covey.

A model turns a list of chat messages into a stream of text pieces. It also counts tokens (so the
pipeline can trim history to the context window) and describes itself (name, context size).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict, runtime_checkable

Role = Literal["system", "user", "assistant"]


class ChatMessage(TypedDict):
    """One turn as models see it."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings for one generation."""

    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """What a model is, in the words `covey doctor` and message records use."""

    name: str
    path: str
    context_length: int
    details: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class ChatModel(Protocol):
    """A local chat model. One instance per process, driven from one thread at a time."""

    @property
    def info(self) -> ModelInfo: ...

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the prompt for `messages` takes, chat template included."""
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield the answer piece by piece; stop early when `cancel` is set."""
        ...
