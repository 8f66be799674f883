"""Keeping the node dialling every address it knows, with backoff, jitter and prompt retries.

Each address gets one loop. It does not dial while the member known to listen there is
connected anyway (it dialled us); after a failure (or a session that died young) it waits,
doubling up to the ceiling; after a healthy session it redials at once; and any
contact from that member (an inbound connection) ends the wait at once, so a restarted device
is reconnected in moments rather than after the backoff. Failures other than the network's
are reported (once, then rate-limited) and dialling goes on: the loop never dies silently.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sync import errors
from sync.nodelock import NodeError

log = logging.getLogger(__name__)
Address = tuple[str, int]
#: A session that lasted this long was healthy: when it ends, redial at once, however it
#: ended. One refused sooner (our disk is full, the peer refuses us) backs off like a failed
#: dial, instead of redoing a whole handshake and index exchange twice a second; a link that
#: merely broke is redialled at once.
HEALTHY_SESSION = 5.0
DEFAULT_PORT = 7420


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """HOST:PORT (a bare host gets the default port) → (host, port); NodeError if it is not."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise NodeError(f"{text!r} is not an address (expected HOST:PORT, e.g. 192.168.1.5:7420)")
    return host, int(port)


class Dialer:
    def __init__(self, connect: Callable[[Address], Awaitable[tuple[str | None, bool]]],
                 connected: Callable[[str], bool],
                 spawn: Callable[[Coroutine[Any, Any, None],
                                  Callable[[], Coroutine[Any, Any, None]]], None],
                 backoff: tuple[float, float]) -> None:
        # One connection, run to its end: (the member reached or None, whether it was refused).
        self._connect = connect
        self._connected = connected
        self._spawn = spawn
        self._backoff = backoff
        self._known: dict[Address, str] = {}  # address → the member there ("" = not known yet)
        self._redial: dict[Address, asyncio.Event] = {}

    def dial(self, address: Address, device_id: str = "") -> None:
        """Keep dialling `address` (whose member, if known, is `device_id`)."""
        if address in self._known:
            if device_id and not self._known[address]:
                self._known[address] = device_id
            return
        self._known[address] = device_id
        self._redial[address] = asyncio.Event()
        self._spawn(self._async_forever(address), lambda: self._async_forever(address))  # kept alive

    def contact_from(self, device_id: str) -> None:
        """A member reached us: whatever backoff we had towards it is over."""
        for address, known in self._known.items():
            if known == device_id:
                self._redial[address].set()

    async def _async_forever(self, address: Address) -> None:
        low, high = self._backoff
        delay = low
        redial = self._redial[address]
        while True:
            known = self._known.get(address)
            if known and self._connected(known):  # connected already (they dialled us)
                await asyncio.sleep(1.0)
                delay = low
                continue
            reached, refused = None, False
            began = time.monotonic()
            try:
                reached, refused = await self._connect(address)
            except ssl.SSLCertVerificationError as exc:  # say why, not just "closed by peer"
                errors.report(f"dialling {address[0]}:{address[1]}",
                              f"the certificate there was refused: {exc.verify_message}")
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                log.debug("dial %s:%s failed: %s", *address, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anything else is a bug or our store: report, go on
                errors.report(f"dialling {address[0]}:{address[1]}",
                              f"{type(exc).__name__}: {exc}", exc)
            if reached:
                self._known[address] = reached
                if not refused or time.monotonic() - began >= HEALTHY_SESSION:
                    delay = low  # the peer was there and all was well: reconnect promptly
            redial.clear()
            try:
                await asyncio.wait_for(redial.wait(), delay * random.uniform(0.5, 1.5))
                delay = low
            except TimeoutError:
                delay = min(delay * 2, high)
