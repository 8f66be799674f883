"""`covey ask`: one prompt, answered here, by this device's node (its model warm), or by the
device that has the model asked for."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from app.context import Context
from app.errors import UsageError
from app.model_choice import Choice
from app.model_choice import looks_like_path as model_looks_like_path

log = logging.getLogger(__name__)


def ask(ctx: Context, args: argparse.Namespace) -> int:
    prompt = " ".join(args.prompt)
    from app.console import read_stdin

    piped = read_stdin()
    if piped:
        prompt = f"{prompt}\n\n{piped}" if prompt else piped
    if not prompt.strip():
        raise UsageError("nothing to ask: give a prompt, e.g. covey ask \"What is a CRDT?\"")
    store = ctx.store
    conv_id = None
    if args.continue_:
        conv_id = store.latest_conversation_id()
        if conv_id is None:
            raise UsageError("there is no conversation to continue yet; drop --continue")
    elif args.conversation:
        conv_id = store.resolve(args.conversation)
    named = getattr(args, "model", None)
    if conv_id is not None and not named:  # a conversation keeps the model it was asked with
        kept = store.conversation(conv_id).model
        if kept:
            ctx.config.model = named = kept
    choice = ctx.model_choice
    assistant = ctx.assistant
    params = assistant.params(
        max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
        seed=args.seed,
    )
    from app.routing import where_to_run

    if choice.device_id is not None:  # a model only another device has: it answers
        target = _model_device(ctx, choice, args.on)
    elif named and choice.name and args.on in (None, "auto"):
        target = ctx.store.device_id  # a model chosen by name, and this device has it
    else:
        target = where_to_run(ctx, args.on, prompt, params.max_tokens)
    warm = target == ctx.store.device_id and _node_has_it_warm(ctx)
    first = _FirstPiece()
    if target != ctx.store.device_id or warm:
        from app import delegation, remote_ask

        # (this device's node runs it: its model is loaded, and a continued conversation's
        # prefix is still in its cache)
        turn, _ = delegation.request_job(assistant, prompt, conv_id, args.system, target, params,
                                         model=choice.name if choice.device_id
                                         else ctx.model.info.name if warm else None)
        if named and choice.name:
            store.set_model(turn.conversation_id, choice.name)
        if target == "":
            print("covey: no capable device is online: the answer is queued in the shared "
                  "history and runs when one appears", file=sys.stderr)
            return 0
        status = remote_ask.watch(ctx, delegation.JobRef(turn.conversation_id, turn.answer_id),
                                  params, on_piece=first.wrap(remote_ask.print_piece))
        sys.stdout.write("\n")
        if status != "done":
            print(f"covey: answer {status}", file=sys.stderr)
        return 0 if status in ("done", "queued") else 1
    turn = assistant.start(prompt, conv_id, args.system)
    if named and choice.name:
        store.set_model(turn.conversation_id, choice.name)
    from app.prefill import PrefillNotice

    reading = PrefillNotice(len(prompt)).start()

    @first.wrap
    def show(piece: str) -> None:
        reading.first_piece()
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        answer = assistant.answer(turn, params, on_piece=show, on_notice=reading.say)
    finally:
        reading.first_piece()
    sys.stdout.write("\n")
    if answer.status != "done":
        print(f"covey: answer {answer.status}", file=sys.stderr)
    return 0


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
