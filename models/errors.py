"""The base of covey's one error family, and the model's own errors.

Every error a user or a peer can cause is a `CoveyError`; the CLI prints its message as one
line and exits non-zero, never a traceback. Messages say what happened and what to do. The base
lives here, in the lowest floor (models/ imports nothing of covey's), so that every layer that
raises can import it: sync/ adds the store's errors (sync/errors.py), app/ the user's
(app/errors.py, which also gathers them all for its callers).
"""

from __future__ import annotations


class CoveyError(Exception):
    """Base of every error covey raises on purpose."""

    exit_code: int = 1


class ModelError(CoveyError):
    """The model file is missing, unreadable, not a GGUF model, or generation failed."""


class ContextOverflowError(ModelError):
    """The request cannot fit in the model's context window even after trimming."""
