"""The Textual terminal UI: screens and widgets (tui.py is the thin entry point)."""
