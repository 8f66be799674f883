"""This device's identity: a key pair and a self-signed certificate, made on first run.

The device id is a hash of the certificate (as Syncthing does), so it cannot be claimed without
the private key; peers pin the certificate's fingerprint. The key file is mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sync.errors import StoreError

KEY_FILE = "device.key"
CERT_FILE = "device.crt"
CERT_YEARS = 20
PEM_BEGIN, PEM_END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


@dataclass(frozen=True)
class Identity:
    key_path: Path
    cert_path: Path
    cert_der: bytes

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, hex: what peers pin."""
        return fingerprint(self.cert_der)

    @property
    def device_id(self) -> str:
        return device_id_from_cert(self.cert_der)

    @property
    def cert_pem(self) -> str:
        return self.cert_path.read_text(encoding="ascii")

    def sign(self, data: bytes) -> str:
        """An ECDSA signature of `data` by this device's key, hex (for the membership log)."""
        # (cryptography, here and below, where it is used: importing it is 45 ms of the start
        # of every command, and most commands only read this device's id)
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise StoreError(f"{self.key_path} is not an EC key")
        return key.sign(data, ec.ECDSA(hashes.SHA256())).hex()


def fingerprint(cert_der: bytes) -> str:
    return hashlib.sha256(cert_der).hexdigest()


def verify(cert_pem: str, signature: str, data: bytes) -> bool:
    """Whether `signature` (hex) over `data` was made by the key of this certificate."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        public = x509.load_pem_x509_certificate(cert_pem.encode("ascii")).public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            return False
        public.verify(bytes.fromhex(signature), data, ec.ECDSA(hashes.SHA256()))
        return True
    except (ValueError, UnicodeEncodeError, InvalidSignature):
        return False


def cert_der(cert_pem: str) -> bytes | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return cert.public_bytes(serialization.Encoding.DER)


def device_id_from_cert(cert_der: bytes) -> str:
    """Grouped base32 of the certificate hash: 'ABCDEFG-HIJKLMN-OPQRSTU-VWXYZ23-4567ABC'."""
    digest = base64.b32encode(hashlib.sha256(cert_der).digest()).decode("ascii")[:35]
    return "-".join(digest[i : i + 7] for i in range(0, 35, 7))


def load_or_create(directory: Path, device_name: str) -> Identity:
    """This device's identity, generating it the first time."""
    key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
    if not (key_path.exists() and cert_path.exists()):
        _generate(directory, key_path, cert_path, device_name)
    try:
        der = _pem_body(cert_path.read_text(encoding="ascii"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read this device's certificate {cert_path}: {exc}") from None
    return Identity(key_path, cert_path, der)


def _pem_body(pem: str) -> bytes:
    """The DER inside this device's own PEM certificate (written by `_generate`; a peer's is
    parsed in full by `cert_der`)."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0] != PEM_BEGIN or lines[-1] != PEM_END:
        raise ValueError("not a PEM certificate")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except binascii.Error:
        raise ValueError("not a PEM certificate: its body is not base64") from None


def _generate(directory: Path, key_path: Path, cert_path: Path, device_name: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    # No device name in the certificate: a stranger's TLS handshake would read it. Names
    # travel inside authenticated sessions (pairing, the household document).
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "covey")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * CERT_YEARS))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Create the key file 0600 from the start: never a moment when others could read it.
    tmp_key = key_path.with_name(key_path.name + ".tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    tmp_cert = cert_path.with_name(cert_path.name + ".tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp_key.replace(key_path)
    tmp_cert.replace(cert_path)
