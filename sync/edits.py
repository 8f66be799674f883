"""What the document store's writers hand it and what its listeners hear (kept apart from
docstore.py so that room stays small)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from loro import LoroDoc

T = TypeVar("T")
Origin = Literal["local", "process", "remote"]


@dataclass(frozen=True)
class StoreEvent:
    """A document changed: here ("local"), in another process ("process"), or by sync."""

    doc_id: str
    origin: Origin
    message_ids: frozenset[str] | None = None  # None: anything may have changed
    source: str | None = None  # the peer device an imported change came from


@dataclass(frozen=True)
class Edit(Generic[T]):
    """One document's change for `write_many` (see `write` for the fields)."""

    doc_id: str
    mutate: Callable[[LoroDoc], T]
    touched: set[str] | None
    create: bool = False
