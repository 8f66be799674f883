"""Undoing one device's changes from the CRDT's own history.

Each change a writer (a Loro peer) made is reverted by applying the inverse of just that change
(the diff from the version right after it back to the version right before it) to the current
state, newest first. Changes by others that came later are kept — a message written after a
hostile device's edit stays — unlike checking out an old version, which would drop them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from loro import ID, Frontiers, LoroDoc


@dataclass(frozen=True)
class Span:
    peer: int
    start: int  # first counter to undo (changes wholly before it are kept)


def changes_of(doc: LoroDoc, spans: list[Span]) -> list[tuple[int, int, int, Frontiers]]:
    """(lamport, peer, last counter, version before) of every change from `spans`; a change
    that began before a span's start is undone from the start on (Loro merges a writer's
    quick successive commits into one change)."""
    found = []
    have = doc.oplog_vv.to_spans().inner()
    for span in spans:
        if span.peer not in have:
            continue
        end = have[span.peer][1]
        counter = span.start
        while counter < end:
            change = doc.get_change(ID(span.peer, counter))
            if change is None:  # (the version said it was there: a gap ends this span)
                break
            first = change.id.counter
            lo = max(first, span.start)
            before = change.deps if lo == first else Frontiers.from_id(ID(span.peer, lo - 1))
            found.append((change.lamport + lo - first, span.peer, first + change.len - 1, before))
            counter = first + change.len
    return found


def revert(doc: LoroDoc, spans: list[Span]) -> int:
    """Apply the inverse of each change in `spans` to `doc` (uncommitted); how many."""
    changes = sorted(changes_of(doc, spans), key=lambda c: (c[0], c[1]), reverse=True)
    for _, peer, last, before in changes:
        doc.apply_diff(doc.diff(Frontiers.from_id(ID(peer, last)), before))
    return len(changes)


def peers_in(doc: LoroDoc) -> set[int]:
    return set(doc.oplog_vv.to_spans().inner())
