"""What each `covey` command does. The parser lives in cli.py; errors surface as CoveyError."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict

from app import history_commands
from app.console import print_report, say
from app.context import Context
from app.errors import UsageError

Handler = Callable[[Context, argparse.Namespace], int]


def run(args: argparse.Namespace) -> int:
    ctx = Context(model=getattr(args, "model", None))
    try:
        handler = HANDLERS[args.command or "ui"]
        return int(handler(ctx, args))
    finally:
        ctx.close()


def ask(ctx: Context, args: argparse.Namespace) -> int:
    from app.ask_command import ask as run_ask

    return run_ask(ctx, args)


def cancel(ctx: Context, args: argparse.Namespace) -> int:
    from app.delegation import JobRef, cancel_job

    store = ctx.store
    conv_id = store.resolve(args.id)
    stopped = 0
    for m in store.conversation(conv_id).messages:
        if m.role == "assistant" and m.status in ("queued", "streaming") and m.requested_by:
            cancel_job(store, JobRef(conv_id, m.id))
            stopped += 1
    print(f"cancelled {stopped} running answer(s) in {conv_id[:12]}")
    return 0


def history(ctx: Context, args: argparse.Namespace) -> int:
    rows = ctx.store.list_conversations(limit=args.limit, include_archived=args.all)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("No conversations yet. Ask something: covey ask \"Hello\"")
    for r in rows:
        stamp = r.updated_at[:16].replace("T", " ")
        flag = " [archived]" if r.archived else ""
        print(f"{r.id[:12]}  {stamp}  {r.message_count:>4} msgs  {r.title}{flag}")
    return 0


def show(ctx: Context, args: argparse.Namespace) -> int:
    from app import show as show_command

    return show_command.show(ctx, args)


def search(ctx: Context, args: argparse.Namespace) -> int:
    hits = ctx.store.search(" ".join(args.words), limit=args.limit)
    if args.json:
        print(json.dumps([asdict(h) for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("No matches.")
    for h in hits:
        print(f"{h.conversation_id[:12]}  {h.conversation_title}\n    {h.role}: {h.snippet}")
    return 0


MIN_RM_PREFIX = 4  # a one-character prefix deleted the wrong conversation too easily


def rm(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.id.strip()) < MIN_RM_PREFIX:
        raise UsageError(f"give at least {MIN_RM_PREFIX} characters of the conversation id to "
                         "delete it (see `covey history`)")
    conv_id = ctx.store.resolve(args.id)
    title = ctx.store.summary(conv_id).title
    ctx.store.delete_conversation(conv_id)
    print(f"deleted {conv_id[:12]} ({title}); undo: covey restore {conv_id[:12]}")
    return 0


def _recovery(name: str) -> Handler:
    def handler(ctx: Context, args: argparse.Namespace) -> int:
        from app import recovery

        return int(getattr(recovery, name)(ctx, args))

    return handler


def title(ctx: Context, args: argparse.Namespace) -> int:
    new_title = " ".join(" ".join(args.title).split())
    if not new_title:
        raise UsageError("the title is empty")
    conv_id = ctx.store.resolve(args.id)
    ctx.store.set_title(conv_id, new_title)
    print(f"{conv_id[:12]} is now titled {new_title!r}")
    return 0


def bench(ctx: Context, args: argparse.Namespace) -> int:
    if args.bench_target == "delegate":
        from app.bench import delegate as bench_delegate

        print_report(bench_delegate.run(ctx.model, max_tokens=args.max_tokens,
                                        rounds=args.rounds), args.json)
        return 0
    if args.bench_target == "api":
        from app.bench import api as bench_api

        print_report(bench_api.run(ctx.model, ctx.config.model, max_tokens=args.max_tokens,
                                   rounds=args.rounds,
                                   progress=None if args.json else say), args.json)
        return 0
    if args.bench_target == "warm":
        from app.bench import warm as bench_warm

        print_report(bench_warm.run(ctx.config.model, rounds=args.rounds,
                                    progress=None if args.json else say), args.json)
        return 0
    if args.bench_target == "import":
        from app.bench import importing as bench_import

        print_report(bench_import.run(args.conversations, args.messages,
                                      progress=None if args.json else sys.stderr), args.json)
        return 0
    if args.bench_target == "clone":
        from app.bench import clone as bench_clone

        print_report(bench_clone.run(args.conversations, args.messages,
                                     progress=None if args.json else sys.stderr), args.json)
        return 0
    if args.bench_target == "sync":
        from app.bench import sync as bench_sync

        print_report(bench_sync.run(latency_commits=args.commits,
                                    idle_conversations=args.conversations,
                                    progress=None if args.json else sys.stderr), args.json)
        return 0
    from app.bench.model import bench_model, print_model_report

    report = bench_model(ctx, max_tokens=args.max_tokens, rounds=args.rounds,
                         progress=None if args.json else sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_model_report(report)
    return 0


def doctor(ctx: Context, args: argparse.Namespace) -> int:
    from app.doctor import run_checks

    return run_checks(ctx, network=args.network)


def chat(ctx: Context, args: argparse.Namespace) -> int:
    """The plain line chat (also what `covey` falls back to when stdin is not a terminal)."""
    from app.chat import ChatSession

    return ChatSession(ctx).run()


def ui(ctx: Context, args: argparse.Namespace) -> int:
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        return chat(ctx, args)  # piped or scripted: the line chat reads stdin
    import tui

    return tui.main(ctx)


def _net(name: str) -> Handler:
    def handler(ctx: Context, args: argparse.Namespace) -> int:
        from app import net_commands

        return int(getattr(net_commands, name)(ctx, args))

    return handler


def _household(name: str) -> Handler:
    def handler(ctx: Context, args: argparse.Namespace) -> int:
        from app import household_commands

        return int(getattr(household_commands, name)(ctx, args))

    return handler


def _models(ctx: Context, args: argparse.Namespace) -> int:
    from app.models_command import models

    return models(ctx, args)


def _api_key(ctx: Context, args: argparse.Namespace) -> int:
    from app.api.commands import api_key

    return api_key(ctx, args)


HANDLERS = {
    "serve": _net("serve"), "pair": _net("pair"), "devices": _household("devices"),
    "id": _net("device_id"), "peers": _household("peers"), "status": _household("status"),
    "cancel": cancel,
    "ask": ask, "history": history, "show": show, "search": search,
    "import": history_commands.import_, "rate": history_commands.rate,
    "export": history_commands.export, "rm": rm, "title": title, "bench": bench, "doctor": doctor, "chat": chat,
    "ui": ui, "trash": _recovery("trash"), "restore": _recovery("restore"),
    "api-key": _api_key, "models": _models,
}
