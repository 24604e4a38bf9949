"""Shared marshalling helpers for TPM 2.0 structures (big-endian, TPM 2.0 Part 1, 10.4 / Part 2, 5).

Every parser in :mod:`attestd.tpm` reads through :class:`attestd.binary.Reader` created by
:func:`reader`, so errors are ``tpm.truncated`` / ``tpm.length`` / ``tpm.trailing_data`` with the
structure member and absolute offset. Size limits are the ``sizeof`` bounds of Part 2 for a TPM with
SHA-512 and RSA-4096 support, so an absurd length field fails before anything is allocated.
"""

from __future__ import annotations

import struct

from attestd.binary import Reader
from attestd.errors import EvidenceError

#: ``sizeof(TPMU_HA)``: largest digest (SHA-512 / SHA3-512).
MAX_DIGEST = 64
#: ``sizeof(TPMU_NAME)`` = ``sizeof(TPMT_HA)``: nameAlg + largest digest.
MAX_NAME = 2 + MAX_DIGEST
#: ``TPM2B_DATA`` holds a ``TPMT_HA``.
MAX_DATA = 2 + MAX_DIGEST
#: ``MAX_RSA_KEY_BYTES`` for RSA-4096 (``TPM2B_PUBLIC_KEY_RSA``, ``TPM2B_PUBLIC_KEY_RSA`` signatures).
MAX_RSA_BYTES = 512
#: ``MAX_ECC_KEY_BYTES`` for NIST P-521 / BN P-638 (80 bytes).
MAX_ECC_BYTES = 80
#: ``sizeof(TPMT_PUBLIC)`` bound for ``TPM2B_PUBLIC``.
MAX_PUBLIC = 2 + 2 + 4 + 2 + MAX_DIGEST + 16 + 2 + MAX_RSA_BYTES + 2 * (2 + MAX_ECC_BYTES)
#: ``TPM2B_ENCRYPTED_SECRET``: ``sizeof(TPMU_ENCRYPTED_SECRET)``.
MAX_ENCRYPTED_SECRET = MAX_RSA_BYTES
#: ``TPM2B_ID_OBJECT``: ``sizeof(TPMS_ID_OBJECT)``.
MAX_ID_OBJECT = (2 + MAX_DIGEST) + (2 + MAX_DIGEST)
#: TPML entries: ``HASH_COUNT`` in the reference implementation is at most 16.
MAX_LIST = 16
#: ``PCR_SELECT_MAX``: 32 bytes select up to 256 PCRs (real TPMs use 3).
MAX_PCR_SELECT = 32


def reader(data: bytes | bytearray | memoryview, *, base: int = 0) -> Reader:
    """A big-endian reader with the ``tpm`` error prefix."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EvidenceError("tpm.type", f"expected bytes, got {type(data).__name__}")
    return Reader(data, prefix="tpm", big_endian=True, base=base)


def u16(v: int) -> bytes:
    return struct.pack(">H", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def u64(v: int) -> bytes:
    return struct.pack(">Q", v)


def tpm2b(data: bytes) -> bytes:
    """Marshal a ``TPM2B_*`` sized buffer (Part 2, 10.4): ``UINT16 size || buffer``."""
    if len(data) > 0xFFFF:
        raise ValueError("TPM2B buffer larger than 65535 bytes")
    return u16(len(data)) + bytes(data)
