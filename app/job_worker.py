"""On a node: run the jobs assigned to this device, one at a time, on the node's model.

Also dispatches this device's own queued jobs (made while no capable peer was online) once a
capable peer appears. Woken by every store change; otherwise it looks once a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loro import LoroDoc

from app import pipeline, routing
from app.delegation import AttemptRunner, JobRef, current_job, take_over
from models.base import ChatMessage, ChatModel, GenerationParams
from sync import jobs
from sync.conversation import Message
from sync.live import Publisher
from sync.store import Store, StoreEvent

log = logging.getLogger(__name__)


@dataclass
class Follower:
    """Someone in this process following one job: its pieces, and how it ended."""

    piece: Callable[[str], None]
    ended: threading.Event = field(default_factory=threading.Event)
    status: str = ""


class JobWorker:
    def __init__(self, store: Store, model: ChatModel | None, params: GenerationParams,
                 serve_peers: bool, max_queue: int = 8, live: Publisher | None = None) -> None:
        self.store = store
        self.params = params
        self.live = live  # each piece to whoever watches the answer (sync/live.py)
        self.runner = AttemptRunner(store, model, params, live=live) \
            if model is not None else None
        # Until `attach_model` (the model loads in the background), jobs wait instead of
        # being refused.
        self.loading = False
        self.last_busy = time.monotonic()  # when a job last ran here
        self.serve_peers = serve_peers
        self.max_queue = max_queue
        # One generation at a time on the one model: jobs, and API answers that are not recorded.
        self.model_lock = threading.Lock()
        # Answers a caller in this process follows piece by piece (the API, for jobs it made
        # here): handed each piece as it is generated, not after a round trip through the store.
        self._followers: dict[str, Follower] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="covey-jobs", daemon=True)
        self._unsubscribe = store.subscribe(self._on_change)

    def start(self) -> None:
        self._thread.start()

    def attach_model(self, model: ChatModel | None,
                     pick: Callable[[str | None], ChatModel] | None = None) -> None:
        """The model finished loading (None: it could not; refuse jobs from now on); `pick`
        finds another model of this device by name, for jobs that ask for one."""
        self.runner = AttemptRunner(self.store, model, self.params, pick, self.live) \
            if model is not None else None
        self.loading = False
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._unsubscribe()
        if self._thread.ident is not None:  # (started: a node that failed early never did)
            self._thread.join(timeout=30)

    def _on_change(self, event: StoreEvent) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self._round()
            except Exception:  # one bad job must not stop the worker
                log.exception("job worker round failed")

    def _refuse(self, conv_id: str, message_id: str, aid: str) -> None:
        def mark(doc: LoroDoc) -> None:
            jobs.refuse(doc, message_id, aid)

        self.store.write(conv_id, mark, touched={message_id})

    def _round(self) -> None:
        me = self.store.device_id
        queued = self.store.queued_answers()
        mine = 0
        for conv_id, message_id in queued:
            if self._stop.is_set():
                return
            ref = JobRef(conv_id, message_id)
            _, job = current_job(self.store, ref)
            current = job.current if job else None
            if job is None or current is None or job.cancel or current.started:
                continue
            if current.assignee == me:
                if self.loading:
                    continue  # it runs once the model is ready
                mine += 1
                from_peer = job.requested_by != me
                if self.runner is None or (from_peer and (
                        not self.serve_peers or mine > self.max_queue)):
                    # Say no at once, so the requester answers itself instead of waiting.
                    log.info("refusing job %s from %s", message_id, job.requested_by)
                    self._refuse(conv_id, message_id, current.id)
                    self._ended(message_id, "failed")
                    continue
                log.info("running job %s (attempt %s) for %s", message_id, current.id,
                         job.requested_by)
                follower = self._followers.get(message_id)
                with self.model_lock:
                    ended = self.runner.run(ref, current.id,
                                            on_piece=follower.piece if follower else None)
                self._ended(message_id, ended)
                self.last_busy = time.monotonic()
            elif current.assignee == "" and job.requested_by == me:
                wanted = job.params.get("model")  # (a job for a named model: a device with it)
                peer = routing.best_peer(self.store, wanted if isinstance(wanted, str) else None)
                if peer is not None:
                    take_over(self.store, ref, peer)  # a capable peer appeared: hand it over

    def follow(self, answer_id: str, on_piece: Callable[[str], None]) -> Follower:
        """Hand the pieces of job `answer_id` to `on_piece` as this worker generates them."""
        follower = Follower(on_piece)
        self._followers[answer_id] = follower
        return follower

    def unfollow(self, answer_id: str) -> None:
        self._followers.pop(answer_id, None)

    def _ended(self, answer_id: str, status: str) -> None:
        follower = self._followers.get(answer_id)
        if follower is not None and status != "skipped":
            follower.status = status
            follower.ended.set()

    def run_unrecorded(self, messages: list[ChatMessage], params: GenerationParams,
                       on_piece: Callable[[str], None],
                       cancel: threading.Event) -> tuple[str, str]:
        """Answer `messages` on this device's model without writing anything (api_record =
        false), in turn with the jobs; returns (status, text)."""
        runner = self.runner
        if runner is None:
            return "failed", ""
        model = runner.model
        fitted = GenerationParams(
            max_tokens=max(1, min(params.max_tokens, model.info.context_length // 2)),
            temperature=params.temperature, top_p=params.top_p, seed=params.seed,
            stop=params.stop)
        pieces: list[str] = []
        with self.model_lock:
            self.last_busy = time.monotonic()
            system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
            thread = [Message(id=str(n), role=m["role"], text=m["content"], created_at="")
                      for n, m in enumerate(messages) if m["role"] != "system"]
            prompt = pipeline.build_prompt(thread, system or None, model, fitted)
            for piece in pipeline.generate(model, prompt, fitted, cancel):
                pieces.append(piece)
                on_piece(piece)
        return ("cancelled" if cancel.is_set() else "done"), "".join(pieces)
