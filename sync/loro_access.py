"""Finding a message's map and text inside a conversation document, and plain values of
Loro's variants: what both the conversation schema and the jobs on it read with."""

from __future__ import annotations

from typing import Any

from loro import LoroDoc, LoroMap, LoroText, ValueOrContainer


def message_map(doc: LoroDoc, message_id: str) -> LoroMap | None:
    """The map of message `message_id`, scanning from the end (new messages are written to)."""
    messages = doc.get_list("messages")
    for index in range(len(messages) - 1, -1, -1):
        item = messages.get(index)
        if not isinstance(item, ValueOrContainer.Container):
            continue
        container = item.container
        if isinstance(container, LoroMap) and plain(container.get("id")) == message_id:
            return container
    return None


def message_text(entry: LoroMap) -> LoroText | None:
    item = entry.get("text")
    if isinstance(item, ValueOrContainer.Container) and isinstance(item.container, LoroText):
        return item.container
    return None


def plain(item: Any) -> Any:
    """The plain value of a `ValueOrContainer`, or None for a container."""
    # (`is_container` is a static method in loro-py: test the variant class instead.)
    return item.value if isinstance(item, ValueOrContainer.Value) else None
