"""Widgets of the chat UI: the conversation list and the message bubbles."""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ListItem, Markdown

from sync.conversation import Message
from sync.view import ConversationRow


class ConversationItem(ListItem):
    """One conversation in the sidebar."""

    def __init__(self, row: ConversationRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        yield Label(self.row.title, classes="title", markup=False)
        yield Label(f"{self.row.updated_at[:16].replace('T', ' ')} · {self.row.message_count} msgs",
                    classes="meta")


class MessageView(Vertical):
    """One message: who/what produced it, and its text as Markdown."""

    def __init__(self, message: Message) -> None:
        super().__init__(classes=f"message {message.role}")
        self.message = message

    def compose(self) -> ComposeResult:
        yield Label(self._caption(), classes="caption", markup=False)
        yield Markdown(self.message.text or "…")

    def _caption(self) -> str:
        m = self.message
        if m.role == "user":
            return "you"
        parts = [m.model or "assistant"]
        if m.device:
            parts.append(f"on {m.device[:7]}")
        if m.attempts > 1:
            parts.append("taken over")
        if m.status not in ("done",):
            parts.append(f"[{m.status}]")
        return " · ".join(parts)

    def append(self, piece: str) -> None:
        """A piece streamed in (before the store has it)."""
        self.message = replace(self.message, text=self.message.text + piece)
        self.query_one(Markdown).update(self.message.text)

    def show(self, message: Message) -> None:
        """Bring the view up to date without rebuilding it (keeps scroll and focus)."""
        # While streaming, the screen may be ahead of the store: never step back.
        if len(message.text) < len(self.message.text) and self.message.text.startswith(message.text):
            message = replace(message, text=self.message.text)
        changed = message.text != self.message.text
        self.message = message
        self.query_one(".caption", Label).update(self._caption())
        if changed:
            self.query_one(Markdown).update(message.text or "…")
