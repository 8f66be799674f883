"""The node's heartbeat: what it does between peers' messages.

It reads what other processes committed to the store (and passes it to the connections), writes
presence while peers are connected, dials addresses `covey pair` stored, and advertises an open
pairing code. It is woken at once by another process's commit (sync/wakeup.py), so an idle node
looks only rarely — and a look at an unchanged store costs one PRAGMA.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sync import errors, offers, peer_state, wakeup

if TYPE_CHECKING:
    from sync.node import Node

IDLE_POLL = 1.0  # seconds between looks with no peer connected (commits wake it anyway)
CONNECTED_POLL = 0.5  # … and with peers connected (their presence is written twice a second)
FULL_LOOK = 5.0  # the store is read at least this often, changed or not


class Heartbeat:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._to_check: set[str] = {"addresses", "pairing"}  # store reads a commit may change
        self._due: dict[str, float] = {}  # when each periodic look last ran (loop time)
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Look now (on the node's loop): a peer connected, or another process committed."""
        self._woken.set()

    async def async_run(self) -> None:
        """The node's heartbeat; a failed round is reported and the next one runs as usual.

        Woken at once when another process commits (sync/wakeup.py) or a peer connects;
        otherwise it looks every CONNECTED_POLL seconds while peers are connected, every
        IDLE_POLL seconds when none is (and when nothing was committed since, a look costs one
        PRAGMA: an idle node does nothing). Without wake-ups: every `poll_interval`.
        """
        node = self.node
        probe = node.store.change_probe()
        woken = self._woken
        waker = wakeup.Waker(node.store.locks_dir)
        awake = waker.start(woken.set)
        node.store.nudges = False  # (this process's own commits reach the node as events)
        loop = asyncio.get_running_loop()
        seen, full_at = -1, 0.0
        try:
            while True:
                # Woken by commits, it need not look often: presence (twice a second) sets the
                # pace while peers are connected. Without wake-ups, the old 0.1 s poll.
                pace = node.options.poll_interval if not awake else \
                    CONNECTED_POLL if node.connections else IDLE_POLL
                try:
                    await asyncio.wait_for(woken.wait(), pace)
                except TimeoutError:
                    pass
                woken.clear()
                try:
                    version, now = probe(), loop.time()
                    changed, seen = version != seen or now - full_at >= FULL_LOOK, version
                    full_at = now if changed else full_at
                    await self.async_round(now, changed)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    errors.report("node upkeep", f"{type(exc).__name__}: {exc}", exc)
        finally:
            waker.close()
            node.store.nudges = True

    async def async_round(self, now: float, changed: bool = True) -> None:
        node, due = self.node, self._due
        if changed:
            self._to_check |= {"addresses", "pairing"}
            for doc_id in await node._async_run(node.store.poll):
                node._changed(doc_id)
        if node.connections and now - due.get("presence", 0.0) >= 0.5:
            due["presence"] = now  # presence and catch-up progress, twice a second
            states = node._presence.due([peer_state.Presence(
                d, c.last_heard, c.link.catch_up_total, c.link.catch_up_done)
                for d, c in node.connections.items()])
            if states:
                await node._async_run(lambda: node._presence.write(node.store, states))
        if "addresses" in self._to_check and now - due.get("addresses", 0.0) >= 2.0:
            due["addresses"] = now  # addresses `covey pair` stored meanwhile
            self._to_check.discard("addresses")
            for address, device_id in (await node._async_run(node._stored_addresses)).items():
                node.dial(address, device_id)
        if node.discovery is not None and "pairing" in self._to_check:
            self._to_check.discard("pairing")
            pairing_open = await node._async_run(lambda: offers.pairing_open(node.store))
            if pairing_open != node.discovery.advert.pairing:
                await node.discovery.async_update(pairing=pairing_open)
