"""Widgets of the chat UI: the conversation list items, the message bubbles, the prompt."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message as UIMessage
from textual.widgets import Label, ListItem, Markdown, Static, TextArea

from sync.conversation import Message
from sync.view import ConversationRow, SearchHit


class ConversationItem(ListItem):
    """One conversation in the sidebar (or, after a search, one message that matched)."""

    def __init__(self, row: ConversationRow, hit: SearchHit | None = None) -> None:
        super().__init__()
        self.row = row
        self.hit = hit

    def compose(self) -> ComposeResult:
        # One widget per row, not two: the list mounts fast (first paint with a big store).
        if self.hit is not None:
            meta = self.hit.snippet.replace("\n", " ")
        else:
            archived = " · archived" if self.row.archived else ""
            meta = (f"{self.row.updated_at[:16].replace('T', ' ')} · "
                    f"{self.row.message_count} msgs{archived}")
        yield Static(Content.assemble(self.row.title, "\n", (meta, "$text-muted")))


class MessageView(Vertical, can_focus=True):
    """One message: who and what produced it, its branch position, its text as Markdown.

    Focus it (click, Ctrl+↑ from the prompt, ↑/↓ between messages) for its own keys."""

    BINDINGS = [
        Binding("c", "act('copy')", "Copy"),
        Binding("e", "act('edit')", "Edit & branch"),
        Binding("left", "act('previous')", "‹ Branch"),
        Binding("right", "act('next')", "Branch ›"),
        Binding("plus", "act('rate_up')", "Good"),
        Binding("minus", "act('rate_down')", "Bad"),
        Binding("up", "act('up')", "Up", show=False),
        Binding("down", "act('down')", "Down", show=False),
    ]

    @dataclass
    class Action(UIMessage):
        """What the user asked of a message; the chat pane carries it out."""

        view: MessageView
        action: str

    def __init__(self, message: Message, branch: tuple[int, int] = (1, 1),
                 names: dict[str, str] | None = None) -> None:
        super().__init__(classes=f"message {message.role}")
        self.message = message
        self.names = names or {}  # device id → name
        self.branch = branch  # (position among its alternatives, how many there are)

    def compose(self) -> ComposeResult:
        yield Label(self._caption(), classes="caption", markup=False)
        yield Markdown(keep_line_breaks(self.message.text) or "…")

    def _caption(self) -> str:
        m = self.message
        parts = ["you"] if m.role == "user" else [m.model or "assistant"]
        if m.role != "user" and m.device:
            parts.append(f"on {self.names.get(m.device) or m.device[:9]}")
        if m.attempts > 1:
            parts.append("taken over")
        if m.status != "done":
            parts.append(f"[{m.status}]")
        if m.rating:
            parts.append(("▲ good" if m.rating == "up" else "▼ bad")
                         + (f": {m.rating_note}" if m.rating_note else ""))
        index, count = self.branch
        if count > 1:
            parts.append(f"‹ {index}/{count} ›")
        return " · ".join(parts)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Only offer what applies here: edit on prompts, branch keys where there are branches.
        what = parameters[0] if parameters else None
        if action == "act" and what == "edit":
            return self.message.role == "user"
        if action == "act" and what in ("rate_up", "rate_down"):  # feedback is on answers
            return self.message.role == "assistant" and self.message.status != "streaming"
        if action == "act" and what == "previous":
            return self.branch[0] > 1
        if action == "act" and what == "next":
            return self.branch[0] < self.branch[1]
        return True

    def action_act(self, what: str) -> None:
        self.post_message(self.Action(self, what))

    def append(self, piece: str) -> None:
        """A piece streamed in (before the store has it)."""
        self.message = replace(self.message, text=self.message.text + piece)
        self.query_one(Markdown).update(keep_line_breaks(self.message.text))

    def restart(self) -> None:
        """The answer starts over (another attempt): what was shown of it goes."""
        self.message = replace(self.message, text="")
        self.query_one(Markdown).update("…")

    def show(self, message: Message, branch: tuple[int, int]) -> None:
        """Bring the view up to date without rebuilding it (keeps scroll and focus)."""
        # While streaming, the screen may be ahead of the store: never step back.
        if len(message.text) < len(self.message.text) and self.message.text.startswith(message.text):
            message = replace(message, text=self.message.text)
        changed = message.text != self.message.text
        self.message, self.branch = message, branch
        self.query_one(".caption", Label).update(self._caption())  # (status, rating, branch)
        self.refresh_bindings()
        if changed:
            self.query_one(Markdown).update(keep_line_breaks(message.text) or "…")


FENCE = re.compile(r"^\s*(```|~~~)")


def keep_line_breaks(text: str) -> str:
    """The model's single line breaks kept (Markdown would join the lines of a paragraph: a
    haiku became one line). Outside code fences, a line followed by another ends in a hard
    break; blank lines, lists and headings are left as they are."""
    lines = text.split("\n")
    fenced = False
    out = []
    for i, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if (not fenced and line.strip() and nxt.strip() and not FENCE.match(nxt)
                and not line.endswith("  ") and not line.lstrip().startswith(("#", "|"))):
            line += "  "
        out.append(line)
    return "\n".join(out)


class PromptArea(TextArea):
    """Multi-line prompt: Enter sends, Shift+Enter or Ctrl+J adds a line, ↑/↓ on the first/last
    line walk through earlier prompts."""

    BINDINGS = [Binding("ctrl+up", "app.focus_messages", "Messages")]

    @dataclass
    class Submitted(UIMessage):
        text: str

    def __init__(self, history: Callable[[], list[str]], **kwargs: Any) -> None:  # (Textual's own keywords)
        super().__init__(**kwargs)
        self._load_history = history
        self._history: list[str] | None = None  # newest first; loaded on the first ↑
        self._position = -1  # -1: the text being written, not a history entry
        self._draft = ""

    #: The cursor blinks this long after the last key, then stays lit: an idle app repaints
    #: nothing (a blinking cursor redraws the prompt twice a second, forever).
    BLINK_FOR = 10.0

    def on_mount(self) -> None:
        self._rest = self.set_timer(self.BLINK_FOR, self._stop_blinking)

    def _stop_blinking(self) -> None:
        self.cursor_blink = False

    def _woken(self) -> None:
        if not self.cursor_blink:
            self.cursor_blink = True
        self._rest.reset()

    def on_focus(self) -> None:
        self._woken()

    def remember(self, prompt: str) -> None:
        if self._history is not None:
            self._history = [prompt] + [p for p in self._history if p != prompt]
        self._position = -1

    async def _on_key(self, event: events.Key) -> None:
        self._woken()
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            self.post_message(self.Submitted(self.text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.prevent_default()
            event.stop()
            self.insert("\n")
            return
        row = self.cursor_location[0]
        if event.key == "up" and row == 0 and self._walk(+1):
            event.prevent_default()
            event.stop()
            return
        if event.key == "down" and row == self.document.line_count - 1 and self._walk(-1):
            event.prevent_default()
            event.stop()
            return
        await super()._on_key(event)

    def _walk(self, step: int) -> bool:
        if self._history is None:
            self._history = self._load_history()
        target = self._position + step
        if target < -1 or target >= len(self._history) or (step < 0 and self._position == -1):
            return False
        if self._position == -1:
            self._draft = self.text
        self._position = target
        self.load_text(self._draft if target == -1 else self._history[target])
        self.move_cursor(self.document.end)
        return True


def system_line(box: VerticalScroll, system_prompt: str | None, model: str | None = None) -> None:
    """This conversation's own model and system prompt, shown above the thread (/model and
    /system set them)."""
    parts = [f"model: {model}"] if model else []
    parts += [f"system prompt: {system_prompt}"] if system_prompt else []
    text = " · ".join(parts)
    lines = list(box.query(".system-prompt").results(Static))
    if not text:
        for line in lines:
            line.remove()
    elif lines:
        lines[0].update(text)
    else:
        box.mount(Static(text, classes="system-prompt", markup=False),
                  before=0 if box.children else None)
