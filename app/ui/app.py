"""covey's Textual app: conversations on the left, the chat on the right, the household on top.

Everything it works with comes in a Context (store, model, settings, paths), so tests run it
with a fake model and a temporary store; the node, when the app hosts one, is passed in too.
Changes from other processes and devices arrive as store events (and a light poll of the
store, SQLite being the bus) and update the open conversation in place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message as UIMessage
from textual.screen import Screen
from textual.widgets import Footer

from app.context import Context
from app.errors import CoveyError
from app.node_host import NodeHost
from app.pipeline import SlashCommand, parse_input
from app.ui.chat import ChatPane
from app.ui.dialogs import AskText
from app.ui.household import DevicesScreen, HouseholdBar
from app.ui.pairing import PairingScreen
from app.ui.settings import SettingsScreen
from app.ui.sidebar import Sidebar
from app.ui.widgets import PromptArea
from sync.store import StoreEvent

HELP = ("/new · /title TEXT · /system TEXT · /model [NAME] · /delete · /archive · /undo · /pair · "
        "/devices · /settings · /help · //text sends text starting with a slash")


LIST_EVERY = 0.5


class StoreChanged(UIMessage):
    def __init__(self, doc_id: str) -> None:
        super().__init__()
        self.doc_id = doc_id


class CoveyApp(App[None]):
    CSS_PATH = "covey.tcss"
    TITLE = "covey"
    BINDINGS = [
        Binding("ctrl+n", "new_conversation", "New"),
        Binding("ctrl+f", "focus_filter", "Find"),
        Binding("ctrl+l", "focus_list", "List", show=False),
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+o", "devices", "Devices"),
        Binding("f2", "settings", "Settings"),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, ctx: Context, node: NodeHost | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.store = ctx.store
        self.node = node
        self.deleted: str | None = None  # the last deleted conversation, for undo
        self._unsubscribe: Callable[[], None] | None = None
        self._chat = ChatPane(ctx, id="chat")
        # Held, not queried: a refresh can fire while a dialog is the active screen, where
        # query_one would find no Sidebar.
        self._sidebar = Sidebar(self.store, id="sidebar")
        self._changed: set[str] = set()
        self._apply_scheduled = False
        self._list_at = 0.0  # when the conversation list was last asked to refresh
        self._list_waiting = False
        if ctx.config.theme in self.available_themes:
            self.theme = ctx.config.theme

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield self._sidebar
            with Vertical(id="main"):
                yield HouseholdBar(self.ctx, id="household")
                yield self._chat
        yield Footer()

    @property
    def chat(self) -> ChatPane:
        return self._chat

    @property
    def sidebar(self) -> Sidebar:
        return self._sidebar

    @property
    def conversation_id(self) -> str | None:
        return self.chat.conversation_id

    @property
    def generating(self) -> bool:
        return self.chat.generating

    def on_mount(self) -> None:
        self.sidebar.refresh_list()
        self.chat.prompt.focus()
        self._unsubscribe = self.store.subscribe(self._on_store_event)
        self._probe = self.store.change_probe()
        self._polled = -1
        self.set_timer(0.25, self._poll)
        if self.node is not None:
            # After the first paint, off the UI thread: starting the node imports the network
            # stack and computes the sync digest over every conversation.
            self.set_timer(1.5, lambda: self.run_worker(self._start_node, thread=True,
                                                        group="node"))

    def _start_node(self) -> None:
        if self.node is None:
            return
        self.node.start(wait=5.0)
        for text in [self.node.error, *self.node.notices]:
            if text and self.is_running:
                self.call_from_thread(self.notify, text, severity="warning", timeout=10)
    def on_unmount(self) -> None:
        self.chat.cancel.set()  # a running answer stops and is kept (status "cancelled")
        if self._unsubscribe is not None:
            self._unsubscribe()

    # -- store → UI -------------------------------------------------------------------------

    def _on_store_event(self, event: StoreEvent) -> None:
        # Called on whatever thread wrote; only messages cross into the UI. The UI shows its
        # own writes itself; the hosted node's threads (API answers, peers' jobs: all named
        # covey-…) write in this process too, and those must be shown like a peer's.
        if event.origin != "local" or threading.current_thread().name.startswith("covey-"):
            self.post_message(StoreChanged(event.doc_id))

    def _poll(self) -> None:
        # Other processes' writes → store events → StoreChanged; read only when someone
        # committed since the last look (an idle app does no store work). A node hosted here
        # is woken by those writes and reads them itself (its events reach us): then this is
        # only a fallback, and looks four times less often.
        try:
            version = self._probe()
            if version != self._polled:
                self._polled = version
                self.store.poll()
        finally:
            hosting = self.node is not None and self.node.hosting
            self.set_timer(1.0 if hosting else 0.25, self._poll)

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        # A streaming answer from elsewhere commits many times a second: apply changes at
        # most every 100 ms, not once per commit.
        self._changed.add(message.doc_id)
        if not self._apply_scheduled:
            self._apply_scheduled = True
            self.set_timer(0.1, self._apply_changes)

    def _apply_changes(self) -> None:
        changed, self._changed, self._apply_scheduled = self._changed, set(), False
        self._refresh_list_soon()
        if self.conversation_id in changed:
            self.chat.show(keep_place=True)

    def _refresh_list_soon(self) -> None:
        """Refresh the conversation list (rebuilt only if what it shows changed), at most
        every LIST_EVERY seconds: a catch-up brings thousands of conversations, and rebuilding
        for each batch would leave the list no time to be drawn."""
        wait = self._list_at + LIST_EVERY - time.monotonic()
        if wait <= 0:
            self._list_at = time.monotonic()
            self._list_waiting = False
            self.sidebar.refresh_list()
        elif not self._list_waiting:
            self._list_waiting = True
            self.set_timer(wait, self._refresh_list_soon)

    @on(ChatPane.Opened)
    def _chat_opened(self, message: ChatPane.Opened) -> None:
        self.sidebar.refresh_list(message.conversation_id)

    @on(Sidebar.Open)
    def _open(self, message: Sidebar.Open) -> None:
        self.chat.open(message.conversation_id, message.message_id)
        if message.message_id is None:
            self.chat.prompt.focus()

    @on(Sidebar.Act)
    def _list_action(self, message: Sidebar.Act) -> None:
        if message.action == "show_archived":
            self.sidebar.toggle_archived()
        elif message.action == "undo":
            self.action_undo_delete()
        elif message.conversation_id is not None:
            getattr(self, f"action_{message.action}")(message.conversation_id)

    @on(PromptArea.Submitted)
    def _send(self, event: PromptArea.Submitted) -> None:
        item = parse_input(event.text)
        if isinstance(item, SlashCommand):
            self.chat.prompt.clear()
            self.command(item)
        elif item:
            self.chat.send(item)

    def command(self, cmd: SlashCommand) -> None:
        conv = self.conversation_id
        simple = {"new": self.action_new_conversation, "undo": self.action_undo_delete,
                  "pair": self.action_pair, "devices": self.action_devices,
                  "settings": self.action_settings}
        if cmd.name in simple:
            simple[cmd.name]()
        elif cmd.name in ("title", "system", "delete", "archive") and conv is None:
            self.notify(f"/{cmd.name} works inside a conversation", severity="warning")
        elif cmd.name == "title" and conv is not None:
            self.action_rename(conv, cmd.argument)
        elif cmd.name == "system" and conv is not None:
            self.store.set_system_prompt(conv, cmd.argument or "")
            self.chat.show(keep_place=True)
            self.notify("System prompt set for this conversation." if cmd.argument
                        else "System prompt cleared for this conversation.")
        elif cmd.name in ("delete", "archive"):
            getattr(self, f"action_{cmd.name}")(conv)
        elif cmd.name == "model":
            self.run_worker(lambda: self._choose_model(cmd.argument), thread=True, group="model")
        else:
            unknown = "" if cmd.name == "help" else f"There is no /{cmd.name}. "
            self.notify(unknown + HELP, timeout=10, severity="information" if not unknown
                        else "warning")

    def _choose_model(self, name: str | None) -> None:
        """/model NAME sets the conversation's model; /model alone opens the picker (off the UI
        thread: a first scan reads the files' metadata)."""
        from app import model_choice
        from app.ui.models import ModelPicker, picker_rows

        try:
            if not name:
                rows = picker_rows(self.ctx)
                current = self.chat.model_name() or self.ctx.model.info.name
                self.call_from_thread(self.push_screen, ModelPicker(rows, current),
                                      self._model_chosen)
                return
            choice = model_choice.choose(self.ctx, name)
        except CoveyError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        self.call_from_thread(self._model_chosen, choice.name or name)

    def _model_chosen(self, name: str | None) -> None:
        if not name:
            return
        if self.conversation_id is None:
            self.chat.next_model = name
            self.notify(f"The new conversation will be answered by {name}.")
            return
        self.store.set_model(self.conversation_id, name)
        self.chat.show(keep_place=True)
        self.notify(f"This conversation is answered by {name} from now on.")

    # -- conversation actions ---------------------------------------------------------------

    def action_rename(self, conv_id: str, title: str | None = None) -> None:
        def done(new: str | None) -> None:
            if new:
                self.store.set_title(conv_id, new)
                self.sidebar.refresh_list(conv_id)

        if title:
            done(title)
        else:
            self.push_screen(AskText("New title:", self.store.summary(conv_id).title), done)

    def action_delete(self, conv_id: str) -> None:
        title = self.store.summary(conv_id).title
        self.store.delete_conversation(conv_id)
        self.deleted = conv_id
        if conv_id == self.conversation_id:
            self.chat.open(None)
        self.sidebar.refresh_list()
        self.notify(f"Deleted “{title}”. u in the list, /undo or the palette brings it back.")

    def action_archive(self, conv_id: str) -> None:
        row = self.store.summary(conv_id)
        self.store.set_archived(conv_id, not row.archived)
        self.sidebar.refresh_list()
        self.notify(f"{'Unarchived' if row.archived else 'Archived'} “{row.title}”."
                    + ("" if row.archived else " s in the list shows archived ones."))

    def action_undo_delete(self) -> None:
        if self.deleted is None:
            self.notify("Nothing to undo.")
            return
        self.store.undelete_conversation(self.deleted)
        restored, self.deleted = self.deleted, None
        self.chat.open(restored)
        self.notify("Restored.")

    def action_new_conversation(self) -> None:
        self.chat.open(None)
        self.chat.prompt.focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter").focus()

    def action_focus_list(self) -> None:
        self.sidebar.action_focus_list()

    def action_focus_messages(self) -> None:
        self.chat.focus_last_message()

    def action_stop(self) -> None:
        """Esc: stop the answer; else leave an edit; else clear a search."""
        if not self.chat.stop() and not self.chat.cancel_edit() and self.sidebar.clear_search():
            self.chat.prompt.focus()

    def action_regenerate(self) -> None:
        self.chat.regenerate()

    # -- screens ----------------------------------------------------------------------------

    def action_devices(self) -> None:
        self.push_screen(DevicesScreen(self.ctx))

    def action_pair(self) -> None:
        self.push_screen(PairingScreen(self.ctx))

    def action_settings(self) -> None:
        self.push_screen(SettingsScreen(self.ctx))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"
        self.ctx.config.theme = self.theme
        try:
            self.ctx.config.save(self.ctx.paths.config_file)
        except OSError as exc:
            self.notify(f"Theme not saved: {exc}", severity="warning")

    @on(HouseholdBar.Clicked)
    def _bar_clicked(self) -> None:
        self.action_devices()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P) offers everything the app can do."""
        conv = self.conversation_id
        yield SystemCommand("New conversation", "Start a new conversation (Ctrl+N)",
                            self.action_new_conversation)
        yield SystemCommand("Find", "Filter conversations; Enter searches every message (Ctrl+F)",
                            self.action_focus_filter)
        yield SystemCommand("Regenerate", "Answer the last prompt again, beside the old answer "
                            "(Ctrl+R)", self.action_regenerate)
        yield SystemCommand("Stop", "Stop the answer being generated (Esc)", self.action_stop)
        if conv is not None:
            yield SystemCommand("Rename conversation", "Give it a title of your own",
                                lambda: self.action_rename(conv))
            yield SystemCommand("Archive / unarchive conversation", "Hide it from the list "
                                "(kept, searchable)", lambda: self.action_archive(conv))
            yield SystemCommand("Delete conversation", "Delete it everywhere (undo right after)",
                                lambda: self.action_delete(conv))
            yield SystemCommand("Set system prompt", "Instructions for this conversation only",
                                lambda: self.push_screen(AskText("System prompt for this "
                                                                 "conversation:"),
                                                         lambda text: self.command(
                                                             SlashCommand("system", text or ""))))
        yield SystemCommand("Undo delete", "Bring back the conversation just deleted",
                            self.action_undo_delete)
        yield SystemCommand("Show archived conversations", "Toggle archived ones in the list",
                            self.sidebar.toggle_archived)
        yield SystemCommand("Devices", "The household: online, syncing, models (Ctrl+O)",
                            self.action_devices)
        yield SystemCommand("Pair a device", "Show a code, or enter another device's code",
                            self.action_pair)
        yield SystemCommand("Settings", "Model, generation, where answers run, device name (F2)",
                            self.action_settings)
        yield SystemCommand("Toggle light/dark theme", "Saved for next time (Ctrl+T)",
                            self.action_toggle_theme)
        yield SystemCommand("Quit", "Leave covey (Ctrl+Q)", self.action_quit)

