"""`covey trash`, `covey restore`: nothing deleted is lost, and a device's changes can be undone.

A deleted conversation is a tombstone in its document (the deletion syncs), so it can be
listed and brought back on every device. `restore --undo-device D` reverts what device D
changed — every change, or those that reached this device since a time — from the CRDT's
own history, as new changes that sync like any edit. D's changes are found by the writers it
published in the household document and by what this device received first-hand from it
(sync/arrivals.py); dates are this device's arrival times, never D's clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from app.context import Context
from app.errors import UsageError
from sync import arrivals, household, undo, versions
from sync.conversation import Conversation
from sync.store import HOUSEHOLD_DOC, Store


def deleted_conversations(store: Store) -> list[Conversation]:
    """Every conversation with a tombstone, newest first."""
    shown = {row.id for row in store.list_conversations(include_archived=True)}
    found = []
    for doc_id in store.doc_ids():
        if doc_id == HOUSEHOLD_DOC or doc_id in shown:
            continue
        conv = store.conversation_document(doc_id)
        if conv is not None and conv.deleted:
            found.append(conv)
    return sorted(found, key=lambda c: c.updated_at, reverse=True)


def trash(ctx: Context, args: argparse.Namespace) -> int:
    gone = deleted_conversations(ctx.store)
    if not gone:
        print("nothing is deleted")
        return 0
    for conv in gone[: args.limit]:
        first = next((" ".join(m.text.split()) for m in conv.messages if m.role == "user"), "")
        label = conv.title + (f" — {first[:50]}" if first and first not in conv.title else "")
        print(f"{conv.id[:12]}  {conv.updated_at[:16].replace('T', ' ')}  "
              f"{len(conv.messages):>4} msgs  {label}")
    if len(gone) > args.limit:
        print(f"… and {len(gone) - args.limit} more (--limit N)")
    print("bring one back with `covey restore ID` (or all: `covey restore --all`)")
    return 0


def restore(ctx: Context, args: argparse.Namespace) -> int:
    if args.undo_device:
        report = undo_device(ctx.store, args.undo_device, parse_since(args.since))
        print(report.describe())
        return 0
    if args.since:
        raise UsageError("--since goes with --undo-device DEVICE")
    gone = deleted_conversations(ctx.store)
    if args.all:
        chosen = gone
    elif args.ids:
        chosen = [_match(gone, wanted) for wanted in args.ids]
    else:
        raise UsageError("restore what? give conversation ids (see `covey trash`), --all, "
                         "or --undo-device DEVICE")
    for conv in chosen:
        ctx.store.undelete_conversation(conv.id)
        print(f"restored {conv.id[:12]} ({conv.title})")
    if not chosen:
        print("nothing is deleted")
    return 0


def _match(gone: list[Conversation], wanted: str) -> Conversation:
    prefix = wanted.strip().lower()
    matches = [c for c in gone if c.id.startswith(prefix)] if prefix else []
    if len(matches) != 1:
        raise UsageError(f"no single deleted conversation matches {wanted!r} (see `covey trash`)")
    return matches[0]


def parse_since(text: str | None) -> float | None:
    """'2026-12-02 10:30', an ISO time, or '90m' / '2h' / '3d' ago."""
    if not text:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return time.time() - int(text[:-1]) * units[text[-1]]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"--since {text!r}: give a time (2026-12-02 10:30) or an age "
                         "(90m, 2h, 3d)") from None


@dataclass
class UndoReport:
    name: str
    conversations: int = 0
    changes: int = 0
    deleted: int = 0  # conversations it created, tombstoned instead of emptied

    def describe(self) -> str:
        if not self.changes and not self.deleted:
            return f"nothing of {self.name}'s to undo here"
        text = (f"undid {self.changes:,} change(s) by {self.name} in {self.conversations:,} "
                "conversation(s)")
        if self.deleted:
            text += (f"; {self.deleted:,} conversation(s) it created are deleted (see `covey "
                     "trash`)")
        return text + "; every device gets this with the next sync"


def device_peers(store: Store, device_id: str) -> set[int]:
    """The Loro peers that write for `device_id`: those it published, and those whose changes
    came to us first-hand from it, unless another member published them or they are ours."""
    value = household.snapshot(store)
    published: dict[str, set[int]] = {}
    for member, entry in (value.get("devices") or {}).items():
        raw = entry.get("peers") if isinstance(entry, dict) else None
        published[member] = {int(p) for p in raw if isinstance(p, int)} if isinstance(raw, list) else set()
    others = set().union(*(p for m, p in published.items() if m != device_id))
    ours = household.writer_peers(store)
    first_hand = arrivals.peers_from(store, device_id)
    return (published.get(device_id, set()) | first_hand) - others - ours


def undo_device(store: Store, device: str, since: float | None) -> UndoReport:
    members = [d for d in household.devices(store)
               if d.device_id.replace("-", "").startswith(device.upper().replace("-", ""))]
    if not device or len(members) != 1:
        raise UsageError(f"no single device matches {device!r}; see `covey devices`")
    target = members[0]
    if target.device_id == store.device_id:
        raise UsageError("undo another device's changes (this one's are yours to edit)")
    peers = device_peers(store, target.device_id)
    report = UndoReport(target.name)
    index = store.sync_index()  # every document's version, without loading one
    ids = [doc_id for doc_id, vv in index if doc_id != HOUSEHOLD_DOC and
           peers & set(versions.decode_vv(vv).to_spans().inner())]
    shown = time.monotonic()
    for n, doc_id in enumerate(ids, 1):
        if sys.stderr.isatty() and time.monotonic() - shown > 0.5:
            shown = time.monotonic()
            print(f"\rlooking through {n:,} / {len(ids):,} conversations", end="",
                  file=sys.stderr, flush=True)
        spans = _spans(store, doc_id, peers, since)
        if not spans:
            continue
        conv = store.conversation_document(doc_id)
        if conv is not None and conv.created_by == target.device_id and \
                any(s.start == 0 for s in spans):
            if not conv.deleted:  # it created this one in the window: undoing would empty it
                store.delete_conversation(doc_id)
                report.deleted += 1
            continue
        count = store.write(doc_id, partial(undo.revert, spans=spans), touched=None)
        report.conversations += 1 if count else 0
        report.changes += count
    if sys.stderr.isatty():
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
    return report


def _spans(store: Store, doc_id: str, peers: set[int], since: float | None) -> list[undo.Span]:
    have = store.read(doc_id, undo.peers_in) or set()
    spans = []
    for peer in sorted(have & peers):
        start = 0 if since is None else arrivals.first_counter_since(
            store, doc_id, peer, since)
        if start is not None:
            spans.append(undo.Span(peer, start))
    return spans
