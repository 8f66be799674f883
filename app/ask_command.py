"""`covey ask`: one prompt, through the front door (app/asking.py), printed as it comes."""

from __future__ import annotations

import argparse
import sys

from app import asking
from app.asking import Question
from app.context import Context
from app.errors import UsageError


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
    question = Question(prompt, conv_id, args.system, args.on, getattr(args, "model", None),
                        args.max_tokens, args.temperature, args.top_p, args.seed)

    def show(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    asked = asking.ask(ctx, question, on_piece=show)
    if asked.status == "queued":
        print("covey: no capable device is online: the answer is queued in the shared "
              "history and runs when one appears", file=sys.stderr)
        return 0
    sys.stdout.write("\n")
    if asked.status != "done":
        print(f"covey: answer {asked.status}", file=sys.stderr)
    # (an answer that ended early here was seen ending; one handed over that did not finish
    # is a failure of the command)
    return 1 if asked.handed and asked.status != "done" else 0
