"""The OpenAI-compatible HTTP API of a node, on aiohttp, in the node's event loop.

    GET  /v1/models             the household's models
    POST /v1/chat/completions   an answer, streamed as server-sent events or whole

Clients on this machine (loopback) need no key; any other client needs a bearer key (`covey
api-key create NAME`), or gets 401 and nothing runs. Errors are OpenAI's JSON shape, never a
stack trace. Requests wait their turn on the device that runs them (one never interrupts
another); a client that goes away cancels its answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from app.api import wire
from app.api.front import Answer, FrontDoor
from app.api.keys import KeyRing
from app.api.wire import ApiError
from app.errors import CoveyError

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024  # bytes of a request body (a long conversation fits many times)
MAX_AT_ONCE = 16  # requests in progress; more are told to come back (429)
CLIENT = web.RequestKey("client", str)


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _error(exc: ApiError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status)


class ApiServer:
    def __init__(self, door: FrontDoor, listen: str, keys: KeyRing) -> None:
        self.door = door
        self.listen = listen
        self.keys = keys
        self.bound: tuple[str, int] | None = None
        self._runner: web.AppRunner | None = None
        self._pool = ThreadPoolExecutor(MAX_AT_ONCE + 2, thread_name_prefix="covey-api")
        self._at_once = 0

    # -- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model:.+}", self._model)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/", self._hello)
        # handler_cancellation: a client that disconnects cancels its handler (and answer).
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        host, _, port = self.listen.rpartition(":")
        site = web.TCPSite(self._runner, host.strip("[]") or "127.0.0.1", int(port))
        await site.start()
        server = site._server
        # (aiohttp types it as asyncio's AbstractServer; what TCPSite starts is a Server)
        sockets = server.sockets if isinstance(server, asyncio.Server) else []
        self.bound = sockets[0].getsockname()[:2] if sockets else None
        log.info("API listening on http://%s:%s/v1", *(self.bound or ("?", "?")))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the door ---------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        """Who is asking (a key's name, or "localhost"); errors in OpenAI's shape."""
        try:
            request[CLIENT] = self._client(request)
            return await handler(request)
        except ApiError as exc:
            return _error(exc)
        except web.HTTPRequestEntityTooLarge:
            return _error(ApiError(413, f"the request is larger than {MAX_BODY // 2**20} MiB",
                                   "invalid_request_error", "request_too_large"))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(ApiError(exc.status, exc.reason, "invalid_request_error",
                                   "not_found" if exc.status == 404 else None))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except CoveyError as exc:  # (a full disk, a store that cannot be written…): said plainly
            log.warning("API request %s %s refused: %s", request.method, request.path, exc)
            return _error(ApiError(503, str(exc), "server_error", "unavailable"))
        except Exception:
            log.exception("API request %s %s failed", request.method, request.path)
            return _error(ApiError(500, "covey failed to answer this request (the node's log "
                                   "says why)", "server_error", "internal_error"))

    def _client(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else ""
        name = self.keys.check(key) if key else None
        if name is not None:
            return name
        if is_loopback(request.remote):
            return "localhost"  # this machine's own programs need no key
        # (The key is never logged: only that one was missing or wrong.)
        log.warning("API request from %s refused: %s", request.remote,
                    "wrong key" if key else "no key")
        raise ApiError(401, "a valid API key is needed from another device: create one with "
                       "`covey api-key create NAME` on the device that serves the API and send "
                       "it as 'Authorization: Bearer KEY'", "invalid_request_error",
                       "invalid_api_key")

    # -- handlers ---------------------------------------------------------------------------

    async def _hello(self, request: web.Request) -> web.Response:
        return web.json_response({"service": "covey", "api": "/v1", "models": "/v1/models"})

    async def _models(self, request: web.Request) -> web.Response:
        models = await self._off_loop(self.door.models)
        return web.json_response(wire.model_list(models))

    async def _model(self, request: web.Request) -> web.Response:
        wanted = request.match_info["model"]
        for mid, owner, created in await self._off_loop(self.door.models):
            if mid == wanted:
                return web.json_response({"id": mid, "object": "model", "created": created,
                                          "owned_by": owner})
        raise ApiError(404, f"the model {wanted!r} does not exist in this household",
                       "invalid_request_error", "model_not_found", "model")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        chat = wire.parse_chat(body)
        if self._at_once >= MAX_AT_ONCE:
            raise ApiError(429, f"{MAX_AT_ONCE} requests are in progress here; try again in a "
                           "moment", "rate_limit_error", "busy")
        self._at_once += 1
        cancel = threading.Event()
        try:
            answer = await self._off_loop(self.door.open, chat, request[CLIENT])
            log.info("API: %s asks %s (on %s)", request[CLIENT], answer.model,
                     answer.device_name)
            if chat.stream:
                return await self._stream(request, chat, answer, cancel)
            return await self._whole(answer, cancel, chat.model)
        except asyncio.CancelledError:
            cancel.set()  # the client went away: its answer stops, everywhere
            raise
        finally:
            self._at_once -= 1

    async def _whole(self, answer: Answer, cancel: threading.Event, asked: str) -> web.Response:
        await self._off_loop(self.door.run, answer, lambda piece: None, cancel)
        self._check_ended(answer)
        usage = await self._off_loop(self.door.usage, answer)
        return web.json_response(wire.completion(
            self._id(answer), self._model_name(answer, asked), answer.text,
            self._finish(answer, usage), usage))

    async def _stream(self, request: web.Request, chat: wire.ChatRequest, answer: Answer,
                      cancel: threading.Event) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        # Pieces wait in a list; the loop is woken once for all that came meanwhile (each
        # wake-up and each write costs the generation, which has every core, a little).
        pending: list[str | None] = []
        guard = threading.Lock()
        arrived = asyncio.Event()

        def hand(text: str | None) -> None:  # (on the generating thread; None: the end)
            with guard:
                pending.append(text)
                first = len(pending) == 1
            if first:
                loop.call_soon_threadsafe(arrived.set)

        def run() -> None:
            try:
                self.door.run(answer, hand, cancel)
            finally:
                hand(None)

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        cid, created, model = self._id(answer), int(time.time()), self._model_name(answer, chat.model)
        usage_field = chat.include_usage
        first = wire.chunk(cid, model, created, {"role": "assistant", "content": ""},
                           with_usage_field=usage_field)
        try:
            await response.write(wire.sse(first))
            job = loop.run_in_executor(self._pool, run)
            ended = False
            while not ended:
                await arrived.wait()
                with guard:
                    arrived.clear()
                    texts, pending[:] = list(pending), []
                if not texts:
                    continue  # (a wake-up for pieces an earlier look already took)
                ended = texts[-1] is None
                await response.write(b"".join(
                    wire.sse(wire.chunk(cid, model, created, {"content": text},
                                        with_usage_field=usage_field))
                    for text in texts if text is not None))
            await job
            if answer.status == "failed":
                await response.write(wire.sse(ApiError(
                    503, "the device running the model failed to answer", "server_error",
                    "generation_failed").body()))
            else:
                usage = await self._off_loop(self.door.usage, answer)
                await response.write(wire.sse(wire.chunk(
                    cid, model, created, {}, self._finish(answer, usage),
                    with_usage_field=usage_field)))
                if chat.include_usage:
                    await response.write(wire.sse(wire.usage_chunk(cid, model, created, usage)))
            await response.write(wire.sse("[DONE]"))
        except (ConnectionResetError, asyncio.CancelledError):
            cancel.set()
            raise
        return response

    # -- helpers ----------------------------------------------------------------------------

    async def _off_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Store reads and writes, and the wait for an answer, run off the node's loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    @staticmethod
    def _check_ended(answer: Answer) -> None:
        if answer.status == "failed":
            raise ApiError(503, f"{answer.device_name} failed to answer (its model could not "
                           "run this request)", "server_error", "generation_failed")

    @staticmethod
    def _id(answer: Answer) -> str:
        suffix = answer.ref.answer_id if answer.ref else f"{time.time_ns():x}"
        return f"chatcmpl-{suffix}"

    @staticmethod
    def _model_name(answer: Answer, asked: str) -> str:
        return answer.model if answer.model != "auto" else asked

    @staticmethod
    def _finish(answer: Answer, usage: wire.Usage) -> str:
        return "length" if usage.completion_tokens >= answer.params.max_tokens else "stop"
