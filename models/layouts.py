"""Where other programs keep the GGUF models they downloaded, and what they call them.

Each layout turns a folder into candidates — (name, file) — without opening the files:

- Ollama: `manifests/<registry>/<namespace>/<model>/<tag>` (JSON), whose layer with media type
  `application/vnd.ollama.image.model` names the blob `blobs/sha256-<hex>`; named as Ollama
  does (`llama3.2:3b`, `me/mine:latest`, `host/ns/model:tag`).
- LM Studio: `<publisher>/<repo>/<file>.gguf`; named `publisher/repo`.
- The Hugging Face hub cache: `models--<org>--<repo>/snapshots/<revision>/…/<file>.gguf`
  (symlinks into `blobs/`); named `org/repo`.
- GPT4All, `model_dirs` and any other folder: every `.gguf` below it; named by the file.

A repository holding several GGUF files (one per quantization, say) names each
`publisher/repo/<file stem>`. Folders are walked with symlinks followed once (a loop ends
there); what cannot be read becomes a `Problem`, never an exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

OLLAMA_MODEL_MEDIA = "application/vnd.ollama.image.model"
OLLAMA_LIBRARY = ("registry.ollama.ai", "library")
MAX_DEPTH = 6  # folders below a root a scan looks into (model folders are shallow)


@dataclass(frozen=True)
class Candidate:
    name: str
    path: Path
    source: str


@dataclass(frozen=True)
class Problem:
    """Something that looked like a model and cannot be one, and why."""

    name: str
    path: Path
    source: str
    reason: str


Found = Candidate | Problem


def default_roots(home: Path, env: dict[str, str], model_dirs: list[str]) -> list[tuple[str, Path]]:
    """(source, folder) in the order a name found twice is resolved (the first wins)."""
    roots: list[tuple[str, Path]] = []
    for d in model_dirs:
        roots.append(("dir", Path(d).expanduser()))
    ollama = [Path(env["OLLAMA_MODELS"])] if env.get("OLLAMA_MODELS") else []
    roots += [("ollama", p) for p in ollama + [home / ".ollama/models",
                                               Path("/usr/share/ollama/.ollama/models")]]
    roots += [("lmstudio", home / ".lmstudio/models"), ("lmstudio", home / ".cache/lm-studio/models")]
    hub = [Path(env["HF_HUB_CACHE"])] if env.get("HF_HUB_CACHE") else []
    if env.get("HF_HOME"):
        hub.append(Path(env["HF_HOME"]) / "hub")
    hub.append(home / ".cache/huggingface/hub")
    roots += [("huggingface", p) for p in hub]
    roots += [("gpt4all", home / ".local/share/nomic.ai/GPT4All"),
              ("gpt4all", home / "Library/Application Support/nomic.ai/GPT4All")]
    seen: set[Path] = set()
    unique = []
    for source, root in roots:
        if root not in seen:
            seen.add(root)
            unique.append((source, root))
    return unique


def scan_root(source: str, root: Path) -> Iterator[Found]:
    """The candidates (and problems) in one folder of one layout; nothing if it is absent."""
    if not root.exists():
        return
    if not root.is_dir():
        yield Problem(root.name, root, source, "not a folder")
        return
    if source == "ollama":
        yield from _ollama(root)
    elif source == "lmstudio":
        yield from _grouped(root, source, lambda rel: "/".join(rel.parts[:2])
                            if len(rel.parts) >= 3 else rel.stem)
    elif source == "huggingface":
        yield from _huggingface(root)
    else:
        yield from _grouped(root, source, lambda rel: rel.stem)


def _ollama(root: Path) -> Iterator[Found]:
    manifests = root / "manifests"
    for path, problem in _walk(manifests, "ollama", lambda p: True):
        if problem is not None:
            yield problem
            continue
        rel = path.relative_to(manifests)
        if len(rel.parts) < 4:
            continue
        *where, model, tag = rel.parts
        prefix = "" if tuple(where[-2:]) == OLLAMA_LIBRARY and len(where) == 2 else (
            where[-1] + "/" if where[0] == OLLAMA_LIBRARY[0] else "/".join(where) + "/")
        name = f"{prefix}{model}:{tag}"
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            layers = manifest.get("layers") or []
            digest = next(layer["digest"] for layer in layers
                          if layer.get("mediaType") == OLLAMA_MODEL_MEDIA)
        except OSError as exc:
            yield Problem(name, path, "ollama", f"cannot read the manifest ({exc.strerror})")
            continue
        except (ValueError, AttributeError, TypeError, KeyError):
            yield Problem(name, path, "ollama", "the manifest is not an Ollama manifest")
            continue
        except StopIteration:
            yield Problem(name, path, "ollama", "the manifest has no model layer (an adapter "
                          "or projector only)")
            continue
        blob = root / "blobs" / str(digest).replace(":", "-")
        if not blob.is_file():
            yield Problem(name, path, "ollama", f"its model blob {blob.name} is missing from "
                          f"{root / 'blobs'}")
            continue
        yield Candidate(name, blob, "ollama")


def _huggingface(root: Path) -> Iterator[Found]:
    try:
        repos = sorted(p for p in root.iterdir() if p.name.startswith("models--"))
    except OSError as exc:
        yield Problem(root.name, root, "huggingface", f"cannot read the folder ({exc.strerror})")
        return
    for repo in repos:
        repo_name = "/".join(repo.name.split("--")[1:])
        snapshots = repo / "snapshots"
        try:
            main = (repo / "refs" / "main").read_text().strip()
        except OSError:
            main = ""
        # The revision `main` points at when there is one, else every snapshot (newest first).
        revisions = [snapshots / main] if main and (snapshots / main).is_dir() else sorted(
            (p for p in snapshots.glob("*") if p.is_dir()),
            key=lambda p: p.stat().st_mtime, reverse=True)
        seen: set[str] = set()
        for revision in revisions:
            for found in _grouped(revision, "huggingface", _named(repo_name)):
                key = str(found.path.name)
                if key not in seen:
                    seen.add(key)
                    yield found


def _named(name: str) -> Callable[[Path], str]:
    return lambda _relative: name


def _grouped(root: Path, source: str, group_of: Callable[[Path], str]) -> Iterator[Found]:
    """Every .gguf below `root`, named by its group (`group_of(relative path)`); a group of
    several files names each `group/stem`."""
    groups: dict[str, list[Path]] = {}
    for path, problem in _walk(root, source, lambda p: p.name.lower().endswith(".gguf")):
        if problem is not None:
            yield problem
            continue
        groups.setdefault(group_of(path.relative_to(root)), []).append(path)
    for group, paths in groups.items():
        for path in sorted(paths):
            name = group if len(paths) == 1 or group == path.stem else f"{group}/{path.stem}"
            yield Candidate(name, path, source)


def _walk(root: Path, source: str, wanted: Callable[[Path], bool]
          ) -> Iterator[tuple[Path, Problem | None]]:
    """Files below `root` (symlinks followed, each real folder once), or problems."""
    if not root.is_dir():
        return
    visited: set[tuple[int, int]] = set()
    problems: list[Problem] = []

    def refuse(exc: OSError) -> None:
        where = Path(exc.filename or root)
        problems.append(Problem(where.name, where, source,
                                f"cannot read the folder ({exc.strerror or exc})"))

    for folder, dirs, files in os.walk(root, onerror=refuse, followlinks=True):
        here = Path(folder)
        try:
            st = here.stat()
        except OSError:
            dirs[:] = []
            continue
        depth = len(here.relative_to(root).parts)
        if (st.st_dev, st.st_ino) in visited or depth > MAX_DEPTH:
            dirs[:] = []  # a symlink loop, or a folder seen by another way: once is enough
            continue
        visited.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in sorted(files):
            path = here / name
            if wanted(path):
                if not path.exists():  # a dangling symlink (the hub's blob was deleted)
                    yield path, Problem(path.stem, path, source, "a broken link: the file it "
                                        "points at is gone")
                    continue
                yield path, None
        while problems:
            yield root, problems.pop()
    while problems:
        yield root, problems.pop()
