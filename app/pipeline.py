"""The assistant pipeline, as small stages that know nothing of storage or terminals.

  parse_input   a line of input → a slash command or a prompt
  build_prompt  a conversation thread → the chat messages for the model, trimmed to fit
  generate      messages → a stream of text pieces (a later issue may run it on another device)
  make_title    the first exchange → a short, clean title
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from app.errors import ContextOverflowError
from models.base import ChatMessage, ChatModel, GenerationParams
from sync.conversation import Message

log = logging.getLogger(__name__)

#: Fewest tokens worth keeping of an over-long prompt.
MIN_PROMPT_TOKENS = 32
TRIM_MARKER = "\n[… trimmed to fit the model's context …]\n"
TITLE_MAX_CHARS = 60
TITLE_MAX_WORDS = 8


@dataclass(frozen=True)
class SlashCommand:
    name: str
    argument: str


def parse_input(line: str) -> SlashCommand | str:
    """`/name argument` is a command (`//text` escapes a prompt starting with a slash)."""
    stripped = line.strip()
    if stripped.startswith("//"):
        return stripped[1:]
    if stripped.startswith("/") and len(stripped) > 1:
        name, _, argument = stripped[1:].partition(" ")
        return SlashCommand(name.lower(), argument.strip())
    return stripped


def build_prompt(
    thread: Sequence[Message],
    system_prompt: str | None,
    model: ChatModel,
    params: GenerationParams,
    notice: Callable[[str], None] | None = None,
) -> list[ChatMessage]:
    """Chat messages for `thread` (ending with the user's prompt) that fit the context window.

    Oldest turns go first; the system prompt and the newest prompt stay; a newest prompt that
    alone is too long keeps its beginning and end. `notice` is told what was left out, and why.
    """
    tell = notice or log.info
    messages: list[ChatMessage] = []
    for m in thread:
        if m.role in ("user", "assistant") and m.text.strip():
            messages.append({"role": "user" if m.role == "user" else "assistant",
                             "content": m.text})
    system: list[ChatMessage] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    check_room(model, params)
    budget = model.info.context_length - params.max_tokens
    size = model.count_tokens(system + messages)  # tokenizing is not free: count sparingly
    before = len(messages)
    while len(messages) > 1 and size > budget:
        messages.pop(0)
        while len(messages) > 1 and messages[0]["role"] == "assistant":
            messages.pop(0)  # a history should not start with an answer to a dropped question
        size = model.count_tokens(system + messages)
    why = (f"the model's context holds {model.info.context_length:,} tokens, "
           f"{params.max_tokens:,} of them kept for the answer")
    if len(messages) < before:
        tell(f"left out the {before - len(messages)} oldest message(s) of this conversation: {why}")
    if size > budget and messages:
        whole = len(messages[-1]["content"])
        messages[-1] = _shorten(messages[-1], system + messages[:-1], model, budget)
        kept = len(messages[-1]["content"]) - len(TRIM_MARKER)
        tell(f"the prompt is too long: kept {kept:,} of its {whole:,} characters, the beginning "
             f"and the end ({(whole - kept) / whole:.0%} cut from the middle); {why}")
        size = model.count_tokens(system + messages)
    if size > budget:
        raise ContextOverflowError(
            "the system prompt alone does not fit the model's context; shorten it"
        )
    return system + messages


def check_room(model: ChatModel, params: GenerationParams) -> None:
    """Refuse an answer length that leaves no room for a prompt in the model's context."""
    if model.info.context_length - params.max_tokens < MIN_PROMPT_TOKENS:
        raise ContextOverflowError(
            f"--max-tokens {params.max_tokens} leaves no room for a prompt in this model's "
            f"context of {model.info.context_length} tokens; ask for fewer tokens"
        )


def _shorten(
    message: ChatMessage, before: list[ChatMessage], model: ChatModel, budget: int
) -> ChatMessage:
    """Cut the middle out of `message` until the prompt fits (binary search on characters)."""
    text = message["content"]
    log.info("prompt of %d characters is too long for the context; trimming its middle", len(text))

    def fits(keep: int) -> bool:
        head, tail = text[: keep // 2], text[len(text) - (keep - keep // 2):]
        trial: ChatMessage = {"role": message["role"], "content": head + TRIM_MARKER + tail}
        return model.count_tokens(before + [trial]) <= budget

    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    keep = low
    content = text[: keep // 2] + TRIM_MARKER + text[len(text) - (keep - keep // 2):]
    return {"role": message["role"], "content": content}


def generate(
    model: ChatModel,
    messages: Sequence[ChatMessage],
    params: GenerationParams,
    cancel: threading.Event | None = None,
) -> Iterator[str]:
    """The generation stage: text pieces of the answer to `messages`."""
    log.debug("prompt to %s: %r", model.info.name, list(messages))
    return model.stream(messages, params, cancel)


def make_title(model: ChatModel, prompt: str, answer: str) -> str:
    """A short title for a conversation that began with `prompt` → `answer`."""
    request: list[ChatMessage] = [
        {"role": "system", "content": "You write short titles for conversations."},
        {
            "role": "user",
            "content": "Write a title of at most six words for a conversation that starts with "
            f"this question:\n\n{prompt[:400]}\n\nReply with the title only.",
        },
    ]
    params = GenerationParams(max_tokens=16, temperature=0.0, seed=0)
    try:
        raw = "".join(model.stream(request, params))
    except Exception as exc:  # a title is a nicety: never fail the answer over it
        log.warning("could not make a title: %s", exc)
        raw = ""
    return sanitize_title(raw, fallback=prompt or answer)


def sanitize_title(raw: str, fallback: str) -> str:
    """One clean line: no quotes, markup or 'Title:', first clause only, at most 8 words."""
    line = next((ln for ln in raw.splitlines() if ln.strip()), "")
    line = re.sub(r"[*_`#\"“”]+", " ", line)
    line = re.sub(r"^\s*(title\s*:\s*)", "", line, flags=re.IGNORECASE)
    clause = re.split(r"[.:!?;](?:\s|$)", line, maxsplit=1)[0]
    if len(clause.split()) >= 2:
        line = clause
    words = line.strip(" '.:;,-").split()
    if len(" ".join(words)) < 3:
        words = " ".join(fallback.split()).split(" ")
    line = " ".join(words[:TITLE_MAX_WORDS]).strip(" '.:;,-") or "Untitled"
    if len(line) > TITLE_MAX_CHARS:
        line = line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"
    return line
