"""The sidebar: conversations newest first, filter as you type, full-text search, and the keys
that act on the highlighted conversation (rename, delete, archive).

Rows come from the store's materialized view; no conversation document is loaded to list them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.message import Message as UIMessage
from textual.widgets import Input, Label, ListView

from app.errors import CoveyError
from app.ui.widgets import ConversationItem
from sync.store import Store
from sync.view import SearchHit

PAGE = 40  # conversations listed at first, and added each time the list nears its end
LIST_LIMIT = 100  # filter and search results shown (the filter looks at every title)


class ConversationList(ListView):
    BINDINGS = [
        Binding("r", "act('rename')", "Rename"),
        Binding("d", "act('delete')", "Delete"),
        Binding("a", "act('archive')", "Archive"),
        Binding("s", "act('show_archived')", "Show archived"),
        Binding("u", "act('undo')", "Undo delete"),
    ]

    def watch_index(self, old: int | None, new: int | None) -> None:
        super().watch_index(old, new)
        if new is not None and new >= len(self) - 5:
            self.post_message(Sidebar.More())

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new >= self.max_scroll_y - 2 and self.max_scroll_y > 0:
            self.post_message(Sidebar.More())

    def action_act(self, what: str) -> None:
        item = self.highlighted_child
        conv_id = item.row.id if isinstance(item, ConversationItem) else None
        self.post_message(Sidebar.Act(what, conv_id))


class Sidebar(Vertical):
    # ↓ in the filter box goes down into the list (the Input itself has no use for it)
    BINDINGS = [Binding("down", "focus_list", "To the list", show=False)]

    def action_focus_list(self) -> None:
        listing = self.query_one(ConversationList)
        if listing.index is None and len(listing):
            listing.index = 0
        listing.focus()

    @dataclass
    class Open(UIMessage):
        conversation_id: str
        message_id: str | None  # a search hit: jump to this message

    class More(UIMessage):
        """The list is scrolled near its end: show more conversations."""

    @dataclass
    class Act(UIMessage):
        action: str  # rename | delete | archive | show_archived | undo
        conversation_id: str | None

    def __init__(self, store: Store, **kwargs: Any) -> None:  # (Textual's own keywords)
        super().__init__(**kwargs)
        self.store = store
        self.show_archived = False
        self._hits: list[SearchHit] | None = None  # the list shows these search hits
        self._refreshing = False
        self._dirty = False
        self._wanted: str | None = None  # the conversation to keep highlighted
        self._focus_list = False
        self._limit = PAGE
        self._more = True  # there may be more conversations than listed

    @property
    def searching(self) -> bool:
        return self._hits is not None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter · Enter searches all messages", id="filter")
        yield ConversationList(id="conversations")
        yield Label("", id="list-note")

    @property
    def filter_text(self) -> str:
        return self.query_one("#filter", Input).value.strip()

    def refresh_list(self, selected: str | None = None) -> None:
        """List conversations again (keeps the highlighted one where it can).

        Rebuilding a ListView is asynchronous: rebuilds run one at a time, and requests that
        arrive meanwhile fold into one more pass (typing a filter fast asks many times)."""
        if selected is not None or self._wanted is None:
            self._wanted = selected or self._highlighted_id()
        if self._refreshing:
            self._dirty = True
            return
        self._refreshing = True
        self.run_worker(self._rebuild(), group="sidebar")

    async def _rebuild(self) -> None:
        try:
            await self._rebuild_passes()
        except NoMatches:  # the app closed while a rebuild was under way: nothing to show
            return

    async def _rebuild_passes(self) -> None:
        try:
            while True:
                self._dirty = False
                items, note = self._items()
                listing = self.query_one(ConversationList)
                shown = [(i.row, i.hit) for i in listing.query(ConversationItem)]
                wanted = [(i.row, i.hit) for i in items]
                if wanted[:len(shown)] == shown and len(wanted) > len(shown):
                    await listing.extend(items[len(shown):])  # more of the same list: append
                elif wanted != shown:  # (else: keep what is on screen)
                    with self.app.batch_update():  # never paint the list empty in between
                        await listing.clear()
                        await listing.extend(items)
                ids = [item.row.id for item in items]
                if self._wanted in ids:
                    listing.index = ids.index(self._wanted)
                elif items and listing.index is None:
                    listing.index = 0
                self.query_one("#list-note", Label).update(note)
                if not self._dirty:
                    break
        finally:
            self._refreshing = False
            self._wanted = None
        if self._focus_list and self._hits:
            self._focus_list = False
            self.query_one(ConversationList).focus()

    def _items(self) -> tuple[list[ConversationItem], str]:
        if self._hits is not None:
            items = []
            for hit in self._hits:
                try:
                    items.append(ConversationItem(self.store.summary(hit.conversation_id), hit))
                except CoveyError:  # deleted meanwhile: skip the hit
                    continue
            count = f"{len(items)} message{'s' if len(items) != 1 else ''} match"
            note = f"{count} · Enter opens · Esc clears" if items else \
                "no message matches · Esc clears"
            return items, note
        text = self.filter_text.lower()
        if text:  # over every conversation's title, not just those shown
            rows = [r for r in self.store.list_conversations(include_archived=self.show_archived)
                    if text in r.title.lower()][:LIST_LIMIT]
        else:
            rows = self.store.list_conversations(self._limit, include_archived=self.show_archived)
            self._more = len(rows) >= self._limit
        shown = "archived shown · " if self.show_archived else ""
        note = f"{shown}{len(rows)} shown" if shown else ""
        return [ConversationItem(row) for row in rows], note

    def _highlighted_id(self) -> str | None:
        item = self.query_one(ConversationList).highlighted_child
        return item.row.id if isinstance(item, ConversationItem) else None

    @on(More)
    def _more_rows(self) -> None:
        if self._more and not self.searching and not self.filter_text and not self._refreshing:
            self._limit += PAGE
            self.refresh_list()

    def toggle_archived(self) -> None:
        self.show_archived = not self.show_archived
        self.refresh_list()

    @on(Input.Changed, "#filter")
    def _filter(self) -> None:
        self._hits = None
        self.refresh_list()

    @on(Input.Submitted, "#filter")
    def _search(self, event: Input.Submitted) -> None:
        words = event.value.strip()
        if words:
            self._hits = self.store.search(words, limit=LIST_LIMIT)
            self._focus_list = True
            self.refresh_list()

    def clear_search(self) -> bool:
        if not self.searching and not self.filter_text:
            return False
        self._hits = None
        self.query_one("#filter", Input).value = ""  # (→ Input.Changed → refresh)
        self.refresh_list()
        return True

    @on(ListView.Selected, "#conversations")
    def _open(self, event: ListView.Selected) -> None:
        if isinstance(event.item, ConversationItem):
            hit = event.item.hit
            self.post_message(self.Open(event.item.row.id, hit.message_id if hit else None))
