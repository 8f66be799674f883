"""A deterministic, scriptable model for tests (and for demos without a model file).

`FakeModel().enqueue(["Hello", " world"])` makes the next generation yield exactly those
pieces; with nothing queued it answers "You said: <last user message>" word by word. Every
prompt it was given is kept in `prompts`, so tests can check what the pipeline sent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence

from models.base import ChatMessage, GenerationParams, ModelInfo

#: Tokens a message costs beyond its words (role markers of a chat template).
PER_MESSAGE_OVERHEAD = 4


class FakeModel:
    """Deterministic stand-in for a ChatModel."""

    def __init__(
        self,
        context_length: int = 2048,
        delay: float = 0.0,
        name: str = "fake",
        answer_words: int = 0,
        prefill: float = 0.0,
    ) -> None:
        self._info = ModelInfo(name=name, path="fake", context_length=context_length)
        self._queue: deque[list[str]] = deque()
        self.delay = delay  # seconds per piece, to simulate a slow device
        self.answer_words = answer_words  # >0: default answer is this many numbered words
        self.prefill = prefill  # seconds before the first piece, as a long prompt is read
        self.prompts: list[list[ChatMessage]] = []

    @property
    def info(self) -> ModelInfo:
        return self._info

    def enqueue(self, pieces: list[str]) -> None:
        """Script the next answer."""
        self._queue.append(list(pieces))

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m["content"].split()) + PER_MESSAGE_OVERHEAD for m in messages)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        self.prompts.append([ChatMessage(role=m["role"], content=m["content"]) for m in messages])
        pieces = self._queue.popleft() if self._queue else self._default_answer(messages)
        if self.prefill:  # reading the prompt (cut short by a cancel)
            (cancel or threading.Event()).wait(self.prefill)
        said = ""
        for piece in pieces[: params.max_tokens]:
            if cancel is not None and cancel.is_set():
                return
            if self.delay:
                time.sleep(self.delay)
            # As llama.cpp does: the answer ends before a stop sequence, which is not shown.
            cut = min((i for i in ((said + piece).find(s) for s in params.stop) if i >= 0),
                      default=-1)
            if cut >= 0:
                if cut > len(said):
                    yield (said + piece)[len(said):cut]
                return
            said += piece
            yield piece

    def _default_answer(self, messages: Sequence[ChatMessage]) -> list[str]:
        if self.answer_words:
            return [f"w{i} " for i in range(self.answer_words)]
        last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        words = f"You said: {last}".split()
        return [w if i == 0 else " " + w for i, w in enumerate(words)]
