"""Finding the household's devices on the LAN by mDNS/DNS-SD (zeroconf, `_covey._tcp.local.`).

mDNS is a hint, never authority: what a device advertises only tells others where to dial; the
TLS pin decides whom to talk to. The advertisement carries no names and no conversation data:
the instance name and `id` are a prefix of the device id, `hh` a hash of the household id (not
a secret: it only lets strangers' devices be ignored without dialling them), and capability
hints for delegation. `pair=1` says a pairing code is open here (for `covey pair CODE` with no
address). A killed device is not removed by mDNS for ~20 minutes (TTL), so liveness comes from
connections; we re-announce periodically because browsers that lost a device during a partition
do not look again by themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from zeroconf import DNSQuestionType, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

log = logging.getLogger(__name__)
SERVICE = "_covey._tcp.local."
REANNOUNCE_EVERY = 30.0


def household_hash(household_id: str) -> str:
    return hashlib.sha256(("covey-household:" + household_id).encode()).hexdigest()[:16]


def open_zeroconf(interfaces: list[str] | None) -> AsyncZeroconf:
    """IPv4 mDNS on the given interfaces (addresses), or on all of them."""
    if interfaces:
        return AsyncZeroconf(ip_version=IPVersion.V4Only, interfaces=interfaces)
    return AsyncZeroconf(ip_version=IPVersion.V4Only)


@dataclass
class Seen:
    """A covey device seen on the LAN."""

    name: str
    device_prefix: str
    household_hash: str
    addresses: list[str]
    port: int
    can_run_models: bool = False
    model: str = ""
    tok_s: float = 0.0
    pairing: bool = False
    online: bool = True
    last_seen: float = field(default_factory=time.time)


@dataclass
class Advert:
    device_id: str
    household_id: str
    port: int
    can_run_models: bool = False
    model: str = ""
    tok_s: float = 0.0
    pairing: bool = False

    def properties(self) -> dict[str, str]:
        return {"v": "1", "id": self.device_id.replace("-", "")[:14],
                "hh": household_hash(self.household_id), "models": "1" if self.can_run_models else "0",
                "model": self.model[:60], "tps": f"{self.tok_s:.1f}", "pair": "1" if self.pairing else "0"}


class Discovery:
    def __init__(self, advert: Advert, interfaces: list[str] | None,
                 on_seen: Callable[[Seen], None], on_gone: Callable[[Seen], None]) -> None:
        self.advert = advert
        self.interfaces = interfaces
        self.on_seen = on_seen
        self.on_gone = on_gone
        self.seen: dict[str, Seen] = {}
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def instance(self) -> str:
        return f"covey-{self.advert.device_id.replace('-', '')[:10].lower()}.{SERVICE}"

    def _service_info(self) -> AsyncServiceInfo:
        return AsyncServiceInfo(SERVICE, self.instance, port=self.advert.port,
                                properties=self.advert.properties(),
                                parsed_addresses=_local_addresses(self.interfaces),
                                server=f"{self.instance.split('.')[0]}.local.")

    async def async_start(self) -> None:
        self._azc = open_zeroconf(self.interfaces)
        self._info = self._service_info()
        await self._azc.async_register_service(self._info, cooperating_responders=True)
        # QM questions: on loopback, unicast answers often reach the wrong process.
        self._browser = AsyncServiceBrowser(self._azc.zeroconf, SERVICE, handlers=[self._changed],
                                            question_type=DNSQuestionType.QM)
        self._spawn(self._async_reannounce())

    async def async_update(self, **changes: object) -> None:
        """Change what we advertise (pairing open, capabilities) and tell the LAN."""
        for key, value in changes.items():
            setattr(self.advert, key, value)
        if self._azc is not None:
            self._info = self._service_info()
            await self._azc.async_update_service(self._info)

    async def async_close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._azc is not None:
            if self._info is not None:
                # await the goodbye itself, or closing cancels it (see notes/lan-testing.md)
                await (await self._azc.async_unregister_service(self._info))
            await self._azc.async_close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _async_reannounce(self) -> None:
        while True:
            await asyncio.sleep(REANNOUNCE_EVERY)
            if self._azc is not None and self._info is not None:
                try:
                    await self._azc.async_update_service(self._info)
                except (OSError, RuntimeError) as exc:  # (an interface went away): next time
                    log.warning("re-announcing on the LAN failed: %s", exc)

    def _changed(self, zeroconf: Zeroconf, service_type: str, name: str,
                 state_change: ServiceStateChange) -> None:
        if name == self.instance:
            return
        if state_change is ServiceStateChange.Removed:
            gone = self.seen.get(name)
            if gone is not None:
                gone.online = False
                self.on_gone(gone)
            return
        self._spawn(self._async_resolve(name))

    async def _async_resolve(self, name: str) -> None:
        if self._azc is None:
            return
        info = AsyncServiceInfo(SERVICE, name)
        if not await info.async_request(self._azc.zeroconf, 3000, question_type=DNSQuestionType.QM):
            return
        props = {k.decode(errors="ignore"): (v or b"").decode(errors="ignore")
                 for k, v in (info.properties or {}).items()}
        if props.get("v") != "1" or info.port is None:
            return
        try:
            tok_s = float(props.get("tps", "0"))
        except ValueError:
            tok_s = 0.0
        seen = Seen(name=name, device_prefix=props.get("id", ""), household_hash=props.get("hh", ""),
                    addresses=info.parsed_addresses(), port=info.port,
                    can_run_models=props.get("models") == "1", model=props.get("model", ""),
                    tok_s=tok_s, pairing=props.get("pair") == "1")
        self.seen[name] = seen
        self.on_seen(seen)


def _local_addresses(interfaces: list[str] | None) -> list[str]:
    """The IPv4 addresses to advertise: the chosen interfaces, or every non-loopback one."""
    if interfaces:
        return [a for a in interfaces if _is_ipv4(a)]
    import ifaddr

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
             if isinstance(ip.ip, str) and not ip.ip.startswith("127.")]
    return found or ["127.0.0.1"]


def _is_ipv4(text: str) -> bool:
    try:
        socket.inet_aton(text)
        return True
    except OSError:
        return False


async def async_browse_for_pairing(interfaces: list[str] | None, seconds: float) -> list[Seen]:
    """Devices on the LAN with a pairing code open (for `covey pair CODE` without an address)."""
    found: dict[str, Seen] = {}
    azc = open_zeroconf(interfaces)
    tasks: set[asyncio.Task[None]] = set()

    async def async_resolve(name: str) -> None:
        info = AsyncServiceInfo(SERVICE, name)
        if await info.async_request(azc.zeroconf, 3000, question_type=DNSQuestionType.QM):
            props = {k.decode(errors="ignore"): (v or b"").decode(errors="ignore")
                     for k, v in (info.properties or {}).items()}
            if props.get("pair") == "1" and info.port:
                found[name] = Seen(name, props.get("id", ""), props.get("hh", ""),
                                   info.parsed_addresses(), info.port, pairing=True)

    def changed(zeroconf: Zeroconf, service_type: str, name: str,
                state_change: ServiceStateChange) -> None:
        if state_change is not ServiceStateChange.Removed:
            task = asyncio.ensure_future(async_resolve(name))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    browser = AsyncServiceBrowser(azc.zeroconf, SERVICE, handlers=[changed],
                                  question_type=DNSQuestionType.QM)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not found:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # let near-simultaneous answers arrive too
    finally:
        await browser.async_cancel()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await azc.async_close()
    return list(found.values())
