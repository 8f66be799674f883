"""TLS 1.3 contexts for sync and pairing, and certificate pinning.

Sync, both ways mutual: each side trusts exactly the certificates of the household's members
(self-signed, loaded as trust anchors), so an unknown certificate fails the handshake and gets
nothing. Pinning by fingerprint is checked again after the handshake. Contexts are built per
connection from the current household, so a revocation applies to the next handshake.

Pairing: the joiner has no trusted peer yet, so the inviter's listener also accepts clients
without a certificate; those connections may only speak the pairing protocol, whose PAKE
authenticates both certificates.
"""

from __future__ import annotations

import ssl

from sync.identity import Identity, fingerprint

# OpenSSL's X509_V_FLAG_NO_CHECK_TIME (not named by Python's ssl module). Members' certificates
# are pinned, so their validity dates say nothing a device's clock could check: a device whose
# clock is days or years off (or was when it made its certificate) must still sync.
NO_CHECK_TIME = 0x200000


def server_context(identity: Identity, trusted_pems: list[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    if trusted_pems:
        ctx.load_verify_locations(cadata="\n".join(trusted_pems))
        ctx.verify_mode = ssl.CERT_OPTIONAL  # no certificate: a pairing attempt
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a pinned leaf is its own anchor
        ctx.verify_flags |= NO_CHECK_TIME
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(identity: Identity, trusted_pems: list[str]) -> ssl.SSLContext:
    """For syncing with a member: present our certificate, accept only members'."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # devices are named by certificate, not by host name
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    ctx.load_verify_locations(cadata="\n".join(trusted_pems))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.verify_flags |= NO_CHECK_TIME
    return ctx


def pairing_client_context() -> ssl.SSLContext:
    """For joining: no certificate to check yet (the PAKE binds the one we see)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """SHA-256 of the certificate the peer presented, or None if it presented none."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return fingerprint(der) if der else None
