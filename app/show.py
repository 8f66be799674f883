"""`covey show`: one conversation as you would read it — its current branch, where others fork.

Two replies written at once on two devices, a regenerated answer, an edited prompt: each is a
branch (messages with the same parent). The current branch is the one ending in the newest
message; where it passes a fork, the message says which alternative it is (‹1/2›), and
`--all-branches` prints the whole tree, indented. Devices are named as the household names
them (ids with -v).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict

from app.context import Context
from app.household_status import device_names
from sync.conversation import Conversation, Message


def show(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    conv_id = store.resolve(args.id)
    summary = store.summary(conv_id)
    conv = store.conversation(conv_id)
    if args.json:
        payload = asdict(summary) | {"client": conv.client, "model": conv.model,
                                     "messages": [asdict(m) for m in conv.messages]}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return 0
    names = device_names(ctx.store, ctx.config.device_name)

    def who(device_id: str | None) -> str:
        if not device_id:
            return "?"
        name = names.get(device_id, device_id[:7])
        return f"{name} ({device_id})" if args.verbose else name

    print(f"# {summary.title}  ({summary.id})")
    if conv.client:
        print(f"via the API, from {conv.client}")
    if conv.model:
        print(f"model: {conv.model}")
    if conv.system_prompt:
        print(f"system: {conv.system_prompt}")
    if getattr(args, "all_branches", False):
        _tree(conv, None, 0, who, store.device_id, args.verbose)
        return 0
    linear = all(m.parent_id is None for m in conv.messages)
    shown = conv.messages if linear else conv.thread()
    for m in shown:
        mark = ""
        if not linear:
            siblings = conv.siblings(m.id)
            if len(siblings) > 1:
                mark = f" ‹{[s.id for s in siblings].index(m.id) + 1}/{len(siblings)}›"
        print(f"\n{_heading(m, who, store.device_id, args.verbose)}{mark}:\n{m.text}")
    forks = sum(1 for m in shown if not linear and len(conv.siblings(m.id)) > 1)
    if forks:
        print(f"\n({forks} fork(s) on this branch; `covey show {conv_id[:12]} --all-branches` "
              "prints every branch)")
    return 0


Who = Callable[[str | None], str]


def _heading(m: Message, who: Who, here: str, ids: bool = False) -> str:
    label = "you" if m.role == "user" else m.role
    extra = f" ({m.model})" if m.role == "assistant" and m.model else ""
    if m.role == "assistant" and m.device:
        if m.requested_by and m.device != m.requested_by:
            extra += f" on {who(m.device)}, handed over by {who(m.requested_by)}"
        elif m.device != here:  # answered on another device of the household
            extra += f" on {who(m.device)}"
    if m.attempts > 1:
        extra += f", taken over ({m.attempts} attempts)"
    status = f" [{m.status}]" if m.status != "done" else ""
    rated = ""
    if m.rating:
        rated = f" [rated {m.rating}" + (f": {m.rating_note}" if m.rating_note else "") + "]"
    ident = f"  #{m.id}" if ids else ""
    return f"{label}{extra}{status}{rated}{ident}"


def _tree(conv: Conversation, parent: str | None, depth: int, who: Who, here: str,
          ids: bool = False) -> None:
    children = conv.children(parent) if parent is not None else [
        m for m in conv.messages if m.parent_id is None or conv.message(m.parent_id) is None]
    for n, m in enumerate(children, 1):
        pad = "    " * depth
        branch = f" ‹{n}/{len(children)}›" if len(children) > 1 else ""
        print(f"\n{pad}{_heading(m, who, here, ids)}{branch}:")
        for line in m.text.splitlines() or [""]:
            print(f"{pad}{line}")
        _tree(conv, m.id, depth + (1 if len(children) > 1 else 0), who, here, ids)
