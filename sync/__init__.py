"""Conversation store (Loro documents persisted in SQLite), identity, and (later) peer sync."""


def _sqlite_utils_without_numpy() -> None:
    """sqlite-utils imports numpy when it can (to store numpy values, which covey never does):
    110–240 ms of every command's start. Import it once with numpy hidden; numpy itself stays
    importable for whoever needs it (llama.cpp, the GGUF reader)."""
    import sys

    if "sqlite_utils" in sys.modules or "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # (an ImportError for sqlite-utils)
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["numpy"]


_sqlite_utils_without_numpy()
