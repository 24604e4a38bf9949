"""``TPMT_SIGNATURE``: a TPM signature and the scheme that made it.

TPM 2.0 Library Part 2, 11.3 "Signatures" (11.3.4 ``TPMT_SIGNATURE``)::

    TPMT_SIGNATURE { TPMI_ALG_SIG_SCHEME sigAlg; TPMU_SIGNATURE signature; }

    RSASSA, RSAPSS                 -> TPMS_SIGNATURE_RSA { TPMI_ALG_HASH hash; TPM2B_PUBLIC_KEY_RSA sig; }
    ECDSA, ECDAA, SM2, ECSCHNORR   -> TPMS_SIGNATURE_ECC { TPMI_ALG_HASH hash;
                                         TPM2B_ECC_PARAMETER signatureR, signatureS; }
    HMAC                           -> TPMT_HA { TPMI_ALG_HASH hashAlg; BYTE digest[size]; }
    NULL                           -> (empty)

This is what ``tpm2_quote -s`` writes (tss format). Parsing is pure: only
:class:`~attestd.errors.EvidenceError` (``tpm.truncated``, ``tpm.length``, ``tpm.trailing_data``,
``tpm.unsupported_alg`` for an unknown signature scheme or hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestd.binary import Reader
from attestd.errors import EvidenceError
from attestd.tpm._wire import MAX_ECC_BYTES, MAX_RSA_BYTES, reader, tpm2b, u16
from attestd.tpm.alg import TPM_ALG, HashAlg, hash_alg

__all__ = ["ECC_SIG_ALGS", "RSA_SIG_ALGS", "Signature", "parse_signature", "read_signature"]

RSA_SIG_ALGS = frozenset({TPM_ALG.RSASSA, TPM_ALG.RSAPSS})
ECC_SIG_ALGS = frozenset({TPM_ALG.ECDSA, TPM_ALG.ECDAA, TPM_ALG.SM2, TPM_ALG.ECSCHNORR})


@dataclass(frozen=True, slots=True)
class Signature:
    """``TPMT_SIGNATURE`` (Part 2, 11.3.4).

    ``sig_alg`` is ``sigAlg``; ``hash`` is the scheme's hash (``TPM_ALG_NULL`` for a NULL
    signature). RSA schemes fill ``rsa_sig``; ECC schemes fill ``r`` and ``s``
    (``signatureR``/``signatureS`` as sent, big-endian); HMAC fills ``hmac``.
    """

    sig_alg: int
    hash: int
    rsa_sig: bytes = b""
    r: bytes = b""
    s: bytes = b""
    hmac: bytes = b""

    @property
    def scheme_name(self) -> str:
        try:
            return TPM_ALG(self.sig_alg).name.lower()
        except ValueError:
            return f"0x{self.sig_alg:04x}"

    @property
    def hash_alg(self) -> HashAlg:
        return hash_alg(self.hash, field="TPMT_SIGNATURE.signature.hash")

    @property
    def is_rsa(self) -> bool:
        return self.sig_alg in RSA_SIG_ALGS

    @property
    def is_ecc(self) -> bool:
        return self.sig_alg in ECC_SIG_ALGS

    def ecdsa_der(self) -> bytes:
        """``r``/``s`` as the DER ``Ecdsa-Sig-Value`` that ``cryptography`` verifies."""
        return encode_dss_signature(int.from_bytes(self.r, "big"), int.from_bytes(self.s, "big"))

    def to_bytes(self) -> bytes:
        out = u16(self.sig_alg)
        if self.sig_alg == TPM_ALG.NULL:
            return out
        out += u16(self.hash)
        if self.sig_alg in RSA_SIG_ALGS:
            return out + tpm2b(self.rsa_sig)
        if self.sig_alg in ECC_SIG_ALGS:
            return out + tpm2b(self.r) + tpm2b(self.s)
        return out + self.hmac

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sigAlg": self.scheme_name}
        if self.sig_alg != TPM_ALG.NULL:
            alg = self.hash_alg
            out["hash"] = alg.name
        if self.sig_alg in RSA_SIG_ALGS:
            out["sig"] = self.rsa_sig.hex()
        elif self.sig_alg in ECC_SIG_ALGS:
            out["signatureR"] = self.r.hex()
            out["signatureS"] = self.s.hex()
        elif self.sig_alg == TPM_ALG.HMAC:
            out["digest"] = self.hmac.hex()
        return out


def read_signature(r: Reader, field: str = "TPMT_SIGNATURE") -> Signature:
    alg_offset = r.offset
    sig_alg = r.u16(f"{field}.sigAlg")
    if sig_alg == TPM_ALG.NULL:
        return Signature(sig_alg, TPM_ALG.NULL)
    if sig_alg not in RSA_SIG_ALGS and sig_alg not in ECC_SIG_ALGS and sig_alg != TPM_ALG.HMAC:
        raise EvidenceError("tpm.unsupported_alg", f"unknown signature scheme 0x{sig_alg:04x}",
                            field=f"{field}.sigAlg", offset=alg_offset)
    hash_offset = r.offset
    hash_id = r.u16(f"{field}.signature.hash")
    alg = hash_alg(hash_id, field=f"{field}.signature.hash", offset=hash_offset)
    if sig_alg in RSA_SIG_ALGS:
        return Signature(sig_alg, hash_id, rsa_sig=r.sized(2, f"{field}.signature.sig", max_length=MAX_RSA_BYTES))
    if sig_alg in ECC_SIG_ALGS:
        sr = r.sized(2, f"{field}.signature.signatureR", max_length=MAX_ECC_BYTES)
        ss = r.sized(2, f"{field}.signature.signatureS", max_length=MAX_ECC_BYTES)
        return Signature(sig_alg, hash_id, r=sr, s=ss)
    return Signature(sig_alg, hash_id, hmac=r.bytes(alg.digest_size, f"{field}.signature.digest"))


def parse_signature(data: bytes) -> Signature:
    """Parse a buffer holding exactly one ``TPMT_SIGNATURE`` (``tpm2_quote -s`` output)."""
    r = reader(data)
    sig = read_signature(r)
    r.expect_end("TPMT_SIGNATURE")
    return sig
