"""Config file, data home override, and this device's identity."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.config import Config, Paths
from app.errors import ConfigError
from sync.identity import load_or_create


def test_covey_home_overrides_everything(covey_home: Path) -> None:
    paths = Paths.discover()
    assert paths.config_dir == covey_home and paths.data_dir == covey_home
    assert paths.db_file == covey_home / "covey.db"


def test_missing_config_gives_defaults(paths: Paths) -> None:
    config = Config.load(paths.config_file)
    assert config.model is None and config.max_tokens == 512


def test_config_round_trips(paths: Paths) -> None:
    config = Config(model="/models/x.gguf", temperature=0.2, seed=7, device_name='kitchen "pi"')
    config.save(paths.config_file)
    assert Config.load(paths.config_file) == config


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("max_tokens = [", "cannot read"),
        ("colour = 'blue'", "unknown setting"),
        ("max_tokens = 'many'", "wrong type"),
        ("temperature = 9", "between 0 and 5"),
        ("context_length = 10", "at least 256"),
    ],
)
def test_bad_config_is_a_clear_error(paths: Paths, text: str, fragment: str) -> None:
    paths.ensure()
    paths.config_file.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        Config.load(paths.config_file)


def test_identity_is_made_once_with_private_key_0600(paths: Paths) -> None:
    first = load_or_create(paths.identity_dir, "laptop")
    mode = stat.S_IMODE(first.key_path.stat().st_mode)
    assert mode == 0o600
    again = load_or_create(paths.identity_dir, "laptop")
    assert again.device_id == first.device_id and again.fingerprint == first.fingerprint
    groups = first.device_id.split("-")
    assert len(groups) == 5 and all(len(g) == 7 for g in groups)


def test_different_devices_have_different_ids(tmp_path: Path) -> None:
    a = load_or_create(tmp_path / "a", "a")
    b = load_or_create(tmp_path / "b", "b")
    assert a.device_id != b.device_id


def test_identity_read_without_cryptography_is_the_certificate_cryptography_reads(
        tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from app.errors import StoreError
    from sync.identity import cert_der

    identity = load_or_create(tmp_path / "id", "laptop")
    parsed = x509.load_pem_x509_certificate(identity.cert_path.read_bytes())
    assert identity.cert_der == parsed.public_bytes(serialization.Encoding.DER)
    assert identity.cert_der == cert_der(identity.cert_pem)
    identity.cert_path.write_text("-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----\n")
    with pytest.raises(StoreError, match="cannot read this device's certificate"):
        load_or_create(tmp_path / "id", "laptop")
