"""Choosing a conversation's model in the terminal app: a picker of every model of the
household (where it runs, how fast); the chosen one answers through app/asking.py."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from app import model_choice
from app.context import Context
from app.model_choice import Listed


def picker_rows(ctx: Context) -> list[Listed]:
    """Usable models, this device's first, then each other device's, fastest first."""
    me = ctx.store.device_id
    rows = [m for m in model_choice.household_models(ctx) if not m.unusable]
    return sorted(rows, key=lambda m: (m.device_id != me, m.device_name, -(m.tok_s or 0.0),
                                       m.name.lower()))


class ModelPicker(ModalScreen[str | None]):
    """Every model of the household; Enter chooses (dismissed with its name), Esc cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, rows: list[Listed], current: str) -> None:
        super().__init__(classes="dialog")
        self.rows, self.current = rows, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="box"):
            yield Label(f"Model for this conversation (now: {self.current})", markup=False)
            options = []
            for n, m in enumerate(self.rows):
                speed = f"{m.tok_s:.0f} tok/s" if m.tok_s else "speed not measured"
                text = f"{m.name}  ·  {m.device_name}  ·  {m.params} {m.quant}  ·  {speed}"
                options.append(Option(text, id=str(n)))
            yield OptionList(*options, id="models")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.rows[int(event.option.id or 0)].name)

