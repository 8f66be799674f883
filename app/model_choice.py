"""The household's models: this device's (found by a scan), the others' (each device publishes
its own list to the household), and which one a name means.

`--model NAME` (and `model = "NAME"` in the config) is a model's name from `covey models`, a
unique prefix of one, or a GGUF path. A name this device has runs here; a name only another
device has is handed to that device (the fastest online one that has it), as `--on` would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from loro import LoroDoc, LoroMap

from app.errors import UsageError
from models.scan import LocalModel, MetadataCache, matching, scan
from sync import household, peer_state
from sync.store import HOUSEHOLD_DOC, Store

if TYPE_CHECKING:
    from app.context import Context

MAX_PUBLISHED = 200  # models one device may list (what a misbehaving peer sends is cut here)


@dataclass(frozen=True)
class Listed:
    """A model of some device of the household, as `covey models` shows it."""

    device_id: str
    device_name: str
    name: str
    params: str
    quant: str
    size: int
    context_length: int
    tok_s: float | None
    source: str
    unusable: str = ""


@dataclass(frozen=True)
class Choice:
    """What a model specification means: a file here, or a device that has the named model."""

    spec: str | None  # what get_model loads here (None: the bundled model; "fake…"; a path)
    name: str | None = None  # the model's name, when chosen by name
    device_id: str | None = None  # set when only another device has it
    device_name: str = ""


def local_models(ctx: Context, rescan: bool = False,
                 progress: Callable[[str], None] | None = None) -> list[LocalModel]:
    from app.errors import ModelError
    from models.registry import bundled_model_path

    try:
        bundled: Path | None = bundled_model_path()
    except ModelError:
        bundled = None
    # (A file's metadata is the file's, whichever covey home looks: one cache per user.)
    import platformdirs

    cache = MetadataCache(Path(platformdirs.user_cache_dir("covey")) / "model_metadata.json")
    return scan(cache, bundled, ctx.config.model_dirs, rescan=rescan, progress=progress)


def looks_like_path(spec: str) -> bool:
    """A file, not a name: it exists, ends in .gguf or starts like a path (names have slashes
    too: `publisher/repo`, `me/model:tag`)."""
    return (spec.lower().endswith(".gguf") or spec.startswith(("~", ".", os.sep))
            or Path(spec).is_file())


def choose(ctx: Context, spec: str | None, models: list[LocalModel] | None = None) -> Choice:
    """What `spec` means on this device. Raises UsageError for a name no device has, or one
    that means several models."""
    if not spec or spec == "fake" or spec.startswith("fake:"):
        return Choice(spec or None)
    if looks_like_path(spec):
        return Choice(str(Path(spec).expanduser()))
    found = matching(models if models is not None else local_models(ctx), spec)
    names = sorted({m.name for m in found})
    if len(names) == 1:
        if len(found) > 1:
            raise UsageError(f"the name {spec!r} means several files: "
                             + "; ".join(f"{m.path} ({m.source})" for m in found)
                             + " — pass one as --model PATH")
        return Choice(found[0].path, found[0].name)
    if len(names) > 1:
        raise UsageError(f"{spec!r} names several models: {', '.join(names)}; give more of "
                         "the name (`covey models` lists them)")
    elsewhere = [m for m in household_models(ctx, include_mine=False)
                 if not m.unusable and m.name.lower().startswith(spec.lower())]
    exact = [m for m in elsewhere if m.name.lower() == spec.lower()]
    elsewhere = exact or elsewhere
    if len({m.name for m in elsewhere}) > 1:
        raise UsageError(f"{spec!r} names several models: "
                         f"{', '.join(sorted({m.name for m in elsewhere}))}; give more of it")
    if not elsewhere:
        raise UsageError(f"no device of the household has a model named {spec!r} "
                         "(`covey models` lists them; a GGUF file is given by its path)")
    online = peer_state.online_devices(ctx.store)
    live = [m for m in elsewhere if m.device_id in online] or elsewhere
    best = max(live, key=lambda m: m.tok_s or 0.0)
    return Choice(None, best.name, best.device_id, best.device_name)


# -- the household's list --------------------------------------------------------------------

def publish(ctx: Context, models: list[LocalModel], speeds: dict[str, float]) -> bool:
    """Write this device's usable models to the household (synced); False if unchanged."""
    entries = [{"name": m.name, "params": m.params, "quant": m.quant, "size": m.size,
                "context_length": m.context_length, "source": m.source, "arch": m.arch,
                "tok_s": speeds.get(m.path)} for m in models if m.usable][:MAX_PUBLISHED]
    text = json.dumps(entries, sort_keys=True)
    store = ctx.store
    device_map = household.snapshot(store).get("devices", {}).get(store.device_id, {})
    if isinstance(device_map, dict) and device_map.get("models") == text:
        return False

    def put(doc: LoroDoc) -> None:
        devices = doc.get_map("devices")
        entry = cast(LoroMap, devices.get_or_create_container(store.device_id, LoroMap()))
        entry.insert("models", text)

    store.write(HOUSEHOLD_DOC, put, touched=None)
    return True


def household_models(ctx: Context, include_mine: bool = True,
                     mine: list[LocalModel] | None = None) -> list[Listed]:
    """Every member's models (this device's from its own scan, when `include_mine`)."""
    store = ctx.store
    value = household.snapshot(store)
    devices = value.get("devices", {}) if isinstance(value.get("devices"), dict) else {}
    out: list[Listed] = []
    if include_mine:  # (this device's own, household or not)
        speeds = known_speeds(ctx)
        out += [Listed(store.device_id, ctx.config.device_name, m.name, m.params, m.quant,
                       m.size, m.context_length, speeds.get(m.path), m.source, m.unusable)
                for m in (mine if mine is not None else local_models(ctx))]
    for d in household.devices(store):
        if d.revoked or d.device_id == store.device_id:
            continue
        raw = devices.get(d.device_id, {})
        out += _published(d.device_id, d.name, raw.get("models") if isinstance(raw, dict)
                          else None)
    return out


def devices_with(store: Store, name: str) -> set[str]:
    """The other members whose published list (or own model) has the model `name`."""
    value = household.snapshot(store)
    devices = value.get("devices", {}) if isinstance(value.get("devices"), dict) else {}
    out = set()
    for device_id, raw in devices.items():
        if device_id == store.device_id or not isinstance(raw, dict):
            continue
        own = household.capability_in(value, device_id).get("model")
        listed = _published(device_id, "", raw.get("models"))
        if own == name or any(m.name == name for m in listed):
            out.add(device_id)
    return out


def _published(device_id: str, device_name: str, text: Any) -> list[Listed]:
    """A peer's list, checked field by field (what does not parse is left out)."""
    try:
        entries = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    out = []
    for e in entries[:MAX_PUBLISHED] if isinstance(entries, list) else []:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not e["name"]:
            continue
        tok_s = e.get("tok_s")
        out.append(Listed(
            device_id, device_name, e["name"][:200], str(e.get("params", ""))[:20],
            str(e.get("quant", ""))[:20], _int(e.get("size")), _int(e.get("context_length")),
            float(tok_s) if isinstance(tok_s, (int, float)) else None,
            str(e.get("source", ""))[:20]))
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def known_speeds(ctx: Context) -> dict[str, float]:
    """Measured decode tokens/s by model file, from this device's speed cache."""
    rows = ctx.store.notes_starting("speed:")
    out: dict[str, float] = {}
    for key, value in rows:
        path = str(key)[len("speed:"):].rsplit(":", 3)[0]  # (speed:PATH:SIZE:MTIME:THREADS)
        try:
            out[path] = float(json.loads(value)["tok_s"])
        except (ValueError, KeyError, TypeError):
            continue
    return out


def as_json(models: list[Listed]) -> list[dict[str, Any]]:
    return [asdict(m) for m in models]
