"""Conversation store (Loro documents persisted in SQLite), identity, and (later) peer sync."""
