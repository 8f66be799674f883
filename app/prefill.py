"""While a long prompt is read (the model's prefill, before the first word), say so on stderr.

A 280 KB paste takes a small model half a minute to read; without a word the user cannot tell
it from a hang. On a terminal the line counts the seconds; elsewhere one line is printed.
"""

from __future__ import annotations

import sys
import threading
import time

LONG_PROMPT = 4_000  # characters; shorter prompts are read in well under a second


class PrefillNotice:
    def __init__(self, prompt_chars: int) -> None:
        self._long = prompt_chars >= LONG_PROMPT
        self._chars = prompt_chars
        self._done = threading.Event()
        self._shown = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one writer of the stderr line at a time

    def start(self) -> PrefillNotice:
        if self._long:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def say(self, text: str) -> None:
        """A notice about the prompt (what was left out of it), on its own line."""
        with self._lock:
            self._clear()
            print(f"covey: {text}", file=sys.stderr, flush=True)

    def first_piece(self) -> None:
        """The answer began: the notice goes away."""
        if self._done.is_set():
            return
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self._shown and sys.stderr.isatty():
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()

    def _tick(self) -> None:
        began = time.monotonic()
        if self._done.wait(1.0):
            return  # it started quickly after all
        self._shown = True
        what = f"reading the prompt ({self._chars:,} characters) before answering"
        if not sys.stderr.isatty():
            print(f"covey: {what}…", file=sys.stderr, flush=True)
            return
        while not self._done.wait(0.5):
            with self._lock:
                sys.stderr.write(f"\r{what}… {time.monotonic() - began:.0f} s")
                sys.stderr.flush()
