"""Where covey keeps its files, and the settings in config.toml.

`COVEY_HOME` overrides every location (tests always set it; nothing touches the real home).
Without it, platformdirs gives the usual per-user data and config directories. Nothing here runs
at import time: a `Paths` is made when a command starts.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from app.errors import ConfigError

APP_NAME = "covey"


@dataclass(frozen=True)
class Paths:
    """The directories of one covey home."""

    config_dir: Path
    data_dir: Path

    @classmethod
    def discover(cls) -> Paths:
        home = os.environ.get("COVEY_HOME")
        if home:
            root = Path(home).expanduser()
            return cls(config_dir=root, data_dir=root)
        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
        )

    @classmethod
    def at(cls, home: Path) -> Paths:
        """Everything in one directory (what COVEY_HOME does)."""
        return cls(config_dir=home, data_dir=home)

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def db_file(self) -> Path:
        return self.data_dir / "covey.db"

    @property
    def identity_dir(self) -> Path:
        return self.data_dir / "identity"

    @property
    def locks_dir(self) -> Path:
        return self.data_dir / "locks"

    def ensure(self) -> None:
        for directory in (self.config_dir, self.data_dir, self.locks_dir):
            directory.mkdir(parents=True, exist_ok=True)


@dataclass
class Config:
    """Settings from config.toml; every field has a sensible default."""

    model: str | None = None  # a model's name (`covey models`) or a GGUF path; empty = bundled
    model_dirs: list[str] = field(default_factory=list)  # more folders to look for GGUF files in
    model_memory: int = 0  # MB the node may keep loaded (warm) models in; 0 = half the RAM
    context_length: int = 4096
    threads: int | None = None
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    system_prompt: str | None = None
    auto_title: bool = True
    device_name: str = field(default_factory=socket.gethostname)
    compact_after: int = 256  # updates per conversation before they are folded into a snapshot
    listen: str = "0.0.0.0:7420"  # where `covey serve` accepts peers
    peers: list[str] = field(default_factory=list)  # HOST:PORT of peers to dial
    run_on: str = "auto"  # where answers run: local, auto, or a device name/id
    when_alone: str = "local"  # no capable peer online: "local" answers here, "queue" waits
    serve_peers: bool = True  # run generations that paired devices hand to this one
    max_queue: int = 8  # peers' requests waiting here beyond this are declined
    mdns: bool = True  # find the household's devices on the LAN by mDNS
    mdns_interfaces: list[str] = field(default_factory=list)  # addresses to use; empty: all
    sync_in_app: bool = True  # the terminal app runs this device's node while open (no serve)
    theme: str = "textual-dark"  # the terminal app's theme (Ctrl+T toggles light/dark)
    api: bool = True  # the node serves the OpenAI-compatible HTTP API
    api_listen: str = "127.0.0.1:7421"  # where; any other than loopback needs an API key
    api_record: bool = True  # API conversations are kept in the shared history

    @classmethod
    def load(cls, path: Path) -> Config:
        if not path.exists():
            return cls()
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        return cls.from_mapping(raw, source=str(path))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], source: str = "config") -> Config:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown setting {key!r} (known: {', '.join(known)})")
            values[key] = _check_type(key, value, cls.__dataclass_fields__[key].type, source)
        config = cls(**values)
        config.validate(source)
        return config

    def validate(self, source: str = "config") -> None:
        if self.context_length < 256:
            raise ConfigError(f"{source}: context_length must be at least 256")
        if self.model_memory < 0:
            raise ConfigError(f"{source}: model_memory is in MB, 0 (half the RAM) or more")
        if self.max_tokens < 1:
            raise ConfigError(f"{source}: max_tokens must be at least 1")
        if not 0.0 <= self.temperature <= 5.0:
            raise ConfigError(f"{source}: temperature must be between 0 and 5")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"{source}: top_p must be in (0, 1]")
        if self.when_alone not in ("local", "queue"):
            raise ConfigError(f"{source}: when_alone must be \"local\" or \"queue\"")
        if self.compact_after < 2:
            raise ConfigError(f"{source}: compact_after must be at least 2")
        if self.max_queue < 0:
            raise ConfigError(f"{source}: max_queue must be 0 or more")
        problem = listen_problem(self.listen)
        if problem:
            raise ConfigError(f"{source}: listen = {self.listen!r}: {problem}")
        problem = listen_problem(self.api_listen)
        if problem:
            raise ConfigError(f"{source}: api_listen = {self.api_listen!r}: {problem}")
        for peer in self.peers:
            problem = peer_problem(peer)
            if problem:
                raise ConfigError(f"{source}: peers: {peer!r}: {problem}")
        for address in self.mdns_interfaces:
            if not _is_ip(address):
                raise ConfigError(f"{source}: mdns_interfaces: {address!r} is not an IP address")

    def save(self, path: Path) -> None:
        """Write the settings that differ from the defaults, as TOML."""
        defaults = asdict(Config())
        lines = ["# covey settings; see README.md, 'Configuration'"]
        for key, value in asdict(self).items():
            if value is not None and value != defaults[key]:
                lines.append(f"{key} = {_toml_value(value)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)


HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _split(text: str) -> tuple[str, str | None]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):  # a bare IPv6 address
        return text.strip(), None
    return host.strip("[]"), port


def _port_problem(port: str | None) -> str | None:
    if port is None or not port.isdigit() or not 0 <= int(port) < 65536:
        return "the port must be a number from 0 to 65535 (HOST:PORT, e.g. 0.0.0.0:7420)"
    return None


def listen_problem(text: str) -> str | None:
    """Why `text` cannot be a listen address (an IP address of this machine and a port)."""
    host, port = _split(text)
    if port is None:
        return "expected ADDRESS:PORT, e.g. 0.0.0.0:7420 (all interfaces) or 127.0.0.1:7420"
    if not (_is_ip(host) or host == "localhost"):
        return (f"{host!r} is not an IP address (use 0.0.0.0 for every interface, or one of "
                "this machine's addresses)")
    return _port_problem(port)


def peer_problem(text: str) -> str | None:
    """Why `text` cannot be a peer address (HOST:PORT; HOST an IP address or a host name)."""
    host, port = _split(text)
    if not (_is_ip(host) or HOSTNAME.match(host)):
        return f"{host!r} is neither an IP address nor a host name"
    return None if port is None else _port_problem(port)


def _check_type(key: str, value: Any, annotation: Any, source: str) -> Any:
    wanted = str(annotation)
    if wanted.startswith("list"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif "bool" in wanted:
        ok = isinstance(value, bool)
    elif "int" in wanted and "float" not in wanted:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif "float" in wanted:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{source}: {key} has the wrong type ({type(value).__name__})")
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string
