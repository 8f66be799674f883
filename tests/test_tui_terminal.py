"""The real app, the real model, a real terminal (tmux): launch → ask → streamed answer → quit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.config import Paths
from sync.store import Store
from tests.conftest import ROOT
from tests.devices import free_port

pytestmark = [pytest.mark.real_model,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def test_ask_in_the_app_and_quit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # The app hosts this device's node while open: keep it on loopback, with mDNS off.
    (home / "config.toml").write_text(f'mdns = false\nlisten = "127.0.0.1:{free_port()}"\n')
    session = f"covey-test-{os.getpid()}"
    covey = Path(sys.executable).parent / "covey"
    tmux("new-session", "-d", "-s", session, "-x", "110", "-y", "30",
         f"cd {ROOT} && COVEY_HOME={home} {covey}; echo APP-EXITED=$?; sleep 60")
    try:
        deadline = time.monotonic() + 60
        while "Regenerate" not in tmux("capture-pane", "-t", session, "-p"):
            assert time.monotonic() < deadline, tmux("capture-pane", "-t", session, "-p")
            time.sleep(0.2)
        tmux("send-keys", "-t", session, "What is the capital of France?", "Enter")
        answer = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (home / "covey.db").exists():
                store = Store.open(Paths.at(home), "TEST")
                try:
                    conv_id = store.latest_conversation_id()
                    if conv_id:
                        messages = store.conversation(conv_id).messages
                        if len(messages) == 2 and messages[1].status == "done":
                            answer = messages[1].text
                            break
                finally:
                    store.close()
            time.sleep(0.3)
        assert answer.strip(), "no answer was stored"
        screen = tmux("capture-pane", "-t", session, "-p")
        first_words = " ".join(answer.split()[:3])
        assert first_words in " ".join(screen.split()), screen  # streamed onto the screen
        tmux("send-keys", "-t", session, "C-q")
        deadline = time.monotonic() + 20
        while "APP-EXITED=0" not in tmux("capture-pane", "-t", session, "-p"):
            assert time.monotonic() < deadline, tmux("capture-pane", "-t", session, "-p")
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
