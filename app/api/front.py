"""What an API request does: choose the device, record the turns, run the answer as a job.

Every recorded request is an ordinary covey job (app/delegation.py): the prompt and an answer
assigned to the device that runs the model — this one (its job worker takes jobs one at a time,
so one request never interrupts another) or a peer (the answer arrives by sync, and a runner that
goes silent is taken over, exactly as for `covey ask --on`). The conversation is synced and
searchable like any other, marked with the client's name; a later request that repeats its
turns continues it. With `api_record = false` nothing is written and only this device's own
model answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from loro import LoroDoc

from app import remote_ask
from app.api import catalog
from app.api.wire import ApiError, ChatRequest, Usage
from app.config import Config
from app.delegation import JobRef, cancel_job, current_job, job_setup
from app.job_worker import Follower, JobWorker
from models.base import ChatMessage, GenerationParams, Role
from sync import peer_state
from sync.store import Store

if TYPE_CHECKING:  # (the context is handed in; importing it here would pull in the models)
    from app.context import Context


@dataclass
class Answer:
    """A request on its way: where it runs and, when recorded, its job."""

    model: str
    device_name: str
    params: GenerationParams
    prompt: list[ChatMessage]
    ref: JobRef | None = None  # None: not recorded (runs directly on this device's model)
    here: bool = False  # this device's worker runs it
    status: str = "queued"
    text: str = ""
    pieces: list[str] = field(default_factory=list)
    follower: Follower | None = None
    _sink: Callable[[str], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def piece(self, text: str) -> None:
        """A piece from the generating thread: kept, and passed on once someone listens."""
        with self._lock:
            self.pieces.append(text)
            if self._sink is not None:
                self._sink(text)

    def attach(self, sink: Callable[[str], None]) -> None:
        with self._lock:
            for text in self.pieces:
                sink(text)
            self._sink = sink


class FrontDoor:
    def __init__(self, ctx: Context, worker: JobWorker | None) -> None:
        self.ctx = ctx  # (a Context: its store and config; remote_ask.watch reads its store)
        self.store: Store = ctx.store
        self.config: Config = ctx.config
        self.worker = worker

    def local_model(self) -> str | None:
        """This device's model, while its worker can run it."""
        runner = self.worker.runner if self.worker is not None else None
        return runner.model.info.name if runner is not None else None

    def local_others(self) -> list[str]:
        """This device's other usable models (its node loads them when asked)."""
        if self.local_model() is None or not self.config.api_record:
            return []  # (an unrecorded answer runs on the worker's own model only)
        from app.model_choice import local_models

        return [m.name for m in local_models(self.ctx) if m.usable]

    def models(self) -> list[tuple[str, str, int]]:
        return catalog.listing(self.store, self.local_model(), self.local_others())

    def open(self, request: ChatRequest, client: str) -> Answer:
        """Choose where `request` runs and record it (its answer queued there). Raises ApiError."""
        model, offer = catalog.choose(self.store, request.model, self.local_model(),
                                      self.local_others())
        me = self.store.device_id
        if offer is None:  # "auto": wherever covey's routing sends it
            target = self._auto(request)
            model, name = "auto", self._name(target)
        else:
            target, name = offer.device_id, offer.device_name
        params = self._params(request)
        prompt: list[ChatMessage] = ([{"role": "system", "content": request.system}]
                                     if request.system else [])
        prompt += [{"role": cast(Role, t.role), "content": t.content} for t in request.dialogue]
        answer = Answer(model, name, params, prompt)
        if not self.config.api_record:
            if target != me:
                raise ApiError(503, f"{model!r} runs on {name}, and with api_record = false "
                               "answers run on this device only", "server_error",
                               "model_unavailable")
            return answer
        answer.here = target == me and self.worker is not None
        answer.ref = self._record(request, client, target, params, answer)
        return answer

    def run(self, answer: Answer, on_piece: Callable[[str], None],
            cancel: threading.Event) -> Answer:
        """Stream the answer to `on_piece` until it ends (or `cancel` is set); blocking."""
        if answer.ref is None:
            if self.worker is None:
                raise ApiError(503, "this device runs no model", "server_error",
                               "model_unavailable")
            answer.status, answer.text = self.worker.run_unrecorded(
                answer.prompt, answer.params, on_piece, cancel)
            return answer
        if answer.here:
            return self._follow(answer, on_piece, cancel)
        pieces: list[str] = []

        def piece(text: str) -> None:
            pieces.append(text)
            on_piece(text)

        def note(text: str) -> None:  # (a take-over: said in the stream, plainly marked)
            piece(f"\n[covey: {text}]\n")

        answer.status = remote_ask.watch(self.ctx, answer.ref, answer.params,
                                         on_piece=piece, on_note=note, cancel=cancel,
                                         run_here=False)
        answer.text = "".join(pieces)
        return answer

    def _follow(self, answer: Answer, on_piece: Callable[[str], None],
                cancel: threading.Event) -> Answer:
        """A job this device's worker runs: its pieces come straight from the generation."""
        assert answer.ref is not None and answer.follower is not None and self.worker
        follower, ref = answer.follower, answer.ref
        answer.attach(on_piece)
        try:
            finished_seen = ticks = 0
            while not follower.ended.wait(0.05):
                if cancel.is_set() and answer.status != "cancelling":
                    cancel_job(self.store, ref)  # the runner stops at its next commit
                    answer.status = "cancelling"
                ticks += 1
                if ticks % 10:
                    continue  # (reading the job costs the generation; twice a second will do)
                # (a job cancelled elsewhere before it started never runs: see it end)
                status, _ = current_job(self.store, ref)
                finished_seen = finished_seen + 1 if status in ("done", "failed",
                                                                "cancelled") else 0
                if finished_seen > 1:
                    follower.status = status
                    break
        finally:
            self.worker.unfollow(ref.answer_id)
        answer.status = follower.status or "failed"
        answer.text = "".join(answer.pieces)
        return answer

    def usage(self, answer: Answer) -> Usage:
        """Tokens as this device's model counts them (4 characters a token without one)."""
        runner = self.worker.runner if self.worker is not None else None
        if runner is None:
            return Usage(sum(len(m["content"]) for m in answer.prompt) // 4 + 1,
                         len(answer.text) // 4)
        model = runner.model
        try:
            prompt = model.count_tokens(answer.prompt)
            whole = model.count_tokens(answer.prompt + [{"role": "assistant",
                                                         "content": answer.text}])
            return Usage(prompt, max(0, whole - prompt - 4) if answer.text else 0)
        except Exception:  # counting is a courtesy; never fail an answer over it
            return Usage(0, 0)

    # -- the pieces -------------------------------------------------------------------------

    def _auto(self, request: ChatRequest) -> str:
        from app.routing import choose

        target = choose(self.store, "auto", 0.0 if self.local_model() is None else 1e9)
        if target == self.store.device_id and self.local_model() is None:
            best = catalog.offers(self.store, None)
            online = [o for o in best if o.device_id in peer_state.online_devices(self.store)]
            if not online:
                raise ApiError(503, "no device of the household can run a model now",
                               "server_error", "model_unavailable")
            target = max(online, key=lambda o: o.tok_s).device_id
        return target

    def _name(self, device_id: str) -> str:
        from sync import household

        return next((d.name for d in household.devices(self.store) if d.device_id == device_id),
                    device_id)

    def _params(self, request: ChatRequest) -> GenerationParams:
        config = self.config
        return GenerationParams(
            max_tokens=request.max_tokens or config.max_tokens,
            temperature=config.temperature if request.temperature is None else request.temperature,
            top_p=config.top_p if request.top_p is None else request.top_p,
            seed=config.seed if request.seed is None else request.seed,
            stop=request.stop)

    def _record(self, request: ChatRequest, client: str, target: str,
                params: GenerationParams, answer: Answer) -> JobRef:
        store = self.store
        dialogue = request.dialogue
        found = self._continued(request)
        if found is None:
            conv_id = store.create_conversation(system_prompt=request.system)
            store.set_client(conv_id, client)
            parent: str | None = ""
            for said in dialogue[:-1]:  # earlier turns covey never saw: recorded as they were
                parent = store.add_message(conv_id, said.role, said.content,
                                           parent_id=parent or "")
        else:
            conv_id, parent = found
        following: list[str] = []
        job = job_setup(store.device_id, target, params, title=self.config.auto_title
                        and found is None,
                        model=answer.model if answer.model != catalog.AUTO else None)

        def queued(doc: LoroDoc, answer_id: str) -> object:
            if answer.here:  # (before the job exists, so the worker cannot start without us)
                assert self.worker is not None  # (answering here means a worker runs here)
                answer.follower = self.worker.follow(answer_id, answer.piece)
                following.append(answer_id)
            return job(doc, answer_id)

        try:  # the prompt, its answer and the answer's job: one commit
            _, _, answer_id = store.add_turn(conv_id, dialogue[-1].content,
                                             parent_id=parent or "", status="queued", then=queued)
        except BaseException:
            if following and self.worker is not None:  # (the commit failed: no job to follow)
                self.worker.unfollow(following[0])
                answer.follower = None
            raise
        return JobRef(conv_id, answer_id)

    def _continued(self, request: ChatRequest) -> tuple[str, str] | None:
        """The conversation and answer a request's earlier turns end at, if covey has them."""
        prior = request.dialogue[:-1]
        if not prior or prior[-1].role != "assistant":
            return None
        wanted = [(t.role, t.content) for t in prior]
        for conv_id, message_id in self.store.answers_with_text(prior[-1].content):
            conv = self.store.conversation_document(conv_id)
            if conv is None or conv.deleted or (conv.system_prompt or None) != request.system:
                continue
            thread = [(m.role, m.text) for m in conv.thread(message_id)
                      if m.role in ("user", "assistant")]
            if thread == wanted:
                return conv_id, message_id
        return None
