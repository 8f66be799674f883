"""The household's models as the API names them, and which device runs a requested one.

Every member publishes the model it runs (its capability, in the household document); the API
lists each distinct model once, owned by the devices that have it. A request names a model by
its id (case-insensitive), by a unique prefix of it, as `MODEL@DEVICE` to pin the device, or as
`auto` (covey's own routing, as `covey ask` does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app import routing
from app.api.wire import ApiError
from sync import household
from sync.store import Store

AUTO = "auto"


@dataclass(frozen=True)
class Offer:
    """A model one device runs."""

    model: str
    device_id: str
    device_name: str
    tok_s: float
    measured_at: float


def offers(store: Store, local_model: str | None,
           local_others: list[str] | None = None) -> list[Offer]:
    """The models of the household's members — each device's own (its capability) and the
    others it lists (`covey models`) — this device's only while its worker can run them
    (`local_others`: the other models it has)."""
    from app.model_choice import _published

    value = household.snapshot(store)
    devices = value.get("devices", {}) if isinstance(value.get("devices"), dict) else {}
    found = []
    for d in household.devices(store):
        if d.revoked:
            continue
        cap = household.capability_in(value, d.device_id)
        model = str(cap.get("model") or "")
        mine = d.device_id == store.device_id
        stamp = cap.get("measured_at")
        when = float(stamp) if isinstance(stamp, (int, float)) else time.time()
        tok_s = float(cap.get("tok_s") or 0.0)
        if mine:
            if not local_model:
                continue
            names = [local_model, *(local_others or [])]
        elif not model or not cap.get("serves"):
            continue
        else:
            raw = devices.get(d.device_id, {})
            listed = _published(d.device_id, d.name, raw.get("models")
                                if isinstance(raw, dict) else None)
            names = [model, *(m.name for m in listed)]
        seen: set[str] = set()
        for n, name in enumerate(names):
            if name not in seen:
                seen.add(name)
                # (speed measured for a device's own model; the others' is not known here)
                found.append(Offer(name, d.device_id, d.name, tok_s if n == 0 else 0.0, when))
    return found


def listing(store: Store, local_model: str | None,
            local_others: list[str] | None = None) -> list[tuple[str, str, int]]:
    """(id, owned_by, created) per distinct model, for GET /v1/models."""
    by_model: dict[str, list[Offer]] = {}
    for offer in offers(store, local_model, local_others):
        by_model.setdefault(offer.model, []).append(offer)
    return [(model, ", ".join(o.device_name for o in group),
             int(min(o.measured_at for o in group)))
            for model, group in sorted(by_model.items(), key=lambda kv: kv[0].lower())]


def choose(store: Store, requested: str, local_model: str | None,
           local_others: list[str] | None = None) -> tuple[str, Offer | None]:
    """(the model id, where it runs) for a request; None as the offer means "route it as covey
    ask --on auto does". Raises 404 for a model no member has, 503 when none can run it now."""
    name, _, device = requested.partition("@")
    if name.lower() == AUTO and not device:
        return AUTO, None
    every = offers(store, local_model, local_others)
    model = _model_named(name, sorted({o.model for o in every}))
    having = [o for o in every if o.model == model]
    if device:
        having = [o for o in having if o.device_name.lower() == device.lower()
                  or o.device_id.lower().startswith(device.lower())]
        if not having:
            raise ApiError(404, f"no device named {device!r} runs {model!r}", "invalid_request_error",
                           "model_not_found", "model")
    me = store.device_id
    local = [o for o in having if o.device_id == me]
    if local:
        return model, local[0]
    online = routing.online_devices(store)
    live = sorted((o for o in having if o.device_id in online), key=lambda o: -o.tok_s)
    if live:
        return model, live[0]
    where = ", ".join(o.device_name for o in having)
    raise ApiError(503, f"{model!r} runs on {where}, and none of them is online now; try again "
                   "when one is, or choose another model (GET /v1/models)", "server_error",
                   "model_unavailable")


def _model_named(name: str, models: list[str]) -> str:
    exact = [m for m in models if m.lower() == name.lower()]
    if exact:
        return exact[0]
    prefixed = [m for m in models if m.lower().startswith(name.lower())]
    if len(prefixed) == 1:
        return prefixed[0]
    known = ", ".join(models) or "none yet"
    if prefixed:
        raise ApiError(404, f"{name!r} names several models: {', '.join(prefixed)}; give more "
                       "of the name", "invalid_request_error", "model_not_found", "model")
    raise ApiError(404, f"the model {name!r} does not exist in this household (models: {known}; "
                   "or 'auto')", "invalid_request_error", "model_not_found", "model")
