"""llama-cpp-python behind covey's ChatModel interface.

The model loads lazily (commands that never generate never pay for it) and the GGUF's own chat
template formats prompts, through the same code path llama-cpp-python uses for
`create_chat_completion`, so token counts match what generation sees.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from models.base import ChatMessage, GenerationParams, ModelInfo
from models.errors import ContextOverflowError, ModelError
from models.gguf import check_gguf

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)
T = TypeVar("T")


class LlamaCppModel:
    """A GGUF model run in-process by llama.cpp, always on one thread of its own.

    llama.cpp parallelizes with OpenMP, whose thread team belongs to the calling thread and
    spins between tokens; calls from two Python threads meant two spinning teams fighting for
    the cores (measured: decoding halved). So every call runs on the model's own thread, and
    `stream` hands the pieces over through a queue.
    """

    def __init__(self, path: Path, context_length: int = 4096, threads: int | None = None,
                 name: str | None = None) -> None:
        check_gguf(path)
        self._path = path
        self._name = name or path.stem
        self._n_ctx = context_length
        # llama-cpp-python's default is half the cores; decoding a small model on 2 cores was
        # measured 40% faster with both (66 → 92 tok/s), so use them all unless told otherwise.
        self.threads = threads or os.cpu_count() or 1
        self._llm: Llama | None = None
        self._formatter: Any = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="covey-model")

    def on_model_thread(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the model's thread (and wait for it)."""
        return self._thread.submit(fn).result()

    @property
    def info(self) -> ModelInfo:
        ctx = self._llm.n_ctx() if self._llm is not None else self._n_ctx
        return ModelInfo(name=self._name, path=str(self._path), context_length=ctx)

    def close(self) -> None:
        """Free the model's memory (it was evicted to make room for another)."""
        def free() -> None:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

        self.on_model_thread(free)
        self._thread.shutdown(wait=False)

    @property
    def llama(self) -> Llama:
        """The underlying `llama_cpp.Llama`, loaded on first use (on the model thread)."""
        if self._llm is None:
            self._llm = self.on_model_thread(self._load)
        return self._llm

    def _load(self) -> Llama:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        log.debug("loading model %s (n_ctx=%d)", self._path, self._n_ctx)
        try:
            llm = Llama(
                model_path=str(self._path),
                n_ctx=self._n_ctx,
                n_threads=self.threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"cannot load model {self._path}: llama.cpp refused it ({exc}); "
                "is it a complete GGUF language model?"
            ) from None
        template = llm.metadata.get("tokenizer.chat_template")
        if template:
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llm, llm.token_eos()),
                bos_token=_token_text(llm, llm.token_bos()),
            )
        return llm

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        llm = self.llama

        def count() -> int:
            if self._formatter is not None:
                prompt = self._formatter(messages=list(messages)).prompt
            else:  # no template in the file: llama-cpp-python falls back to a generic format
                prompt = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
            return len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))

        return self.on_model_thread(count)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        llm = self.llama
        pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        stop = threading.Event()  # the consumer went away

        def produce() -> None:
            try:
                for piece in self._generate(llm, messages, params, cancel, stop):
                    pieces.put(piece)
                pieces.put(_END)
            except BaseException as exc:  # handed to the consumer, raised there
                pieces.put(_Failure(exc))

        done = self._thread.submit(produce)
        try:
            while True:
                item = pieces.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield cast(str, item)
        finally:
            stop.set()
            done.result()  # one generation at a time: wait until the model is free

    def _generate(self, llm: Llama, messages: Sequence[ChatMessage], params: GenerationParams,
                  cancel: threading.Event | None, stop: threading.Event) -> Iterator[str]:
        try:
            chunks = llm.create_chat_completion(
                messages=list(messages),  # type: ignore[arg-type]  # (llama-cpp's per-role TypedDicts)
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                seed=params.seed,
                stop=list(params.stop) or None,
                stream=True,
            )
        except ValueError as exc:
            raise ContextOverflowError(f"the prompt does not fit the model: {exc}") from None
        try:
            for chunk in chunks:
                if stop.is_set() or (cancel is not None and cancel.is_set()):
                    break
                piece = _delta_text(chunk)
                if piece:
                    yield piece
        except ValueError as exc:
            raise ModelError(f"generation failed: {exc}") from None
        finally:
            close = getattr(chunks, "close", None)  # (a stream: a generator, closed here)
            if close is not None:
                close()


_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _delta_text(chunk: Any) -> str | None:
    """The text of one streamed chat-completion chunk (None for role-only chunks)."""
    piece = chunk["choices"][0]["delta"].get("content")
    return piece if isinstance(piece, str) else None


def _token_text(llm: Llama, token: int) -> str:
    if token < 0:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="ignore")
