"""``TPMT_PUBLIC`` / ``TPM2B_PUBLIC``: the public area of a TPM object, its Name, and its key.

TPM 2.0 Library Part 2, 12.2 "Public Area Structures"::

    TPMT_PUBLIC {                               // 12.2.4
        TPMI_ALG_PUBLIC    type;                // RSA, ECC, KEYEDHASH, SYMCIPHER
        TPMI_ALG_HASH      nameAlg;
        TPMA_OBJECT        objectAttributes;    // 8.3
        TPM2B_DIGEST       authPolicy;
        TPMU_PUBLIC_PARMS  parameters;          // 12.2.3
        TPMU_PUBLIC_ID     unique;              // 12.2.3
    }
    TPM2B_PUBLIC { UINT16 size; TPMT_PUBLIC publicArea; }   // 12.2.5

with the parameter structures ``TPMS_RSA_PARMS``, ``TPMS_ECC_PARMS``, ``TPMS_KEYEDHASH_PARMS``
(12.2.3), ``TPMS_SYMCIPHER_PARMS`` and ``TPMT_SYM_DEF_OBJECT`` (11.1 "Symmetric"), the schemes
``TPMT_KEYEDHASH_SCHEME`` (11.1), ``TPMT_KDF_SCHEME``, ``TPMT_RSA_SCHEME`` (11.2.4 "RSA"),
``TPMT_ECC_SCHEME`` and ``TPMS_ECC_POINT`` (11.2.5 "ECC").

The object's Name (Part 1, 16 "Names") is ``nameAlg || H_nameAlg(TPMT_PUBLIC)``.

:func:`load_signing_key` accepts an AK in every form Attestd meets: ``TPM2B_PUBLIC`` (tpm2-tools'
``-u``), bare ``TPMT_PUBLIC`` (go-attestation, go-tpm-tools), PEM or DER ``SubjectPublicKeyInfo``,
a :class:`Public`, or a ``cryptography`` public key.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestd.binary import Reader
from attestd.errors import EvidenceError
from attestd.tpm._wire import MAX_DIGEST, MAX_ECC_BYTES, MAX_PUBLIC, MAX_RSA_BYTES, reader, tpm2b, u16, u32
from attestd.tpm.alg import HASH_ALGS, TPM_ALG, HashAlg, hash_alg
from attestd.tpm.constants import TPM_ECC_CURVE, TPMA_OBJECT

__all__ = [
    "AK_ATTRIBUTES",
    "EK_ATTRIBUTES",
    "EK_AUTH_POLICY",
    "ECCParms",
    "ECCPoint",
    "KeyedHashParms",
    "Public",
    "RSAParms",
    "Scheme",
    "SigningKey",
    "SymCipherParms",
    "SymDefObject",
    "ek_public_from_key",
    "load_signing_key",
    "parse_public",
    "parse_public_2b",
    "parse_public_any",
    "read_public",
]

_SYM_BLOCK = frozenset({TPM_ALG.AES, TPM_ALG.SM4, TPM_ALG.CAMELLIA, TPM_ALG.TDES})
_RSA_SCHEMES_HASH = frozenset({TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.OAEP})
_ECC_SCHEMES_HASH = frozenset({TPM_ALG.ECDSA, TPM_ALG.SM2, TPM_ALG.ECSCHNORR, TPM_ALG.ECDH, TPM_ALG.ECMQV})
_KDF_SCHEMES = frozenset({TPM_ALG.MGF1, TPM_ALG.KDF1_SP800_56A, TPM_ALG.KDF2, TPM_ALG.KDF1_SP800_108})

_CURVES: dict[int, type[ec.EllipticCurve]] = {
    TPM_ECC_CURVE.NIST_P192: ec.SECP192R1,
    TPM_ECC_CURVE.NIST_P224: ec.SECP224R1,
    TPM_ECC_CURVE.NIST_P256: ec.SECP256R1,
    TPM_ECC_CURVE.NIST_P384: ec.SECP384R1,
    TPM_ECC_CURVE.NIST_P521: ec.SECP521R1,
}
_CURVE_IDS = {cls.name: cid for cid, cls in _CURVES.items()}

#: Attributes of an AK made by tpm2_createak / go-attestation: fixedTPM | fixedParent |
#: sensitiveDataOrigin | userWithAuth | restricted | sign.
AK_ATTRIBUTES = (TPMA_OBJECT.FIXED_TPM | TPMA_OBJECT.FIXED_PARENT | TPMA_OBJECT.SENSITIVE_DATA_ORIGIN
                 | TPMA_OBJECT.USER_WITH_AUTH | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT)
#: Attributes of the default EK templates (TCG EK Credential Profile 2.0, B.3.3 templates L-1, L-2).
EK_ATTRIBUTES = (TPMA_OBJECT.FIXED_TPM | TPMA_OBJECT.FIXED_PARENT | TPMA_OBJECT.SENSITIVE_DATA_ORIGIN
                 | TPMA_OBJECT.ADMIN_WITH_POLICY | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.DECRYPT)
#: authPolicy of the default EK templates: PolicySecret(TPM_RH_ENDORSEMENT) (EK Profile B.3.2).
EK_AUTH_POLICY = bytes.fromhex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")


def _alg_name(alg: int) -> str:
    try:
        return TPM_ALG(alg).name.lower()
    except ValueError:
        return f"0x{alg:04x}"


@dataclass(frozen=True, slots=True)
class SymDefObject:
    """``TPMT_SYM_DEF_OBJECT`` (Part 2, 11.1): ``algorithm``, ``keyBits``, ``mode`` (absent for NULL)."""

    algorithm: int = TPM_ALG.NULL
    key_bits: int = 0
    mode: int = TPM_ALG.NULL

    def to_bytes(self) -> bytes:
        if self.algorithm == TPM_ALG.NULL:
            return u16(self.algorithm)
        return u16(self.algorithm) + u16(self.key_bits) + u16(self.mode)

    def to_json(self) -> dict[str, Any]:
        if self.algorithm == TPM_ALG.NULL:
            return {"algorithm": "null"}
        return {"algorithm": _alg_name(self.algorithm), "keyBits": self.key_bits, "mode": _alg_name(self.mode)}


@dataclass(frozen=True, slots=True)
class Scheme:
    """A ``TPMT_*_SCHEME`` (Part 2, 11.1 and 11.2): a scheme and its details.

    ``hash`` for schemes with a ``TPMS_SCHEME_HASH``; ``count`` for ECDAA; ``kdf`` for the
    keyed-hash XOR scheme. ``TPM_ALG_NULL`` (and RSAES) carry no details.
    """

    scheme: int = TPM_ALG.NULL
    hash: int = TPM_ALG.NULL
    count: int = 0
    kdf: int = TPM_ALG.NULL

    def to_bytes(self) -> bytes:
        s = self.scheme
        if s in (TPM_ALG.NULL, TPM_ALG.RSAES):
            return u16(s)
        if s == TPM_ALG.ECDAA:
            return u16(s) + u16(self.hash) + u16(self.count)
        if s == TPM_ALG.XOR:
            return u16(s) + u16(self.hash) + u16(self.kdf)
        return u16(s) + u16(self.hash)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scheme": _alg_name(self.scheme)}
        if self.scheme not in (TPM_ALG.NULL, TPM_ALG.RSAES):
            out["hash"] = _alg_name(self.hash)
        if self.scheme == TPM_ALG.ECDAA:
            out["count"] = self.count
        if self.scheme == TPM_ALG.XOR:
            out["kdf"] = _alg_name(self.kdf)
        return out


@dataclass(frozen=True, slots=True)
class RSAParms:
    """``TPMS_RSA_PARMS`` (Part 2, 12.2.3). ``exponent`` 0 means the default 65537."""

    symmetric: SymDefObject
    scheme: Scheme
    key_bits: int
    exponent: int

    def to_bytes(self) -> bytes:
        return self.symmetric.to_bytes() + self.scheme.to_bytes() + u16(self.key_bits) + u32(self.exponent)

    def to_json(self) -> dict[str, Any]:
        return {"symmetric": self.symmetric.to_json(), "scheme": self.scheme.to_json(), "keyBits": self.key_bits,
                "exponent": self.exponent}


@dataclass(frozen=True, slots=True)
class ECCParms:
    """``TPMS_ECC_PARMS`` (Part 2, 12.2.3)."""

    symmetric: SymDefObject
    scheme: Scheme
    curve_id: int
    kdf: Scheme

    def to_bytes(self) -> bytes:
        return self.symmetric.to_bytes() + self.scheme.to_bytes() + u16(self.curve_id) + self.kdf.to_bytes()

    def to_json(self) -> dict[str, Any]:
        try:
            curve = TPM_ECC_CURVE(self.curve_id).name
        except ValueError:
            curve = f"0x{self.curve_id:04x}"
        return {"symmetric": self.symmetric.to_json(), "scheme": self.scheme.to_json(), "curveID": curve,
                "kdf": self.kdf.to_json()}


@dataclass(frozen=True, slots=True)
class KeyedHashParms:
    """``TPMS_KEYEDHASH_PARMS`` (Part 2, 12.2.3)."""

    scheme: Scheme

    def to_bytes(self) -> bytes:
        return self.scheme.to_bytes()

    def to_json(self) -> dict[str, Any]:
        return {"scheme": self.scheme.to_json()}


@dataclass(frozen=True, slots=True)
class SymCipherParms:
    """``TPMS_SYMCIPHER_PARMS`` (Part 2, 11.1)."""

    sym: SymDefObject

    def to_bytes(self) -> bytes:
        return self.sym.to_bytes()

    def to_json(self) -> dict[str, Any]:
        return {"sym": self.sym.to_json()}


@dataclass(frozen=True, slots=True)
class ECCPoint:
    """``TPMS_ECC_POINT`` (Part 2, 11.2.5): ``x`` and ``y`` as ``TPM2B_ECC_PARAMETER``."""

    x: bytes
    y: bytes

    def to_bytes(self) -> bytes:
        return tpm2b(self.x) + tpm2b(self.y)


Parameters = Union[RSAParms, ECCParms, KeyedHashParms, SymCipherParms]


@dataclass(frozen=True, slots=True)
class Public:
    """``TPMT_PUBLIC`` (Part 2, 12.2.4).

    ``unique`` is the RSA modulus (``TPM2B_PUBLIC_KEY_RSA``), an :class:`ECCPoint`, or the
    ``TPM2B_DIGEST`` of a keyed-hash / symmetric object.
    """

    type: int
    name_alg: int
    object_attributes: int
    auth_policy: bytes
    parameters: Parameters
    unique: bytes | ECCPoint
    #: the Name, computed once (the object is immutable)
    _name: bytes | None = field(default=None, init=False, repr=False, compare=False)

    # -- encoding ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Marshalled ``TPMT_PUBLIC``."""
        uniq = self.unique.to_bytes() if isinstance(self.unique, ECCPoint) else tpm2b(self.unique)
        return (u16(self.type) + u16(self.name_alg) + u32(self.object_attributes) + tpm2b(self.auth_policy)
                + self.parameters.to_bytes() + uniq)

    def to_tpm2b(self) -> bytes:
        """Marshalled ``TPM2B_PUBLIC`` (what ``tpm2_createak -u`` writes)."""
        return tpm2b(self.to_bytes())

    # -- identity ------------------------------------------------------------------------
    @property
    def name_hash(self) -> HashAlg:
        return hash_alg(self.name_alg, field="TPMT_PUBLIC.nameAlg")

    @property
    def name(self) -> bytes:
        """The object's Name: ``nameAlg || H_nameAlg(TPMT_PUBLIC)`` (Part 1, 16)."""
        name = self._name
        if name is None:
            name = u16(self.name_alg) + self.name_hash.digest(self.to_bytes())
            object.__setattr__(self, "_name", name)
        return name

    @property
    def attributes(self) -> TPMA_OBJECT:
        return TPMA_OBJECT(self.object_attributes & sum(int(f) for f in TPMA_OBJECT))

    @property
    def scheme(self) -> Scheme:
        p = self.parameters
        if isinstance(p, (RSAParms, ECCParms, KeyedHashParms)):
            return p.scheme
        return Scheme()

    @property
    def symmetric(self) -> SymDefObject:
        p = self.parameters
        if isinstance(p, (RSAParms, ECCParms)):
            return p.symmetric
        if isinstance(p, SymCipherParms):
            return p.sym
        return SymDefObject()

    @property
    def type_name(self) -> str:
        return _alg_name(self.type)

    # -- keys ----------------------------------------------------------------------------
    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        """The ``cryptography`` public key of an RSA or ECC object.

        ``tpm.key_type`` for keyed-hash/symmetric objects, ``tpm.unsupported_curve`` for curves
        ``cryptography`` lacks (BN, SM2), ``tpm.invalid_key`` for a modulus/point that is not a key.
        """
        p = self.parameters
        if isinstance(p, RSAParms) and isinstance(self.unique, bytes):
            n = int.from_bytes(self.unique, "big")
            if p.key_bits and len(self.unique) * 8 != p.key_bits:
                raise EvidenceError("tpm.invalid_key",
                                    f"RSA modulus has {len(self.unique) * 8} bits, keyBits says {p.key_bits}",
                                    field="TPMT_PUBLIC.unique.rsa")
            try:
                return rsa.RSAPublicNumbers(p.exponent or 65537, n).public_key()
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise EvidenceError("tpm.invalid_key", f"not an RSA public key: {exc}",
                                    field="TPMT_PUBLIC.unique.rsa") from None
        if isinstance(p, ECCParms) and isinstance(self.unique, ECCPoint):
            curve = _CURVES.get(p.curve_id)
            if curve is None:
                raise EvidenceError("tpm.unsupported_curve", f"unsupported ECC curve 0x{p.curve_id:04x}",
                                    field="TPMT_PUBLIC.parameters.eccDetail.curveID")
            try:
                return ec.EllipticCurvePublicNumbers(int.from_bytes(self.unique.x, "big"),
                                                     int.from_bytes(self.unique.y, "big"), curve()).public_key()
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise EvidenceError("tpm.invalid_key", f"not a point on the curve: {exc}",
                                    field="TPMT_PUBLIC.unique.ecc") from None
        raise EvidenceError("tpm.key_type", f"a {self.type_name} object has no asymmetric public key",
                            field="TPMT_PUBLIC.type")

    @classmethod
    def from_public_key(
        cls,
        key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
        *,
        name_alg: int = TPM_ALG.SHA256,
        object_attributes: int = int(AK_ATTRIBUTES),
        auth_policy: bytes = b"",
        scheme: Scheme | None = None,
        symmetric: SymDefObject | None = None,
        kdf: Scheme | None = None,
    ) -> Public:
        """The ``TPMT_PUBLIC`` a TPM would hold for ``key`` with the given template fields.

        The defaults describe a restricted signing key (an AK) with an RSASSA-SHA256 or
        ECDSA-SHA256 scheme.
        """
        sym = symmetric or SymDefObject()
        if isinstance(key, rsa.RSAPublicKey):
            nums = key.public_numbers()
            size = (key.key_size + 7) // 8
            sch = scheme or Scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256)
            exponent = 0 if nums.e == 65537 else nums.e
            return cls(TPM_ALG.RSA, name_alg, int(object_attributes), auth_policy,
                       RSAParms(sym, sch, key.key_size, exponent), nums.n.to_bytes(size, "big"))
        if isinstance(key, ec.EllipticCurvePublicKey):
            cid = _CURVE_IDS.get(key.curve.name)
            if cid is None:
                raise EvidenceError("tpm.unsupported_curve", f"curve {key.curve.name} has no TPM_ECC_CURVE id")
            nums = key.public_numbers()
            size = (key.curve.key_size + 7) // 8
            sch = scheme or Scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256)
            return cls(TPM_ALG.ECC, name_alg, int(object_attributes), auth_policy,
                       ECCParms(sym, sch, cid, kdf or Scheme()),
                       ECCPoint(nums.x.to_bytes(size, "big"), nums.y.to_bytes(size, "big")))
        raise EvidenceError("tpm.key_type", f"unsupported key type {type(key).__name__}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type_name,
            "nameAlg": _alg_name(self.name_alg),
            "objectAttributes": f"0x{self.object_attributes:08x}",
            "authPolicy": self.auth_policy.hex(),
            "parameters": self.parameters.to_json(),
        }
        if isinstance(self.unique, ECCPoint):
            out["unique"] = {"x": self.unique.x.hex(), "y": self.unique.y.hex()}
        else:
            out["unique"] = self.unique.hex()
        if self.name_alg in HASH_ALGS:
            out["name"] = self.name.hex()
        return out


# -- parsing ------------------------------------------------------------------------------

def _hash_id(r: Reader, field: str, *, allow_null: bool = False) -> int:
    off = r.offset
    v = r.u16(field)
    if allow_null and v == TPM_ALG.NULL:
        return v
    hash_alg(v, field=field, offset=off)
    return v


def _unsupported(what: str, value: int, field: str, offset: int) -> EvidenceError:
    return EvidenceError("tpm.unsupported_alg", f"unknown {what} 0x{value:04x}", field=field, offset=offset)


def _read_sym(r: Reader, field: str) -> SymDefObject:
    off = r.offset
    alg = r.u16(f"{field}.algorithm")
    if alg == TPM_ALG.NULL:
        return SymDefObject()
    if alg not in _SYM_BLOCK:
        raise _unsupported("symmetric algorithm", alg, f"{field}.algorithm", off)
    bits = r.u16(f"{field}.keyBits")
    mode_off = r.offset
    mode = r.u16(f"{field}.mode")
    if mode not in (TPM_ALG.CFB, TPM_ALG.CBC, TPM_ALG.CTR, TPM_ALG.OFB, TPM_ALG.ECB, TPM_ALG.NULL):
        raise _unsupported("symmetric mode", mode, f"{field}.mode", mode_off)
    return SymDefObject(alg, bits, mode)


def _read_scheme(r: Reader, field: str, allowed_hash: frozenset[int], *, rsaes: bool = False,
                 ecdaa: bool = False, xor: bool = False) -> Scheme:
    off = r.offset
    s = r.u16(f"{field}.scheme")
    if s == TPM_ALG.NULL or (rsaes and s == TPM_ALG.RSAES):
        return Scheme(s)
    if ecdaa and s == TPM_ALG.ECDAA:
        h = _hash_id(r, f"{field}.details.hashAlg")
        return Scheme(s, h, count=r.u16(f"{field}.details.count"))
    if xor and s == TPM_ALG.XOR:
        h = _hash_id(r, f"{field}.details.hashAlg")
        kdf_off = r.offset
        kdf = r.u16(f"{field}.details.kdf")
        if kdf not in _KDF_SCHEMES and kdf != TPM_ALG.NULL:
            raise _unsupported("KDF", kdf, f"{field}.details.kdf", kdf_off)
        return Scheme(s, h, kdf=kdf)
    if s in allowed_hash:
        return Scheme(s, _hash_id(r, f"{field}.details.hashAlg"))
    raise _unsupported("scheme", s, f"{field}.scheme", off)


def read_public(r: Reader, field: str = "TPMT_PUBLIC") -> Public:
    """Read one ``TPMT_PUBLIC`` from ``r``."""
    type_off = r.offset
    typ = r.u16(f"{field}.type")
    if typ not in (TPM_ALG.RSA, TPM_ALG.ECC, TPM_ALG.KEYEDHASH, TPM_ALG.SYMCIPHER):
        raise _unsupported("object type", typ, f"{field}.type", type_off)
    name_alg = _hash_id(r, f"{field}.nameAlg", allow_null=True)
    attrs = r.u32(f"{field}.objectAttributes")
    policy = r.sized(2, f"{field}.authPolicy", max_length=MAX_DIGEST)
    params: Parameters
    unique: bytes | ECCPoint
    pf = f"{field}.parameters"
    if typ == TPM_ALG.RSA:
        sym = _read_sym(r, f"{pf}.rsaDetail.symmetric")
        sch = _read_scheme(r, f"{pf}.rsaDetail.scheme", _RSA_SCHEMES_HASH, rsaes=True)
        params = RSAParms(sym, sch, r.u16(f"{pf}.rsaDetail.keyBits"), r.u32(f"{pf}.rsaDetail.exponent"))
        unique = r.sized(2, f"{field}.unique.rsa", max_length=MAX_RSA_BYTES)
    elif typ == TPM_ALG.ECC:
        sym = _read_sym(r, f"{pf}.eccDetail.symmetric")
        sch = _read_scheme(r, f"{pf}.eccDetail.scheme", _ECC_SCHEMES_HASH, ecdaa=True)
        curve = r.u16(f"{pf}.eccDetail.curveID")
        kdf = _read_scheme(r, f"{pf}.eccDetail.kdf", _KDF_SCHEMES)
        params = ECCParms(sym, sch, curve, kdf)
        unique = ECCPoint(r.sized(2, f"{field}.unique.ecc.x", max_length=MAX_ECC_BYTES),
                          r.sized(2, f"{field}.unique.ecc.y", max_length=MAX_ECC_BYTES))
    elif typ == TPM_ALG.KEYEDHASH:
        params = KeyedHashParms(_read_scheme(r, f"{pf}.keyedHashDetail.scheme", frozenset({TPM_ALG.HMAC}),
                                             xor=True))
        unique = r.sized(2, f"{field}.unique.keyedHash", max_length=MAX_DIGEST)
    else:
        params = SymCipherParms(_read_sym(r, f"{pf}.symDetail.sym"))
        unique = r.sized(2, f"{field}.unique.sym", max_length=MAX_DIGEST)
    return Public(typ, name_alg, attrs, policy, params, unique)


def parse_public(data: bytes) -> Public:
    """Parse a buffer holding exactly one ``TPMT_PUBLIC``."""
    r = reader(data)
    pub = read_public(r)
    r.expect_end("TPMT_PUBLIC")
    return pub


def parse_public_2b(data: bytes) -> Public:
    """Parse a buffer holding exactly one ``TPM2B_PUBLIC`` (tpm2-tools' tss format)."""
    r = reader(data)
    inner = r.sized(2, "TPM2B_PUBLIC", max_length=MAX_PUBLIC)
    r.expect_end("TPM2B_PUBLIC")
    ir = reader(inner, base=2)
    pub = read_public(ir, "TPM2B_PUBLIC.publicArea")
    ir.expect_end("TPM2B_PUBLIC.publicArea")
    return pub


def _looks_2b(data: bytes) -> bool:
    return len(data) >= 2 and int.from_bytes(data[:2], "big") == len(data) - 2


def parse_public_any(data: bytes) -> Public:
    """A ``TPM2B_PUBLIC`` when the leading size matches the length, else a ``TPMT_PUBLIC``.

    (A ``TPMT_PUBLIC`` whose type happens to equal its length minus 2 is still found: when the
    ``TPM2B_PUBLIC`` reading fails, the bare structure is tried.)
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EvidenceError("tpm.type", f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not _looks_2b(data):
        return parse_public(data)
    try:
        return parse_public_2b(data)
    except EvidenceError as first:
        try:
            return parse_public(data)
        except EvidenceError:
            raise first from None


# -- keys ---------------------------------------------------------------------------------

PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A verification key, with its ``TPMT_PUBLIC`` when it came from the TPM (not from an SPKI)."""

    key: PublicKey = field(repr=False)
    public: Public | None = None

    @property
    def name(self) -> bytes | None:
        return self.public.name if self.public is not None else None

    @property
    def key_type(self) -> str:
        return "rsa" if isinstance(self.key, rsa.RSAPublicKey) else "ecc"

    def spki_der(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def fingerprint(self) -> str:
        """SHA-256 over the DER SubjectPublicKeyInfo, hex."""
        return hashlib.sha256(self.spki_der()).hexdigest()


def _from_crypto(key: Any) -> SigningKey:
    if isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return SigningKey(key)
    raise EvidenceError("tpm.key_type", f"unsupported AK key type {type(key).__name__}", field="ak")


def load_signing_key(ak: Any) -> SigningKey:
    """Turn any accepted AK representation into a :class:`SigningKey`.

    Accepts :class:`SigningKey`, :class:`Public`, a ``cryptography`` RSA/EC public key, or bytes:
    PEM or DER ``SubjectPublicKeyInfo``, ``TPM2B_PUBLIC``, ``TPMT_PUBLIC``. Unparseable bytes raise
    the ``TPMT_PUBLIC`` parser's :class:`EvidenceError`; PEM/DER that ``cryptography`` rejects is
    ``tpm.key_format``.
    """
    if isinstance(ak, SigningKey):
        return ak
    if isinstance(ak, Public):
        return SigningKey(ak.public_key(), ak)
    if isinstance(ak, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return SigningKey(ak)
    if isinstance(ak, str):
        ak = ak.encode()
    if not isinstance(ak, (bytes, bytearray, memoryview)):
        raise EvidenceError("tpm.key_type", f"unsupported AK type {type(ak).__name__}", field="ak")
    data = bytes(ak)
    return _signing_key_of(data) if len(data) <= 4096 else _signing_key_of.__wrapped__(data)


#: a host sends the same AK (and identity key) at every attestation: the key of the same bytes is
#: the same immutable object (building a ``cryptography`` key validates the point or modulus, which
#: costs more than the parse); a parse error is raised again each time, never kept
@functools.lru_cache(maxsize=4096)
def _signing_key_of(data: bytes) -> SigningKey:
    stripped = data.lstrip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            return _from_crypto(serialization.load_pem_public_key(stripped))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise EvidenceError("tpm.key_format", f"PEM is not a public key: {exc}", field="ak") from None
    if data[:1] == b"\x30":
        try:
            return _from_crypto(serialization.load_der_public_key(data))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise EvidenceError("tpm.key_format", f"DER is not a SubjectPublicKeyInfo: {exc}",
                                field="ak") from None
    pub = parse_public_any(data)
    return SigningKey(pub.public_key(), pub)


def ek_public_from_key(key: PublicKey, *, name_alg: int = TPM_ALG.SHA256) -> Public:
    """The ``TPMT_PUBLIC`` of an EK created from the default low-range templates.

    TCG EK Credential Profile 2.0, B.3.3: template L-1 (RSA 2048) and L-2 (ECC NIST P-256), both
    with AES-128-CFB, a NULL scheme and the PolicySecret(TPM_RH_ENDORSEMENT) authPolicy. Use it to
    run :func:`attestd.tpm.make_credential` when only the EK certificate is known.
    """
    sym = SymDefObject(TPM_ALG.AES, 128, TPM_ALG.CFB)
    return Public.from_public_key(key, name_alg=name_alg, object_attributes=int(EK_ATTRIBUTES),
                                  auth_policy=EK_AUTH_POLICY, scheme=Scheme(), symmetric=sym)
