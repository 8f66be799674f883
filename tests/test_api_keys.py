"""API keys: a client on another device (its own network namespace) needs one; a wrong,
missing or revoked key gets 401 and nothing runs. Keys are stored hashed and never logged."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devices import Device, eventually
from tests.netns import Lan, lan_for_a_test


@pytest.fixture
def lan() -> Iterator[Lan]:
    yield from lan_for_a_test("ak")


def curl(inside: list[str], url: str, key: str | None = None,
         body: dict | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    args = [*inside, "curl", "-s", "-m", "30", "-w", "\n%{http_code}", url]
    if key is not None:
        args += ["-H", f"Authorization: Bearer {key}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    text, code = out.stdout.rsplit("\n", 1)
    return int(code), json.loads(text)


def test_another_device_needs_a_key_and_a_revoked_one_is_refused(lan: Lan, tmp_path: Path) -> None:
    ns_server, address = lan.plug(1)
    ns_client, _ = lan.plug(2)
    server = Device(tmp_path, "server", host=address, model="fake:name=house-model", api=True)
    inside = ["ip", "netns", "exec", ns_client]
    try:
        made = server.covey("api-key", "create", "editor")
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        assert key.startswith("covey-") and "shown only now" in made.stderr
        assert key not in (server.home / "api_keys.json").read_text()  # stored hashed
        server.serve(prefix=["ip", "netns", "exec", ns_server])
        eventually(lambda: "covey API on" in server.log.read_text(errors="replace"))
        server.settled()
        ask = {"model": "house-model", "messages": [{"role": "user", "content": "hi"}]}
        url = f"{server.api_url}/chat/completions"
        for path in ("/models", "/models/house-model", "/nothing-here"):
            assert curl(inside, server.api_url + path)[0] == 401, path  # every endpoint
        assert curl(inside, server.api_url.removesuffix("/v1") + "/")[0] == 401
        code, body = curl(inside, url, body=ask)
        assert code == 401 and body["error"]["code"] == "invalid_api_key"
        assert curl(inside, url, key="covey-wrong", body=ask)[0] == 401
        assert server.history() == []  # nothing ran
        code, body = curl(inside, url, key=key, body=ask)
        assert code == 200, body
        assert body["choices"][0]["message"]["content"] == "You said: hi"
        store = server.store()
        try:
            [row] = store.list_conversations()
            assert store.conversation(row.id).client == "editor"  # marked with the key's name
        finally:
            store.close()
        listed = server.covey("api-key", "list").stdout
        assert "editor" in listed and key not in listed
        assert server.covey("api-key", "revoke", "editor").returncode == 0
        assert curl(inside, url, key=key, body=ask)[0] == 401  # at once, no restart
        assert len(server.history()) == 1
        assert key not in server.log.read_text(errors="replace")  # never logged
        again = server.covey("api-key", "revoke", "editor")
        assert again.returncode != 0 and "no API key named 'editor'" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        server.stop()
