"""The kernel's ``enum hash_algo`` as used inside IMA evidence.

IMA does not use TPM_ALG_IDs: the ``d-ng`` template field names its algorithm with the kernel's
``hash_algo_name[]`` string (``sha256``) and the ``signature_v2_hdr.hash_algo`` byte of a file
signature carries the ``enum hash_algo`` number. Both come from ``include/uapi/linux/hash_info.h``
and ``crypto/hash_info.c`` (``hash_algo_name[]`` and ``hash_digest_size[]``); the values below are
that table, in enum order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from cryptography.hazmat.primitives import hashes

__all__ = ["KernelHashAlgo", "KERNEL_HASH_ALGOS", "kernel_hash_by_id", "kernel_hash_by_name"]


@dataclass(frozen=True, slots=True)
class KernelHashAlgo:
    """One ``enum hash_algo`` entry: number, ``hash_algo_name[]`` string and digest size."""

    algo_id: int
    name: str
    digest_size: int
    #: hashlib constructor name, or None when Python cannot compute it.
    hashlib_name: str | None
    #: ``cryptography`` algorithm class for signature verification, or None.
    crypto: Callable[[], hashes.HashAlgorithm] | None

    def digest(self, data: bytes) -> bytes:
        if self.hashlib_name is None:
            raise ValueError(f"hash algorithm {self.name} is not available")
        return hashlib.new(self.hashlib_name, data).digest()


def _avail(name: str) -> str | None:
    try:
        hashlib.new(name)
    except (ValueError, TypeError):
        return None
    return name


# (enum value, hash_algo_name[], hash_digest_size[], hashlib name, cryptography class)
_TABLE = (
    (0, "md4", 16, _avail("md4"), None),
    (1, "md5", 16, "md5", hashes.MD5),
    (2, "sha1", 20, "sha1", hashes.SHA1),
    (3, "rmd160", 20, _avail("ripemd160"), None),
    (4, "sha256", 32, "sha256", hashes.SHA256),
    (5, "sha384", 48, "sha384", hashes.SHA384),
    (6, "sha512", 64, "sha512", hashes.SHA512),
    (7, "sha224", 28, "sha224", hashes.SHA224),
    (8, "rmd128", 16, None, None),
    (9, "rmd256", 32, None, None),
    (10, "rmd320", 40, None, None),
    (11, "wp256", 32, None, None),
    (12, "wp384", 48, None, None),
    (13, "wp512", 64, None, None),
    (14, "tgr128", 16, None, None),
    (15, "tgr160", 20, None, None),
    (16, "tgr192", 24, None, None),
    (17, "sm3", 32, _avail("sm3"), hashes.SM3),
    (18, "streebog256", 32, None, None),
    (19, "streebog512", 64, None, None),
    (20, "sha3-256", 32, "sha3_256", hashes.SHA3_256),
    (21, "sha3-384", 48, "sha3_384", hashes.SHA3_384),
    (22, "sha3-512", 64, "sha3_512", hashes.SHA3_512),
)

KERNEL_HASH_ALGOS: tuple[KernelHashAlgo, ...] = tuple(KernelHashAlgo(*row) for row in _TABLE)
_BY_ID = {a.algo_id: a for a in KERNEL_HASH_ALGOS}
_BY_NAME = {a.name: a for a in KERNEL_HASH_ALGOS}
_BY_NAME["sm3-256"] = _BY_ID[17]  # spelling used by kernels before 5.11


def kernel_hash_by_id(algo_id: int) -> KernelHashAlgo | None:
    return _BY_ID.get(algo_id)


def kernel_hash_by_name(name: str) -> KernelHashAlgo | None:
    return _BY_NAME.get(name)
