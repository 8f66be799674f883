"""A TCP proxy that cuts every connection after a random number of bytes (fault injection)."""

from __future__ import annotations

import asyncio
import random
import threading


class FlakyProxy:
    def __init__(self, target: tuple[str, int], listen_port: int, seed: int = 1,
                 cut_between: tuple[int, int] = (2_000, 60_000), max_cuts: int = 25,
                 host: str = "127.0.0.1") -> None:
        self.target = target
        self.port = listen_port
        self.host = host
        self.rng = random.Random(seed)
        self.cut_between = cut_between
        self.max_cuts = max_cuts  # after this many cuts the proxy lets connections live
        self.cuts = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._handlers: set[asyncio.Task[None]] = set()

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, self.port)
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:
            writer.close()
        finally:
            self._handlers.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        budget = [self.rng.randint(*self.cut_between) if self.cuts < self.max_cuts else 1 << 62]
        if self.cuts < self.max_cuts:
            self.cuts += 1

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while budget[0] > 0:
                data = await src.read(4096)
                if not data:
                    break
                data = data[: budget[0]]
                budget[0] -= len(data)
                dst.write(data)
                await dst.drain()

        tasks = [asyncio.create_task(copy(reader, up_writer)), asyncio.create_task(copy(up_reader, writer))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()
