"""Running a generation as a job that any paired device can take (see sync/jobs.py).

- `request_job`: record the prompt and an answer whose first attempt is assigned to a device.
- `AttemptRunner.run`: generate one attempt (on whichever device it is assigned to), streaming
  into that attempt's text, renewing its lease, and stopping at once when the job is cancelled
  or a newer attempt supersedes it.
- `take_over`: a new attempt, when the current one's lease lapsed.
The prompt is built from the conversation as synced, with the same pipeline stages as a local
answer, so a delegated answer equals what that device would answer locally.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from loro import LoroDoc

from app import pipeline
from app.assistant import Assistant, Turn
from app.errors import CoveyError
from app.streaming import EVERY_PIECES, EVERY_SECONDS, Batches, title_from_first_exchange
from models.base import ChatModel, GenerationParams
from sync import jobs
from sync.jobs import Superseded
from sync.live import LivePiece, Publisher
from sync.store import Store, StoreEvent

log = logging.getLogger(__name__)

LEASE_SECONDS = 4.0  # an attempt that shows no sign of life for this long may be taken over
RENEW_EVERY = 1.0
COMMIT_EVERY_SECONDS = 0.03  # a requester that watches the store only: commit often
COMMIT_EVERY_PIECES = 2


@dataclass(frozen=True)
class JobRef:
    conversation_id: str
    answer_id: str


#: What delegation writes into the commit that creates an answer: its job (see `job_setup`).
Job = Callable[[LoroDoc, str], object]


def job_setup(me: str, assignee: str, params: GenerationParams | None = None,
              title: bool = False, model: str | None = None) -> Callable[[LoroDoc, str], str]:
    """The job for an answer (a `Job`; it returns its first attempt's id), to be written in the
    commit that creates it (`Assistant.start`, `Assistant.again`): assigned to `assignee` ("" = queued); the answer is queued from the start
    (no peer ever sees it streaming here). The requester's generation settings travel with the
    job, so the runner answers exactly as asked (and as it would have answered locally)."""
    def job(doc: LoroDoc, answer_id: str) -> str:
        return _setup_job(doc, answer_id, me, assignee, params, title, model)

    return job


def request_job(assistant: Assistant, prompt: str, conv_id: str | None, system: str | None,
                assignee: str, params: GenerationParams | None = None,
                parent_id: str | None = None, model: str | None = None) -> tuple[Turn, str]:
    """Store the prompt and a job for its answer, assigned to `assignee`, in one commit;
    returns the turn and the first attempt's id."""
    store = assistant.store
    title = assistant.config.auto_title and (conv_id is None or store.untitled(conv_id))
    setup = job_setup(store.device_id, assignee, params, title, model)
    first: list[str] = []

    def job(doc: LoroDoc, answer_id: str) -> None:
        first.append(setup(doc, answer_id))  # (the first attempt's id)

    turn = assistant.start(prompt, conv_id, system, parent_id, job=job)
    return turn, first[0]


def _setup_job(doc: LoroDoc, answer_id: str, me: str, assignee: str,
               params: GenerationParams | None, title: bool, model: str | None) -> str:
    """The job for answer `answer_id` and its first attempt (id returned), in `doc`."""
    settings: dict[str, object] | None = None
    if params is not None:
        settings = {"max_tokens": params.max_tokens, "temperature": params.temperature,
                    "top_p": params.top_p, "seed": params.seed,
                    "stop": list(params.stop) or None}
    if title:
        settings = (settings or {}) | {"title": True}
    if model:
        settings = (settings or {}) | {"model": model}
    jobs.start_job(doc, answer_id, requested_by=me, params=settings)
    return jobs.add_attempt(doc, answer_id, 1, me, assignee)


def current_job(store: Store, ref: JobRef) -> tuple[str, jobs.Job | None]:
    """(message status, job) as this store sees it now."""
    conv = store.conversation(ref.conversation_id)
    message = conv.message(ref.answer_id)
    status = message.status if message else "failed"
    raw = store.read(ref.conversation_id, lambda doc: jobs.raw_message(doc, ref.answer_id))
    return status, jobs.read_job(raw) if isinstance(raw, dict) else None


def take_over(store: Store, ref: JobRef, assignee: str) -> str:
    """A new attempt for the job, assigned to `assignee`; returns its id."""
    _, job = current_job(store, ref)
    n = (job.current.n if job and job.current else 0) + 1
    aid = store.write(ref.conversation_id, lambda doc: jobs.add_attempt(
        doc, ref.answer_id, n, store.device_id, assignee), touched={ref.answer_id})
    log.info("took over %s as attempt %s on %s", ref.answer_id, aid, assignee)
    return aid


def cancel_job(store: Store, ref: JobRef) -> None:
    store.write(ref.conversation_id, lambda doc: jobs.set_cancel(doc, ref.answer_id),
                touched={ref.answer_id})


class AttemptRunner:
    """Generates attempts assigned to this device with its one model."""

    def __init__(self, store: Store, model: ChatModel, params: GenerationParams,
                 pick: Callable[[str | None], ChatModel] | None = None,
                 live: Publisher | None = None) -> None:
        self.store = store
        self.own = self.model = model
        self.params = params
        self.pick = pick  # a model by name (the node's warm models); None: only its own
        self.live = live  # each piece to whoever watches, ahead of the store (sync/live.py)

    def run(self, ref: JobRef, aid: str, on_piece: Callable[[str], None] | None = None,
            heard_here: bool | None = None) -> str:
        """Run attempt `aid`; returns how it ended (done/cancelled/failed/superseded/skipped).

        `heard_here`: whoever asked hears each piece in this process, through `on_piece` (the
        default when `on_piece` is given), so the store may be written less often."""
        _, job = current_job(self.store, ref)
        wanted = job.params.get("model") if job is not None else None
        try:  # (one attempt at a time: the model this one asks for is the runner's for now)
            self.model = self.own if self.pick is None or not isinstance(wanted, str) \
                else self.pick(wanted)
        except CoveyError as exc:
            log.warning("attempt %s cannot run: %s", aid, exc)
            self.model = self.own
            if self._claim(ref, aid):
                self._commit(ref, aid, f"[covey: {exc}]", renew=False, status="failed")
            return "failed"
        if not self._claim(ref, aid):
            return "skipped"
        conv = self.store.conversation(ref.conversation_id)
        answer = conv.message(ref.answer_id)
        prompt_id = answer.parent_id if answer else None
        params = self._params(job.params if job else {})
        cancel = threading.Event()
        last_renew = time.monotonic()

        committing = threading.Event()  # (this runner's own commits are no news to it)

        def commit(text: str) -> None:  # (renewing the lease about once a second)
            nonlocal last_renew
            renew = time.monotonic() - last_renew >= RENEW_EVERY
            committing.set()
            try:
                self._commit(ref, aid, text, renew=renew)
            finally:
                committing.clear()
            last_renew = time.monotonic() if renew else last_renew

        # Whoever asked hears each piece at once — in this process (the API, a take-over), or
        # live (`covey ask` beside this node, a requester connected to it): commit as a local
        # answer does, since each commit costs the generation a little. A requester reached
        # only through the store (another device, through a third) needs it written often.
        requester = job.requested_by if job is not None else ""
        live = self.live if self.live is not None and self.live.reaches(requester) else None
        heard = (on_piece is not None if heard_here is None else heard_here) or live is not None
        batches = Batches(commit, EVERY_PIECES, EVERY_SECONDS) if heard \
            else Batches(commit, COMMIT_EVERY_PIECES, COMMIT_EVERY_SECONDS)
        offset = 0
        # A cancel or a take-over is noticed at the next piece after it reaches this store,
        # not at the next commit (a quarter of a second apart when the requester hears it).
        changed = threading.Event()
        runner = threading.get_ident()

        def on_event(event: StoreEvent) -> None:
            # (a store event is emitted on the thread that wrote, as its write returns)
            if event.doc_id == ref.conversation_id and not (
                    committing.is_set() and threading.get_ident() == runner):
                changed.set()

        unsubscribe = self.store.subscribe(on_event)
        try:
            messages = pipeline.build_prompt(conv.thread(prompt_id), conv.system_prompt,
                                             self.model, params)
            for piece in pipeline.generate(self.model, messages, params, cancel):
                if changed.is_set():
                    changed.clear()
                    self._still_current(ref, aid)
                if on_piece is not None:
                    on_piece(piece)
                if live is not None:
                    live.publish(requester, LivePiece(ref.conversation_id, ref.answer_id, aid,
                                                      offset, piece))
                    offset += len(piece)
                batches.add(piece)
            self._commit(ref, aid, batches.rest(), renew=False, status="done")
            if live is not None:  # (an empty piece: "it ended, look at the store now")
                live.publish(requester, LivePiece(ref.conversation_id, ref.answer_id, aid,
                                                  offset, ""))
            if job is not None and job.params.get("title") is True:
                title_from_first_exchange(self.store, self.model, ref.conversation_id,
                                          ref.answer_id)
            return "done"
        except Superseded as stop:
            cancel.set()
            log.info("attempt %s stopped: %s", aid, stop)
            if str(stop) == "cancelled":
                self._finish_cancelled(ref, aid)
                return "cancelled"
            return "superseded"
        except Exception as exc:  # a title is a nicety; the answer is done
            cancel.set()
            log.warning("attempt %s failed: %s", aid, exc)
            try:
                self._commit(ref, aid, "", renew=False, status="failed")
            except Superseded:
                pass
            return "failed"
        finally:
            unsubscribe()

    def _still_current(self, ref: JobRef, aid: str) -> None:
        """Raises Superseded if the job was cancelled or another attempt replaced this one."""
        _, job = current_job(self.store, ref)
        if job is None or job.cancel:
            raise Superseded("cancelled")
        if job.current is None or job.current.id != aid:
            raise Superseded(f"superseded by attempt {job.current.id if job.current else '?'}")

    def _params(self, requested: dict[str, object]) -> GenerationParams:
        """The requester's settings where given and sane, this device's defaults otherwise."""
        base = self.params

        def number(key: str, default: float) -> float:
            value = requested.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return float(cast(float, value)) if ok else float(default)

        seed = requested.get("seed")
        stop = requested.get("stop")
        stops = tuple(s for s in stop if isinstance(s, str) and s)[:4] \
            if isinstance(stop, list) else ()
        return GenerationParams(
            max_tokens=max(1, min(int(number("max_tokens", base.max_tokens)),
                                  self.model.info.context_length // 2)),
            temperature=min(max(number("temperature", base.temperature), 0.0), 5.0),
            top_p=min(max(number("top_p", base.top_p), 0.01), 1.0),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else base.seed,
            stop=stops or base.stop,
        )

    def _claim(self, ref: JobRef, aid: str) -> bool:
        return bool(self.store.write(
            ref.conversation_id, lambda doc: jobs.claim(doc, ref.answer_id, aid,
                                                        self.model.info.name),
            touched={ref.answer_id}))

    def _commit(self, ref: JobRef, aid: str, text: str, renew: bool,
                status: str | None = None) -> None:
        self.store.write(ref.conversation_id,
                         lambda doc: jobs.append(doc, ref.answer_id, aid, text, renew, status),
                         touched={ref.answer_id}, fsync=status is not None)

    def _finish_cancelled(self, ref: JobRef, aid: str) -> None:
        self.store.write(ref.conversation_id,
                         lambda doc: jobs.finish_cancelled(doc, ref.answer_id),
                         touched={ref.answer_id})
