"""The interactive terminal chat (until the Textual app replaces it): a plain line REPL."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from app import asking
from app.asking import Question
from app.context import Context
from app.errors import CoveyError
from app.pipeline import SlashCommand, parse_input

HELP = """Commands:
  /new            start a new conversation
  /system TEXT    set the system prompt of this conversation
  /history        list recent conversations
  /open ID        continue conversation ID
  /title TEXT     rename this conversation
  /help           this help
  /quit           leave (Ctrl-D works too; Ctrl-C stops an answer)"""


class ChatSession:
    """One interactive session; reads lines from `stdin`, writes to `stdout`."""

    def __init__(self, ctx: Context, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
        self.ctx = ctx
        self.stdin = stdin
        self.out = stdout
        self.conversation_id: str | None = None
        self.pending_system: str | None = None

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def run(self) -> int:
        self.say(f"covey — chatting with {self.ctx.model.info.name}. /help for commands.")
        while True:
            self.out.write("\nyou> ")
            self.out.flush()
            line = self.stdin.readline()
            if not line:
                self.say()
                return 0
            item = parse_input(line)
            try:
                if isinstance(item, SlashCommand):
                    if not self.command(item):
                        return 0
                elif item:
                    self.ask(item)
            except CoveyError as exc:
                self.say(f"error: {exc}")

    def ask(self, prompt: str) -> None:
        """Through the same front door as `covey ask`: `run_on`, named models and this
        device's warm node count here too."""
        cancel = threading.Event()
        system, self.pending_system = self.pending_system, None

        def started(where: asking.Started) -> None:
            self.conversation_id = where.conversation_id

        self.out.write("covey> ")
        try:
            asked = asking.ask(self.ctx, Question(prompt, self.conversation_id, system),
                               on_piece=self._piece, on_started=started, cancel=cancel)
        except KeyboardInterrupt:
            cancel.set()
            self.say("\n[stopped]")
            return
        if asked.status == "queued":
            self.say("[queued: no capable device is online; it runs when one appears]")
        else:
            self.say("" if asked.status == "done" else f"\n[{asked.status}]")

    def _piece(self, piece: str) -> None:
        self.out.write(piece)
        self.out.flush()

    def command(self, cmd: SlashCommand) -> bool:
        """Run a slash command; False means leave."""
        store = self.ctx.store
        if cmd.name in ("quit", "exit", "q"):
            return False
        if cmd.name == "new":
            self.conversation_id = None
            self.say("New conversation.")
        elif cmd.name == "system":
            if self.conversation_id:
                store.set_system_prompt(self.conversation_id, cmd.argument)
            else:
                self.pending_system = cmd.argument
            self.say("System prompt set.")
        elif cmd.name == "history":
            for row in store.list_conversations(limit=15):
                mark = "*" if row.id == self.conversation_id else " "
                self.say(f"{mark} {row.id[:12]}  {row.message_count:>3} msgs  {row.title}")
        elif cmd.name == "open":
            self.conversation_id = store.resolve(cmd.argument)
            conv = store.conversation(self.conversation_id)
            self.say(f"Continuing {conv.title!r} ({len(conv.messages)} messages).")
        elif cmd.name == "title":
            if not self.conversation_id or not cmd.argument:
                self.say("usage: /title TEXT, inside a conversation")
            else:
                store.set_title(self.conversation_id, cmd.argument)
                self.say("Renamed.")
        elif cmd.name == "help":
            self.say(HELP)
        else:
            self.say(f"unknown command /{cmd.name}; /help lists them")
        return True
