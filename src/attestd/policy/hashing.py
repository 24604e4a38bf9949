"""The policy hash, exactly as Azure Attestation computes ``x-ms-policy-hash``:

    BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy text)))))

BASE64URL is RFC 4648 section 5 without padding (the JOSE convention).
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["policy_hash", "b64url", "b64url_decode"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded (or padded) base64url; raises ValueError on anything else."""
    if any(ch not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=" for ch in text):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError("impossible base64url length")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


def policy_hash(text: str) -> str:
    """``x-ms-policy-hash`` of policy ``text``."""
    inner = b64url(text.encode("utf-8"))
    return b64url(hashlib.sha256(inner.encode("utf-8")).digest())
