"""`covey` on the command line: the argument parser and the one place errors become messages.

Every failure a user can cause ends as one line on stderr and a non-zero exit, never a traceback
(`--log-level debug` shows tracebacks for unexpected ones).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from app import commands
from app.errors import CoveyError

log = logging.getLogger("covey")


SINCE_HELP = ("only changes that reached this device since WHEN (2026-12-02 10:30, or "
              "90m / 2h / 3d ago)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default=argparse.SUPPRESS, metavar="NAME|PATH",
                        help="the model: a name from `covey models` (or a unique prefix; one "
                        "only another device has runs there) or a GGUF file (default: the "
                        "bundled SmolLM2-135M)")
    common.add_argument("--log-level", default=argparse.SUPPRESS,
                        choices=["debug", "info", "warning", "error"],
                        help="how much to log on stderr (default: warning)")
    parser = argparse.ArgumentParser(
        prog="covey", parents=[common],
        description="A personal assistant that lives on all of your devices. "
        "With no command, opens the terminal app.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", parents=[common], help="ask a question; the answer streams to stdout",
                         description="Ask the assistant. Text piped on stdin is appended to the prompt.")
    ask.add_argument("prompt", nargs="*", help="what to ask")
    where = ask.add_mutually_exclusive_group()
    where.add_argument("-c", "--continue", dest="continue_", action="store_true",
                       help="continue the most recent conversation")
    where.add_argument("--conversation", "--cid", metavar="ID",
                       help="continue conversation ID (a unique prefix is enough)")
    ask.add_argument("--system", metavar="TEXT", help="system prompt for this conversation")
    ask.add_argument("--max-tokens", type=_positive_int, metavar="N", help="longest answer, in tokens")
    ask.add_argument("--temperature", type=_temperature, metavar="T", help="sampling temperature (0-5)")
    ask.add_argument("--top-p", type=_probability, metavar="P", help="nucleus sampling (0-1]")
    ask.add_argument("--seed", type=int, metavar="N", help="random seed, for repeatable answers")
    ask.add_argument("--on", metavar="DEVICE", help="where to generate: local, auto, or a device "
                     "name/id (default: the config's run_on, auto)")
    cancel = sub.add_parser("cancel", parents=[common],
                            help="stop the answers being generated in a conversation (any device)")
    cancel.add_argument("id", help="conversation id")

    history = sub.add_parser("history", parents=[common], help="list conversations, newest first")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.add_argument("-n", "--limit", type=_positive_int, default=50, metavar="N",
                         help="how many (default 50)")
    history.add_argument("--all", action="store_true", help="include archived conversations")

    show = sub.add_parser("show", parents=[common], help="print the messages of a conversation")
    show.add_argument("id", help="conversation id (a unique prefix is enough)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--all-branches", action="store_true",
                      help="print every branch (regenerated answers, edits, concurrent replies)")
    show.add_argument("-v", "--verbose", action="store_true", help="device ids and message ids (for `covey rate`)")

    search = sub.add_parser("search", parents=[common], help="full-text search over all messages")
    search.add_argument("words", nargs="+", help="words that must all appear")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.add_argument("-n", "--limit", type=_positive_int, default=20, metavar="N")

    export = sub.add_parser(
        "export", parents=[common], help="export one or all conversations",
        description="markdown: to read (every branch shown); json: what `covey import` reads "
        "back; finetune: OpenAI chat fine-tuning JSONL, one line per rated answer (the branch "
        "leading to it, system prompt first).")
    export.add_argument("id", nargs="?", help="conversation id (default: all)")
    export.add_argument("--format", choices=["markdown", "json", "finetune"], default="markdown")
    export.add_argument("--rating", choices=["up", "down", "any"], default="up",
                        help="with --format finetune: which rated answers (default: up)")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")

    imp = sub.add_parser(
        "import", parents=[common], help="import history: covey JSON, ChatGPT, Open WebUI, llm",
        description="Import conversations from covey's JSON export, a ChatGPT data export (the "
        ".zip or its folder), an Open WebUI chat export (.json) or simonw/llm's logs.db (`llm "
        "logs path`). The format is found from the file. Importing again adds only what is new; "
        "every branch (edits, regenerated answers) is kept.")
    imp.add_argument("file", help="the export file or folder (- for covey JSON on stdin)")
    imp.add_argument("--format", choices=["covey", "chatgpt", "openwebui", "llm"],
                     help="say which format instead of finding out from the file")

    rate = sub.add_parser(
        "rate", parents=[common], help="rate an answer up or down (feedback, synced)",
        description="Feedback on an answer, kept with the conversation on every device; "
        "`covey export --format finetune` writes the rated answers for fine-tuning. Message ids: "
        "`covey show ID -v`.")
    rate.add_argument("message", help="message id (a unique prefix is enough)")
    rate.add_argument("rating", choices=["up", "down", "clear"])
    rate.add_argument("--note", help="why (kept with the rating)")

    rm = sub.add_parser("rm", parents=[common],
                        help="delete a conversation (undo: `covey restore ID`)")
    rm.add_argument("id", help="conversation id (at least 4 characters of it)")

    trash = sub.add_parser("trash", parents=[common], help="list deleted conversations")
    trash.add_argument("-n", "--limit", type=_positive_int, default=50, metavar="N")

    restore = sub.add_parser(
        "restore", parents=[common],
        help="bring deleted conversations back, or undo what a device changed",
        description="Bring back deleted conversations (`covey trash` lists them), or undo the "
        "changes a device made (a hostile or mistaken one), on every device once synced.")
    restore.add_argument("ids", nargs="*", metavar="ID", help="deleted conversations to restore")
    restore.add_argument("--all", action="store_true", help="restore every deleted conversation")
    restore.add_argument("--undo-device", metavar="DEVICE",
                         help="undo the changes this device (id or prefix) made")
    restore.add_argument("--since", metavar="WHEN", help=f"with --undo-device: {SINCE_HELP}")

    title = sub.add_parser("title", parents=[common], help="rename a conversation")
    title.add_argument("id", help="conversation id")
    title.add_argument("title", nargs="+", help="the new title")

    bench = sub.add_parser("bench", parents=[common], help="measure speed")
    bench_sub = bench.add_subparsers(dest="bench_target", metavar="TARGET", required=True)
    bench_model = bench_sub.add_parser(
        "model", parents=[common],
        help="tokens/s through covey vs llama-cpp-python called directly, in one run")
    bench_model.add_argument("--json", action="store_true", help="print JSON")
    bench_model.add_argument("--max-tokens", type=_positive_int, default=128, metavar="N")
    bench_model.add_argument("--rounds", type=_positive_int, default=9, metavar="N",
                             help="measured rounds per side, alternating (default 9)")

    serve = sub.add_parser("serve", parents=[common], help="run this device's node: sync with peers",
                           description="Run headless: accept paired peers, dial known ones, keep "
                           "every conversation in sync. Stops cleanly on SIGINT/SIGTERM.")
    serve.add_argument("--listen", metavar="HOST:PORT", help="where to accept peers (default 0.0.0.0:7420)")
    serve.add_argument("--peer", action="append", metavar="HOST:PORT",
                       help="a peer to dial (repeatable; also `peers` in the config)")
    serve.add_argument("--no-model", action="store_true",
                       help="do not load the model (sync only; nothing offered to peers)")
    serve.add_argument("--api-listen", metavar="HOST:PORT",
                       help="where the OpenAI-compatible API listens (default 127.0.0.1:7421; "
                       "an address other than loopback needs API keys)")
    serve.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")

    api_key = sub.add_parser("api-key", parents=[common],
                             help="keys for the HTTP API, for clients on other devices",
                             description="Clients on this machine need no key; a client on "
                             "another device sends one as 'Authorization: Bearer KEY'. Keys "
                             "are stored hashed: a key is shown once, when it is made.")
    key_sub = api_key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    key_create = key_sub.add_parser("create", help="make a key (shown once)")
    key_create.add_argument("name", help="who the key is for, e.g. editor or phone")
    key_sub.add_parser("list", help="the keys' names and when they were made")
    key_revoke = key_sub.add_parser("revoke", help="revoke a key: its client is refused at once")
    key_revoke.add_argument("name")

    pair = sub.add_parser("pair", parents=[common], help="pair with another device by a short code",
                          description="Without CODE: show a one-time code and wait for the other "
                          "device. With CODE: join the household of the device showing it.")
    pair.add_argument("code_to_join", nargs="?", metavar="CODE", help="the code the other device shows")
    pair.add_argument("--address", metavar="HOST:PORT",
                      help="the inviting device, when joining (default: find it by mDNS)")
    pair.add_argument("--switch", action="store_true",
                      help="when joining: leave this device's current household (of several "
                      "devices) for the other one, taking its conversations along")
    pair.add_argument("--code", help="choose the code to show (scripts, headless devices)")
    pair.add_argument("--listen", metavar="HOST:PORT",
                      help="where to wait for the other device if no node is running")
    pair.add_argument("--timeout", type=_positive_int, default=300, metavar="SECONDS",
                      help="how long the code stays valid (default 300)")

    devices = sub.add_parser("devices", parents=[common], help="the devices of this household")
    devices.add_argument("action", nargs="?", choices=["list", "remove"], default="list")
    devices.add_argument("device", nargs="?", help="device id (or a unique prefix) to remove")
    devices.add_argument("--json", action="store_true", help="print JSON")
    devices.add_argument("--undo-changes", action="store_true",
                         help="with remove: also undo what the device changed (see --since)")
    devices.add_argument("--since", metavar="WHEN", help=f"with --undo-changes: {SINCE_HELP}")

    peers_p = sub.add_parser("peers", parents=[common],
                             help="devices seen on the LAN and paired: online, last sync, models")
    peers_p.add_argument("--json", action="store_true", help="print JSON")
    models_p = sub.add_parser(
        "models", parents=[common], help="every model on every device of the household",
        description="Models found on this device (bundled, Ollama, LM Studio, the Hugging Face "
        "cache, GPT4All, model_dirs) and those the other devices of the household publish.")
    models_p.add_argument("--json", action="store_true", help="print JSON")
    models_p.add_argument("--all", action="store_true",
                          help="also the files that cannot chat, and why")
    models_p.add_argument("--rescan", action="store_true",
                          help="read every file's metadata again (not from the cache)")
    status_p = sub.add_parser("status", parents=[common], help="the local node at a glance")
    status_p.add_argument("--json", action="store_true", help="print JSON")

    ident = sub.add_parser("id", parents=[common], help="print this device's id")
    ident.add_argument("-v", "--verbose", action="store_true", help="also name and fingerprint")

    bench_sync = bench_sub.add_parser(
        "sync", parents=[common],
        help="sync latency, catch-up bytes, idle reconnect (two nodes on loopback, scratch homes)")
    bench_sync.add_argument("--json", action="store_true", help="print JSON")
    bench_sync.add_argument("--commits", type=_positive_int, default=200, metavar="N",
                            help="commits timed for latency (default 200)")
    bench_sync.add_argument("--conversations", type=_positive_int, default=10_000, metavar="N",
                            help="conversations in the idle-reconnect stores (default 10000)")

    bench_clone = bench_sub.add_parser(
        "clone", parents=[common],
        help="a new device receives a whole household: seconds, bytes, memory (two nodes)")
    bench_clone.add_argument("--json", action="store_true", help="print JSON")
    bench_clone.add_argument("--conversations", type=_positive_int, default=10_000, metavar="N",
                             help="conversations in the household (default 10000)")
    bench_clone.add_argument("--messages", type=_positive_int, default=20, metavar="N",
                             help="messages per conversation (default 20)")

    bench_import = bench_sub.add_parser(
        "import", parents=[common],
        help="import a generated ChatGPT export and the same as covey JSON: seconds, peak memory")
    bench_import.add_argument("--json", action="store_true", help="print JSON")
    bench_import.add_argument("--conversations", type=_positive_int, default=10_000, metavar="N",
                              help="conversations in the export (default 10000)")
    bench_import.add_argument("--messages", type=_positive_int, default=20, metavar="N",
                              help="messages per conversation (default 20)")

    bench_delegate = bench_sub.add_parser(
        "delegate", parents=[common],
        help="lag per token and throughput of a generation run on another device (loopback)")
    bench_delegate.add_argument("--json", action="store_true", help="print JSON")
    bench_delegate.add_argument("--max-tokens", type=_positive_int, default=128, metavar="N")
    bench_delegate.add_argument("--rounds", type=_positive_int, default=3, metavar="N")

    bench_api = bench_sub.add_parser(
        "api", parents=[common],
        help="time to first token and tokens/s through the HTTP API against covey ask")
    bench_api.add_argument("--json", action="store_true", help="print JSON")
    bench_api.add_argument("--max-tokens", type=_positive_int, default=128, metavar="N")
    bench_api.add_argument("--rounds", type=_positive_int, default=5, metavar="N")

    bench_warm = bench_sub.add_parser(
        "warm", parents=[common],
        help="covey ask --continue with this device's node running (model warm) and without")
    bench_warm.add_argument("--json", action="store_true", help="print JSON")
    bench_warm.add_argument("--rounds", type=_positive_int, default=5, metavar="N")

    doctor = sub.add_parser("doctor", parents=[common],
                            help="check versions, the model file, the data directory and the store")
    doctor.add_argument("--network", action="store_true",
                        help="also test mDNS on this network (sends multicast)")
    sub.add_parser("ui", parents=[common], help="the terminal app (the default)")
    sub.add_parser("chat", parents=[common], help="a plain line-by-line chat")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(args, "log_level", "info" if args.command == "serve" else "warning")
    # serve logs one structured line per event (journald adds the time); others stay terse
    fmt = ("level=%(levelname)s logger=%(name)s msg=%(message)s" if args.command == "serve"
           else "%(levelname)s %(name)s: %(message)s")
    logging.basicConfig(level=level.upper(), format=fmt)
    return _run(args)


def _quiet_exit() -> None:
    """The command is done; Python still joins worker threads on its way out. A Ctrl+C in that
    moment must not print a traceback from `threading`: it ends the process at once."""
    import os
    import signal

    def now(signum: int, frame: object) -> None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(130)

    signal.signal(signal.SIGINT, now)


def _run(args: argparse.Namespace) -> int:
    try:
        return commands.run(args)
    except CoveyError as exc:
        print(f"covey: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ncovey: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()  # `covey history | head` closed the pipe: not an error
        return 0
    except Exception as exc:  # the last line of defence: still one line, no traceback
        log.debug("unexpected error", exc_info=True)
        print(f"covey: internal error: {type(exc).__name__}: {exc} "
              "(run with --log-level debug for details)", file=sys.stderr)
        return 70


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _temperature(text: str) -> float:
    value = _float(text)
    if not 0.0 <= value <= 5.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 5: {value}")
    return value


def _probability(text: str) -> float:
    value = _float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]: {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def entry_point() -> None:
    import signal

    try:  # (each step inside: a Ctrl+C between any two of them is an interrupt, said plainly)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # (see app/__init__.py)
        code = main()
        _quiet_exit()
    except KeyboardInterrupt:
        _quiet_exit()
        print("\ncovey: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
