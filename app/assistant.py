"""One turn of the assistant: store the prompt, stream the answer into the store, title it.

The answer is committed in batches and titled as every answer is (app/streaming.py); the
caller gets each piece as it arrives.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from loro import LoroDoc

from app import pipeline
from app.config import Config
from app.errors import UsageError
from app.streaming import EVERY_PIECES, EVERY_SECONDS, Batches, title_from_first_exchange
from models.base import ChatModel, GenerationParams
from sync.store import Store

log = logging.getLogger(__name__)

#: Commit the streamed answer after this many pieces or this many seconds, whichever first.
COMMIT_EVERY_PIECES, COMMIT_EVERY_SECONDS = EVERY_PIECES, EVERY_SECONDS


@dataclass(frozen=True)
class Turn:
    conversation_id: str
    prompt_id: str
    answer_id: str
    new_conversation: bool


@dataclass(frozen=True)
class Answer:
    turn: Turn
    text: str
    status: str  # done | cancelled | failed


class Assistant:
    """Ties a store, a model and the settings together for asking questions."""

    def __init__(self, store: Store, model: ChatModel, config: Config) -> None:
        self.store = store
        self.model = model
        self.config = config

    def params(self, **overrides: object) -> GenerationParams:
        values: dict[str, object] = {
            # The configured default answer length never takes more than half the context
            # (a small model would otherwise have no room left for the prompt); an explicit
            # --max-tokens is taken as asked, and refused if it cannot fit.
            "max_tokens": min(self.config.max_tokens, self.model.info.context_length // 2),
            "temperature": self.config.temperature,
            "top_p": self.config.top_p,
            "seed": self.config.seed,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        params = GenerationParams(**values)  # type: ignore[arg-type]  # (its own fields, by name)
        # Refused now, before anything is written: a refused request leaves nothing behind.
        pipeline.check_room(self.model, params)
        return params

    def start(
        self, prompt: str, conversation_id: str | None = None, system_prompt: str | None = None,
        parent_id: str | None = None, job: Callable[[LoroDoc, str], object] | None = None,
    ) -> Turn:
        """Record the prompt and an empty answer to stream into, in one commit.

        `parent_id` is the message the prompt follows (default: the last one); "" starts a new
        branch at the top of the conversation. With `job` (delegation's setup of a job for the
        answer, in the same commit) the answer is queued for whoever runs it, not streaming here.
        """
        if not prompt.strip():
            raise UsageError("the prompt is empty; say what you want to ask")
        new = conversation_id is None
        system = (system_prompt or self.config.system_prompt) if new else system_prompt
        status, model = ("queued", None) if job else ("streaming", self.model.info.name)
        conversation_id, prompt_id, answer_id = self.store.add_turn(
            conversation_id, prompt, system_prompt=system, parent_id=parent_id, status=status,
            model=model, then=job)
        return Turn(conversation_id, prompt_id, answer_id, new)

    def again(self, conversation_id: str, prompt_id: str,
              job: Callable[[LoroDoc, str], object] | None = None) -> Turn:
        """A new (empty) answer to the prompt `prompt_id`, beside its earlier ones: one commit,
        queued with its `job` in it when one is given (as for `start`)."""
        status, model = ("queued", None) if job else ("streaming", self.model.info.name)
        answer_id = self.store.add_message(conversation_id, "assistant", "", parent_id=prompt_id,
                                           status=status, model=model, then=job)
        return Turn(conversation_id, prompt_id, answer_id, False)

    def answer(
        self,
        turn: Turn,
        params: GenerationParams,
        on_piece: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> Answer:
        """Generate the answer for `turn`, streaming it into the store and to `on_piece`;
        `on_notice` hears what had to be left out of the prompt."""
        conv = self.store.conversation(turn.conversation_id)
        messages = pipeline.build_prompt(
            conv.thread(turn.prompt_id), conv.system_prompt, self.model, params, on_notice
        )
        batches = Batches(
            lambda text: self.store.append_text(turn.conversation_id, turn.answer_id, text),
            COMMIT_EVERY_PIECES, COMMIT_EVERY_SECONDS)
        status = "failed"
        try:
            for piece in pipeline.generate(self.model, messages, params, cancel):
                if on_piece is not None:
                    on_piece(piece)
                batches.add(piece)
            status = "cancelled" if cancel is not None and cancel.is_set() else "done"
        except KeyboardInterrupt:
            status = "cancelled"
            raise
        finally:
            # Whatever happened, keep what was generated and say how the answer ended.
            self.store.finish_message(turn.conversation_id, turn.answer_id, status,
                                      batches.rest())
        # Title on the first answer that completes (an earlier one may have been stopped).
        if self.config.auto_title and status == "done" and \
                self.store.untitled(turn.conversation_id):
            title_from_first_exchange(self.store, self.model, turn.conversation_id,
                                      turn.answer_id)
        return Answer(turn, batches.text, status)

    def ask(
        self,
        prompt: str,
        conversation_id: str | None = None,
        system_prompt: str | None = None,
        params: GenerationParams | None = None,
        on_piece: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Answer:
        turn = self.start(prompt, conversation_id, system_prompt)
        return self.answer(turn, params or self.params(), on_piece, cancel)
