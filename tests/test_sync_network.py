"""Devices as separate processes on loopback: real TLS, real sockets, separate homes."""

from __future__ import annotations

import json
import random
import signal
import time

import pytest

from tests.devices import Device, eventually, pair

FAKE = ("--model", "fake")


@pytest.fixture
def devices(make_device):  # type: ignore[no-untyped-def]
    return make_device


def same(*devs: Device) -> bool:
    first = devs[0].contents()
    return bool(first) and all(d.contents() == first for d in devs[1:])


def test_two_devices_pair_then_converge(devices) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("alpha"), devices("beta")
    assert a.covey("ask", *FAKE, "written before pairing on a").returncode == 0
    pair(a, b)
    members = json.loads(b.covey("devices", "--json").stdout)
    assert {m["device_id"] for m in members} == {a.device_id, b.device_id}
    a.serve()
    b.serve()  # b learnt a's address at pairing and dials it
    assert b.covey("ask", *FAKE, "written on b").returncode == 0
    assert a.covey("ask", *FAKE, "written on a").returncode == 0
    eventually(lambda: same(a, b) and len(a.contents()) == 3)
    texts = {m[2] for msgs in a.contents().values() for m in msgs}
    assert {"written before pairing on a", "written on b", "written on a"} <= texts


def test_three_devices_in_a_line_and_a_triangle_converge(devices) -> None:  # type: ignore[no-untyped-def]
    a, b, c = devices("a"), devices("b"), devices("c")
    pair(a, b, "3-amber-anchor")
    pair(b, c, "4-amber-anchor")  # c joins through b; a learns of c when the household syncs
    a.serve()
    b.serve(a)
    c.serve(b)  # a line: a — b — c
    for dev in (a, b, c):
        assert dev.covey("ask", *FAKE, f"from {dev.name}").returncode == 0
    eventually(lambda: same(a, b, c) and len(a.contents()) == 3)
    # a trusts c now (the household carried it), so a triangle works too
    c.stop()
    b.stop()
    c.serve(a)
    assert c.covey("ask", *FAKE, "c talks to a directly").returncode == 0
    eventually(lambda: "c talks to a directly" in str(a.contents()))
    b.serve(c)
    eventually(lambda: same(a, b, c) and len(b.contents()) == 4)


def test_concurrent_writes_to_one_conversation_lose_nothing(devices) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("a"), devices("b")
    pair(a, b)
    a.serve()
    b.serve()
    assert a.covey("ask", *FAKE, "shared start").returncode == 0
    conv = eventually(b.history)[0]["id"]
    procs = []
    for i in range(3):
        procs.append(a.popen("ask", *FAKE, "--conversation", conv, f"a says {i}"))
        procs.append(b.popen("ask", *FAKE, "--conversation", conv, f"b says {i}"))
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    eventually(lambda: same(a, b) and len(a.contents()[conv]) == 14)
    prompts = sorted(m[2] for m in a.contents()[conv] if m[1] == "user")
    assert prompts == sorted(["shared start"] + [f"{w} says {i}" for w in "ab" for i in range(3)])


def test_offline_device_catches_up_on_1000_messages(devices) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("a"), devices("b")
    pair(a, b)
    a.serve()
    store = a.store()
    try:
        conv = store.create_conversation()
        for i in range(1000):
            store.add_message(conv, "user" if i % 2 == 0 else "assistant", f"message number {i}")
    finally:
        store.close()
    started = time.monotonic()
    b.serve()
    eventually(lambda: len(b.contents().get(conv, [])) == 1000, timeout=120)
    catch_up = time.monotonic() - started
    assert same(a, b)
    print(f"caught up 1000 messages in {catch_up:.2f}s")


def test_tokens_appear_on_the_peer_while_still_streaming(devices) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("a"), devices("b")
    pair(a, b)
    a.serve()
    b.serve()
    # The answer streams for 4 s: watch it on a peer that is connected already (on a slow
    # machine b may still be dialling when the answer would be done).
    eventually(lambda: any(d["online"] for d in json.loads(b.covey("devices", "--json").stdout)
                           if d["device_id"] == a.device_id))
    asking = a.popen("ask", "--model", "fake:words=400,delay=0.01", "stream me")
    seen_partial = False
    deadline = time.monotonic() + 60
    while asking.poll() is None and time.monotonic() < deadline:
        for msgs in b.contents().values():
            answer = [m for m in msgs if m[1] == "assistant"]
            if answer and 0 < len(answer[0][2]) < len("".join(f"w{i} " for i in range(400))):
                seen_partial = True
        if seen_partial:
            break
        time.sleep(0.05)
    asking.communicate(timeout=60)
    assert seen_partial, "the answer never showed up on b while it was being generated"
    eventually(lambda: same(a, b))


@pytest.mark.parametrize("victim", ["receiver", "sender"])
def test_kill_9_during_catch_up_then_converge(devices, victim: str) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("a"), devices("b")
    pair(a, b)
    store = a.store()
    try:
        for c in range(30):
            conv = store.create_conversation()
            for i in range(100):
                store.add_message(conv, "user", f"conversation {c} message {i} " + "pad " * 40)
    finally:
        store.close()
    a.serve()
    b.serve()
    rng = random.Random(victim)
    eventually(lambda: len(b.contents()) >= 1, timeout=60)  # catch-up under way
    time.sleep(rng.uniform(0.0, 0.2))
    (b if victim == "receiver" else a).kill()
    time.sleep(0.2)
    if victim == "receiver":
        b.serve()
    else:
        a.serve()
    eventually(lambda: same(a, b) and len(b.contents()) == 30, timeout=120)
    for msgs in b.contents().values():
        assert len(msgs) == 100 and len({m[0] for m in msgs}) == 100


def test_stop_is_clean_on_sigterm(devices) -> None:  # type: ignore[no-untyped-def]
    a = devices("a")
    a.serve()
    assert a.proc is not None
    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(timeout=20) == 0
    log = a.log.read_text()
    assert "covey node stopped" in log and "Traceback" not in log


def test_connection_cut_again_and_again_still_converges(devices) -> None:  # type: ignore[no-untyped-def]
    from tests.devices import free_port
    from tests.flaky_proxy import FlakyProxy

    # b listens on an address of its own: where it tells a it listens (its port, at the
    # address a saw it come from, the proxy's) then leads nowhere, so a cannot go round the cuts.
    a, b = devices("a"), devices("b", host="127.0.0.6")
    pair(a, b)
    # b may only reach a through the proxy
    import sqlite3

    conn = sqlite3.connect(b.home / "covey.db")
    conn.execute("DELETE FROM peer_addresses")
    conn.commit()
    conn.close()
    store = a.store()
    try:
        for c in range(20):
            conv = store.create_conversation()
            for i in range(50):
                store.add_message(conv, "user", f"a {c}/{i} " + "pad " * 30)
    finally:
        store.close()
    a.serve()
    # The proxy has an address of its own: where a tells b it listens (a's port, at the address
    # b reached it by) then leads nowhere, and every byte goes through the cuts.
    with FlakyProxy((a.host, a.port), free_port(), seed=3, host="127.0.0.5") as proxy:
        b.serve(extra=("--peer", f"127.0.0.5:{proxy.port}"))
        for i in range(5):
            assert b.covey("ask", *FAKE, f"b writes {i}").returncode == 0
        eventually(lambda: same(a, b) and len(a.contents()) == 25, timeout=180)
        assert proxy.cuts >= 5  # the link really was cut, repeatedly
    for msgs in a.contents().values():
        assert len({m[0] for m in msgs}) == len(msgs)  # no duplicates
    assert sum(len(m) for m in a.contents().values()) == 20 * 50 + 5 * 2


def test_pairing_while_both_nodes_run(devices) -> None:  # type: ignore[no-untyped-def]
    a, b = devices("a"), devices("b")
    a.serve()
    b.serve()
    assert a.covey("ask", *FAKE, "before pairing").returncode == 0
    pair(a, b, "9-amber-anchor")  # a's running node answers; b's running node learns of a
    eventually(lambda: same(a, b), timeout=60)


def test_only_one_node_per_home(devices) -> None:  # type: ignore[no-untyped-def]
    a = devices("a")
    a.serve()
    second = a.covey("serve", "--listen", "127.0.0.1:0")
    assert second.returncode != 0 and "already running" in second.stderr
    assert "Traceback" not in second.stderr


def test_dialling_ourselves_is_dropped(devices) -> None:  # type: ignore[no-untyped-def]
    a = devices("a")
    a.serve(a)  # our own address as a peer
    assert a.covey("ask", *FAKE, "still fine").returncode == 0
    time.sleep(1.0)
    assert a.proc is not None and a.proc.poll() is None
    assert "Traceback" not in a.log.read_text()


def test_joining_another_household_needs_switch(devices) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import assert_clean_error
    from tests.devices import _offer_open

    a, b, c = devices("a"), devices("b"), devices("c")
    pair(a, b, "3-amber-anchor")  # household H1: a and b
    invite = c.popen("pair", "--code", "5-amber-anchor", "--listen", c.address)
    try:
        eventually(lambda: _offer_open(c, "5-amber-anchor"), timeout=20)
        refused = b.covey("pair", "5-amber-anchor", "--address", c.address)
        assert_clean_error(refused, "already belongs to a household with 1 other device(s) (a)",
                           "--switch")
        assert {m["name"] for m in json.loads(b.covey("devices", "--json").stdout)} == {"a", "b"}
        switched = b.covey("pair", "5-amber-anchor", "--address", c.address, "--switch")
        assert switched.returncode == 0, switched.stderr
        assert "Switching households" in switched.stderr and "Paired with c" in switched.stdout
        invite.communicate(timeout=30)
    finally:
        if invite.poll() is None:
            invite.kill()
    assert {m["name"] for m in json.loads(b.covey("devices", "--json").stdout)} == {"b", "c"}
