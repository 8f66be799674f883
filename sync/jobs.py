"""A generation as a job recorded on the assistant message, so it can move between devices.

On the message map, `job` is a map:
    requested_by   device that asked
    cancel         true once anyone asked to stop
    attempts       map: attempt id ("<n>-<device that made it>") → map
                     n, assignee, model, beat (renewal counter), started (bool), text (LoroText)

The current attempt is the greatest (n, id). Each attempt streams into its own text, so a stale
runner (killed, or partitioned and still writing) can never interleave with the attempt that
replaced it: the message shows the current attempt's text only. An attempt is run at most once:
its assignee marks it `started` before generating and never starts a started attempt again.

Liveness never compares clocks across devices: the runner bumps `beat` while it works, and a
watcher times the gaps between the changes it sees on its own monotonic clock (a runner whose
clock is an hour ahead or thirty seconds behind looks exactly as alive as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from loro import LoroDoc, LoroMap, LoroText, ValueOrContainer

from sync import loro_access as schema


@dataclass(frozen=True)
class Attempt:
    id: str
    n: int
    assignee: str
    model: str
    beat: int  # bumped by the runner as it works: a sign of life, never a time
    started: bool
    text: str
    refused: bool = False  # the assignee will not run it (not serving peers, queue full)


@dataclass(frozen=True)
class Job:
    requested_by: str
    cancel: bool
    attempts: list[Attempt]
    params: dict[str, Any]  # the requester's generation settings (max_tokens, seed…)

    @property
    def current(self) -> Attempt | None:
        return max(self.attempts, key=lambda a: (a.n, a.id)) if self.attempts else None


def read_job(raw_message: dict[str, Any]) -> Job | None:
    job = raw_message.get("job")
    if not isinstance(job, dict):
        return None
    attempts = []
    raw_attempts = job.get("attempts")
    for aid, a in (raw_attempts.items() if isinstance(raw_attempts, dict) else []):
        if not isinstance(a, dict) or type(a.get("n")) is not int:
            continue
        beat = a.get("beat")
        attempts.append(Attempt(
            id=str(aid), n=a["n"], assignee=str(a.get("assignee", "")),
            model=str(a.get("model", "")), beat=beat if type(beat) is int else 0,
            started=a.get("started") is True, text=str(a.get("text", "")),
            refused=a.get("refused") is True))
    params = job.get("params")
    return Job(requested_by=str(job.get("requested_by", "")), cancel=job.get("cancel") is True,
               attempts=attempts, params=params if isinstance(params, dict) else {})


def _child_map(parent: LoroMap, key: str) -> LoroMap:
    return cast(LoroMap, parent.get_or_create_container(key, LoroMap()))


def start_job(doc: LoroDoc, message_id: str, requested_by: str,
              params: dict[str, Any] | None = None) -> None:
    entry = schema.message_map(doc, message_id)
    if entry is None:
        raise KeyError(message_id)
    job = _child_map(entry, "job")
    job.insert("requested_by", requested_by)
    job.insert("cancel", False)
    settings = _child_map(job, "params")
    for key, value in (params or {}).items():
        if value is not None:
            settings.insert(key, value)


def add_attempt(doc: LoroDoc, message_id: str, n: int, made_by: str, assignee: str) -> str:
    """A new attempt (superseding the current one); returns its id."""
    entry = schema.message_map(doc, message_id)
    if entry is None:
        raise KeyError(message_id)
    attempts = _child_map(_child_map(entry, "job"), "attempts")
    aid = f"{n}-{made_by}"
    attempt = _child_map(attempts, aid)
    attempt.insert("n", n)
    attempt.insert("assignee", assignee)
    attempt.insert("beat", 0)
    attempt.insert("started", False)
    attempt.get_or_create_container("text", LoroText())
    entry.insert("status", "queued")
    entry.insert("device", assignee)
    return aid


def attempt_map(doc: LoroDoc, message_id: str, aid: str) -> LoroMap | None:
    entry = schema.message_map(doc, message_id)
    if entry is None:
        return None
    job = entry.get("job")
    if not isinstance(job, ValueOrContainer.Container):
        return None
    attempts = cast(LoroMap, job.container).get("attempts")
    if not isinstance(attempts, ValueOrContainer.Container):
        return None
    found = cast(LoroMap, attempts.container).get(aid)
    return cast(LoroMap, found.container) if isinstance(found, ValueOrContainer.Container) else None


def assignee(doc: LoroDoc, message_id: str, aid: str) -> str | None:
    """Who attempt `aid` of the answer is assigned to (None: no such attempt here)."""
    attempt = attempt_map(doc, message_id, aid)
    who = schema.plain(attempt.get("assignee")) if attempt is not None else None
    return who if isinstance(who, str) else None


def attempt_text(attempt: LoroMap) -> LoroText:
    return cast(LoroText, attempt.get_or_create_container("text", LoroText()))


def set_cancel(doc: LoroDoc, message_id: str) -> None:
    entry = schema.message_map(doc, message_id)
    if entry is not None:
        _child_map(entry, "job").insert("cancel", True)


def refuse(doc: LoroDoc, message_id: str, aid: str) -> None:
    attempt = attempt_map(doc, message_id, aid)
    if attempt is not None:
        attempt.insert("refused", True)


def beat(attempt: LoroMap) -> None:
    """A sign of life from the attempt's runner."""
    current = attempt.get("beat")
    value = schema.plain(current) if current is not None else 0
    attempt.insert("beat", (value if type(value) is int else 0) + 1)


# -- the runner's steps (what a device running the job writes, each in one commit) -------------

class Superseded(Exception):
    """The attempt was cancelled or replaced by a newer one: stop generating."""


def raw_message(doc: LoroDoc, message_id: str) -> object:
    """The message's plain value (what `read_job` reads), or None."""
    entry = schema.message_map(doc, message_id)
    return entry.get_deep_value() if entry is not None else None


def claim(doc: LoroDoc, message_id: str, aid: str, model: str) -> bool:
    """Start attempt `aid` with `model`, unless it was started already; the answer now streams."""
    attempt = attempt_map(doc, message_id, aid)
    if attempt is None or schema.plain(attempt.get("started")) is True:
        return False
    attempt.insert("started", True)
    attempt.insert("model", model)
    beat(attempt)
    entry = schema.message_map(doc, message_id)
    if entry is not None:
        entry.insert("status", "streaming")
        entry.insert("model", model)
    return True


def append(doc: LoroDoc, message_id: str, aid: str, text: str, renew: bool,
           status: str | None = None) -> None:
    """Add `text` to attempt `aid` (a beat with `renew`; the answer's final `status` when it
    ends); Superseded if the job was cancelled or another attempt is current."""
    raw = raw_message(doc, message_id)
    job = read_job(raw) if isinstance(raw, dict) else None
    if job is None or job.cancel:
        raise Superseded("cancelled")
    if job.current is None or job.current.id != aid:
        raise Superseded(f"superseded by attempt {job.current.id if job.current else '?'}")
    attempt = attempt_map(doc, message_id, aid)
    assert attempt is not None
    if text:
        body = attempt_text(attempt)
        body.insert(body.len_unicode, text)
    if renew:
        beat(attempt)
    if status is not None:
        entry = schema.message_map(doc, message_id)
        if entry is not None:
            entry.insert("status", status)


def finish_cancelled(doc: LoroDoc, message_id: str) -> None:
    entry = schema.message_map(doc, message_id)
    if entry is not None:
        entry.insert("status", "cancelled")
