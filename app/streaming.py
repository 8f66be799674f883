"""What every answer does as it is generated, wherever it runs (a local answer in
app/assistant.py, an attempt of a job in app/delegation.py): pieces gathered into commits, and
the conversation titled from its first exchange.

What must be durable per piece, and what can wait: nothing per piece. A piece goes to the
caller at once (the screen, the HTTP stream); the store gets the pieces in batches — every few
pieces or a fraction of a second, whichever comes first — so a crash loses at most one batch,
other processes and devices see the answer grow, and the model's threads are not kept waiting
by a commit (a view refresh and an FTS update) for every token. The last batch is written with
the answer's final status, in the one write that is fsynced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app import pipeline
from models.base import ChatModel
from sync.store import Store

log = logging.getLogger(__name__)

#: A local answer's batches (and a job's whose requester hears each piece in this process).
EVERY_PIECES, EVERY_SECONDS = 8, 0.25


class Batches:
    """Pieces of an answer, committed `every_pieces` pieces or `every_seconds`, whichever first."""

    def __init__(self, commit: Callable[[str], None], every_pieces: int,
                 every_seconds: float) -> None:
        self._commit = commit
        self.every_pieces, self.every_seconds = every_pieces, every_seconds
        self.committed: list[str] = []
        self.pending: list[str] = []
        self._last = time.monotonic()

    def add(self, piece: str) -> None:
        self.pending.append(piece)
        if len(self.pending) >= self.every_pieces or \
                time.monotonic() - self._last >= self.every_seconds:
            text = "".join(self.pending)
            self._commit(text)  # (raises: the pieces stay pending, for the final write)
            self.committed.extend(self.pending)
            self.pending, self._last = [], time.monotonic()

    def rest(self) -> str:
        """The pieces not committed yet — for the final write, which says how the answer ended;
        from now on they count as committed."""
        text = "".join(self.pending)
        self.committed.extend(self.pending)
        self.pending = []
        return text

    @property
    def text(self) -> str:
        return "".join(self.committed) + "".join(self.pending)


def title_from_first_exchange(store: Store, model: ChatModel, conversation_id: str,
                              answer_id: str) -> None:
    """Title a conversation from the prompt and the answer `answer_id` (its first to complete),
    unless it was renamed (by anyone, anywhere): a rename always wins, even one made while the
    title was being written. A title is a nicety: failing to make one is logged, not raised."""
    try:
        conv = store.conversation(conversation_id)
        answer = conv.message(answer_id)
        thread = conv.thread(answer_id)
        if conv.title_source != "auto" or answer is None or len(thread) < 2:
            return
        title = pipeline.make_title(model, thread[-2].text, answer.text)
        if store.conversation(conversation_id).title_source == "auto":
            store.set_title(conversation_id, title, source="auto")
    except Exception as exc:
        log.warning("could not title conversation %s: %s", conversation_id, exc)
