"""The asyncio adapter: moves bytes between a TLS stream and a Link, and nothing more.

All session and store work runs on the node's single store thread (never on the event loop, and
never two at once), so the event loop only waits on sockets and timers.

Liveness is ours to judge, on our own monotonic clock: with nothing else to send we ping every
`keepalive` seconds, and a peer we hear nothing from for `dead_after` seconds is dead (frozen,
unplugged, killed without its socket closing). Anything that goes wrong inside a session — our
bug or our disk — ends that connection with a reason; it never escapes as a traceback loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TypeVar

from sync import errors
from sync.link import Link
from sync.protocol import Closed, Event, PieceReceived

log = logging.getLogger(__name__)
T = TypeVar("T")
READ_SIZE = 1 << 20  # up to this much is persisted per transaction during a catch-up
STREAM_LIMIT = 1 << 20  # asyncio's stream buffer (the default 64 KiB caps each read)


@dataclass
class Timing:
    keepalive: float = 2.0  # ping after this long without sending anything
    dead_after: float = 7.0  # silence from the peer for this long: the connection is dead
    drain_timeout: float = 30.0  # a peer that reads nothing for this long is dropped


@dataclass
class Connection:
    link: Link
    writer: asyncio.StreamWriter
    initiator: str  # device id of the side that dialled
    address: str
    device: str  # the peer's device id, from its certificate
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    last_heard: float = field(default_factory=time.time)  # wall clock: shown as "last seen"
    error: str | None = None  # why it ended, when it was not the session's own decision

    def close(self) -> None:
        self.closing = True
        self.wakeup.set()
        if not self.writer.is_closing():
            self.writer.close()


async def async_run_connection(
    conn: Connection,
    reader: asyncio.StreamReader,
    executor: Executor,
    timing: Timing,
    on_event: Callable[[Connection, Event], Awaitable[None]],
) -> Closed | None:
    """Drive one connection until it ends; returns how the session closed (None: socket died)."""
    loop = asyncio.get_running_loop()

    async def async_run(fn: Callable[[], T]) -> T:
        return await loop.run_in_executor(executor, fn)

    async def async_send(data: bytes) -> None:
        if data and not conn.writer.is_closing():
            conn.writer.write(data)
            await asyncio.wait_for(conn.writer.drain(), timing.drain_timeout)

    def receive_and_reply(data: bytes) -> tuple[list[Event], bytes]:
        events = conn.link.receive(data)
        return events, conn.link.outgoing()

    def push_and_reply() -> bytes:
        conn.link.push()
        return conn.link.outgoing()

    def start() -> bytes:
        conn.link.start()
        return conn.link.outgoing()

    async def async_reading() -> None:
        while not conn.closing:
            try:  # (a timeout scope, not wait_for: no task made per read)
                async with asyncio.timeout(timing.dead_after):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                await async_run(lambda: conn.link.session.close("no sign of life (keepalive timeout)"))
                data = b""
            if data:
                conn.last_heard = time.time()
            events, out = await async_run(lambda: receive_and_reply(data))  # noqa: B023 (run at once)
            await async_send(out)
            for event in events:
                await on_event(conn, event)
            if conn.link.closed is not None or not data:
                return
            if not events or not all(isinstance(e, PieceReceived) for e in events):
                conn.wakeup.set()  # acknowledgements may have opened the send window

    async def async_pushing() -> None:
        while not conn.closing and conn.link.closed is None:
            try:
                async with asyncio.timeout(timing.keepalive):
                    await conn.wakeup.wait()
            except TimeoutError:
                await async_run(lambda: conn.link.session.ping(0))
            conn.wakeup.clear()
            await async_send(await async_run(push_and_reply))

    try:
        await async_send(await async_run(start))
        tasks = [asyncio.create_task(async_reading()), asyncio.create_task(async_pushing())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await async_send(await async_run(conn.link.outgoing))  # a last ERROR frame, if any
    except (ConnectionError, TimeoutError, OSError) as exc:
        conn.error = f"connection lost ({exc or type(exc).__name__})"
        log.info("connection to %s ended: %s", conn.address, conn.error)
    except Exception as exc:  # a bug or our store failing: end this connection, loudly, once
        conn.error = f"internal error: {type(exc).__name__}: {exc}"
        errors.report(f"session with {conn.device}", conn.error, exc)
        try:
            await async_run(lambda: conn.link.session.close(conn.error or "internal error"))
            await asyncio.wait_for(async_send(conn.link.outgoing()), 1.0)
        except Exception:  # the link is already broken: nothing more to tell the peer
            pass
    finally:
        conn.close()
    return conn.link.closed

