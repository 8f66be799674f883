"""`covey api-key create|list|revoke`, and starting the API beside a node."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.api.keys import KeyRing
from app.context import Context
from app.job_worker import JobWorker

if TYPE_CHECKING:  # (the server pulls in aiohttp: imported when the API starts)
    from app.api.server import ApiServer

log = logging.getLogger(__name__)


def keyring(ctx: Context) -> KeyRing:
    return KeyRing(ctx.paths.data_dir / "api_keys.json")


def api_key(ctx: Context, args: argparse.Namespace) -> int:
    ring = keyring(ctx)
    if args.key_command == "create":
        key = ring.create(args.name)
        print(key)
        print(f"covey: API key {args.name!r} made; it is shown only now. A client sends it as "
              "'Authorization: Bearer KEY' (OPENAI_API_KEY for the openai SDK).",
              file=sys.stderr)
    elif args.key_command == "revoke":
        ring.revoke(args.name)
        print(f"API key {args.name!r} revoked")
    else:
        keys = ring.keys()
        if not keys:
            print("No API keys. Clients on this machine need none; for another device: "
                  "covey api-key create NAME")
        for k in keys:
            made = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created))
            print(f"{k.name:<24} made {made}")
    return 0


def _to_stderr(text: str) -> None:
    print(f"covey: {text}", file=sys.stderr, flush=True)


async def start_api(ctx: Context, worker: JobWorker | None, listen: str | None,
                    say: Callable[[str], None] = _to_stderr) -> ApiServer | None:
    """The API server beside this node, or None if it could not listen (said loudly, to `say`:
    stderr for `covey serve`, a notice in the terminal app)."""
    from app.api.front import FrontDoor
    from app.api.server import ApiServer

    server = ApiServer(FrontDoor(ctx, worker), listen or ctx.config.api_listen, keyring(ctx))
    try:
        await server.start()
    except OSError as exc:
        say(f"the API cannot listen on {server.listen} ({exc.strerror or exc}); the node runs "
            "without it (set api_listen, or api = false)")
        await server.stop()
        return None
    host, port = server.bound or ("?", "?")
    if say is _to_stderr:  # (the terminal app's node says nothing when all is well)
        print(f"covey API on http://{host}:{port}/v1 (OpenAI-compatible)", file=sys.stderr,
              flush=True)
    return server
