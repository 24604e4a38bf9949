"""Credential activation, verifier side: TPM2_MakeCredential in software.

TPM 2.0 Library Part 1, 24 "Credential Protection" and Part 3, 12.6 TPM2_MakeCredential. Given the
EK's public area, the AK's Name and a small secret, :func:`make_credential` produces what
TPM2_ActivateCredential consumes:

1. a seed protected to the EK (Part 1, 11.4.10 / Annex B.10.3, C.6.4):

   * RSA EK: a random seed of the nameAlg digest size, RSA-OAEP encrypted with the EK's nameAlg
     and the label ``"IDENTITY\\0"``;
   * ECC EK: an ephemeral key on the EK's curve; ``Z`` = x of the ECDH point;
     ``seed = KDFe(nameAlg, Z, "IDENTITY", ephemeral.x, EK.x, digest bits)``; the encrypted secret
     is the ephemeral ``TPMS_ECC_POINT``;

2. ``symKey = KDFa(nameAlg, seed, "STORAGE", AK name, "", EK symmetric keyBits)`` and
   ``encIdentity = CFB(symKey, IV = 0, TPM2B_DIGEST(secret))`` (Part 1, 24.4);
3. ``HMACkey = KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits)`` and
   ``outerHMAC = HMAC(HMACkey, encIdentity || AK name)`` (Part 1, 24.5);
4. ``TPM2B_ID_OBJECT`` (Part 2, 12.4.3) = ``size || TPM2B_DIGEST(outerHMAC) || encIdentity`` and
   ``TPM2B_ENCRYPTED_SECRET`` (Part 2, 11.4.3) = ``size || encrypted seed``.

:func:`encode_tpm2_tools_credential` writes the file ``tpm2_makecredential -o`` writes and
``tpm2_activatecredential -i`` reads: ``0xBADCC0DE`` and version 1 (both UINT32 big-endian), then the
``TPM2B_ID_OBJECT`` and the ``TPM2B_ENCRYPTED_SECRET``.

Errors: ``credential.ek_unsuitable`` (not a restricted decryption RSA/ECC key with an AES-CFB
symmetric definition), ``credential.secret_size`` (empty, or longer than the nameAlg digest),
``credential.name`` (the AK Name is not ``nameAlg || digest``); all :class:`EvidenceError`.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from cryptography.hazmat.primitives import hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # cryptography >= 47 keeps CFB among the "decrepit" modes
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[assignment]

from attestd.errors import EvidenceError
from attestd.tpm._wire import MAX_ENCRYPTED_SECRET, MAX_ID_OBJECT, reader, tpm2b, u32
from attestd.tpm.alg import HASH_ALGS, TPM_ALG
from attestd.tpm.constants import TPMA_OBJECT
from attestd.tpm.kdf import kdfa, kdfe
from attestd.tpm.public import ECCPoint, Public, ek_public_from_key, parse_public_any

__all__ = [
    "TPM2_TOOLS_CREDENTIAL_MAGIC",
    "Credential",
    "encode_tpm2_tools_credential",
    "make_credential",
    "parse_tpm2_tools_credential",
]

#: Header magic of tpm2-tools' credential file (tools/misc/files.c ``MAGIC``).
TPM2_TOOLS_CREDENTIAL_MAGIC = 0xBADCC0DE

_IDENTITY = b"IDENTITY\x00"


class Credential(NamedTuple):
    """``(TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET)``, both marshalled with their size."""

    id_object: bytes
    encrypted_secret: bytes

    def to_tpm2_tools(self) -> bytes:
        return encode_tpm2_tools_credential(self.id_object, self.encrypted_secret)


def _unsuitable(message: str) -> EvidenceError:
    return EvidenceError("credential.ek_unsuitable", message, field="ek_public")


def _ek_public(ek: Any) -> Public:
    if isinstance(ek, Public):
        return ek
    if isinstance(ek, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return ek_public_from_key(ek)
    if isinstance(ek, (bytes, bytearray, memoryview)):
        return parse_public_any(bytes(ek))
    raise _unsuitable(f"unsupported EK type {type(ek).__name__}")


def make_credential(ek_public: Any, ak_name: bytes, secret: bytes) -> Credential:
    """TPM2_MakeCredential for ``ek_public`` (a :class:`Public`, ``TPM2B_PUBLIC``/``TPMT_PUBLIC``
    bytes, or a ``cryptography`` key from an EK certificate, taken to use the default EK template).

    Returns ``(TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET)``; only the TPM holding that EK, with the
    object named ``ak_name`` loaded, recovers ``secret`` with TPM2_ActivateCredential.
    """
    ek = storage_parent(ek_public)
    name_alg = HASH_ALGS[ek.name_alg]
    secret = bytes(secret)
    if not 0 < len(secret) <= name_alg.digest_size:
        raise EvidenceError("credential.secret_size",
                            f"the secret must be 1..{name_alg.digest_size} bytes (EK nameAlg {name_alg.name})",
                            field="secret")
    ak_name = bytes(ak_name)
    ak_alg = HASH_ALGS.get(int.from_bytes(ak_name[:2], "big")) if len(ak_name) >= 2 else None
    if ak_alg is None or len(ak_name) != 2 + ak_alg.digest_size:
        raise EvidenceError("credential.name", "the AK Name must be nameAlg || digest", field="ak_name")
    wrapped, encrypted_seed = protect_to_parent(ek, _IDENTITY, ak_name, tpm2b(secret))
    return Credential(wrapped, encrypted_seed)


def storage_parent(public: Any) -> Public:
    """``public`` as a key a TPM can protect a seed to: a restricted decryption RSA/ECC key with
    an AES-CFB symmetric definition and a SHA-1/256/384/512 nameAlg (an EK, an SRK)."""
    ek = _ek_public(public)
    attrs = ek.object_attributes
    if not (attrs & TPMA_OBJECT.RESTRICTED and attrs & TPMA_OBJECT.DECRYPT) or attrs & TPMA_OBJECT.SIGN_ENCRYPT:
        raise _unsuitable("the EK must be a restricted decryption (storage) key")
    name_alg = HASH_ALGS.get(ek.name_alg)
    if name_alg is None or ek.name_alg not in (TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512):
        raise _unsuitable(f"EK nameAlg 0x{ek.name_alg:04x} is not supported")
    sym = ek.symmetric
    if sym.algorithm != TPM_ALG.AES or sym.mode != TPM_ALG.CFB or sym.key_bits not in (128, 192, 256):
        raise _unsuitable("the EK's symmetric definition must be AES-128/192/256 in CFB mode")
    return ek


def protect_to_parent(parent: Public, label: bytes, name: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """The outer protection of Part 1, 24 (credentials, label ``IDENTITY``) and 23.3 (duplication,
    label ``DUPLICATE``): a fresh seed protected to ``parent``, ``plaintext`` (a marshalled TPM2B)
    CFB-encrypted under ``KDFa(seed, "STORAGE", name)`` and an HMAC over it and ``name``.

    Returns ``(TPM2B(TPM2B_DIGEST(outerHMAC) || encrypted), TPM2B_ENCRYPTED_SECRET)``."""
    name_alg = HASH_ALGS[parent.name_alg]
    digest_bits = name_alg.digest_size * 8
    key = parent.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        seed = os.urandom(name_alg.digest_size)
        crypto_hash = name_alg.crypto
        encrypted_seed = key.encrypt(seed, padding.OAEP(padding.MGF1(crypto_hash), crypto_hash, label))
    else:
        assert isinstance(parent.unique, ECCPoint)
        size = (key.curve.key_size + 7) // 8
        eph = ec.generate_private_key(key.curve)
        z = eph.exchange(ec.ECDH(), key)
        nums = eph.public_key().public_numbers()
        ex, ey = nums.x.to_bytes(size, "big"), nums.y.to_bytes(size, "big")
        seed = kdfe(name_alg, z, label, ex, parent.unique.x, digest_bits)
        encrypted_seed = ECCPoint(ex, ey).to_bytes()
    sym_key = kdfa(name_alg, seed, "STORAGE", name, b"", parent.symmetric.key_bits)
    encryptor = Cipher(algorithms.AES(sym_key), CFB(b"\x00" * 16)).encryptor()
    encrypted = encryptor.update(plaintext) + encryptor.finalize()
    hmac_key = kdfa(name_alg, seed, "INTEGRITY", b"", b"", digest_bits)
    mac = hmac.HMAC(hmac_key, name_alg.crypto)
    mac.update(encrypted + name)
    return tpm2b(tpm2b(mac.finalize()) + encrypted), tpm2b(encrypted_seed)


def encode_tpm2_tools_credential(id_object: bytes, encrypted_secret: bytes) -> bytes:
    """tpm2-tools' credential file: magic, version 1, ``TPM2B_ID_OBJECT``, ``TPM2B_ENCRYPTED_SECRET``.

    Both arguments are the marshalled ``TPM2B`` structures (with their sizes), as
    :func:`make_credential` returns them.
    """
    parse_tpm2_tools_credential(u32(TPM2_TOOLS_CREDENTIAL_MAGIC) + u32(1) + id_object + encrypted_secret)
    return u32(TPM2_TOOLS_CREDENTIAL_MAGIC) + u32(1) + bytes(id_object) + bytes(encrypted_secret)


def parse_tpm2_tools_credential(data: bytes) -> Credential:
    """Read tpm2-tools' credential file back into ``(TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET)``.

    ``tpm.credential_magic`` / ``tpm.credential_version`` for a foreign header, plus the usual
    ``tpm.truncated`` / ``tpm.length`` / ``tpm.trailing_data``.
    """
    r = reader(data)
    magic = r.u32("credential.magic")
    if magic != TPM2_TOOLS_CREDENTIAL_MAGIC:
        raise EvidenceError("tpm.credential_magic", f"magic 0x{magic:08x} is not 0xbadcc0de",
                            field="credential.magic", offset=0)
    version = r.u32("credential.version")
    if version != 1:
        raise EvidenceError("tpm.credential_version", f"unsupported credential file version {version}",
                            field="credential.version", offset=4)
    id_object = r.sized(2, "TPM2B_ID_OBJECT", max_length=MAX_ID_OBJECT)
    secret = r.sized(2, "TPM2B_ENCRYPTED_SECRET", max_length=MAX_ENCRYPTED_SECRET)
    r.expect_end("credential")
    return Credential(tpm2b(id_object), tpm2b(secret))
