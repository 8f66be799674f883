"""Run this device's node inside another program (the terminal app) while it is open.

`covey serve` is the node on a headless device. On a laptop the terminal app hosts it instead,
so the household syncs whenever the app is open — unless a node already runs on this device
(`covey serve` in the background), which then does the work and this host stays idle.
The node runs on its own thread with its own event loop; the app only reads the state it keeps
in the store. Like `covey serve`, the hosted node answers too: a job worker runs what paired
devices hand this one (`serve_peers`) and the OpenAI-compatible API (`api`) on the app's model,
which the app's own answers share (the model runs one generation at a time, in turn).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from app.context import Context
from app.errors import CoveyError
from sync.nodelock import NodeError, NodeLock

if TYPE_CHECKING:
    from app.api.server import ApiServer
    from app.job_worker import JobWorker
    from app.model_prep import ModelPrep
    from sync.node import Node

log = logging.getLogger(__name__)


class NodeHost:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.error: str | None = None  # why the node stopped or could not start
        self.listening: str | None = None
        self.notices: list[str] = []  # what the app should tell its user (the API could not listen…)
        self.worker: JobWorker | None = None
        self.prep: ModelPrep | None = None
        self.api: ApiServer | None = None
        self._lock = NodeLock(ctx.paths.locks_dir)
        self._owned = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stopped = False

    @property
    def hosting(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, wait: float = 5.0) -> bool:
        """Start the node unless one already runs on this device; False if it could not."""
        if self._thread is not None or self._stopped:
            return self.error is None  # started already, or the app is closing
        try:
            self._lock.acquire()
        except NodeError:
            return True  # another process (covey serve) is this device's node
        self._owned = True
        from app.joining import node_options  # (the network stack: imported when needed)
        from sync.node import Node

        try:
            options = node_options(self.ctx, None, None)
        except CoveyError as exc:
            self.error = str(exc)
            self._release()
            return False
        node = Node(self.ctx.store, self.ctx.identity, self.ctx.config.device_name, options)
        self._answering(node)
        self._thread = threading.Thread(target=self._main, args=(node,), name="covey-node",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(wait)
        return self.error is None

    def _answering(self, node: Node) -> None:
        """The job worker (and its model, made ready in the background) when this device
        answers peers or serves the API; a model that cannot be set up leaves the node syncing."""
        config = self.ctx.config
        if not (config.serve_peers or config.api):
            return
        from app.job_worker import JobWorker
        from app.model_prep import ModelPrep
        from sync.live import Publisher

        try:
            params = self.ctx.assistant.params()
        except CoveyError as exc:
            self.notices.append(f"This device answers nobody else: {exc}")
            return
        live = Publisher(self.ctx.store.locks_dir, self.ctx.store.device_id, node)
        self.worker = JobWorker(self.ctx.store, None, params, config.serve_peers,
                                config.max_queue, live)
        self.worker.loading = True  # (jobs wait for the model rather than being refused)
        self.prep = ModelPrep(self.ctx, self.worker, node.advertise)
        self.worker.start()

    def _main(self, node: Node) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(n: Node) -> None:
                self.listening = f"{n.bound[0]}:{n.bound[1]}" if n.bound else None
                if self.prep is not None:
                    self.prep.start()
                self._ready.set()

            if self.worker is not None and self.ctx.config.api:
                from app.api.commands import start_api

                self.api = await start_api(self.ctx, self.worker, None, say=self.notices.append)
            try:
                await node.async_run(self._stop, ready)
            finally:
                if self.api is not None:
                    await self.api.stop()

        try:
            asyncio.run(run())
        except Exception as exc:  # reported to the app, which keeps working
            self.error = str(exc) or type(exc).__name__
            log.warning("the node stopped: %s", self.error)
        finally:
            self._ready.set()
            self._release()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped = True
        if self.hosting and self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # its loop just ended by itself
                pass
        if self._thread is not None:
            self._thread.join(timeout)
        if self.prep is not None:
            self.prep.stop()
        if self.worker is not None:
            self.worker.stop()
        self._release()

    def _release(self) -> None:
        if self._owned:
            self._owned = False
            self._lock.release()
