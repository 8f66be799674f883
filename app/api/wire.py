"""OpenAI's chat-completions wire format: requests read and checked, responses and chunks shaped.

Only the shape lives here (no HTTP, no store): a request body becomes a `ChatRequest` or an
`ApiError` with the status and the `{"error": {...}}` body OpenAI's clients expect.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

#: Roles a client may send; "developer" is OpenAI's newer name for a system message.
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOPS = 4


class ApiError(Exception):
    """A request that cannot be served: its HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


def bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", "invalid_request", param)


@dataclass(frozen=True)
class Turn:
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[Turn, ...]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def system(self) -> str | None:
        parts = [t.content for t in self.messages if t.role == "system"]
        return "\n\n".join(parts) if parts else None

    @property
    def dialogue(self) -> list[Turn]:
        """The user and assistant turns, oldest first (the last is the prompt)."""
        return [t for t in self.messages if t.role != "system"]


def parse_chat(raw: bytes) -> ChatRequest:
    """A chat-completions request body, checked the way OpenAI checks it (400 otherwise)."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"the request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad("'model' is required: a model id from GET /v1/models", "model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise bad("'messages' must be a non-empty list of {role, content}", "messages")
    turns = tuple(_turn(m, n) for n, m in enumerate(raw_messages))
    dialogue = [t for t in turns if t.role != "system"]
    if not dialogue or dialogue[-1].role != "user":
        raise bad("the last message must be the user's: covey answers a prompt", "messages")
    if not dialogue[-1].content.strip():
        raise bad("the last user message is empty", "messages")
    n = body.get("n", 1)
    if n not in (1, None):
        raise bad("covey makes one choice per request: 'n' must be 1", "n")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad("'stream_options' must be an object", "stream_options")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return ChatRequest(
        model=model.strip(), messages=turns, stream=_bool(body, "stream"),
        include_usage=bool(options.get("include_usage", False)),
        max_tokens=_number(max_tokens, "max_tokens", int, 1, 1_000_000),
        temperature=_number(body.get("temperature"), "temperature", float, 0.0, 2.0),
        top_p=_number(body.get("top_p"), "top_p", float, 0.0, 1.0),
        seed=_number(body.get("seed"), "seed", int, -(2**63), 2**63 - 1),
        stop=_stops(body.get("stop")),
        user=body.get("user") if isinstance(body.get("user"), str) else None,
    )


def _turn(raw: object, n: int) -> Turn:
    where = f"messages[{n}]"
    if not isinstance(raw, dict):
        raise bad(f"{where} must be an object with 'role' and 'content'", where)
    role = raw.get("role")
    if role not in ROLES:
        raise bad(f"{where}.role {role!r} is not one of system, developer, user, assistant "
                  "(covey runs no tools)", f"{where}.role")
    content = raw.get("content")
    if content is None and role == "assistant":
        content = ""
    if isinstance(content, list):
        texts = []
        for k, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or \
                    not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad(f"{where}.content[{k}] is {kind!r}: covey's models read text parts "
                          "only", f"{where}.content")
            texts.append(part["text"])
        content = "\n".join(texts)
    if not isinstance(content, str):
        raise bad(f"{where}.content must be a string or a list of text parts",
                  f"{where}.content")
    return Turn(ROLES[role], content)


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad(f"'{key}' must be true or false", key)
    return value


def _number(value: object, key: str, kind: type, low: float, high: float) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (kind is int and not float(value).is_integer()):
        raise bad(f"'{key}' must be {'an integer' if kind is int else 'a number'}", key)
    if not low <= value <= high:
        raise bad(f"'{key}' must be between {low:g} and {high:g}", key)
    return kind(value)


def _stops(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise bad("'stop' must be a string or a list of non-empty strings", "stop")
    if len(stops) > MAX_STOPS:
        raise bad(f"'stop' takes at most {MAX_STOPS} sequences", "stop")
    return tuple(stops)


# -- responses ------------------------------------------------------------------------------


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def body(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def completion(cid: str, model: str, text: str, finish: str, usage: Usage,
               created: int | None = None) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion", "created": created or int(time.time()),
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": finish}],
            "usage": usage.body()}


def chunk(cid: str, model: str, created: int, delta: dict[str, Any],
          finish: str | None = None, usage: Usage | None = None,
          with_usage_field: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if with_usage_field:  # (asked for: every chunk carries `usage`, null until the last)
        body["usage"] = None
    return body


def usage_chunk(cid: str, model: str, created: int, usage: Usage) -> dict[str, Any]:
    """The extra last chunk `stream_options.include_usage` asks for: no choices, the usage."""
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None, "choices": [], "usage": usage.body()}


def sse(body: dict[str, Any] | str) -> bytes:
    data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def model_list(models: list[tuple[str, str, int]]) -> dict[str, Any]:
    """`GET /v1/models`: (id, owner, created) each."""
    return {"object": "list", "data": [{"id": mid, "object": "model", "created": created,
                                        "owned_by": owner} for mid, owner, created in models]}
