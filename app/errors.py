"""The project's one error family.

Every error a user or a peer can cause is a `CoveyError`; the CLI prints its message as one
line and exits non-zero, never a traceback. Messages say what happened and what to do.
"""

from __future__ import annotations


class CoveyError(Exception):
    """Base of every error covey raises on purpose."""

    exit_code: int = 1


class UsageError(CoveyError):
    """The user asked for something that cannot be done as asked (bad argument, empty prompt)."""

    exit_code = 2


class ConfigError(CoveyError):
    """The configuration file cannot be read or holds a bad value."""


class ModelError(CoveyError):
    """The model file is missing, unreadable, not a GGUF model, or generation failed."""


class ContextOverflowError(ModelError):
    """The request cannot fit in the model's context window even after trimming."""


class StoreError(CoveyError):
    """The conversation store cannot be opened or written."""


class CorruptStoreError(StoreError):
    """The database file is damaged or is not a covey store."""


class UnknownConversationError(StoreError):
    """No conversation has the given id (or the prefix is ambiguous)."""


class InvalidUpdateError(StoreError):
    """Update bytes from elsewhere were refused (malformed CRDT data); nothing was changed."""


class ImportFormatError(CoveyError):
    """A file given to `covey import` is not covey's JSON export format."""
