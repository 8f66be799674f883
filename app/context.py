"""What a covey command runs with: paths, settings, identity, store and model, made on demand.

Commands that never generate never load the model; commands that never read conversations
never open the store.
"""

from __future__ import annotations

from functools import cached_property

from app.assistant import Assistant
from app.config import Config, Paths
from app.model_choice import Choice, choose
from models.base import ChatModel
from models.registry import get_model
from sync.identity import Identity, load_or_create
from sync.store import Store


class Context:
    def __init__(self, model: str | None = None, paths: Paths | None = None) -> None:
        self.paths = paths or Paths.discover()
        self.config = Config.load(self.paths.config_file)
        if model:
            self.config.model = model
        self._other: tuple[str | None, Assistant] | None = None  # see assistant_for

    @cached_property
    def identity(self) -> Identity:
        self.paths.ensure()
        return load_or_create(self.paths.identity_dir, self.config.device_name)

    @cached_property
    def store(self) -> Store:
        store = Store.open(self.paths, self.identity.device_id, self.config.compact_after)
        store.recover_interrupted()
        return store

    @cached_property
    def model_choice(self) -> Choice:
        """What the configured model (`--model`, `model =`) means: a file here, or a name only
        another device of the household has."""
        return choose(self, self.config.model)

    @cached_property
    def model(self) -> ChatModel:
        """This device's model: the chosen one — or, when only another device has that, the
        configured default (which still sizes prompts here)."""
        choice = self.model_choice
        if choice.device_id is not None:
            default = Config.load(self.paths.config_file).model
            fallback = choose(self, default) if default != self.config.model else Choice(None)
            spec, name = (fallback.spec, fallback.name) if fallback.device_id is None else (None, None)
        else:
            spec, name = choice.spec, choice.name
        return get_model(spec, self.config.context_length, self.config.threads, name=name)

    @cached_property
    def assistant(self) -> Assistant:
        return Assistant(self.store, self.model, self.config)

    def assistant_for(self, name: str | None) -> tuple[Assistant, Choice]:
        """The assistant for a conversation's model `name` (None: this device's own), and what
        the name means. When only another device has it, this device's assistant (which still
        sizes the prompt) — the choice says where it runs. The last other model loaded here is
        kept, so a conversation's next answer does not load it again."""
        if not name:
            return self.assistant, Choice(None)
        choice = choose(self, name)
        if choice.device_id is not None or choice.name == self.model.info.name:
            return self.assistant, choice
        if self._other is None or self._other[0] != choice.spec:
            model = get_model(choice.spec, self.config.context_length, self.config.threads,
                              name=choice.name)
            self._other = (choice.spec, Assistant(self.store, model, self.config))
        return self._other[1], choice

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
