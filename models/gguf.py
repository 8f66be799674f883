"""Cheap checks on a model file before llama.cpp sees it (its own errors are cryptic)."""

from __future__ import annotations

from pathlib import Path

from app.errors import ModelError

GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Raise ModelError unless `path` is a readable file that starts like a GGUF file."""
    if not path.exists():
        raise ModelError(f"model file not found: {path} (set --model or `model` in the config)")
    if path.is_dir():
        raise ModelError(f"model path is a directory, not a GGUF file: {path}")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"not a GGUF model file: {path} (covey runs llama.cpp GGUF models)")
