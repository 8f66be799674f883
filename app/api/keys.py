"""API keys for the HTTP API: made, listed, revoked; stored hashed, never logged.

A key belongs to this device's listener (it is not synced): `api_keys.json` in the data
directory holds each key's name, its SHA-256 and when it was made. A key is 32 random bytes,
so a plain hash is enough (no one guesses such a key, so there is nothing to stretch).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from app.errors import UsageError

PREFIX = "covey-"
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: str
    created: float


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    def __init__(self, path: Path) -> None:
        self.path = path

    def keys(self) -> list[ApiKey]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path} cannot be read ({exc}); fix or remove it") from None
        return [ApiKey(str(k["name"]), str(k["sha256"]), float(k.get("created", 0)))
                for k in raw.get("keys", []) if isinstance(k, dict) and "sha256" in k]

    def create(self, name: str) -> str:
        """A new key named `name`; the key itself is returned once and never stored."""
        if not name or len(name) > 64 or set(name) - NAME_CHARS:
            raise UsageError("a key's name is 1-64 letters, digits, '-', '_' or '.', "
                             "e.g. covey api-key create editor")
        keys = self.keys()
        if any(k.name == name for k in keys):
            raise UsageError(f"a key named {name!r} exists; revoke it first "
                             f"(covey api-key revoke {name}) or choose another name")
        key = PREFIX + secrets.token_urlsafe(32)
        self._save(keys + [ApiKey(name, _digest(key), time.time())])
        return key

    def revoke(self, name: str) -> None:
        keys = self.keys()
        if not any(k.name == name for k in keys):
            known = ", ".join(k.name for k in keys) or "none"
            raise UsageError(f"no API key named {name!r} (keys: {known})")
        self._save([k for k in keys if k.name != name])

    def check(self, key: str) -> str | None:
        """The name of the key `key` is, or None. Compared in constant time."""
        digest = _digest(key)
        found = None
        for k in self.keys():
            if hmac.compare_digest(k.digest, digest):
                found = k.name
        return found

    def _save(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {"keys": [{"name": k.name, "sha256": k.digest, "created": k.created}
                         for k in keys]}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
