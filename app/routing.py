"""Where an answer runs: `local`, a named device, or `auto` (whoever finishes soonest).

`auto` estimates when each candidate would finish: the answers already queued or running on it,
the prompt (prefill, taken as ~10× decode speed), the answer length at its measured decode speed,
and for a peer the link. It prefers this device unless another would finish clearly (1.5×)
sooner. Candidates are the household's members that serve peers, advertise a model and are
online now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.errors import UsageError
from sync import household, peer_state
from sync.store import Store

if TYPE_CHECKING:
    from app.context import Context

CLEARLY_FASTER = 1.5
PREFILL_FACTOR = 10.0  # prompt tokens are processed about this much faster than generated
LINK_SECONDS = 0.05  # handing over and streaming back over the LAN


@dataclass(frozen=True)
class Candidate:
    device_id: str
    name: str
    model: str
    tok_s: float


def online_devices(store: Store) -> set[str]:
    """Members this device's node holds a live session with (ask only while it runs)."""
    return peer_state.online_devices(store)


def candidates(store: Store) -> list[Candidate]:
    """Online members (not us) that run a model for peers."""
    online = online_devices(store)
    if not online:  # (no one to hand to: the membership log need not be verified for that)
        return []
    found = []
    for d in household.devices(store):
        cap = household.capability(store, d.device_id)
        if (d.device_id != store.device_id and not d.revoked and d.device_id in online
                and cap.get("serves") and cap.get("tok_s", 0) > 0):
            found.append(Candidate(d.device_id, d.name, str(cap.get("model", "")),
                                   float(cap["tok_s"])))
    return found


def best_peer(store: Store, model: str | None = None) -> str | None:
    """The fastest capable peer online — one that has `model`, when a job names one."""
    peers = sorted(candidates(store), key=lambda c: -c.tok_s)
    if model:
        from app.model_choice import devices_with

        having = devices_with(store, model)
        peers = [p for p in peers if p.device_id in having]
    return peers[0].device_id if peers else None


def busy(store: Store) -> dict[str, int]:
    """Answers queued or running, per device."""
    return store.answers_in_flight()


def finish_seconds(tok_s: float, queued: int, prompt_tokens: int, max_tokens: int,
                   remote: bool) -> float:
    speed = max(tok_s, 0.01)
    one = prompt_tokens / (speed * PREFILL_FACTOR) + max_tokens / speed
    return (queued + 1) * one + (LINK_SECONDS if remote else 0.0)


def choose(store: Store, where: str, local_tok_s: float, prompt_tokens: int = 64,
           max_tokens: int = 256) -> str:
    """The device id to run on ("" = queue it until a capable peer is online)."""
    me = store.device_id
    if where == "local":
        return me
    if where == "auto":
        queues = busy(store)
        local = finish_seconds(local_tok_s, queues.get(me, 0), prompt_tokens, max_tokens, False)
        best = min(candidates(store), default=None, key=lambda c: finish_seconds(
            c.tok_s, queues.get(c.device_id, 0), prompt_tokens, max_tokens, True))
        if best is not None and local >= CLEARLY_FASTER * finish_seconds(
                best.tok_s, queues.get(best.device_id, 0), prompt_tokens, max_tokens, True):
            return best.device_id
        return me
    wanted = where.lower().replace("-", "")
    for d in household.devices(store):
        if d.revoked:
            continue
        if d.name.lower() == where.lower() or d.device_id.lower().replace("-", "").startswith(wanted):
            return d.device_id
    raise UsageError(f"no device {where!r} in this household (see `covey devices`)")


def where_to_run(ctx: Context, on: str | None, prompt: str, max_tokens: int,
                 say: Callable[[str], None] | None = None) -> str:
    """The device id to run on: this device's id when it should answer itself, "" to queue.

    A named device that is offline is said so at once (`say`), and `when_alone` decides:
    answer here, or queue until a capable device is online.
    """
    from app.speed import cached_speed
    from sync.nodelock import NodeLock

    where = on or ctx.config.run_on
    me = ctx.store.device_id
    if where == "local":
        return me
    if not NodeLock.held(ctx.paths.locks_dir):
        if on and on != "auto":
            raise UsageError("running on another device needs this device's node: start "
                             "`covey serve` first")
        return me  # no node: nothing can reach the other devices; answer here
    prompt_tokens = len(prompt) // 4 + 1  # a rough count: no need to load the model for it
    local_speed = cached_speed(ctx)
    if local_speed is None and where == "auto" and candidates(ctx.store):
        from app.speed import measured_speed

        # Comparing needs this device's speed: measured once per model file, then cached.
        local_speed = measured_speed(ctx)[1]
    target = choose(ctx.store, where, local_speed or 0.0, prompt_tokens, max_tokens)
    if target == me and where == "auto" and ctx.config.when_alone == "queue" \
            and not candidates(ctx.store):
        return ""
    if target != me and where != "auto" and target not in online_devices(ctx.store):
        name = next((d.name for d in household.devices(ctx.store) if d.device_id == target), where)
        queue = ctx.config.when_alone == "queue"
        (say or _stderr)(f"{name} is offline; " + (
            "the answer is queued and runs when a capable device is online" if queue
            else "answering on this device (when_alone = \"local\")"))
        return "" if queue else me
    return target


def _stderr(text: str) -> None:
    import sys

    print(f"covey: {text}", file=sys.stderr, flush=True)
