"""TPM_ALG_ID values and the hash algorithms PCR banks use.

TCG TPM 2.0 Library, Part 2: Structures, section 6.3 "TPM_ALG_ID" and the TCG Algorithm Registry.
Bank names (``sha1``, ``sha256``, ``sha384``, ``sha512``, ``sm3_256``) are the ones used
throughout Attestd's APIs, JSON and CLI, and match tpm2-tools' spelling.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from cryptography.hazmat.primitives import hashes

from attestd.errors import EvidenceError

__all__ = [
    "TPM_ALG",
    "HashAlg",
    "HASH_ALGS",
    "hash_alg",
    "hash_alg_by_name",
    "new_hash",
]


class TPM_ALG(IntEnum):
    """TPM_ALG_ID constants (TPM 2.0 Part 2, 6.3)."""

    ERROR = 0x0000
    RSA = 0x0001
    TDES = 0x0003
    SHA1 = 0x0004
    HMAC = 0x0005
    AES = 0x0006
    MGF1 = 0x0007
    KEYEDHASH = 0x0008
    XOR = 0x000A
    SHA256 = 0x000B
    SHA384 = 0x000C
    SHA512 = 0x000D
    NULL = 0x0010
    SM3_256 = 0x0012
    SM4 = 0x0013
    RSASSA = 0x0014
    RSAES = 0x0015
    RSAPSS = 0x0016
    OAEP = 0x0017
    ECDSA = 0x0018
    ECDH = 0x0019
    ECDAA = 0x001A
    SM2 = 0x001B
    ECSCHNORR = 0x001C
    ECMQV = 0x001D
    KDF1_SP800_56A = 0x0020
    KDF2 = 0x0021
    KDF1_SP800_108 = 0x0022
    ECC = 0x0023
    SYMCIPHER = 0x0025
    CAMELLIA = 0x0026
    SHA3_256 = 0x0027
    SHA3_384 = 0x0028
    SHA3_512 = 0x0029
    CTR = 0x0040
    OFB = 0x0041
    CBC = 0x0042
    CFB = 0x0043
    ECB = 0x0044


class HashAlg:
    """A hash algorithm usable as a PCR bank: its TPM_ALG_ID, name, and digest size."""

    __slots__ = ("alg_id", "name", "digest_size", "_hashlib_name", "_crypto")

    def __init__(self, alg_id: int, name: str, digest_size: int, hashlib_name: str | None, crypto) -> None:
        self.alg_id = alg_id
        self.name = name
        self.digest_size = digest_size
        self._hashlib_name = hashlib_name
        self._crypto = crypto

    def __repr__(self) -> str:
        return f"HashAlg({self.name})"

    @property
    def crypto(self) -> hashes.HashAlgorithm:
        """The ``cryptography`` hash object, for signatures and KDFs."""
        return self._crypto()

    def new(self, data: bytes = b""):
        """A new hashlib-compatible hash object (``update``/``digest``)."""
        if self._hashlib_name is not None:
            return hashlib.new(self._hashlib_name, data)
        return _CryptographyHash(self._crypto(), data)

    def digest(self, data: bytes) -> bytes:
        h = self.new(data)
        return h.digest()

    def extend(self, pcr: bytes, digest: bytes) -> bytes:
        """PCR extend: ``H(pcr || digest)`` (TPM 2.0 Part 1, 17.2)."""
        return self.digest(pcr + digest)

    @property
    def zero(self) -> bytes:
        return b"\x00" * self.digest_size


class _CryptographyHash:
    """hashlib-style adapter over ``cryptography`` for algorithms OpenSSL's hashlib lacks (SM3)."""

    __slots__ = ("_h",)

    def __init__(self, algorithm: hashes.HashAlgorithm, data: bytes) -> None:
        self._h = hashes.Hash(algorithm)
        if data:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.copy().finalize()


def _hashlib_has(name: str) -> bool:
    try:
        hashlib.new(name)
    except (ValueError, TypeError):
        return False
    return True


HASH_ALGS: dict[int, HashAlg] = {
    a.alg_id: a
    for a in (
        HashAlg(TPM_ALG.SHA1, "sha1", 20, "sha1", hashes.SHA1),
        HashAlg(TPM_ALG.SHA256, "sha256", 32, "sha256", hashes.SHA256),
        HashAlg(TPM_ALG.SHA384, "sha384", 48, "sha384", hashes.SHA384),
        HashAlg(TPM_ALG.SHA512, "sha512", 64, "sha512", hashes.SHA512),
        HashAlg(TPM_ALG.SM3_256, "sm3_256", 32, "sm3" if _hashlib_has("sm3") else None, hashes.SM3),
        HashAlg(TPM_ALG.SHA3_256, "sha3_256", 32, "sha3_256", hashes.SHA3_256),
        HashAlg(TPM_ALG.SHA3_384, "sha3_384", 48, "sha3_384", hashes.SHA3_384),
        HashAlg(TPM_ALG.SHA3_512, "sha3_512", 64, "sha3_512", hashes.SHA3_512),
    )
}
_BY_NAME = {a.name: a for a in HASH_ALGS.values()}
_BY_NAME["sm3"] = HASH_ALGS[TPM_ALG.SM3_256]


def hash_alg(alg_id: int, *, field: str = "TPMI_ALG_HASH", offset: int | None = None,
             prefix: str = "tpm") -> HashAlg:
    """Look up a hash algorithm by TPM_ALG_ID; unknown ids are an ``<prefix>.unsupported_alg`` error."""
    try:
        return HASH_ALGS[alg_id]
    except KeyError:
        raise EvidenceError(
            f"{prefix}.unsupported_alg",
            f"unknown or unsupported hash algorithm 0x{alg_id:04x}",
            field=field,
            offset=offset,
        ) from None


def hash_alg_by_name(name: str) -> HashAlg:
    """Look up a bank by name (``sha256``); accepts upper case and ``sha-256``."""
    key = name.strip().lower().replace("-", "")
    key = {"sm3256": "sm3_256"}.get(key, key)
    try:
        return _BY_NAME[key]
    except KeyError:
        raise EvidenceError("tpm.unsupported_alg", f"unknown hash algorithm name {name!r}", field="bank") from None


def new_hash(alg_id: int, data: bytes = b""):
    return hash_alg(alg_id).new(data)
