"""One peer connection's logic above the session, still without networking.

A `Link` persists what the peer sends (then acknowledges it), and pushes what this device's
store gained since the connection began: it tails the store's update log (SQLite is the bus, so
this covers every local process and every other peer) and sends each new update to the peer,
except those that came from that peer. A slow peer is given at most `window` unacknowledged
bytes; the rest waits in the log, and when sending resumes consecutive updates of one document
go out together as one message (coalesced).
"""

from __future__ import annotations

import logging
import time

from app.errors import InvalidUpdateError, StoreError
from sync.docstore import DocumentStore
from sync.protocol import Acknowledged, CaughtUp, Closed, Event, PeerHello, Session, UpdateReceived

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 8 << 20
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
            if isinstance(event, UpdateReceived):
                self._persist(event)
            elif isinstance(event, CaughtUp):
                self.caught_up = True
                self.caught_up_at = time.perf_counter()
            elif isinstance(event, Closed):
                self.closed = event
            elif isinstance(event, (PeerHello, Acknowledged)):
                pass
        return events

    def _persist(self, event: UpdateReceived) -> None:
        try:
            changed = self.store.import_updates(event.doc_id, event.blobs, source=self.peer_device)
        except InvalidUpdateError as exc:
            log.warning("refusing update from %s: %s", self.peer_device, exc)
            self.session.close(f"refused your update: {exc}")
            return
        except StoreError as exc:  # our disk, not their fault: stop without acknowledging
            self.session.close(f"cannot store updates right now: {exc}")
            return
        self.received_updates += 1
        if changed:
            self.changed_docs.add(event.doc_id)
        self.session.acknowledge(event.ack)

    def push(self) -> int:
        """Send updates the store gained since the last push; returns how many were sent."""
        if self.session.state not in ("syncing", "live"):
            return 0
        sent = 0
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
                if doc_id != group_doc and group:
                    self.session.send_update(group_doc, group)  # type: ignore[arg-type]
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
