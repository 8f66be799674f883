"""A model file before llama.cpp sees it: cheap checks (llama.cpp's own errors are cryptic) and
its metadata, read without loading it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models.errors import ModelError

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


# -- metadata, read without loading the model ------------------------------------------------

#: Architectures that embed text and cannot chat.
EMBEDDING_ARCHS = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2",
                             "t5encoder", "modern-bert", "neo-bert"})


@dataclass(frozen=True)
class ModelMeta:
    """What a GGUF file says of itself; `unusable` says why covey cannot chat with it."""

    name: str  # general.name, or "" when it has none
    arch: str
    params: int  # weights, counted from its tensors
    size_label: str  # general.size_label ("135M"), or made from params
    quant: str  # "Q4_K_M", from general.file_type
    context_length: int
    chat_template: bool
    unusable: str = ""


def read_metadata(path: Path) -> ModelMeta:
    """The metadata of the GGUF file at `path` (the `gguf` package's reader: it maps the file
    and reads every key, seconds for a large vocabulary — callers cache it). Raises
    ModelError for what is not a readable, complete GGUF file."""
    check_gguf(path)
    import gguf  # (numpy and friends: imported when a scan needs them)

    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as exc:  # any parse failure means the same to a user
        raise ModelError(f"a truncated or corrupt GGUF file ({type(exc).__name__}: "
                         f"{str(exc)[:120]})") from None

    def field(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None:
            return None
        try:
            return f.contents()
        except Exception:  # an odd value is as good as none
            return None

    end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    size = path.stat().st_size
    if end > size:
        raise ModelError(f"a truncated GGUF file: its weights need {end:,} bytes, the file "
                         f"has {size:,}")
    arch = str(field("general.architecture") or "")
    params = int(sum(int(t.n_elements) for t in reader.tensors))
    file_type = field("general.file_type")
    try:
        quant = gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_") \
            if file_type is not None else ""
    except ValueError:
        quant = f"type {file_type}"
    context = field(f"{arch}.context_length")
    meta = ModelMeta(
        name=str(field("general.name") or ""), arch=arch, params=params,
        size_label=str(field("general.size_label") or "") or human_params(params),
        quant=quant, context_length=int(context) if isinstance(context, int) else 0,
        chat_template=bool(field("tokenizer.chat_template")))
    split_no, split_count = field("split.no"), field("split.count")
    kind = str(field("general.type") or "")
    unusable = ""
    if kind == "mmproj" or arch == "clip":
        unusable = "a vision projector: it goes with a model and cannot chat by itself"
    elif arch in EMBEDDING_ARCHS or kind == "embedding":
        unusable = "an embedding model: it turns text into vectors and cannot chat"
    elif isinstance(split_no, int) and split_no > 0:
        unusable = (f"shard {split_no + 1} of {split_count} of a split model (its first shard "
                    "is the model)")
    elif not arch:
        unusable = "it names no architecture (general.architecture)"
    return replace(meta, unusable=unusable)


def human_params(count: int) -> str:
    if count >= 1e9:
        return f"{count / 1e9:.1f}B"
    if count >= 1e6:
        return f"{count / 1e6:.0f}M"
    return f"{count / 1e3:.0f}K" if count else "?"
