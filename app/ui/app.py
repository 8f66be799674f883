"""covey's Textual app: conversations on the left, the chat on the right, the household on top.

The store and the assistant (with its model) are passed in, so tests run it with a fake model
and a temporary store. Generation runs in a worker thread; the UI changes only through
`call_from_thread`. Changes from other processes and devices arrive as store events (and a
light poll of the store, SQLite being the bus) and update the open conversation in place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message as UIMessage
from textual.widgets import Footer, Input, Label, ListView, TextArea

from app.assistant import Assistant, Turn
from app.errors import CoveyError
from app.pipeline import SlashCommand, parse_input
from app.ui.widgets import ConversationItem, MessageView
from sync.store import Store, StoreEvent

LIST_LIMIT = 100  # conversations listed (from the view; no document is loaded). 500 took 3 s to mount


class PromptArea(TextArea):
    """Multi-line prompt: Enter sends, Shift+Enter or Ctrl+J adds a line."""

    @dataclass
    class Submitted(UIMessage):
        text: str

    async def _on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        if key == "enter":
            event.prevent_default()  # type: ignore[attr-defined]
            event.stop()  # type: ignore[attr-defined]
            self.post_message(self.Submitted(self.text))
            return
        if key in ("shift+enter", "ctrl+j"):
            event.prevent_default()  # type: ignore[attr-defined]
            event.stop()  # type: ignore[attr-defined]
            self.insert("\n")
            return
        await super()._on_key(event)  # type: ignore[arg-type]


class CoveyApp(App[None]):
    CSS_PATH = "covey.tcss"
    TITLE = "covey"
    BINDINGS = [
        Binding("ctrl+n", "new_conversation", "New"),
        Binding("ctrl+f", "focus_filter", "Find"),
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+z", "undo_delete", "Undo delete", show=False),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    @dataclass
    class StoreChanged(UIMessage):
        doc_id: str

    @dataclass
    class Piece(UIMessage):
        """A piece of an answer, from the generation thread (posting never blocks it)."""

        answer_id: str
        text: str

    def __init__(self, store: Store, assistant: Assistant,
                 household: Callable[[], str] | None = None) -> None:
        super().__init__()
        self.store = store
        self.assistant = assistant
        self.household_line = household or (lambda: f"this device: {store.device_id[:7]}")
        self.conversation_id: str | None = None
        self.cancel = threading.Event()
        self.generating = False
        self.deleted: str | None = None  # the last deleted conversation, for Ctrl+Z
        self._unsubscribe: Callable[[], None] | None = None
        self._pending: dict[str, list[str]] = {}
        self._flush_scheduled = False

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="sidebar"):
            yield Input(placeholder="filter (Enter: search all messages)", id="filter")
            yield ListView(id="conversations")
        with Vertical(id="chat"):
            yield Label(self.household_line(), id="household")
            yield VerticalScroll(id="messages")
            yield PromptArea(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_list()
        self.query_one(PromptArea).focus()
        self._unsubscribe = self.store.subscribe(self._on_store_event)
        self.set_interval(0.25, self._poll)

    def on_unmount(self) -> None:
        self.cancel.set()
        if self._unsubscribe is not None:
            self._unsubscribe()

    # -- store → UI -------------------------------------------------------------------------

    def _on_store_event(self, event: StoreEvent) -> None:
        # Called on whatever thread wrote; only messages cross into the UI.
        if event.origin != "local":
            self.post_message(self.StoreChanged(event.doc_id))

    def _poll(self) -> None:
        self.store.poll()  # other processes' writes → store events → StoreChanged

    def on_covey_app_store_changed(self, message: StoreChanged) -> None:
        self.refresh_list()
        if message.doc_id == self.conversation_id:
            self.show_conversation(keep_place=True)

    def refresh_list(self, rows: list | None = None) -> None:  # type: ignore[type-arg]
        text = self.query_one("#filter", Input).value.strip().lower()
        if rows is None and text:  # filter over every conversation's title, not just those shown
            rows = [r for r in self.store.list_conversations() if text in r.title.lower()]
        rows = rows if rows is not None else self.store.list_conversations(limit=LIST_LIMIT)
        rows = rows[:LIST_LIMIT]
        listing = self.query_one("#conversations", ListView)
        listing.clear()
        for row in rows:
            listing.append(ConversationItem(row))

    def show_conversation(self, keep_place: bool = False) -> None:
        """Render the open conversation; with keep_place, update in place (scroll untouched)."""
        box = self.query_one("#messages", VerticalScroll)
        if self.conversation_id is None:
            box.remove_children()
            return
        try:
            messages = self.store.conversation(self.conversation_id).messages
        except CoveyError:
            self.conversation_id = None
            box.remove_children()
            return
        existing = {view.message.id: view for view in box.query(MessageView)}
        if not keep_place:
            box.remove_children()
            existing = {}
        for message in messages:
            view = existing.get(message.id)
            if view is not None:
                view.show(message)
            else:
                box.mount(MessageView(message))
        if not keep_place:
            box.scroll_end(animate=False)

    # -- user actions -----------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter(self) -> None:
        self.refresh_list()

    @on(Input.Submitted, "#filter")
    def _search(self, event: Input.Submitted) -> None:
        hits = self.store.search(event.value, limit=50) if event.value.strip() else []
        if hits:
            ids = list(dict.fromkeys(h.conversation_id for h in hits))
            rows = [self.store.summary(i) for i in ids]
            self.refresh_list(rows)

    @on(ListView.Selected, "#conversations")
    def _open(self, event: ListView.Selected) -> None:
        if isinstance(event.item, ConversationItem):
            self.conversation_id = event.item.row.id
            self.show_conversation()
            self.query_one(PromptArea).focus()

    @on(PromptArea.Submitted)
    def _send(self, event: PromptArea.Submitted) -> None:
        item = parse_input(event.text)
        if isinstance(item, SlashCommand):
            self.query_one(PromptArea).clear()
            self.command(item)
            return
        prompt = item
        if not prompt or self.generating:
            if self.generating:
                self.notify("An answer is still coming: Esc stops it.", severity="warning")
            return
        self.query_one(PromptArea).clear()
        self.generate(prompt)

    def command(self, cmd: SlashCommand) -> None:
        """Slash commands typed in the prompt: /new /title /system /delete /undo /help."""
        conv = self.conversation_id
        if cmd.name == "new":
            self.action_new_conversation()
        elif cmd.name in ("title", "system", "delete") and conv is None:
            self.notify(f"/{cmd.name} works inside a conversation", severity="warning")
        elif cmd.name == "title" and cmd.argument:
            self.store.set_title(conv, cmd.argument)  # type: ignore[arg-type]
            self.refresh_list()
        elif cmd.name == "system":
            self.store.set_system_prompt(conv, cmd.argument)  # type: ignore[arg-type]
            self.notify("System prompt set for this conversation.")
        elif cmd.name == "delete":
            title = self.store.summary(conv).title  # type: ignore[arg-type]
            self.store.delete_conversation(conv)  # type: ignore[arg-type]
            self.deleted = conv
            self.action_new_conversation()
            self.refresh_list()
            self.notify(f"Deleted “{title}”. /undo brings it back.")
        elif cmd.name == "undo":
            self.action_undo_delete()
        else:
            self.notify("/new · /title TEXT · /system TEXT · /delete · /undo · "
                        "//text sends text starting with a slash")

    def action_undo_delete(self) -> None:
        if self.deleted is not None:
            self.store.undelete_conversation(self.deleted)
            self.conversation_id, self.deleted = self.deleted, None
            self.show_conversation()
            self.refresh_list()
            self.notify("Restored.")

    def action_new_conversation(self) -> None:
        self.conversation_id = None
        self.show_conversation()
        self.query_one(PromptArea).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_stop(self) -> None:
        if self.generating:
            self.cancel.set()

    def action_regenerate(self) -> None:
        if self.conversation_id is None or self.generating:
            return
        prompts = [m for m in self.store.conversation(self.conversation_id).messages
                   if m.role == "user"]
        if prompts:
            self.generate(None, regenerate_from=prompts[-1].id)

    # -- generation -------------------------------------------------------------------------

    @work(thread=True, exclusive=True)
    def generate(self, prompt: str | None, regenerate_from: str | None = None) -> None:
        self.cancel.clear()
        self.generating = True
        try:
            if regenerate_from is not None and self.conversation_id is not None:
                answer_id = self.store.add_message(
                    self.conversation_id, "assistant", "", parent_id=regenerate_from,
                    status="streaming", model=self.assistant.model.info.name)
                turn = Turn(self.conversation_id, regenerate_from, answer_id, False)
            else:
                turn = self.assistant.start(prompt or "", self.conversation_id)
            self.call_from_thread(self._opened, turn.conversation_id)

            def on_piece(piece: str) -> None:
                self.post_message(self.Piece(turn.answer_id, piece))

            self.assistant.answer(turn, self.assistant.params(), on_piece=on_piece,
                                  cancel=self.cancel)
        except CoveyError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
        finally:
            self.generating = False
            self.call_from_thread(self._finished)

    def _opened(self, conversation_id: str) -> None:
        first = self.conversation_id != conversation_id
        self.conversation_id = conversation_id
        self.show_conversation(keep_place=not first)
        self.query_one("#messages", VerticalScroll).scroll_end(animate=False)
        self.refresh_list()

    def on_covey_app_piece(self, message: Piece) -> None:
        """Show pieces as they come (the store gets them with the next commit, a bit later);
        the Markdown is re-rendered at most every 50 ms, not per token."""
        self._pending.setdefault(message.answer_id, []).append(message.text)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.set_timer(0.05, self._flush_pieces)

    def _flush_pieces(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        box = self.query_one("#messages", VerticalScroll)
        follow = box.scroll_offset.y >= box.max_scroll_y - 2  # follow only if at the bottom
        for answer_id, pieces in pending.items():
            view = next((v for v in self.query(MessageView) if v.message.id == answer_id), None)
            if view is not None:
                view.append("".join(pieces))
        if follow:
            box.scroll_end(animate=False)

    def _finished(self) -> None:
        self._flush_pieces()
        self.show_conversation(keep_place=True)
        self.refresh_list()
