"""The OpenAI-compatible HTTP API: wire format, keys, catalog, front door, server."""
