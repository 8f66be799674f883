"""The project's one error family, gathered for app/ (and the CLI, which prints any
`CoveyError` as one line and exits non-zero, never a traceback).

Each error is defined by the lowest layer that raises it: the base and the model's errors in
models/errors.py, the store's in sync/errors.py, the user's here.
"""

from __future__ import annotations

from models.errors import ContextOverflowError, CoveyError, ModelError
from sync.errors import (
    CorruptStoreError,
    InvalidUpdateError,
    StoreError,
    UnknownConversationError,
)


class UsageError(CoveyError):
    """The user asked for something that cannot be done as asked (bad argument, empty prompt)."""

    exit_code = 2


class ConfigError(CoveyError):
    """The configuration file cannot be read or holds a bad value."""


class ImportFormatError(CoveyError):
    """A file given to `covey import` is not in a format covey can read."""


__all__ = ["ConfigError", "ContextOverflowError", "CorruptStoreError", "CoveyError",
           "ImportFormatError", "InvalidUpdateError", "ModelError", "StoreError",
           "UnknownConversationError", "UsageError"]
