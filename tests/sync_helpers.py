"""In-memory wiring of Links for protocol tests (no sockets): stores, hellos, a lossy wire."""

from __future__ import annotations

from pathlib import Path

from app.config import Paths
from sync import versions
from sync.link import Link
from sync.protocol import Hello, Session
from sync.store import Store


def hello_for(store: Store, household: str = "H") -> Hello:
    return Hello(device=store.device_id, household=household, epoch=store.epoch,
                 instance="i-" + store.device_id,
                 digest=versions.digest(store.sync_index()).hex())


def open_store(home: Path, device: str) -> Store:
    return Store.open(Paths.at(home), device)


def new_link(store: Store, household: str = "H") -> Link:
    link = Link(store, Session(store, hello_for(store, household)))
    link.start()
    return link


def pump_links(a: Link, b: Link, rounds: int = 200) -> None:
    """Push and deliver both ways until nothing moves (the transport's job, in memory)."""
    for _ in range(rounds):
        a.push()
        b.push()
        out_a, out_b = a.outgoing(), b.outgoing()
        if not out_a and not out_b:
            return
        if out_a:
            b.receive(out_a)
        if out_b:
            a.receive(out_b)
    raise AssertionError("links never went quiet")


def contents(store: Store) -> dict[str, list[tuple[str, str]]]:
    """Every conversation's messages (id, text), for comparing replicas."""
    return {
        doc_id: sorted((m.id, m.text) for m in store.conversation(doc_id).messages)
        for doc_id in store.doc_ids() if doc_id != "household"
    }
