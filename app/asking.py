"""The front door for asking from a terminal (`covey ask`, the line chat `covey chat`): a
prompt → where it runs (`--on`, else `run_on`) → answered here, by this device's node (its
model warm), or handed to the device that runs it → pieces streamed to the caller → stored.

Both front ends ask through `ask`, so they route alike: the line chat honours `run_on` and
named models as `covey ask` does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.context import Context
from app.errors import UsageError
from app.model_choice import Choice
from app.model_choice import looks_like_path as model_looks_like_path
from models.base import GenerationParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    prompt: str
    conversation_id: str | None = None  # None: a new conversation
    system: str | None = None  # the system prompt of a new conversation
    on: str | None = None  # where to run: a device, "local", "auto" (None: the config's run_on)
    named: str | None = None  # the model asked for by name (`--model`), kept by the conversation
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Asked:
    conversation_id: str
    answer_id: str
    status: str  # done, cancelled, failed, interrupted — or "queued" (no device could run it)
    handed: bool = False  # answered by a job (this device's node, or another device)


def ask(ctx: Context, question: Question, on_piece: Callable[[str], None],
        on_started: Callable[[str], None] = lambda conv_id: None,
        on_notice: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None) -> Asked:
    """Answer `question`, passing the answer's pieces to `on_piece` as they come.

    `on_started` hears the conversation's id as soon as the prompt is stored (a caller
    interrupted mid-answer still knows where it was); `on_notice` hears what is worth saying
    on the way (a long prompt being read). `cancel` stops the answer, wherever it runs.
    """
    store = ctx.store
    named = question.named
    if question.conversation_id is not None and not named:  # a conversation keeps its model
        kept = store.conversation(question.conversation_id).model
        if kept:
            ctx.config.model = named = kept
    choice = ctx.model_choice
    assistant = ctx.assistant
    params = assistant.params(max_tokens=question.max_tokens, temperature=question.temperature,
                              top_p=question.top_p, seed=question.seed)
    from app.routing import where_to_run

    if choice.device_id is not None:  # a model only another device has: it answers
        target = _model_device(ctx, choice, question.on)
    elif named and choice.name and question.on in (None, "auto"):
        target = store.device_id  # a model chosen by name, and this device has it
    else:
        target = where_to_run(ctx, question.on, question.prompt, params.max_tokens)
    warm = target == store.device_id and _node_has_it_warm(ctx)
    first = _FirstPiece()
    if target != store.device_id or warm:
        return _handed_over(ctx, question, params, target, warm, choice, named, first.wrap(on_piece),
                            on_started, cancel)
    turn = assistant.start(question.prompt, question.conversation_id, question.system)
    if named and choice.name:
        store.set_model(turn.conversation_id, choice.name)
    on_started(turn.conversation_id)
    from app.prefill import PrefillNotice

    reading = PrefillNotice(len(question.prompt)).start()

    @first.wrap
    def show(piece: str) -> None:
        reading.first_piece()
        on_piece(piece)

    def notice(text: str) -> None:
        (on_notice or reading.say)(text)

    try:
        answer = assistant.answer(turn, params, on_piece=show, on_notice=notice, cancel=cancel)
    finally:
        reading.first_piece()
    return Asked(turn.conversation_id, turn.answer_id, answer.status)


def _handed_over(ctx: Context, question: Question, params: GenerationParams, target: str,
                 warm: bool, choice: Choice, named: str | None, on_piece: Callable[[str], None],
                 on_started: Callable[[str], None], cancel: threading.Event | None) -> Asked:
    """Answered by a job: this device's node (its model warm, a continued conversation's prefix
    still cached), or the device that runs it; watched piece by piece until it ends."""
    from app import delegation, remote_ask

    turn, _ = delegation.request_job(
        ctx.assistant, question.prompt, question.conversation_id, question.system, target,
        params, model=choice.name if choice.device_id else ctx.model.info.name if warm else None)
    if named and choice.name:
        ctx.store.set_model(turn.conversation_id, choice.name)
    on_started(turn.conversation_id)
    if target == "":
        return Asked(turn.conversation_id, turn.answer_id, "queued", handed=True)
    ref = delegation.JobRef(turn.conversation_id, turn.answer_id)
    status = remote_ask.watch(ctx, ref, params, on_piece=on_piece, cancel=cancel)
    return Asked(turn.conversation_id, turn.answer_id, status, handed=True)


class _FirstPiece:
    """Logs (at info) how long after asking the first piece came: `covey bench warm` reads it."""

    def __init__(self) -> None:
        self.asked = time.monotonic()
        self.seen = False

    def wrap(self, out: Callable[[str], None]) -> Callable[[str], None]:
        def piece(text: str) -> None:
            if not self.seen:
                self.seen = True
                log.info("first piece %.1f ms after asking",
                         (time.monotonic() - self.asked) * 1e3)
            out(text)

        return piece


def _node_has_it_warm(ctx: Context) -> bool:
    """A node runs on this device (`covey serve`, or the app's) with its model ready, and this
    answer is asked of a model by name (a file given by its path, or a test's fake model, is
    this process's own)."""
    spec = ctx.config.model
    if spec and (spec.startswith("fake") or model_looks_like_path(spec)):
        return False
    from sync import household
    from sync.nodelock import NodeLock

    if not NodeLock.held(ctx.paths.locks_dir):
        return False
    return bool(household.capability(ctx.store, ctx.store.device_id).get("model"))


def _model_device(ctx: Context, choice: Choice, on: str | None) -> str:
    """The device that answers with a model only it has (said plainly when it cannot)."""
    from app import routing

    if on and on not in ("auto", choice.device_id, choice.device_name):
        raise UsageError(f"{choice.name!r} is on {choice.device_name}, not {on}: drop --on, or "
                         "choose a model that device has (`covey models`)")
    assert choice.device_id is not None
    if choice.device_id not in routing.online_devices(ctx.store):
        if ctx.config.when_alone == "queue":
            return ""  # (queued: it runs when that device is back)
        raise UsageError(f"{choice.name!r} is on {choice.device_name}, which is not online now; "
                         "try again when it is, or set when_alone = \"queue\"")
    return choice.device_id
