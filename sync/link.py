"""One peer connection's logic above the session, still without networking.

A `Link` persists what the peer sends (then acknowledges it), and pushes what this device's
store gained since the connection began: it tails the store's update log (SQLite is the bus, so
this covers every local process and every other peer) and sends each new update to the peer,
except those that came from that peer. A slow peer is given at most `window` unacknowledged
bytes; the rest waits in the log, and when sending resumes consecutive updates of one document
go out together as one message (coalesced). The catch-up (documents the peer lacked when the
session began) is drained under the same window.

What arrives in one read is persisted in one transaction (a catch-up brings thousands of
documents: one commit each would be bound by the disk), then acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sync.docstore import DocumentStore
from sync.errors import StoreError
from sync.live import LivePiece
from sync.protocol import (
    Acknowledged,
    CatchUpPlanned,
    CaughtUp,
    Closed,
    Event,
    PeerHello,
    PieceReceived,
    Session,
    State,
    UpdateReceived,
)

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 8 << 20
PROGRESS_EVERY = 0.5
TAIL_BATCH = 512


class Link:
    def __init__(self, store: DocumentStore, session: Session, window: int = DEFAULT_WINDOW) -> None:
        self.store = store
        self.session = session
        self.window = window
        # Everything up to here is covered by the catch-up; newer updates are pushed live.
        self.cursor = store.last_seq()
        self.caught_up = False
        self.caught_up_at: float | None = None
        self.closed: Closed | None = None
        self.received_updates = 0
        self.changed_docs: set[str] = set()
        # Progress of the peer's catch-up towards us: documents planned, and arrived so far;
        # told to `on_progress` (on the store's thread) at most every PROGRESS_EVERY seconds.
        self.catch_up_total: int | None = None
        self.catch_up_done = 0
        self.on_progress: Callable[[int | None, int], None] | None = None
        # Live pieces (sync/live.py), handed on here on the store thread; never stored.
        self.on_piece: Callable[[LivePiece], None] | None = None
        self._progress_at = 0.0
        self._folded_sent: dict[str, int] = {}

    @property
    def peer_device(self) -> str | None:
        return self.session.peer.device if self.session.peer else None

    def start(self) -> None:
        self.session.start()

    def receive(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; persist and acknowledge updates; return the events."""
        self.session.receive_data(data)
        events = []
        while (event := self.session.next_event()) is not None:
            events.append(event)
        updates = [e for e in events if isinstance(e, UpdateReceived)]
        if updates:
            self._persist(updates)
            while (event := self.session.next_event()) is not None:  # (a refusal closes it)
                events.append(event)
        for event in events:
            if isinstance(event, CatchUpPlanned):
                self.catch_up_total, self.catch_up_done = event.documents, 0
                self._tell_progress(force=True)
                log.info("catching up from %s: %d conversation(s) to receive", self.peer_device,
                         event.documents)
            elif isinstance(event, CaughtUp):
                if self.catch_up_total is None:
                    log.info("in sync with %s", self.peer_device)
                else:
                    log.info("caught up with %s: %d of %d conversation(s) received",
                             self.peer_device, self.catch_up_done, self.catch_up_total)
                self.caught_up = True
                self.caught_up_at = time.perf_counter()
                self.catch_up_total = None
            elif isinstance(event, Closed):
                self.closed = event
            elif isinstance(event, PieceReceived) and self.on_piece is not None:
                self.on_piece(event.piece)
            elif isinstance(event, (PeerHello, Acknowledged, UpdateReceived)):
                pass
        return events

    def _persist(self, updates: list[UpdateReceived]) -> None:
        """Store what arrived (one transaction), then acknowledge exactly what was stored."""
        items = [(u.doc_id, u.blobs) for u in updates]
        try:
            changed, error = self.store.import_many(items, source=self.peer_device)
        except StoreError as exc:  # our disk, not their fault: stop without acknowledging
            log.warning("cannot store updates from %s: %s", self.peer_device, exc)
            self.session.close(f"cannot store updates right now: {exc}")
            return
        stored = len(changed)
        for update, was_new in zip(updates[:stored], changed):
            self.received_updates += 1
            if was_new:
                self.changed_docs.add(update.doc_id)
            self.session.acknowledge(update.ack)
        if self.catch_up_total is not None:
            self.catch_up_done += stored
            self._tell_progress()
        if error is not None:
            log.warning("refusing update from %s: %s", self.peer_device, error)
            self.session.close(f"refused your update: {error}")

    def _tell_progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is not None and (force or now - self._progress_at >= PROGRESS_EVERY):
            self._progress_at = now
            try:
                self.on_progress(self.catch_up_total, self.catch_up_done)
            except StoreError as exc:  # showing progress must not stop the catch-up
                log.warning("could not record catch-up progress: %s", exc)

    def push(self) -> int:
        """Send updates the store gained since the last push; returns how many were sent."""
        if self.session.state not in (State.SYNCING, State.LIVE):
            return 0
        sent = 0
        while self.session.catching_up:
            room = self.window - sum(self.session.in_flight.values())
            if room <= 0:
                break
            sent += self.session.send_catch_up(room)
        for doc_id, upto in self.store.folded_after(self.cursor):
            if self._folded_sent.get(doc_id) == upto:
                continue
            # Compaction folded updates we had not pushed yet: send the whole document.
            self._folded_sent[doc_id] = upto
            self.session.send_update(doc_id, [self.store.export_updates(doc_id)])
            sent += 1
        while sum(self.session.in_flight.values()) < self.window:
            rows = self.store.updates_after(self.cursor, TAIL_BATCH)
            if not rows:
                break
            group_doc: str | None = None
            group: list[bytes] = []
            for seq, doc_id, data, source in rows:
                self.cursor = seq
                if source is not None and source == self.peer_device:
                    continue  # the peer sent us this one
                if doc_id != group_doc and group and group_doc is not None:
                    self.session.send_update(group_doc, group)
                    sent += 1
                    group = []
                group_doc = doc_id
                group.append(data)
            if group and group_doc is not None:
                self.session.send_update(group_doc, group)
                sent += 1
        return sent

    def outgoing(self) -> bytes:
        return self.session.data_to_send()
