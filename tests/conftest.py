"""Shared fixtures. Every test gets its own COVEY_HOME: nothing ever touches the real home."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Config, Paths
from models.fake import FakeModel
from sync.store import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def covey_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("COVEY_HOME", str(home))
    return home


@pytest.fixture
def paths(covey_home: Path) -> Paths:
    return Paths(covey_home, covey_home)


@pytest.fixture
def store(paths: Paths) -> Iterator[Store]:
    s = Store.open(paths, device_id="DEVICE-A")
    yield s
    s.close()


@pytest.fixture
def fake_model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def config() -> Config:
    return Config(auto_title=False)


def run_covey(
    *args: str,
    home: Path,
    input: bytes | None = None,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `covey` CLI in a subprocess with its own COVEY_HOME."""
    full_env = {**os.environ, "COVEY_HOME": str(home), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        input=input if input is not None else b"",
        capture_output=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode,
        result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace"),
    )


def assert_clean_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A failed command: non-zero exit, one line on stderr, no traceback, the words we expect."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def make_device(tmp_path: Path) -> Iterator[object]:
    """A factory of covey devices (separate homes and processes); all stopped afterwards."""
    import signal

    from tests.devices import Device

    made: list[Device] = []

    def make(name: str, model: str = "fake", extra_config: str = "", **kwargs: object) -> Device:
        device = Device(tmp_path, name, model=model, **kwargs)  # type: ignore[arg-type]
        if extra_config:
            with (device.home / "config.toml").open("a") as fh:
                fh.write(extra_config)
        made.append(device)
        return device

    yield make
    for device in made:
        if device.proc is not None and device.proc.poll() is None:
            device.proc.send_signal(signal.SIGCONT)  # a test may have frozen it
        device.kill()
