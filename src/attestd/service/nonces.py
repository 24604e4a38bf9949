"""Challenge nonces: stateless to issue, single use, bound to one tenant.

A nonce is 32 bytes, sent base64url (43 characters)::

    version (1) = 0x01 | expiry (4, big-endian UNIX seconds) | random (11) | MAC (16)

with ``MAC = HMAC-SHA256(tenant nonce key, "attestd-nonce" | tenant | version | expiry | random)[:16]``.
The tenant key is derived from the master key (:meth:`attestd.store.Sealer.nonce_key`), so every
replica can check any replica's nonce without shared state, and a nonce of one tenant never
verifies for another. 32 bytes fit the ``extraData`` (qualifying data) of a quote on any TPM
(``TPM2B_DATA`` holds at least a SHA-256 digest).

Issuing writes nothing. At attestation time the nonce is *consumed* by inserting its id (the hex
of the random part) into ``consumed_nonces``, whose primary key makes a second use fail in the
database itself - across replicas on PostgreSQL. Expired rows are pruned: an expired nonce is
refused by its expiry before the table is consulted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from attestd.service.problems import ApiError

__all__ = ["NONCE_BYTES", "CheckedNonce", "check_nonce", "issue_nonce", "qualifying_data"]

NONCE_BYTES = 32
_VERSION = 1


@dataclass(frozen=True)
class CheckedNonce:
    raw: bytes
    text: str
    nonce_id: str
    expires_at: datetime


def _mac(key: bytes, tenant: str, body: bytes) -> bytes:
    return hmac.new(key, b"attestd-nonce\x00" + tenant.encode() + b"\x00" + body, hashlib.sha256).digest()[:16]


def issue_nonce(key: bytes, tenant: str, *, now: datetime, ttl: timedelta,
                randbytes: Callable[[int], bytes]) -> tuple[str, datetime]:
    expires = int((now + ttl).timestamp())
    body = bytes([_VERSION]) + struct.pack(">I", expires) + randbytes(11)
    raw = body + _mac(key, tenant, body)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), datetime.fromtimestamp(expires, UTC)


def check_nonce(key: bytes, tenant: str, text: str, *, now: datetime | None) -> CheckedNonce:
    """Check MAC, tenant binding and (when ``now`` is given) expiry; does not consume.

    Errors (400): ``nonce.malformed``, ``nonce.invalid`` (MAC: forged, altered or another tenant's),
    ``nonce.expired``.
    """
    if not isinstance(text, str) or len(text) != 43:
        raise ApiError(400, "nonce.malformed", "nonce must be the 43-character value /challenge returned",
                       field="nonce")
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise ApiError(400, "nonce.malformed", "nonce is not base64url", field="nonce") from None
    if len(raw) != NONCE_BYTES or raw[0] != _VERSION:
        raise ApiError(400, "nonce.malformed", "nonce has an unknown format", field="nonce")
    body, mac = raw[:16], raw[16:]
    if not hmac.compare_digest(mac, _mac(key, tenant, body)):
        raise ApiError(400, "nonce.invalid",
                       f"nonce was not issued by tenant {tenant!r} (forged, altered, or another tenant's)",
                       field="nonce")
    expires = datetime.fromtimestamp(struct.unpack(">I", raw[1:5])[0], UTC)
    if now is not None and now >= expires:
        raise ApiError(400, "nonce.expired", f"nonce expired at {expires.isoformat()}; request a new challenge",
                       field="nonce", details={"expiredAt": expires.isoformat()})
    return CheckedNonce(raw, text, raw[5:16].hex(), expires)


def qualifying_data(nonce: bytes, runtime_data: bytes | None) -> bytes:
    """What the quote's ``extraData`` must hold: the nonce, or with runtime data
    ``SHA-256(nonce || runtimeData)`` (so the TPM signature binds both)."""
    if runtime_data is None:
        return nonce
    return hashlib.sha256(nonce + runtime_data).digest()
