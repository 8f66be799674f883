"""The household bar (who is paired, online, syncing, able to run models) and the devices screen.

Both read `app.household_status` — the state this device's node keeps in the store — the bar
every 2 s when the store changed, the open devices screen every second; neither talks to the
sync layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Click
from textual.message import Message as UIMessage
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from app.context import Context
from app.errors import CoveyError
from app.household_status import DeviceStatus, HouseholdStatus, ago, read_status
from app.ui.dialogs import Confirm
from sync import household
from sync.nodelock import NodeLock

DOTS = {"online": "●", "syncing": "◐", "offline": "○", "this device": "◆", "revoked": "✕"}


def describe(device: DeviceStatus) -> str:
    """'pi ● online · runs smollm2 78 tok/s' — one device in a line."""
    state = device.state
    if device.progress:  # a catch-up under way: "◐ bravo 4,210/10,000" (fits 80 columns)
        return f"{DOTS['syncing']} {device.name} {device.catch_up_done:,}/{device.catch_up_total:,}"
    parts = [f"{DOTS.get(state, '?')} {device.name}"]
    if state == "offline":
        parts.append(f"last seen {ago(device.last_seen, coarse=True)}")
    elif state != "this device":
        parts.append(state)
    if device.can_run_models:
        parts.append(f"runs {device.tok_s:.0f} tok/s")
    return " ".join(parts)


class HouseholdBar(Static):
    """One line over the chat: this device, its node, and each paired device."""

    class Clicked(UIMessage):
        pass

    def __init__(self, ctx: Context | None, **kwargs: Any) -> None:  # (Textual's own keywords)
        super().__init__("", markup=False, **kwargs)
        self.ctx = ctx
        self.status: HouseholdStatus | None = None
        self._told = False  # the user was told the node failed
        self._shown: str | None = None
        self._probe: Callable[[], int] | None = None
        self._read_at: tuple[int, bool] | None = None

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(2.0, self.refresh_status)  # (cheap when nothing changed; see _read)

    def refresh_status(self) -> None:
        if self.ctx is None:
            return
        try:
            self.status = self._read()
        except Exception as exc:  # a status line must never take the app down
            self._show(f"household: unavailable ({exc})")
            return
        self._show(self.line(self.status))

    def _read(self) -> HouseholdStatus:
        """The status, read again only when the store or the node changed (reading it evaluates
        the household's signed log): an idle bar costs two tiny checks every 2 s."""
        assert self.ctx is not None
        if self._probe is None:
            self._probe = self.ctx.store.change_probe()
        key = (self._probe(), NodeLock.held(self.ctx.paths.locks_dir))
        if self.status is None or key != self._read_at:
            self.status = read_status(self.ctx.store, self.ctx.paths.locks_dir)
            self._read_at = key
        return self.status

    def _show(self, text: str) -> None:
        # Updating a Static lays the whole screen out again: only when the line changed, or an
        # idle app repaints every second for nothing.
        if text != self._shown:
            self._shown = text
            self.update(text)

    def line(self, status: HouseholdStatus) -> str:
        me = self.ctx.config.device_name if self.ctx else "this device"
        node = "sync on" if status.node_running else "sync off (no node)"
        error = getattr(getattr(self.app, "node", None), "error", None)
        if error and not status.node_running:
            node = "sync off (the node failed: see the notice)"
            if not self._told:
                self._told = True
                self.notify(f"Sync is off: this device's node stopped — {error}",
                            severity="warning", timeout=15)
        others = status.others
        devices = " │ ".join(describe(d) for d in others) if others else \
            "no paired devices yet (Ctrl+O → p to pair)"
        return f"◆ {me} · {node} │ {devices}"

    def on_click(self, event: Click) -> None:
        self.post_message(self.Clicked())


class DevicesScreen(ModalScreen[None]):
    """Every device of the household with its details; pair a new one or remove one."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close"),
                Binding("p", "pair", "Pair a device"),
                Binding("x", "remove", "Remove device")]

    COLUMNS = ("name", "state", "last seen", "last sync", "model", "tok/s", "address", "device id")

    def __init__(self, ctx: Context) -> None:
        super().__init__(classes="dialog")
        self.ctx = ctx
        self.rows: list[DeviceStatus] = []
        self._cells: list[tuple[str, ...]] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="box wide"):
            yield Label("Devices in this household", classes="heading")
            yield DataTable(id="devices", cursor_type="row", zebra_stripes=True)
            yield Label("", id="details", markup=False, classes="hint")
            yield Label("", id="note", markup=False, classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*self.COLUMNS)
        self.refresh_rows()
        self.set_interval(1.0, self.refresh_rows)
        table.focus()

    def refresh_rows(self) -> None:
        status = read_status(self.ctx.store, self.ctx.paths.locks_dir)
        table = self.query_one(DataTable)
        cells: list[tuple[str, ...]] = [(d.name, f"{DOTS.get(d.state, '?')} {d.state}",
                  "now" if d.this_device or d.online else ago(d.last_seen),
                  "—" if d.this_device else ago(d.last_sync),
                  d.model if d.can_run_models else "—",
                  f"{d.tok_s:.0f}" if d.can_run_models else "—",
                  d.address or "—", d.device_id) for d in status.devices]
        if cells == self._cells:
            return  # nothing changed on screen: leave the table (and its cursor) alone
        cursor = table.cursor_row
        table.clear()
        self.rows, self._cells = status.devices, cells
        for d, row in zip(self.rows, cells):
            table.add_row(*row, key=d.device_id)
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1))
        note = ""
        if not status.node_running:
            note = ("No node runs on this device: nothing syncs until `covey serve` (or the app, "
                    "with sync_in_app) runs it.")
        elif len(self.rows) <= 1:
            note = "Only this device so far: press p to pair another."
        if str(self.query_one("#note", Label).render()) != note:
            self.query_one("#note", Label).update(note)

    @on(DataTable.RowHighlighted)
    def _details(self, event: DataTable.RowHighlighted) -> None:
        d = next((r for r in self.rows if r.device_id == event.row_key.value), None)
        if d is not None:
            serves = "answers for the household" if d.can_run_models else "does not run models " \
                "for others"
            if d.can_run_models and d.measured_at:
                serves += f" (speed measured {ago(d.measured_at)})"
            ended = f"\nlast session ended: {d.last_error}" if d.last_error and not d.online else ""
            self.query_one("#details", Label).update(
                f"{d.name}: {d.device_id}\nfingerprint {d.fingerprint[:32]}…\n{serves}{ended}")

    def action_pair(self) -> None:
        from app.ui.pairing import PairingScreen

        self.app.push_screen(PairingScreen(self.ctx), lambda _: self.refresh_rows())

    def action_remove(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return
        d = self.rows[table.cursor_row]
        if d.this_device or d.revoked:
            self.notify("Choose another device (this one cannot remove itself).",
                        severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                from app.household_commands import describe_revocation

                try:
                    gone = household.revoke(self.ctx.store, self.ctx.identity, d.device_id)
                except CoveyError as exc:
                    self.notify(str(exc), severity="error")
                    return
                self.notify(describe_revocation(gone), timeout=10)
                self.refresh_rows()

        self.app.push_screen(Confirm(f"Remove {d.name} from the household? It will no longer "
                                     "sync with any of your devices.", yes="Remove"), done)
