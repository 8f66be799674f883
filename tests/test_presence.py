"""Presence you can trust, prompt reconnection, online at once — devices as real processes.

mDNS is off in all of these: names, models, speeds and addresses must come from the peers
themselves (HELLO and the household document).
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.devices import Device, eventually, pair


@pytest.fixture
def devices(make_device):  # type: ignore[no-untyped-def]
    return make_device


def seen_by(observer: Device, other: Device) -> dict:  # type: ignore[type-arg]
    rows = json.loads(observer.covey("devices", "--json").stdout)
    return next(r for r in rows if r["device_id"] == other.device_id)


def online(observer: Device, other: Device) -> bool:
    """What `covey devices` says of `other`, read in this process (the same read_status, without
    a process start per look: the figures measure the node, not the looking)."""
    from app.config import Paths
    from app.household_status import read_status

    store = observer.store()
    try:
        status = read_status(store, Paths.at(observer.home).locks_dir)
    finally:
        store.close()
    return next(d for d in status.devices if d.device_id == other.device_id).online


def agree(observer: Device, other: Device, expected: bool) -> None:
    """`devices`, `peers` and `status` tell the same story."""
    assert seen_by(observer, other)["online"] is expected
    peers = json.loads(observer.covey("peers", "--json").stdout)
    assert next(p for p in peers if p["device_id"] == other.device_id)["online"] is expected
    status = json.loads(observer.covey("status", "--json").stdout)
    assert status["peers_online"] == (1 if expected else 0)


def timed(check, timeout: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    eventually(check, timeout=timeout, interval=0.1)
    return time.monotonic() - started


def test_stopped_killed_and_frozen_peers_go_offline_within_10_s_and_reconnect_within_2_s(devices) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("alpha"), devices("bravo")
    pair(a, b)
    a.serve()
    b.serve()
    eventually(lambda: online(a, b) and online(b, a), timeout=20)
    agree(a, b, True)
    figures = {}

    b.stop()
    figures["stop → offline"] = timed(lambda: not online(a, b), 10)
    agree(a, b, False)
    started = time.monotonic()
    b.serve()  # (returns once it listens)
    eventually(lambda: online(a, b) and online(b, a), timeout=10, interval=0.05)
    figures["restart → online"] = time.monotonic() - started

    assert b.proc is not None
    b.proc.send_signal(signal.SIGSTOP)  # frozen: its sockets stay open, it answers nothing
    figures["freeze → offline"] = timed(lambda: not online(a, b), 10)
    b.proc.send_signal(signal.SIGCONT)
    eventually(lambda: online(a, b), timeout=10)

    b.kill()
    killed = time.time()
    figures["kill -9 → offline"] = timed(lambda: not online(a, b), 10)
    agree(a, b, False)
    last_seen = seen_by(a, b)["last_seen"]
    assert killed - 5 <= last_seen <= killed + 1  # the last time we heard from it
    started = time.monotonic()
    b.serve()
    eventually(lambda: online(a, b) and online(b, a), timeout=10, interval=0.05)
    figures["restart after kill → online"] = time.monotonic() - started
    print("\n" + "\n".join(f"{k}: {v:.2f} s" for k, v in figures.items()))
    assert figures["restart → online"] <= 2.0 and figures["restart after kill → online"] <= 2.0


def test_names_models_speeds_and_listen_addresses_with_mdns_off(devices) -> None:  # type: ignore[no-untyped-def]
    a = devices("alpha", "fake:delay=0.005,name=alpha-model")
    b = devices("bravo", "fake:delay=0.01,name=bravo-model")
    pair(a, b)
    a.serve()
    b.serve(a)  # bravo dials alpha: alpha sees it come from an ephemeral port
    def bravo_as_seen() -> dict | None:  # type: ignore[type-arg]
        peers = json.loads(a.covey("peers", "--json").stdout)
        row = next(p for p in peers if p["device_id"] == b.device_id)
        return row if row["online"] and row["can_run_models"] else None

    row = eventually(bravo_as_seen, timeout=30, interval=0.2)
    assert row["name"] == "bravo" and row["model"] == "bravo-model"
    assert row["tok_s"] > 10 and row["measured_at"]
    assert row["addresses"] == [b.address]  # where it listens, not the port it dialled from
    me = next(r for r in json.loads(a.covey("devices", "--json").stdout) if r["this_device"])
    assert me["last_seen"] is not None and abs(me["last_seen"] - time.time()) < 60
    assert "last seen now" in a.covey("devices").stdout


def test_serve_listens_at_once_with_the_real_model_then_advertises_it(devices) -> None:  # type: ignore[no-untyped-def]
    a = devices("alpha", "")  # the bundled model
    b = devices("bravo")
    pair(a, b)
    b.serve()
    started = time.monotonic()
    a.serve()  # returns when "listening on" is in its log
    listening = time.monotonic() - started
    print(f"\ncovey serve with the real model: listening after {listening:.2f} s")
    assert listening <= 1.0
    # The model loads and is measured in the background, then the household hears of it.
    row = eventually(lambda: next(
        (p for p in json.loads(b.covey("peers", "--json").stdout)
         if p["device_id"] == a.device_id and p["can_run_models"]), None), timeout=60)
    assert "SmolLM2" in row["model"] and row["tok_s"] > 0


@pytest.mark.parametrize("offset", ["-2d", "-1y", "+25y"])
def test_a_device_whose_clock_is_far_off_still_syncs_and_is_told(devices, offset: str) -> None:  # type: ignore[no-untyped-def]
    from tests.test_delegation import skewed

    a, b = devices("alpha"), devices("bravo")
    pair(a, b)
    a.serve()
    b.serve(prefix=skewed(offset))
    assert a.covey("ask", "--model", "fake", "from alpha").returncode == 0
    eventually(lambda: len(b.history()) == 1, timeout=20)
    eventually(lambda: "its clock is" in a.covey("devices").stdout, timeout=10)
    assert "differs from this device's by" in a.log.read_text()


def test_a_certificate_made_while_the_clock_was_ahead_still_syncs(devices) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.test_delegation import skewed

    a = devices("alpha")
    b_home = a.home.parent / "bravo"
    b_home.mkdir()
    # bravo's identity is made while its clock is 3 days ahead; then its clock is put right
    subprocess.run([*skewed("+3d"), sys.executable, "-m", "app", "id"], check=True, cwd=ROOT,
                   env={**a.env(), "COVEY_HOME": str(b_home)}, capture_output=True)
    b = devices("bravo")
    pair(a, b)
    a.serve()
    b.serve()
    assert a.covey("ask", "--model", "fake", "from alpha").returncode == 0
    eventually(lambda: len(b.history()) == 1, timeout=20)


def test_a_device_a_year_ahead_does_not_keep_its_conversation_on_top(devices) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.test_delegation import skewed

    a, b = devices("alpha"), devices("bravo")
    pair(a, b)
    a.serve()
    b.serve(prefix=skewed("+1y"))
    future = subprocess.run([*skewed("+1y"), sys.executable, "-m", "app", "ask", "--model",
                             "fake", "written a year ahead"], env=b.env(), cwd=ROOT,
                            capture_output=True, timeout=120)
    assert future.returncode == 0, future.stderr
    eventually(lambda: len(a.history()) == 1, timeout=20)
    assert a.covey("ask", "--model", "fake", "written here, now").returncode == 0
    first = a.history()[0]
    shown = json.loads(a.covey("show", first["id"], "--json").stdout)
    assert shown["messages"][0]["text"] == "written here, now"  # the newest here is on top
    assert a.covey("ask", "--model", "fake", "--continue", "and more").returncode == 0
    shown = json.loads(a.covey("show", first["id"], "--json").stdout)
    assert [m["text"] for m in shown["messages"] if m["role"] == "user"] == [
        "written here, now", "and more"]  # --continue went into this device's newest
