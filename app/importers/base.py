"""What every importer shares: the tally it keeps, stable ids, times, and turning a tree of
nodes (ChatGPT's `mapping`, Open WebUI's `history`, llm's hash-linked messages) into covey's
ordered list of messages with parent links.

Ids are derived from the source's own ids, so importing the same export again, or on another
device of the household, names every conversation and message the same way: nothing is added
twice, and two devices that import apart converge to one copy.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sync.conversation import Conversation, Message


@dataclass
class Tally:
    """What an import read, added and left out (the summary printed at the end)."""

    conversations: int = 0  # read from the source
    messages: int = 0
    branches: int = 0  # alternatives: edited prompts and regenerated answers
    new_conversations: int = 0
    new_messages: int = 0
    updated: int = 0  # conversations already here whose ratings changed, or that were deleted
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> how many

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    def count(self, messages: list[Message]) -> None:
        """One conversation read, with these messages."""
        self.conversations += 1
        self.messages += len(messages)
        self.branches += count_branches(messages)


class Source(Protocol):
    """One file (or folder) being imported."""

    label: str  # "ChatGPT export", shown in the progress line and the summary

    def conversations(self, tally: Tally) -> Iterator[Conversation]:
        """Each conversation, whole, as soon as it is read; what is left out goes to `tally`."""
        ...

    def progress(self) -> float:
        """How far through the source reading is, 0.0 to 1.0."""
        ...


def stable_id(*parts: str) -> str:
    """32 hex digits (a covey document id) named by the source's own ids."""
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def iso_from_epoch(seconds: object, fallback: str) -> str:
    """An ISO time (UTC, milliseconds, like covey's own) from Unix seconds; `fallback` if the
    value is missing or absurd."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return fallback
    if seconds > 1e11:  # milliseconds (some exports), not seconds
        seconds = seconds / 1000
    try:
        return datetime.fromtimestamp(float(seconds), UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return fallback


EPOCH = "1970-01-01T00:00:00.000+00:00"


@dataclass
class Node:
    """One node of a source's tree. `message` None: a node that holds nothing to keep (a root
    placeholder, a hidden system message, tool output); its children are moved up to the
    nearest kept ancestor."""

    id: str
    parent: str | None
    children: list[str]
    message: Message | None


def flatten(nodes: dict[str, Node], current: str | None) -> list[Message]:
    """The kept messages of a tree, parents before children, with parent links.

    The branch through `current` (the one the source showed) is visited last at every fork, so
    it ends the list: covey shows the branch of the last message.
    """
    on_path: set[str] = set()
    walk = current
    while walk is not None and walk in nodes and walk not in on_path:
        on_path.add(walk)
        walk = nodes[walk].parent
    # Roots: nodes whose parent is absent (or points outside the tree).
    roots = [n.id for n in nodes.values() if n.parent is None or n.parent not in nodes]
    out: list[Message] = []
    seen: set[str] = set()

    def ordered(ids: list[str]) -> list[str]:
        kids = [i for i in ids if i in nodes and i not in seen]
        return [i for i in kids if i not in on_path] + [i for i in kids if i in on_path]

    # An explicit stack, not recursion: a ChatGPT conversation can be thousands of nodes deep.
    stack: list[tuple[str, str | None]] = [(r, None) for r in reversed(ordered(roots))]
    while stack:
        node_id, kept_parent = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        node = nodes[node_id]
        parent_here = kept_parent
        if node.message is not None:
            out.append(_with_parent(node.message, kept_parent))
            parent_here = node.message.id
        for child in reversed(ordered(node.children)):
            stack.append((child, parent_here))
    return out


def _with_parent(m: Message, parent: str | None) -> Message:
    return Message(id=m.id, role=m.role, text=m.text, created_at=m.created_at, device=m.device,
                   model=m.model, status=m.status, parent_id=parent, rating=m.rating,
                   rating_note=m.rating_note)


def count_branches(messages: list[Message]) -> int:
    """How many alternatives the tree holds: every leaf beyond the first."""
    if all(m.parent_id is None for m in messages):
        return 0  # a list without links (older covey conversations): one line, no branches
    parents = {m.parent_id for m in messages}
    leaves = sum(1 for m in messages if m.id not in parents)
    return max(0, leaves - 1)


def text_of(value: object) -> str:
    return value if isinstance(value, str) else ""


def as_dict(value: object) -> dict[str, Any]:
    """`value` if it is an object, else an empty one (a source's fields may hold anything)."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


Reporter = Callable[[Tally, float], None]
