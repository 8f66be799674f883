"""The chat pane: the open conversation's thread, its branches, and generating answers.

A conversation is a tree (each message names its parent): regenerating adds an answer beside
the old one, editing a prompt adds a prompt beside it; ← / → on a message switch branches, + / -
rate an answer. Generation runs in a worker thread (one at a time, cancellable), here or handed
to another device (Settings); pieces are posted as messages, re-rendered at most every 50 ms.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message as UIMessage
from textual.widgets import Static

from app.context import Context
from app.errors import CoveyError
from app.household_status import device_names
from app.ui.feedback import toggle_rating
from app.ui.widgets import MessageView, PromptArea, system_line
from sync.conversation import Conversation

log = logging.getLogger(__name__)

WELCOME = ("A new conversation. Ask anything below: the answer comes from the model on this "
           "device (or the one you chose in Settings, F2).\n\n"
           "Ctrl+P lists everything covey can do · Ctrl+O shows your devices")


class ChatPane(Vertical):
    @dataclass
    class Piece(UIMessage):
        """A piece of an answer, from the generation thread (posting never blocks it)."""

        answer_id: str
        text: str  # "" = the store has news: show it
        restart: bool = False  # the answer starts over (a take-over): what was shown goes

    @dataclass
    class Opened(UIMessage):
        """The pane now shows this conversation (a new one was just created, say)."""

        conversation_id: str | None

    def __init__(self, ctx: Context, **kwargs: Any) -> None:  # (Textual's own keywords)
        super().__init__(**kwargs)
        self.ctx = ctx
        self.conversation_id: str | None = None
        self.leaf_id: str | None = None  # the end of the thread shown (None: the newest)
        self.editing: str | None = None  # the prompt being edited into a new branch
        self.cancel = threading.Event()
        self.generating = False
        self.idle = threading.Event()  # no generation thread is running
        self.idle.set()
        self._pending: dict[str, list[ChatPane.Piece]] = {}
        self._flush_scheduled = False
        self._names: dict[str, str] = {}
        self.next_model: str | None = None  # chosen (/model) before the conversation exists

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="messages")
        yield PromptArea(self.ctx.store.recent_prompts, id="prompt",
                         placeholder="Ask anything · Enter sends · Shift+Enter: new line · "
                                     "/help: commands · Ctrl+P: everything")

    def on_mount(self) -> None:
        self.show(keep_place=False)

    @property
    def prompt(self) -> PromptArea:
        return self.query_one(PromptArea)

    # -- showing a conversation -------------------------------------------------------------

    def open(self, conversation_id: str | None, message_id: str | None = None) -> None:
        """Show a conversation (None: a fresh one); with `message_id`, the branch holding it,
        scrolled to it."""
        self.conversation_id, self.leaf_id, self.editing = conversation_id, message_id, None
        self.show(keep_place=False)
        if message_id:
            view = self._view(message_id)
            if view is not None:
                self.query_one("#messages", VerticalScroll).scroll_to_widget(view, animate=False)
                view.focus()
        self.post_message(self.Opened(conversation_id))

    def _conversation(self) -> Conversation | None:
        if self.conversation_id is None:
            return None
        try:
            return self.ctx.store.conversation(self.conversation_id)
        except CoveyError:  # deleted meanwhile (here or on another device)
            self.conversation_id = self.leaf_id = None
            return None

    def show(self, keep_place: bool = True) -> None:
        """Render the open thread; with keep_place, update it in place (scroll untouched)."""
        box = self.query_one("#messages", VerticalScroll)
        # What arrives while the reader is at the bottom is followed (scrolled up: kept still).
        follow = keep_place and box.scroll_offset.y >= box.max_scroll_y - 2
        conv = self._conversation()
        if conv is None:
            box.remove_children()
            box.mount(Static(WELCOME, classes="welcome"))
            return
        leaf = conv.latest_leaf(self.leaf_id)  # follows answers that arrived on this branch
        self.leaf_id = leaf
        thread = conv.thread(leaf)
        welcomed = box.query(".welcome")
        if welcomed:
            welcomed.remove()
            # (seen in tmux: with a header line mounted too, the welcome's cells stayed)
            self.call_after_refresh(self.screen.refresh)
        existing = {view.message.id: view for view in box.query(MessageView)}
        if not keep_place or [m.id for m in thread][:len(existing)] != list(existing):
            box.remove_children()  # another branch: rebuild
            existing = {}
            keep_place = False
        if not keep_place or not self._names:
            self._names = device_names(self.ctx.store, self.ctx.config.device_name)
        for message in thread:
            siblings = [m.id for m in conv.siblings(message.id)]
            branch = (siblings.index(message.id) + 1, len(siblings)) if siblings else (1, 1)
            view = existing.get(message.id)
            if view is not None:
                view.show(message, branch)
            else:
                box.mount(MessageView(message, branch, self._names))
        system_line(box, conv.system_prompt, conv.model)
        if not keep_place or follow:
            box.scroll_end(animate=False)
        if follow:
            self._keep_following(box)

    def _keep_following(self, box: VerticalScroll) -> None:
        """Scroll to the end again while late layout grows the thread (a message's Markdown is
        laid out after it is mounted), unless the reader scrolls up meanwhile."""
        start = box.scroll_offset.y

        def again() -> None:
            if box.scroll_offset.y >= start:
                box.scroll_end(animate=False)

        for delay in (0.1, 0.3, 1.0, 3.0):
            self.set_timer(delay, again)

    def _view(self, message_id: str) -> MessageView | None:
        return next((v for v in self.query(MessageView) if v.message.id == message_id), None)

    # -- acting on a message ----------------------------------------------------------------

    @on(MessageView.Action)
    def _message_action(self, event: MessageView.Action) -> None:
        views = list(self.query(MessageView))
        message, at = event.view.message, views.index(event.view)
        if event.action == "copy":
            self.app.copy_to_clipboard(message.text)
            self.notify(f"Copied {len(message.text)} characters.")
        elif event.action == "edit" and message.role == "user":
            if self.generating:
                self.notify("An answer is still coming: Esc stops it.", severity="warning")
                return
            self.editing = message.id
            self.prompt.load_text(message.text)
            self.prompt.focus()
            self.notify("Editing: Enter sends it as a new branch (the old one stays); "
                        "Esc cancels.")
        elif event.action in ("rate_up", "rate_down") and self.conversation_id:
            self.notify(toggle_rating(self.ctx.store, self.conversation_id, message,
                                      event.action.removeprefix("rate_")))
            self.show(keep_place=True)  # (the app shows its own writes itself)
        elif event.action in ("previous", "next"):
            self.switch_branch(message.id, -1 if event.action == "previous" else 1)
        elif event.action == "up" and at > 0:
            views[at - 1].focus()
            views[at - 1].scroll_visible(animate=False)
        elif event.action == "down":
            target = views[at + 1] if at + 1 < len(views) else self.prompt
            target.focus()
            target.scroll_visible(animate=False)

    def switch_branch(self, message_id: str, step: int) -> None:
        conv = self._conversation()
        if conv is None:
            return
        siblings = conv.siblings(message_id)
        ids = [m.id for m in siblings]
        if message_id not in ids:
            return
        index = ids.index(message_id) + step
        if 0 <= index < len(ids):
            self.leaf_id = conv.latest_leaf(ids[index])
            self.show(keep_place=False)
            view = self._view(ids[index])
            if view is not None:
                view.focus()
                self.query_one("#messages", VerticalScroll).scroll_to_widget(view, animate=False)

    def cancel_edit(self) -> bool:
        if self.editing is None:
            return False
        self.editing = None
        self.prompt.clear()
        self.notify("Edit cancelled.")
        return True

    def focus_last_message(self) -> None:
        views = list(self.query(MessageView))
        if views:
            views[-1].focus()
            views[-1].scroll_visible(animate=False)

    # -- asking -----------------------------------------------------------------------------

    def send(self, prompt: str) -> None:
        if self.generating:
            self.notify("An answer is still coming: Esc stops it.", severity="warning")
            return
        parent = self.leaf_id  # continue the branch on screen, not whatever was written last
        if self.editing is not None:
            conv = self._conversation()
            edited = conv.message(self.editing) if conv else None
            parent = (edited.parent_id or "") if edited else None
            self.editing = None
        self.prompt.remember(prompt)
        self.prompt.clear()
        self.generating = True
        self.idle.clear()
        self.generate(prompt, parent, None)

    def regenerate(self) -> None:
        conv = self._conversation()
        if conv is None or self.generating:
            return
        prompts = [m for m in conv.thread(self.leaf_id) if m.role == "user"]
        if prompts:
            self.generating = True
            self.idle.clear()
            self.generate(None, None, prompts[-1].id)

    def stop(self) -> bool:
        if self.generating:
            self.cancel.set()
            return True
        return False

    @work(thread=True, exclusive=True, group="generate")
    def generate(self, prompt: str | None, parent_id: str | None,
                 regenerate_from: str | None) -> None:
        """Ask through the front door (app/asking.py), as `covey ask` and `covey chat` do."""
        from app import asking

        self.cancel.clear()
        handed, answer_id = False, ""

        def started(where: asking.Started) -> None:
            nonlocal handed, answer_id
            handed, answer_id = where.handed, where.answer_id
            if self.conversation_id is None:
                self.next_model = None  # (asking kept it: the new conversation's model)
            self.app.call_from_thread(self._started, where.conversation_id, where.answer_id)
            if where.queued:
                self.app.call_from_thread(self.notify, "No capable device is online: the answer "
                                          "is queued and runs when one appears.")

        def piece(text: str) -> None:
            # As generated: by this device's model, or live from the device that runs the job
            # (what continues the attempt shown; the store, the same, catches up behind).
            self._post_piece(answer_id, text)

        def notice(text: str) -> None:
            if handed and answer_id:  # (a handed answer's notes: it starts over, elsewhere)
                self.post_message(self.Piece(answer_id, "", restart=True))
            self.app.call_from_thread(self.notify, text, severity="warning")

        question = asking.Question(prompt or "", self.conversation_id, named=self.model_name(),
                                   parent_id=parent_id, again=regenerate_from)
        try:
            asked = asking.ask(self.ctx, question, on_piece=piece, on_started=started,
                               on_notice=notice, cancel=self.cancel)
            if asked.handed and asked.status not in ("done", "cancelled", "queued"):
                self.app.call_from_thread(self.notify, f"The answer {asked.status}.",
                                          severity="warning")
        except CoveyError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
        except Exception as exc:  # a failed answer must not take the app down
            log.exception("generation failed")
            self.app.call_from_thread(self.notify, f"The answer failed: {exc!r}",
                                      severity="error", timeout=10)
        finally:
            self.generating = False
            self.idle.set()
            if self.app.is_running:
                self.app.call_from_thread(self._finished)

    def model_name(self) -> str | None:
        """The open conversation's model (or the one chosen for the next new conversation)."""
        conv = self._conversation()
        return (conv.model if conv is not None else None) or self.next_model

    def _post_piece(self, answer_id: str, piece: str) -> None:
        self.post_message(self.Piece(answer_id, piece))

    def _started(self, conversation_id: str, answer_id: str) -> None:
        first = self.conversation_id != conversation_id
        self.conversation_id, self.leaf_id = conversation_id, answer_id
        self.show(keep_place=not first)
        self.query_one("#messages", VerticalScroll).scroll_end(animate=False)
        if first:
            self.post_message(self.Opened(conversation_id))

    @on(Piece)
    def _piece(self, message: Piece) -> None:
        self._pending.setdefault(message.answer_id, []).append(message)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.set_timer(0.05, self._flush_pieces)

    def _flush_pieces(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        box = self.query_one("#messages", VerticalScroll)
        follow = box.scroll_offset.y >= box.max_scroll_y - 2  # follow only if at the bottom
        from_store = False
        for answer_id, pieces in pending.items():
            view = self._view(answer_id)
            text = ""
            for piece in pieces:
                if piece.restart:
                    text = ""
                    if view is not None:
                        view.restart()
                elif piece.text:
                    text += piece.text
                else:
                    from_store = True
            if view is not None and text:
                view.append(text)
        if from_store:
            self.show(keep_place=True)
        if follow:
            box.scroll_end(animate=False)

    def _finished(self) -> None:
        self._flush_pieces()
        self.show(keep_place=True)
        self.post_message(self.Opened(self.conversation_id))
