"""Verification of TPM 2.0 attestations: quotes, TPM2_Certify and TPM2_CertifyCreation.

:func:`verify_quote` is the stable entry point for TPM2_Quote (TPM 2.0 Library Part 3, 18.4). It
checks, in this order, and stops at the first failure:

1. the signature and AK parse (:class:`~attestd.errors.EvidenceError`, ``tpm.*``);
2. ``TPMS_ATTEST.magic`` is ``TPM_GENERATED_VALUE`` (Part 2, 6.2) - ``quote.magic``;
3. ``TPMS_ATTEST.type`` is ``TPM_ST_ATTEST_QUOTE`` - ``quote.type``;
4. the rest of ``TPMS_ATTEST`` parses (``tpm.*``);
5. the signature scheme is one the AK can make: RSASSA/RSAPSS for RSA keys, ECDSA for ECC keys,
   SHA-1/256/384/512 only, and equal to the AK's own scheme when its ``TPMT_PUBLIC`` fixes one -
   ``quote.signature_scheme``;
6. the signature over the ``TPMS_ATTEST`` bytes verifies with the AK - ``quote.signature_invalid``;
7. ``extraData`` equals the expected nonce - ``quote.nonce_mismatch``;
8. when PCR values are supplied: every selected PCR has a value (``quote.pcr_missing``; a bank
   Attestd cannot hash is ``quote.pcr_bank_unsupported``) and ``pcrDigest`` equals the hash, with
   the signature scheme's hash algorithm, of the selected values concatenated in selection order -
   ``quote.pcr_digest_mismatch``. Malformed supplied values are ``quote.pcrs_invalid``
   (EvidenceError).

Codes 2-3 and 5-8 are :class:`~attestd.errors.VerificationError`.

:func:`verify_certify` (TPM2_Certify, Part 3 18.2) uses the prefix ``certify.`` for the same
checks (``certify.magic``, ``certify.type``, ``certify.signature_scheme``,
``certify.signature_invalid``, ``certify.nonce_mismatch``) plus ``certify.name_mismatch``
(``TPMS_CERTIFY_INFO.name`` is not the certified object's Name) and
``certify.qualified_name_mismatch``.

:func:`verify_certify_creation` (TPM2_CertifyCreation, Part 3 18.3) uses ``creation.``:
``creation.magic``, ``creation.type``, ``creation.signature_scheme``, ``creation.signature_invalid``,
``creation.nonce_mismatch``, ``creation.name_mismatch`` (``objectName`` is not the object's Name)
and ``creation.hash_mismatch`` (``creationHash`` is not ``H_nameAlg(TPMS_CREATION_DATA)``).

:func:`check_ak_attributes` reports ``ak.attributes`` for a key that is not a restricted, fixed,
TPM-generated signing key, and ``ak.name_alg`` for one without a usable nameAlg.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from attestd.errors import EvidenceError, VerificationError
from attestd.tpm.alg import TPM_ALG, HashAlg
from attestd.tpm.attest import (
    Attest,
    CertifyInfo,
    ClockInfo,
    CreationInfo,
    QuoteInfo,
    parse_attest,
    parse_attest_header,
)
from attestd.tpm.constants import TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT
from attestd.tpm.creation import CreationData, parse_creation_data
from attestd.tpm.pcr import PCRSelectionList, PcrValues, normalize_pcr_values, selected_values
from attestd.tpm.public import Public, SigningKey, load_signing_key, parse_public_any
from attestd.tpm.signature import Signature, parse_signature

__all__ = [
    "CertifyResult",
    "CreationResult",
    "QuoteResult",
    "check_ak_attributes",
    "verify_certify",
    "verify_certify_creation",
    "verify_quote",
    "verify_signature",
]

_VERIFIABLE_HASHES = frozenset({TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512})


# -- results --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QuoteResult:
    """A verified quote. ``pcrs`` holds the checked values of the selected PCRs (``None`` when the
    caller supplied none, in which case only the signature, nonce and structure were checked)."""

    attest: Attest
    signature: Signature
    pcr_select: PCRSelectionList
    pcr_digest: bytes
    pcrs: PcrValues | None
    ak_name: bytes | None

    @property
    def clock_info(self) -> ClockInfo:
        return self.attest.clock_info

    @property
    def firmware_version(self) -> int:
        return self.attest.firmware_version

    @property
    def qualified_signer(self) -> bytes:
        return self.attest.qualified_signer

    @property
    def extra_data(self) -> bytes:
        return self.attest.extra_data

    @property
    def digest_alg(self) -> HashAlg:
        return self.signature.hash_alg

    @property
    def pcrs_verified(self) -> bool:
        return self.pcrs is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verified": True,
            "type": self.attest.type_name,
            "signature": {"sigAlg": self.signature.scheme_name, "hash": self.signature.hash_alg.name},
            "qualifiedSigner": self.qualified_signer.hex(),
            "extraData": self.extra_data.hex(),
            "clockInfo": self.clock_info.to_json(),
            "firmwareVersion": f"0x{self.firmware_version:016x}",
            "pcrSelect": self.pcr_select.to_json(),
            "pcrDigest": self.pcr_digest.hex(),
            "pcrsVerified": self.pcrs_verified,
        }
        if self.ak_name is not None:
            out["akName"] = self.ak_name.hex()
        if self.pcrs is not None:
            out["pcrs"] = {bank: {str(i): v.hex() for i, v in sorted(vals.items())}
                           for bank, vals in self.pcrs.items()}
        return out


@dataclass(frozen=True, slots=True)
class CertifyResult:
    """A verified TPM2_Certify: ``certified_name`` is the Name the signer vouched for."""

    attest: Attest
    signature: Signature
    certified_name: bytes
    qualified_name: bytes

    @property
    def clock_info(self) -> ClockInfo:
        return self.attest.clock_info

    def to_json(self) -> dict[str, Any]:
        return {"verified": True, "type": self.attest.type_name, "name": self.certified_name.hex(),
                "qualifiedName": self.qualified_name.hex(), "extraData": self.attest.extra_data.hex(),
                "clockInfo": self.clock_info.to_json()}


@dataclass(frozen=True, slots=True)
class CreationResult:
    """A verified TPM2_CertifyCreation with the parsed ``TPMS_CREATION_DATA``."""

    attest: Attest
    signature: Signature
    object_name: bytes
    creation_hash: bytes
    creation_data: CreationData

    def to_json(self) -> dict[str, Any]:
        return {"verified": True, "type": self.attest.type_name, "objectName": self.object_name.hex(),
                "creationHash": self.creation_hash.hex(), "creationData": self.creation_data.to_json()}


# -- signatures -----------------------------------------------------------------------------

def _scheme_error(prefix: str, message: str) -> VerificationError:
    return VerificationError(f"{prefix}.signature_scheme", message, field="TPMT_SIGNATURE.sigAlg")


def verify_signature(ak: Any, message: bytes, signature: bytes | Signature, *,
                     code_prefix: str = "tpm") -> Signature:
    """Verify a ``TPMT_SIGNATURE`` over ``message`` (the marshalled ``TPMS_ATTEST``) with ``ak``.

    Raises ``<prefix>.signature_scheme`` when the scheme cannot come from this key, and
    ``<prefix>.signature_invalid`` when the signature does not verify. Returns the parsed signature.
    """
    sig = signature if isinstance(signature, Signature) else parse_signature(signature)
    key = load_signing_key(ak)
    _check_scheme(key, sig, code_prefix)
    crypto_hash = sig.hash_alg.crypto
    try:
        if isinstance(key.key, rsa.RSAPublicKey):
            if sig.sig_alg == TPM_ALG.RSASSA:
                key.key.verify(sig.rsa_sig, message, padding.PKCS1v15(), crypto_hash)
            else:
                # TPMs use a salt as long as the digest, some the maximum; PSS.AUTO accepts either.
                key.key.verify(sig.rsa_sig, message, padding.PSS(padding.MGF1(crypto_hash), padding.PSS.AUTO),
                               crypto_hash)
        else:
            key.key.verify(sig.ecdsa_der(), message, ec.ECDSA(crypto_hash))
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        raise VerificationError(f"{code_prefix}.signature_invalid",
                                f"the {sig.scheme_name}-{sig.hash_alg.name} signature does not verify with the AK",
                                field="TPMT_SIGNATURE.signature") from None
    return sig


def _check_scheme(key: SigningKey, sig: Signature, prefix: str) -> None:
    if isinstance(key.key, rsa.RSAPublicKey):
        if sig.sig_alg not in (TPM_ALG.RSASSA, TPM_ALG.RSAPSS):
            raise _scheme_error(prefix, f"an RSA key cannot make a {sig.scheme_name} signature")
    elif sig.sig_alg != TPM_ALG.ECDSA:
        raise _scheme_error(prefix, f"an ECC key's {sig.scheme_name} signature cannot be verified (ECDSA only)")
    if sig.hash not in _VERIFIABLE_HASHES:
        raise _scheme_error(prefix, f"signature hash 0x{sig.hash:04x} is not SHA-1/256/384/512")
    if key.public is not None:
        fixed = key.public.scheme
        if fixed.scheme != TPM_ALG.NULL and (fixed.scheme != sig.sig_alg or fixed.hash != sig.hash):
            raise _scheme_error(prefix, f"the AK's scheme is {TPM_ALG(fixed.scheme).name.lower()}, "
                                        f"the signature is {sig.scheme_name}-{sig.hash_alg.name}")


def _check_header(data: bytes, expected: TPM_ST, prefix: str) -> Attest:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EvidenceError("tpm.type", f"expected TPMS_ATTEST bytes, got {type(data).__name__}")
    data = bytes(data)
    head = parse_attest_header(data)
    if head.magic != TPM_GENERATED_VALUE:
        raise VerificationError(f"{prefix}.magic",
                                f"TPMS_ATTEST.magic is 0x{head.magic:08x}, not TPM_GENERATED_VALUE (0xff544347)",
                                field="TPMS_ATTEST.magic", offset=0)
    if head.type != expected:
        raise VerificationError(f"{prefix}.type",
                                f"TPMS_ATTEST.type is 0x{head.type:04x}, expected TPM_ST_{expected.name}",
                                field="TPMS_ATTEST.type", offset=4)
    return parse_attest(data)


def _check_nonce(attest: Attest, nonce: bytes, prefix: str) -> None:
    if not isinstance(nonce, (bytes, bytearray, memoryview)):
        raise TypeError("nonce must be bytes")
    if not hmac.compare_digest(attest.extra_data, bytes(nonce)):
        raise VerificationError(f"{prefix}.nonce_mismatch",
                                "TPMS_ATTEST.extraData does not equal the expected nonce",
                                field="TPMS_ATTEST.extraData", offset=_extra_data_offset(attest),
                                details={"extraData": attest.extra_data.hex()})


def _extra_data_offset(attest: Attest) -> int:
    return 4 + 2 + 2 + len(attest.qualified_signer) + 2


# -- quote ----------------------------------------------------------------------------------

def verify_quote(
    ak: Any,
    quote: bytes,
    signature: bytes | Signature,
    *,
    nonce: bytes,
    pcrs: Mapping[Any, Mapping[Any, Any]] | None = None,
) -> QuoteResult:
    """Verify a TPM2_Quote: ``quote`` is the signed ``TPMS_ATTEST``, ``signature`` its ``TPMT_SIGNATURE``.

    ``ak`` is anything :func:`~attestd.tpm.public.load_signing_key` accepts. ``pcrs`` is
    ``{bank name or TPM_ALG_ID: {pcr index: value bytes or hex}}``; values of unselected PCRs are
    ignored. See the module docstring for the checks and their error codes.
    """
    sig = signature if isinstance(signature, Signature) else parse_signature(signature)
    key = load_signing_key(ak)
    attest = _check_header(quote, TPM_ST.ATTEST_QUOTE, "quote")
    verify_signature(key, bytes(quote), sig, code_prefix="quote")
    _check_nonce(attest, nonce, "quote")
    info = attest.attested
    assert isinstance(info, QuoteInfo)
    alg = sig.hash_alg
    checked: PcrValues | None = None
    if pcrs is not None:
        values = normalize_pcr_values(pcrs)
        concat = selected_values(info.pcr_select, values, code_prefix="quote")
        expected = alg.digest(b"".join(concat))
        if not hmac.compare_digest(expected, info.pcr_digest):
            raise VerificationError(
                "quote.pcr_digest_mismatch",
                f"pcrDigest {info.pcr_digest.hex()} is not {alg.name} of the supplied PCR values "
                f"({expected.hex()}) for selection {info.pcr_select}",
                field="TPMS_QUOTE_INFO.pcrDigest",
                details={"quoted": info.pcr_digest.hex(), "computed": expected.hex(), "hash": alg.name})
        checked = {}
        for sel in info.pcr_select.selections:
            bank = values.get(sel.bank, {})
            dest = checked.setdefault(sel.bank, {})
            for i in sel.pcrs:
                dest[i] = bank[i]
    elif len(info.pcr_digest) != alg.digest_size:
        raise VerificationError("quote.pcr_digest_mismatch",
                                f"pcrDigest has {len(info.pcr_digest)} bytes, {alg.name} digests have {alg.digest_size}",
                                field="TPMS_QUOTE_INFO.pcrDigest")
    return QuoteResult(attest, sig, info.pcr_select, info.pcr_digest, checked, key.name)


# -- certify --------------------------------------------------------------------------------

def _name_of(obj: Any) -> bytes:
    if isinstance(obj, Public):
        return obj.name
    if isinstance(obj, SigningKey):
        if obj.public is None:
            raise EvidenceError("tpm.key_format", "the certified key has no TPMT_PUBLIC, so no Name")
        return obj.public.name
    return parse_public_any(bytes(obj)).name


def verify_certify(
    ak: Any,
    attest: bytes,
    signature: bytes | Signature,
    *,
    nonce: bytes,
    certified: Any,
    qualified_name: bytes | None = None,
) -> CertifyResult:
    """Verify TPM2_Certify output: ``ak`` vouches that the object ``certified`` (a :class:`Public`,
    ``TPM2B_PUBLIC`` or ``TPMT_PUBLIC``) is loaded in the same TPM, over ``nonce``."""
    sig = signature if isinstance(signature, Signature) else parse_signature(signature)
    key = load_signing_key(ak)
    name = _name_of(certified)
    parsed = _check_header(attest, TPM_ST.ATTEST_CERTIFY, "certify")
    verify_signature(key, bytes(attest), sig, code_prefix="certify")
    _check_nonce(parsed, nonce, "certify")
    info = parsed.attested
    assert isinstance(info, CertifyInfo)
    if not hmac.compare_digest(info.name, name):
        raise VerificationError("certify.name_mismatch",
                                f"TPMS_CERTIFY_INFO.name {info.name.hex()} is not the certified key's Name {name.hex()}",
                                field="TPMS_CERTIFY_INFO.name")
    if qualified_name is not None and not hmac.compare_digest(info.qualified_name, qualified_name):
        raise VerificationError("certify.qualified_name_mismatch",
                                "TPMS_CERTIFY_INFO.qualifiedName differs from the expected qualified Name",
                                field="TPMS_CERTIFY_INFO.qualifiedName")
    return CertifyResult(parsed, sig, info.name, info.qualified_name)


def verify_certify_creation(
    ak: Any,
    attest: bytes,
    signature: bytes | Signature,
    *,
    creation_data: bytes,
    certified: Any = None,
    nonce: bytes = b"",
) -> CreationResult:
    """Verify TPM2_CertifyCreation output: ``ak`` vouches that the object ``certified`` (default: the
    AK itself, as go-attestation does) was created by this TPM with ``creation_data``
    (``TPMS_CREATION_DATA``): ``objectName`` is its Name and ``creationHash`` is
    ``H_nameAlg(creation_data)``."""
    sig = signature if isinstance(signature, Signature) else parse_signature(signature)
    key = load_signing_key(ak)
    if certified is None:
        if key.public is None:
            raise EvidenceError("tpm.key_format", "certify-creation needs the AK's TPMT_PUBLIC, not an SPKI",
                                field="ak")
        obj = key.public
    else:
        obj = certified if isinstance(certified, Public) else parse_public_any(bytes(certified))
    cdata = parse_creation_data(creation_data)
    parsed = _check_header(attest, TPM_ST.ATTEST_CREATION, "creation")
    verify_signature(key, bytes(attest), sig, code_prefix="creation")
    _check_nonce(parsed, nonce, "creation")
    info = parsed.attested
    assert isinstance(info, CreationInfo)
    if not hmac.compare_digest(info.object_name, obj.name):
        raise VerificationError("creation.name_mismatch",
                                f"objectName {info.object_name.hex()} is not the object's Name {obj.name.hex()}",
                                field="TPMS_CREATION_INFO.objectName")
    expected = obj.name_hash.digest(cdata.to_bytes())
    if not hmac.compare_digest(info.creation_hash, expected):
        raise VerificationError("creation.hash_mismatch",
                                f"creationHash {info.creation_hash.hex()} is not {obj.name_hash.name}(creation data) "
                                f"{expected.hex()}", field="TPMS_CREATION_INFO.creationHash")
    return CreationResult(parsed, sig, info.object_name, info.creation_hash, cdata)


def check_ak_attributes(public: Public | bytes) -> Public:
    """Require an AK's ``TPMA_OBJECT``: fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign,
    and not decrypt (TPM 2.0 Part 1, 25 "Attestation"; TCG EK Credential Profile "AK").

    Raises ``ak.attributes`` / ``ak.name_alg`` (:class:`VerificationError`); returns the public area.
    """
    pub = public if isinstance(public, Public) else parse_public_any(bytes(public))
    attrs = pub.object_attributes
    required = (TPMA_OBJECT.FIXED_TPM, TPMA_OBJECT.FIXED_PARENT, TPMA_OBJECT.SENSITIVE_DATA_ORIGIN,
                TPMA_OBJECT.RESTRICTED, TPMA_OBJECT.SIGN_ENCRYPT)
    missing = [f.name.lower() for f in required if not attrs & f]
    if missing:
        raise VerificationError("ak.attributes", f"AK lacks {', '.join(missing)}",
                                field="TPMT_PUBLIC.objectAttributes", details={"missing": missing})
    if attrs & TPMA_OBJECT.DECRYPT:
        raise VerificationError("ak.attributes", "AK is also a decryption key",
                                field="TPMT_PUBLIC.objectAttributes")
    if pub.name_alg not in _VERIFIABLE_HASHES:
        raise VerificationError("ak.name_alg", f"AK nameAlg 0x{pub.name_alg:04x} is not usable",
                                field="TPMT_PUBLIC.nameAlg")
    return pub
