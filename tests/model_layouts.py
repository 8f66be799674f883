"""Folders laid out as other programs lay out the models they download, in a temporary HOME,
each holding a link to (or a copy of) the bundled GGUF — and broken ones beside them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from models.registry import bundled_model_path

OLLAMA_MANIFEST_MEDIA = "application/vnd.docker.distribution.manifest.v2+json"


def ollama(home: Path, model: str = "llama3.2", tag: str = "3b", namespace: str = "library",
           blob: Path | None = None) -> Path:
    """~/.ollama/models: a manifest naming the model's blob (a hard link to `blob`)."""
    root = home / ".ollama" / "models"
    source = blob or bundled_model_path()
    digest = _digest_of(source)
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    target = blobs / f"sha256-{digest}"
    if not target.exists():
        _link_or_copy(source, target)
    manifest = root / "manifests" / "registry.ollama.ai" / namespace / model / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({
        "schemaVersion": 2, "mediaType": OLLAMA_MANIFEST_MEDIA,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + "0" * 64, "size": 485},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
             "size": source.stat().st_size},
            {"mediaType": "application/vnd.ollama.image.template",
             "digest": "sha256:" + "1" * 64, "size": 1429},
        ]}))
    return manifest


def ollama_missing_blob(home: Path) -> Path:
    manifest = ollama(home, "ghost", "latest")
    data = json.loads(manifest.read_text())
    data["layers"][0]["digest"] = "sha256:" + "f" * 64
    manifest.write_text(json.dumps(data))
    return manifest


def ollama_corrupt_manifest(home: Path) -> Path:
    manifest = home / ".ollama/models/manifests/registry.ollama.ai/library/broken/latest"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("{ this is not json")
    return manifest


def lmstudio(home: Path, publisher: str = "lmstudio-community",
             repo: str = "SmolLM2-135M-Instruct-GGUF") -> Path:
    folder = home / ".lmstudio" / "models" / publisher / repo
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "SmolLM2-135M-Instruct-Q4_1.gguf"
    _link_or_copy(bundled_model_path(), target)
    return target


def huggingface(home: Path, org: str = "bartowski",
                repo: str = "SmolLM2-135M-Instruct-GGUF") -> Path:
    """The hub cache: the file in blobs/, a snapshot's symlink pointing at it, refs/main."""
    root = home / ".cache" / "huggingface" / "hub" / f"models--{org}--{repo}"
    source = bundled_model_path()
    digest = _digest_of(source)
    blob = root / "blobs" / digest
    blob.parent.mkdir(parents=True, exist_ok=True)
    if not blob.exists():
        _link_or_copy(source, blob)
    revision = "a" * 40
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    link = snapshot / "SmolLM2-135M-Instruct-Q4_1.gguf"
    if not link.is_symlink():
        link.symlink_to(os.path.relpath(blob, snapshot))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    return link


def gpt4all(home: Path) -> Path:
    folder = home / ".local" / "share" / "nomic.ai" / "GPT4All"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "smollm2-135m-instruct.Q4_1.gguf"
    _link_or_copy(bundled_model_path(), target)
    return target


def broken_files(folder: Path) -> dict[str, Path]:
    """A folder (for `model_dirs`) of files that look like models and cannot chat."""
    import gguf

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    truncated = folder / "truncated.gguf"
    with bundled_model_path().open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(40 * 2**20))  # the header whole, the weights cut short
    out["truncated"] = truncated
    garbage = folder / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + os.urandom(4096))
    out["corrupt"] = garbage
    not_gguf = folder / "notes.gguf"
    not_gguf.write_text("just some text with the wrong name")
    out["not_gguf"] = not_gguf
    for name, arch, extra in (("embedder", "bert", {}), ("mmproj", "clip", {}),
                              ("split-00002-of-00002", "llama", {"split.no": 1,
                                                                 "split.count": 2})):
        path = folder / f"{name}.gguf"
        writer = gguf.GGUFWriter(str(path), arch)
        writer.add_name(name)
        for key, value in extra.items():
            writer.add_uint16(key, value)
        writer.add_tensor("weight", np.ones((4, 4), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        out[name] = path
    loop = folder / "loop"
    loop.mkdir(exist_ok=True)
    if not (loop / "again").exists():
        (loop / "again").symlink_to("..")  # a symlink loop: the scan must end
    dangling = folder / "gone.gguf"
    if not dangling.is_symlink():
        dangling.symlink_to(folder / "deleted-long-ago.gguf")
    out["dangling"] = dangling
    return out


def _digest_of(path: Path) -> str:
    # (the real digest: Ollama and the hub name blobs by it)
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system: a copy, as a download would be
        shutil.copyfile(source, target)
