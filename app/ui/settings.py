"""The settings screen: model file, generation parameters, where answers run, device name.

Saved to config.toml (the same file `covey` reads everywhere) and applied at once to this
session; a different model file is loaded at the next start.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select

from app.config import Config
from app.context import Context
from app.errors import ConfigError
from app.household_status import read_status

#: (config key, label, placeholder) of the text fields, in screen order.
FIELDS = [
    ("device_name", "Device name", "how other devices see this one"),
    ("model", "Model file (GGUF)", "empty: the bundled SmolLM2-135M-Instruct"),
    ("temperature", "Temperature", "0 = always the likeliest word; 0.7 default"),
    ("top_p", "Top p", "0.95 default"),
    ("max_tokens", "Longest answer (tokens)", "512 default"),
    ("context_length", "Context window (tokens)", "4096 default"),
    ("seed", "Seed", "empty: a new one each time"),
    ("system_prompt", "Default system prompt", "empty: none"),
]


#: Fields whose hint names a default: left empty, they take it.
DEFAULTED = ("temperature", "top_p", "max_tokens", "context_length")


class SettingsScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"),
                Binding("ctrl+s", "save", "Save")]

    def __init__(self, ctx: Context) -> None:
        super().__init__(classes="dialog")
        self.ctx = ctx

    def compose(self) -> ComposeResult:
        config = self.ctx.config
        with VerticalScroll(classes="box wide", id="settings-box"):
            yield Label("Settings", classes="heading")
            for key, label, hint in FIELDS:
                value = getattr(config, key)
                with Horizontal(classes="row"):
                    yield Label(label, classes="field-label")
                    yield Input("" if value is None else str(value), placeholder=hint, id=key,
                                compact=True)
            with Horizontal(classes="row"):
                yield Label("Where answers run", classes="field-label")
                yield Select(self._places(), value=config.run_on, allow_blank=False, id="run_on",
                             compact=True)
            with Horizontal(classes="row"):
                yield Label("Theme", classes="field-label")
                yield Select([("Dark", "textual-dark"), ("Light", "textual-light")],
                             value=config.theme if config.theme in ("textual-dark", "textual-light")
                             else "textual-dark", allow_blank=False, id="theme", compact=True)
            yield Label(f"Saved in {self.ctx.paths.config_file} · Ctrl+S saves · Esc cancels",
                        classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#device_name", Input).focus()

    def _places(self) -> list[tuple[str, str]]:
        places = [("Automatic: whichever device answers soonest", "auto"),
                  ("This device", "local")]
        status = read_status(self.ctx.store, self.ctx.paths.locks_dir)
        for device in status.others:
            runs = f"{device.model}, {device.tok_s:.0f} tok/s" if device.can_run_models \
                else "no model served"
            places.append((f"{device.name} ({runs})", device.name))
        run_on = self.ctx.config.run_on
        if run_on not in [value for _, value in places]:
            places.append((f"{run_on} (not paired now)", run_on))
        return places

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        try:
            config = self._read()
        except ConfigError as exc:
            self.notify(str(exc).replace("settings: ", ""), severity="error")
            return
        old_model = self.ctx.config.model
        config.save(self.ctx.paths.config_file)
        for key, value in asdict(config).items():  # the running session uses them from now on
            setattr(self.ctx.config, key, value)
        self.app.theme = config.theme
        note = " The new model loads when covey starts next." if config.model != old_model else ""
        self.notify(f"Settings saved.{note}")
        self.dismiss(True)

    def _read(self) -> Config:
        raw: dict[str, Any] = asdict(self.ctx.config)
        for key, label, _ in FIELDS:
            text = self.query_one(f"#{key}", Input).value.strip()
            kind = type(getattr(Config(), key))
            if not text:
                if key in DEFAULTED:  # the field hints its default: empty means that
                    raw[key] = getattr(Config(), key)
                    continue
                if key == "device_name":
                    raise ConfigError(f"{label}: needs a value")
                raw[key] = None
                continue
            try:
                raw[key] = float(text) if kind is float else int(text) if key in (
                    "max_tokens", "context_length", "seed") else text
            except ValueError:
                raise ConfigError(f"{label}: {text!r} is not a number") from None
        raw["run_on"] = self.query_one("#run_on", Select).value
        raw["theme"] = self.query_one("#theme", Select).value
        clean = {k: v for k, v in raw.items() if v is not None}
        return Config.from_mapping(clean, source="settings")
