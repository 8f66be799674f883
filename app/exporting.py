"""covey's export formats: JSON (which `covey import` reads back), Markdown (to read) and
OpenAI fine-tuning JSONL (rated answers, to teach a model)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict

from sync.conversation import Conversation, Message
from sync.ids import now_iso

FORMAT = "covey-export"
VERSION = 1


def to_json(conversations: list[Conversation]) -> str:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": now_iso(),
        "conversations": [asdict(c) for c in conversations],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


def to_markdown(conversations: list[Conversation]) -> str:
    """Each conversation's shown branch in full, then every other branch from where it forks."""
    parts: list[str] = []
    for conv in conversations:
        parts.append(f"# {conv.title}\n\n_conversation {conv.id} · started {conv.created_at}_\n")
        if conv.system_prompt:
            parts.append(f"> **System:** {conv.system_prompt}\n")
        linear = all(m.parent_id is None for m in conv.messages)
        main = conv.messages if linear else conv.thread()
        parts.extend(_said(m) for m in main)
        if linear:
            continue
        on_main = {m.id for m in main}
        parents = {m.parent_id for m in conv.messages}
        others = [m for m in conv.messages if m.id not in parents and m.id not in on_main]
        for n, leaf in enumerate(others, 2):
            path = conv.thread(leaf.id)
            fork = next(i for i, m in enumerate(path) if m.id not in on_main)
            where = f" — after “{_snippet(path[fork - 1].text)}”" if fork else " — from the start"
            parts.append(f"## Branch {n} of {len(others) + 1}{where}\n")
            parts.extend(_said(m) for m in path[fork:])
    return "\n".join(parts)


def _said(m: Message) -> str:
    who = "You" if m.role == "user" else "Assistant" if m.role == "assistant" else "System"
    origin = f" _({m.model})_" if m.role == "assistant" and m.model else ""
    status = f" _[{m.status}]_" if m.status != "done" else ""
    rated = f" _[rated {m.rating}{': ' + m.rating_note if m.rating_note else ''}]_" if m.rating else ""
    return f"**{who}**{origin}{status}{rated}:\n\n{m.text}\n"


def _snippet(text: str, width: int = 50) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1].rstrip() + "…"


def to_finetune(conversations: Iterable[Conversation], rating: str = "up") -> Iterator[str]:
    """OpenAI chat fine-tuning JSONL: a line per answer rated `rating` ("up", "down", "any"),
    holding the branch that led to it. Only the rated answer is trained on (`weight` 1); the
    earlier answers of the branch are context (`weight` 0) unless they were rated up too."""
    for conv in conversations:
        linear = all(m.parent_id is None for m in conv.messages)
        for index, answer in enumerate(conv.messages):
            if answer.role != "assistant" or not answer.rating or not answer.text.strip():
                continue
            if rating != "any" and answer.rating != rating:
                continue
            branch = conv.messages[:index + 1] if linear else conv.thread(answer.id)
            lines: list[dict[str, object]] = []
            if conv.system_prompt:
                lines.append({"role": "system", "content": conv.system_prompt})
            for m in branch:
                if not m.text.strip():
                    continue
                line: dict[str, object] = {"role": m.role, "content": m.text}
                if m.role == "assistant":
                    line["weight"] = 1 if m.id == answer.id or m.rating == "up" else 0
                lines.append(line)
            yield json.dumps({"messages": lines}, ensure_ascii=False) + "\n"
