"""The pairing screen: show a one-time code and wait for the other device, or enter its code.

Showing a code opens an offer in the store; this device's node (hosted by the app, or `covey
serve`) answers the other device and marks the offer used, which the screen watches for.
Entering a code runs the joining side in a worker thread (mDNS finds the inviter unless an
address is given).
"""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Label

from app.context import Context
from app.errors import CoveyError
from sync import household, offers, pairing
from sync.nodelock import NodeLock

CODE_MINUTES = 5


class PairingScreen(ModalScreen[bool]):
    """Dismissed with True once a device was paired."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, ctx: Context) -> None:
        super().__init__(classes="dialog")
        self.ctx = ctx
        self.code: str | None = None
        self.expires_at = 0.0
        self.paired = False
        self._watch: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="box wide"):
            yield Label("Pair a device", classes="heading")
            yield Label("Devices in one household share every conversation, and can hand "
                        "answers to each other. Nothing leaves your devices.", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Show a code", variant="primary", id="invite")
                yield Button("Enter a code", id="join")
            yield Label("", id="code", markup=False)
            yield Label("", id="status", markup=False)
            with Vertical(id="join-form"):
                yield Input(placeholder="the code shown on the other device, e.g. 7-violet-anchor",
                            id="join-code")
                yield Input(placeholder="its address HOST:PORT (optional: found on the LAN)",
                            id="join-address")
                yield Button("Pair", variant="primary", id="join-go")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#join-form").display = False
        self.query_one("#invite", Button).focus()

    def _status(self, text: str) -> None:
        self.query_one("#status", Label).update(text)

    # -- showing a code ----------------------------------------------------------------------

    @on(Button.Pressed, "#invite")
    def invite(self) -> None:
        self.query_one("#join-form").display = False
        self._withdraw()
        if not NodeLock.held(self.ctx.paths.locks_dir):
            self._status("No node runs on this device, so no one can reach it: start "
                         "`covey serve`, or set sync_in_app = true.")
            return
        store = self.ctx.store
        household.ensure(store, self.ctx.identity, self.ctx.config.device_name)
        self.code = pairing.new_code()
        offer = offers.open_offer(store, self.code, ttl=CODE_MINUTES * 60)
        self.expires_at = offer.expires_at
        self.query_one("#code", Label).update(f"   {self.code}   ")
        self._status(f"On the other device: covey pair {self.code}  (or Pair → Enter a code). "
                     f"Works once, for {CODE_MINUTES} minutes.")
        self._watch = self.set_interval(0.25, self._check_offer)

    def _check_offer(self) -> None:
        if self.code is None:
            return
        state, device_id, reason, _ = offers.offer_state(self.ctx.store, self.code)
        if state == "used" and device_id:
            name = next((d.name for d in household.devices(self.ctx.store)
                         if d.device_id == device_id), device_id)
            self._done(f"Paired with {name} ✓  ({device_id})")
        elif state == "failed":
            self._stop_watch()
            self._status(f"Pairing failed: {reason or 'the other side gave up'}. "
                         "Show a new code to try again.")
        elif time.time() > self.expires_at:
            self._stop_watch()
            self._status("The code expired. Show a new one to try again.")
        elif state == "open" and reason:  # wrong tries were made; the code stays open
            self._status(f"Someone tried a wrong code: {reason}. The code stays open for "
                         f"{max(0, int(self.expires_at - time.time()))} s.")

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        self.code = None
        self.query_one("#code", Label).update("")

    def _withdraw(self) -> None:
        """Close an open code nobody used (a code is only good while the screen shows it)."""
        if self.code is not None:
            state, *_ = offers.offer_state(self.ctx.store, self.code)
            if state == "open":
                offers.finish_offer(self.ctx.store, self.code, "failed",
                                     reason="withdrawn")
        self._stop_watch()

    # -- entering a code ---------------------------------------------------------------------

    @on(Button.Pressed, "#join")
    def _show_join(self) -> None:
        self._withdraw()
        self._status("")
        self.query_one("#join-form").display = True
        self.query_one("#join-code", Input).focus()

    @on(Button.Pressed, "#join-go")
    @on(Input.Submitted, "#join-code, #join-address")
    def _join(self) -> None:
        code = self.query_one("#join-code", Input).value.strip()
        address = self.query_one("#join-address", Input).value.strip() or None
        if not code:
            self._status("Type the code the other device shows.")
            return
        from app.joining import switch_warning
        from app.ui.dialogs import Confirm

        def go(yes: bool | None = True) -> None:
            if yes:
                self._status("Pairing…" if address else "Looking for the device on the LAN…")
                self.join(code, address)
            else:
                self._status("Not paired: this device stays in its household.")

        warning = switch_warning(self.ctx)
        if warning is None:
            go()
        else:  # switching households is a decision, not a side effect
            self.app.push_screen(Confirm(warning[0].upper() + warning[1:] + " Switch?",
                                         yes="Switch household"), go)

    @work(thread=True, exclusive=True)
    def join(self, code: str, address: str | None) -> None:
        from app.joining import join_household

        try:
            inviter = join_household(self.ctx, code, address, say=lambda line: None)
        except CoveyError as exc:
            self.app.call_from_thread(self._status, f"Pairing failed: {exc}")
            return
        except OSError as exc:
            self.app.call_from_thread(self._status, f"Could not reach it: {exc.strerror or exc}")
            return
        self.app.call_from_thread(self._done, f"Paired with {inviter.name} ✓  ({inviter.device_id})")

    def _done(self, text: str) -> None:
        self._stop_watch()
        self.paired = True
        self._status(text + " — press Esc to close.")
        self.notify(text)

    def action_close(self) -> None:
        self._withdraw()
        self.dismiss(self.paired)
