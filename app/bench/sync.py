"""`covey bench sync`: sync figures measured on loopback with two real nodes in this process.

- latency: a commit on device A until the update is persisted on device B (p50/p99)
- catch-up: bytes on the wire (covey's frames, TLS excluded) against the size of Loro's own
  delta export for the same change, and the same catch-up done with pycrdt (Yjs) sending the
  whole document update, as a baseline
- idle reconnect: two equal stores of many conversations reconnect (bytes and time)

Everything runs in scratch homes under a temporary directory: nothing touches your data.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from loro import ExportMode, LoroDoc, VersionVector

from app.config import Paths
from sync import adoption, household
from sync import conversation as schema
from sync.conversation import Message
from sync.identity import Identity, load_or_create
from sync.ids import new_id
from sync.node import Node, NodeOptions
from sync.store import Store, StoreEvent


class Device:
    def __init__(self, root: Path, name: str) -> None:
        self.paths = Paths.at(root / name)
        self.paths.ensure()
        self.identity: Identity = load_or_create(self.paths.identity_dir, name)
        self.store = Store.open(self.paths, self.identity.device_id)
        self.name = name

    def close(self) -> None:
        self.store.close()


def paired(root: Path) -> tuple[Device, Device]:
    a, b = Device(root, "bench-a"), Device(root, "bench-b")
    household.ensure(a.store, a.identity, a.name)
    adoption.pair_locally(a.store, a.identity, b.identity, b.name, joiner_store=b.store)
    return a, b


class Running:
    """Two nodes in one event loop on its own thread; B dials A."""

    def __init__(self, a: Device, b: Device) -> None:
        self.a, self.b = a, b
        self.loop = asyncio.new_event_loop()
        self.nodes: dict[str, Node] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        node_a = Node(self.a.store, self.a.identity, self.a.name, NodeOptions(listen=("127.0.0.1", 0)))
        node_b = Node(self.b.store, self.b.identity, self.b.name, NodeOptions(listen=("127.0.0.1", 0)))
        self.nodes = {"a": node_a, "b": node_b}
        started = asyncio.Event()
        task_a = asyncio.create_task(node_a.async_run(self._stop, lambda n: started.set()))
        await started.wait()
        self.connect_started = time.perf_counter()

        def dial(node: Node) -> None:
            self.connect_started = time.perf_counter()  # b is up: from here it is the reconnect
            assert node_a.bound is not None  # (a listens before b dials it)
            node.dial(node_a.bound)

        task_b = asyncio.create_task(node_b.async_run(self._stop, dial))
        self._ready.set()
        await asyncio.gather(task_a, task_b)

    def __enter__(self) -> Running:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def session_bytes(self) -> int:
        """Protocol bytes both ways on A's connection to B (0 if none yet)."""
        conn = self.nodes["a"].connections.get(self.b.identity.device_id)
        if conn is None:
            return 0
        return conn.link.session.bytes_sent + conn.link.session.bytes_received

    def caught_up(self) -> bool:
        conns = [n.connections.get(d.identity.device_id) for n, d in
                 ((self.nodes["a"], self.b), (self.nodes["b"], self.a))]
        return all(c is not None and c.link.caught_up for c in conns)


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(0.001)


def bench_latency(root: Path, commits: int) -> dict[str, float]:
    a, b = paired(root / "latency")
    arrived: dict[str, float] = {}

    def on_change(event: StoreEvent) -> None:
        if event.origin == "remote":
            arrived.setdefault(event.doc_id, time.perf_counter())

    b.store.subscribe(on_change)
    try:
        with Running(a, b) as running:
            wait_for(running.caught_up)
            samples = []
            for _ in range(commits):
                start = time.perf_counter()
                conv = a.store.create_conversation()
                wait_for(lambda: conv in arrived, timeout=10)  # noqa: B023 (waited for at once)
                samples.append((arrived[conv] - start) * 1000)
                time.sleep(0.005)
    finally:
        a.close()
        b.close()
    samples.sort()
    return {"latency_p50_ms": round(statistics.median(samples), 2),
            "latency_p99_ms": round(samples[int(len(samples) * 0.99) - 1], 2),
            "latency_samples": len(samples)}


def bench_catch_up(root: Path, history: int, messages: int) -> dict[str, float]:
    """B had `history` messages of a conversation, then was away while A wrote `messages`."""
    a, b = paired(root / "catchup")
    try:
        conv = a.store.create_conversation()
        for i in range(history):
            a.store.add_message(conv, "user" if i % 2 else "assistant", _text("old", i))
        b.store.import_updates(conv, a.store.export_updates(conv))
        base = b.store.version_vector(conv)
        for i in range(messages):
            a.store.add_message(conv, "user" if i % 2 else "assistant", _text("new", i))
        loro_delta = len(a.store.export_updates(conv, base))
        with Running(a, b) as running:
            started = time.perf_counter()
            wait_for(running.caught_up)
            covey_s = time.perf_counter() - started
            wire = running.session_bytes()
        assert b.store.version_vector(conv) == a.store.version_vector(conv)
    finally:
        a.close()
        b.close()
    report: dict[str, float] = {
        "catchup_history_messages": history,
        "catchup_new_messages": messages,
        "catchup_wire_bytes": wire,
        "catchup_loro_delta_bytes": loro_delta,
        "catchup_bytes_ratio": round(wire / loro_delta, 4),
        "catchup_s": round(covey_s, 4),
    }
    ycrdt = _pycrdt_whole_update(history, messages)
    if ycrdt:
        report |= {
            "pycrdt_whole_update_bytes": ycrdt["bytes"],
            "pycrdt_encode_apply_s": round(ycrdt["seconds"], 4),
            "covey_vs_pycrdt_bytes": round(wire / ycrdt["bytes"], 4),
            "covey_vs_pycrdt_time": round(covey_s / ycrdt["seconds"], 4),
        }
    return report


def _text(kind: str, i: int) -> str:
    return f"{kind} message {i}: " + "lorem ipsum dolor " * 6


def _pycrdt_whole_update(history: int, messages: int) -> dict[str, float] | None:
    """The same catch-up with Yjs (pycrdt), synced the naive way: the whole document update.

    Its time is encoding and applying in memory only (no network, no disk), so it flatters
    the baseline; covey's time includes TLS, the protocol and persisting on the receiver.
    """
    try:
        from pycrdt import Array, Doc, Map, Text
    except ImportError:
        return None
    source: Any = Doc()
    items = source.get("messages", type=Array)
    for i in range(history):
        items.append(Map({"id": new_id(), "role": "user" if i % 2 else "assistant",
                          "text": Text(_text("old", i))}))
    replica: Any = Doc()
    replica.apply_update(source.get_update())
    for i in range(messages):
        items.append(Map({"id": new_id(), "role": "user" if i % 2 else "assistant",
                          "text": Text(_text("new", i))}))
    start = time.perf_counter()
    update = source.get_update()  # the whole state, not the delta
    replica.apply_update(update)
    seconds = time.perf_counter() - start
    return {"bytes": len(update), "seconds": seconds}


def bench_idle_reconnect(root: Path, conversations: int, progress: TextIO | None) -> dict[str, float]:
    a, b = paired(root / "idle")
    try:
        _fill_equal(a.store, b.store, conversations, progress)
        a.store.poll()  # the bulk fill bypassed the stores' own writes: take it in now,
        b.store.poll()  # not during the measured reconnect
        # A first session (not measured): a node's first start writes to the household (which
        # Loro peers write for its device), so only a reconnect after it meets equal stores.
        with Running(a, b) as running:
            wait_for(running.caught_up, timeout=120)
        assert a.store.sync_index() == b.store.sync_index()
        with Running(a, b) as running:
            wait_for(running.caught_up, timeout=120)
            seconds = _connected_time(running)
            wire = running.session_bytes()
    finally:
        a.close()
        b.close()
    return {"idle_conversations": conversations, "idle_reconnect_bytes": wire,
            "idle_reconnect_ms": round(seconds * 1000, 1)}


def _connected_time(running: Running) -> float:
    conn = running.nodes["b"].connections.get(running.a.identity.device_id)
    assert conn is not None
    assert conn.link.caught_up_at is not None
    return conn.link.caught_up_at - running.connect_started


def _fill_equal(a: Store, b: Store, n: int, progress: TextIO | None) -> None:
    """The same n conversations in both stores (bulk, through the real document code)."""
    for start in range(0, n, 500):
        batch = []
        for _ in range(min(500, n - start)):
            doc = LoroDoc()
            doc.peer_id = a.peer_id
            conv_id = new_id()
            schema.init_conversation(doc, conv_id=conv_id, title="bench", created_at="2026-01-01",
                                     created_by="bench", system_prompt=None)
            schema.append_message(doc, Message(id=new_id(), role="user", text="hello there",
                                               created_at="2026-01-01"))
            doc.commit()
            batch.append((conv_id, doc))
        items = [(conv_id, [doc.export(ExportMode.Updates(VersionVector()))])
                 for conv_id, doc in batch]
        for store in (a, b):
            changed, refused = store.import_many(items)
            assert refused is None and all(changed)
        if progress is not None:
            print(f"\rfilling two stores: {start + len(batch)}/{n}", end="", file=progress, flush=True)
    if progress is not None:
        print(file=progress)


def run(latency_commits: int = 200, catchup_history: int = 1000, catchup_messages: int = 200,
        idle_conversations: int = 10_000, progress: TextIO | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="covey-bench-sync-") as tmp:
        root = Path(tmp)
        report: dict[str, Any] = {}
        report |= bench_latency(root, latency_commits)
        report |= bench_catch_up(root, catchup_history, catchup_messages)
        report |= bench_idle_reconnect(root, idle_conversations, progress)
    return report

