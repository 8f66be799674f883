"""Every GGUF model on this device — bundled, Ollama, LM Studio, Hugging Face, GPT4All,
`model_dirs` — with its metadata, read without loading it and cached by file.

The `gguf` reader reads every key of a file (seconds, for a large vocabulary), so what it found
is kept in a JSON cache keyed by the file's identity (device, inode, size, modification time):
a link to a file, or the same file found twice, is read once; a changed file is read again. One
file that two programs name differently (hard links between their folders) is listed by both.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from models.errors import ModelError
from models.gguf import ModelMeta, read_metadata
from models.layouts import Candidate, Problem, default_roots, scan_root


@dataclass(frozen=True)
class LocalModel:
    """A model file found on this device (usable, or not and why)."""

    name: str
    path: str
    source: str  # bundled, ollama, lmstudio, huggingface, gpt4all, dir
    size: int = 0
    arch: str = ""
    params: str = ""  # "135M", "3.2B"
    quant: str = ""
    context_length: int = 0
    chat_template: bool = False
    unusable: str = ""  # why covey cannot chat with it ("" = it can)

    @property
    def usable(self) -> bool:
        return not self.unusable


class MetadataCache:
    """What each file's metadata was, by the file's identity; saved as JSON."""

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, object]] = {}
        self.changed = False
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("version") == self.VERSION and isinstance(raw.get("files"), dict):
                self.entries = raw["files"]
        except (OSError, ValueError, AttributeError):
            pass  # no cache yet, or one from another version: read the files again

    @staticmethod
    def key(path: Path) -> str:
        st = path.stat()
        return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    def get(self, key: str) -> dict[str, object] | None:
        return self.entries.get(key)

    def put(self, key: str, value: dict[str, object]) -> None:
        self.entries[key] = value
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": self.VERSION, "files": self.entries}),
                       encoding="utf-8")
        os.replace(tmp, self.path)
        self.changed = False


def scan(cache: MetadataCache, bundled: Path | None, model_dirs: list[str],
         home: Path | None = None, env: dict[str, str] | None = None, rescan: bool = False,
         progress: Callable[[str], None] | None = None) -> list[LocalModel]:
    """Every model found (the bundled one first), each file once; `rescan` reads every file's
    metadata again instead of trusting the cache."""
    home = home or Path.home()
    env = dict(os.environ) if env is None else env
    found: list[LocalModel] = []
    seen: set[tuple[str, str]] = set()
    candidates: list[Candidate | Problem] = []
    if bundled is not None:
        candidates.append(Candidate(bundled.stem, bundled, "bundled"))
    for source, root in default_roots(home, env, model_dirs):
        candidates.extend(scan_root(source, root))
    for item in candidates:
        if isinstance(item, Problem):
            found.append(LocalModel(item.name, str(item.path), item.source,
                                    unusable=item.reason))
            continue
        try:
            real = item.path.resolve()
            key = MetadataCache.key(real)
        except (OSError, RuntimeError) as exc:  # (RuntimeError: a symlink loop)
            found.append(LocalModel(item.name, str(item.path), item.source,
                                    unusable=f"cannot be read ({exc})"))
            continue
        if (key, item.name) in seen:
            continue  # the same file by the same name another way (a link, a second folder)
        seen.add((key, item.name))
        meta = None if rescan else cache.get(key)
        if meta is None:
            if progress is not None:
                progress(f"reading {item.path.name} ({real.stat().st_size / 2**20:,.0f} MB)")
            meta = _read(real)
            cache.put(key, meta)
        found.append(LocalModel(name=item.name, path=str(real), source=item.source,
                                size=real.stat().st_size, arch=str(meta.get("arch", "")),
                                params=str(meta.get("params", "")),
                                quant=str(meta.get("quant", "")),
                                context_length=int(str(meta.get("context_length") or 0)),
                                chat_template=bool(meta.get("chat_template")),
                                unusable=str(meta.get("unusable", ""))))
    cache.save()
    return found


def _read(path: Path) -> dict[str, object]:
    started = time.monotonic()
    try:
        meta: ModelMeta = read_metadata(path)
    except ModelError as exc:
        return {"unusable": str(exc)}
    except OSError as exc:
        return {"unusable": f"cannot be read ({exc.strerror or exc})"}
    out = asdict(meta)
    out["params"] = meta.size_label
    out["read_s"] = round(time.monotonic() - started, 2)
    return out


def matching(models: list[LocalModel], name: str) -> list[LocalModel]:
    """The usable models `name` means: its exact name, else the same name in other letter
    case, else a prefix — several when it is ambiguous, none when nothing matches."""
    usable = [m for m in models if m.usable]
    tests: list[Callable[[LocalModel], bool]] = [
        lambda m: m.name == name, lambda m: m.name.lower() == name.lower(),
        lambda m: m.name.lower().startswith(name.lower())]
    for means in tests:
        found = [m for m in usable if means(m)]
        if found:
            return found
    return []
