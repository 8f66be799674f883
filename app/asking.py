"""The front door for asking (`covey ask`, the line chat `covey chat`, the terminal app): a
prompt → where it runs (`--on`, else `run_on`; a model chosen by name runs where it is) →
answered here, by this device's node in another process (its model warm), or handed to the
device that runs it → pieces streamed to the caller → stored.

Every front end asks through `ask`, so they route alike; the app's edit-and-branch
(`Question.parent_id`) and regenerate (`Question.again`) are questions like any other.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.assistant import Assistant, Turn
from app.context import Context
from app.delegation import Job
from app.errors import UsageError
from app.model_choice import Choice
from app.model_choice import looks_like_path as model_looks_like_path
from models.base import GenerationParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    prompt: str  # (unused with `again`: the prompt asked before is answered again)
    conversation_id: str | None = None  # None: a new conversation
    system: str | None = None  # the system prompt of a new conversation
    on: str | None = None  # where to run: a device, "local", "auto" (None: the config's run_on)
    named: str | None = None  # the model asked for by name (`--model`), kept by the conversation
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    parent_id: str | None = None  # the message the prompt follows (None: the last; "": the top)
    again: str | None = None  # a prompt's id: answer it again (a new branch of its answers)


@dataclass(frozen=True)
class Started:
    """The prompt and its (empty) answer are stored: where to look for them."""

    conversation_id: str
    answer_id: str
    handed: bool  # answered by a job: its text reaches the store from the device that runs it
    queued: bool = False  # no device could run it now: it runs when one appears


@dataclass(frozen=True)
class Asked:
    conversation_id: str
    answer_id: str
    status: str  # done, cancelled, failed, interrupted — or "queued" (no device could run it)
    handed: bool = False  # answered by a job (this device's node, or another device)


def ask(ctx: Context, question: Question, on_piece: Callable[[str], None],
        on_started: Callable[[Started], None] = lambda started: None,
        on_notice: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None) -> Asked:
    """Answer `question`, passing the answer's pieces to `on_piece` as they come.

    `on_started` hears where the prompt and its answer are stored as soon as they are (a caller
    interrupted mid-answer still knows where it was); `on_notice` hears what is worth saying on
    the way (a long prompt being read, a device that is offline, a takeover). `cancel` stops
    the answer, wherever it runs.
    """
    store = ctx.store
    named = question.named
    if question.conversation_id is not None and not named:  # a conversation keeps its model
        named = store.conversation(question.conversation_id).model or None
    assistant, choice = ctx.assistant_for(named)
    params = assistant.params(max_tokens=question.max_tokens, temperature=question.temperature,
                              top_p=question.top_p, seed=question.seed)
    text = _asked_text(ctx, question)
    from app.routing import where_to_run

    if choice.device_id is not None:  # a model only another device has: it answers
        target = _model_device(ctx, choice, question.on)
    elif named and choice.name and question.on in (None, "auto"):
        target = store.device_id  # a model chosen by name, and this device has it
    else:
        target = where_to_run(ctx, question.on, text, params.max_tokens, on_notice)
    warm = target == store.device_id and _node_has_it_warm(ctx, named)
    first = _FirstPiece()
    if target != store.device_id or warm:
        model = choice.name if choice.device_id else assistant.model.info.name if warm else None
        return _handed_over(ctx, assistant, question, params, target, model, named and choice.name,
                            first.wrap(on_piece), on_started, on_notice, cancel)
    turn = _start(assistant, question, None)
    if named and choice.name:
        store.set_model(turn.conversation_id, choice.name)
    on_started(Started(turn.conversation_id, turn.answer_id, handed=False))
    from app.prefill import PrefillNotice

    reading = PrefillNotice(len(text)).start()

    @first.wrap
    def show(piece: str) -> None:
        reading.first_piece()
        on_piece(piece)

    def notice(note: str) -> None:
        (on_notice or reading.say)(note)

    try:
        answer = assistant.answer(turn, params, on_piece=show, on_notice=notice, cancel=cancel)
    finally:
        reading.first_piece()
    return Asked(turn.conversation_id, turn.answer_id, answer.status)


def _asked_text(ctx: Context, question: Question) -> str:
    """The prompt being answered (for `again`, the one asked before)."""
    if question.again is None:
        return question.prompt
    if question.conversation_id is None:
        raise UsageError("answering a prompt again needs its conversation")
    asked = ctx.store.conversation(question.conversation_id).message(question.again)
    if asked is None or asked.role != "user":
        raise UsageError("there is no such prompt in this conversation to answer again")
    return asked.text


def _start(assistant: Assistant, question: Question, job: Job | None) -> Turn:
    """Store the prompt (or, for `again`, a new answer to the old one), in one commit — with
    the answer's job in it when one is given."""
    if question.again is not None:
        assert question.conversation_id is not None  # (checked by _asked_text)
        return assistant.again(question.conversation_id, question.again, job=job)
    return assistant.start(question.prompt, question.conversation_id, question.system,
                           question.parent_id, job=job)


def _handed_over(ctx: Context, assistant: Assistant, question: Question,
                 params: GenerationParams, target: str, model: str | None, keep: str | None,
                 on_piece: Callable[[str], None], on_started: Callable[[Started], None],
                 on_notice: Callable[[str], None] | None, cancel: threading.Event | None) -> Asked:
    """Answered by a job: this device's node (its model warm, a continued conversation's prefix
    still cached), or the device that runs it; watched piece by piece until it ends."""
    from app import delegation, remote_ask

    store = ctx.store
    title = assistant.config.auto_title and (
        question.conversation_id is None or store.untitled(question.conversation_id))
    job = delegation.job_setup(store.device_id, target, params, title, model)
    live = remote_ask.listen(ctx) if target else None  # (before the job: no piece is missed)
    try:
        turn = _start(assistant, question, job)
    except BaseException:
        if live is not None:
            live.close()
        raise
    if keep:
        store.set_model(turn.conversation_id, keep)
    on_started(Started(turn.conversation_id, turn.answer_id, handed=True, queued=target == ""))
    if target == "":
        return Asked(turn.conversation_id, turn.answer_id, "queued", handed=True)
    ref = delegation.JobRef(turn.conversation_id, turn.answer_id)
    status = remote_ask.watch(ctx, ref, params, on_piece=on_piece, on_note=on_notice,
                              cancel=cancel, live=live)
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


def _node_has_it_warm(ctx: Context, named: str | None) -> bool:
    """Another process on this device is its node (`covey serve`, or the app's) with its model
    ready, and this answer is asked of a model by name (a file given by its path, or a test's
    fake model, is this process's own). In the process that is the node (the app), the model
    is this process's already: it answers in-process."""
    spec = named or ctx.config.model  # (as the user gave it: a name, a path, "fake…")
    if spec and (spec.startswith("fake") or model_looks_like_path(spec)):
        return False
    from sync import household
    from sync.nodelock import NodeLock

    if NodeLock.holder(ctx.paths.locks_dir) in (None, os.getpid()):
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
