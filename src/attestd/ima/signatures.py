"""IMA file signatures (the ``sig`` template field) and their verification against a keyring.

Wire format (``struct signature_v2_hdr``, security/integrity/integrity.h; ima-evm-utils
``imaevm.h``), all multi-byte integers big endian::

    u8     type        EVM_IMA_XATTR_DIGSIG (0x03), or IMA_VERITY_DIGSIG (0x06)
    u8     version     2 (3 for IMA_VERITY_DIGSIG)
    u8     hash_algo   enum hash_algo (include/uapi/linux/hash_info.h; 4 = sha256)
    __be32 keyid       low 32 bits of the signing key's id
    __be16 sig_size    length of sig[]
    u8     sig[]       RSA PKCS#1 v1.5 signature, or DER ECDSA-Sig-Value

``asymmetric_verify`` (security/integrity/digsig_asymmetric.c) requires the xattr to be exactly
``sizeof(hdr) + sig_size`` bytes. A v2 signature signs the file digest itself (the ``d-ng`` digest,
computed with ``hash_algo``). A v3 (fs-verity) signature signs ``H(struct ima_file_id)`` =
``H(u8 hash_type || u8 hash_algo || digest)`` (``calc_file_id_hash`` in ima_appraise.c).

Key ids: ima-evm-utils (``calc_keyid_v2``) takes the last 4 bytes of SHA-1 over the public key's
subjectPublicKey bits; the kernel matches ``id:<keyid>`` against the tail of an X.509 key's
subjectKeyIdentifier, which for the usual certificates is the same SHA-1. A key added from a
certificate is indexed under both.

The PKCS#7 appended signature (``modsig`` field) is exposed but not verified here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from attestd.binary import Reader
from attestd.errors import EvidenceError
from attestd.ima.entry import ImaEntry
from attestd.ima.hashalgo import kernel_hash_by_id

__all__ = [
    "EVM_IMA_XATTR_DIGSIG",
    "IMA_VERITY_DIGSIG",
    "ImaSignature",
    "parse_signature",
    "keyid_v2",
    "KeyringKey",
    "Keyring",
    "SignatureStatus",
    "SignatureResult",
    "verify_signature",
    "verify_signatures",
]

EVM_IMA_XATTR_DIGSIG = 0x03
IMA_VERITY_DIGSIG = 0x06

PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]


@dataclass(frozen=True, slots=True)
class ImaSignature:
    """A decoded ``signature_v2_hdr`` and its payload."""

    type: int
    version: int
    hash_algo: int
    keyid: int
    signature: bytes

    @property
    def hash_name(self) -> str | None:
        a = kernel_hash_by_id(self.hash_algo)
        return None if a is None else a.name

    @property
    def keyid_hex(self) -> str:
        return f"{self.keyid:08x}"


def parse_signature(data: bytes) -> ImaSignature:
    """Decode a ``security.ima`` digital signature; errors are ``ima.signature.*`` EvidenceErrors."""
    r = Reader(data, prefix="ima.signature", big_endian=True)
    sig_type = r.u8("signature_v2_hdr.type")
    if sig_type not in (EVM_IMA_XATTR_DIGSIG, IMA_VERITY_DIGSIG):
        raise EvidenceError("ima.signature.type", f"xattr type 0x{sig_type:02x} is not a digital signature",
                            field="signature_v2_hdr.type", offset=0)
    version = r.u8("signature_v2_hdr.version")
    want = 2 if sig_type == EVM_IMA_XATTR_DIGSIG else 3
    if version != want:
        raise EvidenceError("ima.signature.version",
                            f"signature format version {version} (type 0x{sig_type:02x} needs {want})",
                            field="signature_v2_hdr.version", offset=1)
    hash_algo = r.u8("signature_v2_hdr.hash_algo")
    keyid = r.u32("signature_v2_hdr.keyid")
    size_offset = r.offset
    sig_size = r.u16("signature_v2_hdr.sig_size")
    if sig_size != r.remaining:
        raise EvidenceError(
            "ima.signature.size",
            f"sig_size says {sig_size} bytes but {r.remaining} follow the header",
            field="signature_v2_hdr.sig_size",
            offset=size_offset,
        )
    return ImaSignature(sig_type, version, hash_algo, keyid, r.rest())


# -- keys -----------------------------------------------------------------------------------------
def _public_bits(key: PublicKey) -> bytes:
    """The subjectPublicKey BIT STRING contents of a key's SubjectPublicKeyInfo."""
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def keyid_v2(key: PublicKey) -> int:
    """ima-evm-utils ``calc_keyid_v2``: last 4 bytes of SHA-1 over the subjectPublicKey bits."""
    return int.from_bytes(hashlib.sha1(_public_bits(key)).digest()[-4:], "big")


@dataclass(frozen=True, slots=True)
class KeyringKey:
    keyid: int
    public_key: PublicKey
    #: where the key came from (a certificate subject, "public key", ...), for reports.
    source: str


def _bad_key(msg: str) -> EvidenceError:
    return EvidenceError("ima.keyring.bad_key", msg, field="keyring")


def _keys_from_cert(cert: x509.Certificate) -> list[KeyringKey]:
    key = cert.public_key()
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise _bad_key(f"certificate {cert.subject.rfc4514_string()} has an unsupported key type")
    ids = [keyid_v2(key)]
    try:
        skid = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        if len(skid) >= 4:
            ids.insert(0, int.from_bytes(skid[-4:], "big"))
    except x509.ExtensionNotFound:
        pass
    source = cert.subject.rfc4514_string() or "certificate"
    return [KeyringKey(k, key, source) for k in dict.fromkeys(ids)]


def _keys_from_public(key: object) -> list[KeyringKey]:
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise _bad_key(f"unsupported public key type {type(key).__name__}")
    return [KeyringKey(keyid_v2(key), key, "public key")]


_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)


def _keys_from_bytes(data: bytes) -> list[KeyringKey]:
    if b"-----BEGIN" in data:
        out: list[KeyringKey] = []
        for m in _PEM.finditer(data):
            label = m.group(1)
            try:
                if label == b"CERTIFICATE":
                    out += _keys_from_cert(x509.load_pem_x509_certificate(m.group(0)))
                elif label == b"PUBLIC KEY":
                    out += _keys_from_public(serialization.load_pem_public_key(m.group(0)))
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise _bad_key(f"bad PEM {label.decode()}: {exc}") from None
        if not out:
            raise _bad_key("PEM data holds no certificate or public key")
        return out
    try:
        return _keys_from_cert(x509.load_der_x509_certificate(data))
    except ValueError:
        pass
    try:
        return _keys_from_public(serialization.load_der_public_key(data))
    except (ValueError, UnsupportedAlgorithm):
        raise _bad_key("not a PEM/DER certificate or public key") from None


@dataclass(frozen=True, slots=True)
class Keyring:
    """Public keys that may sign files, indexed by IMA key id (``.ima`` keyring analogue)."""

    keys: tuple[KeyringKey, ...] = ()

    @classmethod
    def from_keys(cls, items: Iterable[object]) -> "Keyring":
        """Build from public keys, ``x509.Certificate`` objects, or PEM/DER bytes of either."""
        keys: list[KeyringKey] = []
        for item in items:
            if isinstance(item, (bytes, bytearray, memoryview)):
                keys += _keys_from_bytes(bytes(item))
            elif isinstance(item, x509.Certificate):
                keys += _keys_from_cert(item)
            else:
                keys += _keys_from_public(item)
        return cls(tuple(keys))

    @classmethod
    def from_ima_buf(cls, entries: Iterable[ImaEntry], keyrings: Iterable[str] = (".ima",)) -> "Keyring":
        """Keys the list itself records being loaded (``ima-buf`` entries named after a keyring).

        Only DER X.509 certificates are taken; other buffers are skipped. Whether such keys are
        trusted is a policy decision for the caller (they are measured, not authenticated).
        """
        wanted = {k.encode() for k in keyrings}
        keys: list[KeyringKey] = []
        for e in entries:
            buf = e.buf
            if buf is None or e.name not in wanted:
                continue
            try:
                keys += _keys_from_cert(x509.load_der_x509_certificate(buf))
            except (ValueError, EvidenceError):
                continue
        return cls(tuple(keys))

    def __add__(self, other: "Keyring") -> "Keyring":
        return Keyring(self.keys + other.keys)

    def lookup(self, keyid: int) -> tuple[KeyringKey, ...]:
        return tuple(k for k in self.keys if k.keyid == keyid)


# -- verification ---------------------------------------------------------------------------------
class SignatureStatus(str, Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN_KEY = "unknown_key"
    UNSIGNED = "unsigned"
    #: the sig field is not a well-formed signature_v2_hdr (``code`` says why).
    MALFORMED = "malformed"
    #: well formed but uses a format, hash or key type this verifier does not implement.
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class SignatureResult:
    index: int
    status: SignatureStatus
    keyid: int | None = None
    code: str | None = None
    message: str | None = None

    @property
    def valid(self) -> bool:
        return self.status is SignatureStatus.VALID


def _verify_with(key: PublicKey, sig: bytes, digest: bytes, algo) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, digest, padding.PKCS1v15(), Prehashed(algo))
        else:
            key.verify(sig, digest, ec.ECDSA(Prehashed(algo)))
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_signature(entry: ImaEntry, keyring: Keyring) -> SignatureResult:
    """Verify one entry's ``sig`` field against its file digest with the keys of ``keyring``."""
    i = entry.index
    raw = entry.signature
    if raw is None:
        return SignatureResult(i, SignatureStatus.UNSIGNED)
    try:
        sig = parse_signature(raw)
    except EvidenceError as err:
        status = SignatureStatus.UNSUPPORTED if err.code == "ima.signature.version" else SignatureStatus.MALFORMED
        return SignatureResult(i, status, None, err.code, err.message)
    algo = kernel_hash_by_id(sig.hash_algo)
    if algo is None or algo.crypto is None:
        return SignatureResult(i, SignatureStatus.UNSUPPORTED, sig.keyid, "ima.signature.unsupported_alg",
                               f"hash algorithm {sig.hash_algo} is not supported")
    fd = entry.digest
    if fd is None:
        return SignatureResult(i, SignatureStatus.INVALID, sig.keyid, "ima.signature.no_digest",
                               f"template {entry.template_name} records no file digest")
    if fd.algo != algo.name:
        return SignatureResult(i, SignatureStatus.INVALID, sig.keyid, "ima.signature.algo_mismatch",
                               f"signature uses {algo.name} but the measured digest is {fd.algo}")
    signed = fd.digest
    if sig.version == 3:
        if fd.digest_type != "verity":
            return SignatureResult(i, SignatureStatus.INVALID, sig.keyid, "ima.signature.algo_mismatch",
                                   "an fs-verity signature needs a 'verity:' d-ngv2 digest")
        signed = algo.digest(bytes([sig.type, sig.hash_algo]) + fd.digest)
    keys = keyring.lookup(sig.keyid)
    if not keys:
        return SignatureResult(i, SignatureStatus.UNKNOWN_KEY, sig.keyid, "ima.signature.unknown_key",
                               f"no key with id {sig.keyid_hex} in the keyring")
    crypto_alg = algo.crypto()
    for k in keys:
        if _verify_with(k.public_key, sig.signature, signed, crypto_alg):
            return SignatureResult(i, SignatureStatus.VALID, sig.keyid)
    return SignatureResult(i, SignatureStatus.INVALID, sig.keyid, "ima.signature.invalid",
                           f"signature does not verify with key {sig.keyid_hex}")


def verify_signatures(entries: Iterable[ImaEntry], keyring: Keyring) -> list[SignatureResult]:
    """One :class:`SignatureResult` per entry, in order (``unsigned`` when there is no ``sig``)."""
    if hasattr(entries, "entries"):
        entries = entries.entries  # an ImaLog
    return [verify_signature(e, keyring) for e in entries]
