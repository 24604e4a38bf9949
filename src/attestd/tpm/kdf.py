"""TPM key derivation functions, built on ``cryptography``'s primitives.

* :func:`kdfa` - KDFa, TPM 2.0 Library Part 1, 11.4.10.2: SP800-108 KDF in counter mode with HMAC
  as the PRF: ``K(i) = HMAC(key, [i]32 || Label || 0x00 || Context || [L]32)``, with
  ``Context = contextU || contextV`` and the output truncated to ``bits``.
* :func:`kdfe` - KDFe, Part 1, 11.4.10.3: the SP800-56A concatenation KDF:
  ``K(i) = H([i]32 || Z || Use || 0x00 || PartyUInfo || PartyVInfo)``.

Both take the label without its terminating zero (``"STORAGE"``, ``"INTEGRITY"``, ``"IDENTITY"``);
the spec's zero octet is added here.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFHMAC, CounterLocation, Mode

from attestd.tpm.alg import HashAlg

__all__ = ["kdfa", "kdfe"]


def _label(label: bytes | str) -> bytes:
    raw = label.encode("ascii") if isinstance(label, str) else bytes(label)
    return raw[:-1] if raw.endswith(b"\x00") else raw


def _check_bits(bits: int) -> int:
    if bits <= 0 or bits % 8:
        raise ValueError("bits must be a positive multiple of 8")
    return bits // 8


def kdfa(hash: HashAlg, key: bytes, label: bytes | str, context_u: bytes, context_v: bytes, bits: int) -> bytes:
    """KDFa (Part 1, 11.4.10.2) producing ``bits`` bits (a multiple of 8: every TPM key size is)."""
    n = _check_bits(bits)
    kdf = KBKDFHMAC(
        algorithm=hash.crypto,
        mode=Mode.CounterMode,
        length=n,
        rlen=4,
        llen=4,
        location=CounterLocation.BeforeFixed,
        label=_label(label),
        context=bytes(context_u) + bytes(context_v),
        fixed=None,
    )
    # cryptography encodes [L]32 as length * 8, which is ``bits``.
    return kdf.derive(bytes(key))


def kdfe(hash: HashAlg, z: bytes, use: bytes | str, party_u: bytes, party_v: bytes, bits: int) -> bytes:
    """KDFe (Part 1, 11.4.10.3) producing ``bits`` bits."""
    n = _check_bits(bits)
    other = _label(use) + b"\x00" + bytes(party_u) + bytes(party_v)
    return ConcatKDFHash(algorithm=hash.crypto, length=n, otherinfo=other).derive(bytes(z))
