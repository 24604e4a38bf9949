"""Encryption at rest of secrets kept in the database (signing key sets).

A 32-byte *master key* (``ATTESTD_MASTER_KEY`` or ``{data_dir}/master.key``, created 0600 on first
start) seals each key set with AES-256-GCM; the associated data binds the record to its tenant, so a
sealed key set copied onto another tenant's row does not open. Per-tenant nonce MAC keys are derived
from the same master key with HKDF, so replicas sharing the master key share the nonce keys and no
nonce state. Every replica of one deployment must be given the same master key.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from attestd.errors import AttestdError

__all__ = ["SealError", "Sealer"]

_VERSION = b"\x01"


class SealError(AttestdError):
    http_status = 500
    title = "Stored secret cannot be opened"


class Sealer:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key is 32 bytes")
        self._master = bytes(master_key)
        self._aead = AESGCM(self._derive(b"attestd seal v1"))
        self._nonce_keys: dict[str, bytes] = {}

    def _derive(self, info: bytes, length: int = 32) -> bytes:
        return HKDF(hashes.SHA256(), length, salt=None, info=info).derive(self._master)

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, *, context: str) -> bytes:
        if len(sealed) < 29 or sealed[:1] != _VERSION:
            raise SealError("store.sealed_format", "sealed record has an unknown format")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], context.encode())
        except InvalidTag:
            raise SealError(
                "store.seal_key_mismatch",
                f"the sealed record of {context!r} does not open with this master key "
                "(every replica needs the same ATTESTD_MASTER_KEY)",
            ) from None

    def nonce_key(self, tenant: str) -> bytes:
        """The HMAC key for tenant ``tenant``'s challenge nonces (derived once per tenant)."""
        key = self._nonce_keys.get(tenant)
        if key is None:
            if len(self._nonce_keys) >= 4096:
                self._nonce_keys.clear()
            key = self._nonce_keys[tenant] = self._derive(b"attestd nonce v1\x00" + tenant.encode())
        return key
