"""Verify a DCAP quote (SGX v3, TDX v4/v5) offline with its collateral.

The checks, in order ("Intel SGX ECDSA Quote Library API" section 2.3.3 "Quote Verification" and
Appendix A.4; "Intel TDX DCAP Quoting Library API" section 2.3.3; Intel QVL
``QuoteVerifier::verify``):

1. parse the quote (:func:`attestd.tee.dcap.quote.parse_quote`), check the QE vendor (Intel);
2. collateral (when given): TCB Info and QE Identity are current at ``at`` (issueDate..nextUpdate),
   signed (ECDSA P-256, r||s) by the "Intel SGX TCB Signing" certificate whose chain leads to the
   trusted root and whose certificates are valid at ``at``; the Root CA CRL is signed by the trusted
   root and current, and revokes neither the TCB Signing certificate nor the PCK CA;
3. the PCK chain from certification data type 5: leaf -> PCK CA -> root, signatures, CA flags,
   validity at ``at``, root equal to the trust anchor; with collateral, the PCK CRL is issued and
   signed by that PCK CA, current, and does not revoke the leaf;
4. the QE report signature (ECDSA P-256 by the PCK leaf key over the 384-byte QE report);
5. the QE report binding: REPORTDATA = SHA-256(attestation key || QE authentication data) followed
   by 32 zero bytes;
6. the quote signature (ECDSA P-256 by the attestation key over header || body);
7. with collateral: TCB evaluation (:mod:`attestd.tee.dcap.tcb`); a Revoked result fails.

Error codes: ``dcap.collateral_expired``, ``dcap.collateral_not_yet_valid``,
``dcap.collateral_chain_invalid``, ``dcap.collateral_signature_invalid``, ``dcap.collateral_mismatch``,
``dcap.certification_data_unsupported``, ``dcap.pck_chain_invalid``, ``dcap.pck_chain_expired``,
``dcap.pck_revoked``, ``dcap.qe_report_signature_invalid``, ``dcap.qe_report_data_mismatch``,
``sgx.quote_signature_invalid`` / ``tdx.quote_signature_invalid``, ``dcap.qe_identity_mismatch``,
``dcap.qe_tcb_no_match``, ``dcap.tcb_no_match``, ``dcap.tdx_module_mismatch``,
``dcap.tdx_module_no_match``, ``dcap.tcb_revoked``; parse errors are ``dcap.*`` EvidenceErrors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.dcap.collateral import Collateral, CollateralStore
from attestd.tee.dcap.pck import (
    PckCertChain,
    check_crl,
    check_not_revoked,
    load_trusted_root,
    parse_pck_chain,
    utc,
    verify_chain,
)
from attestd.tee.dcap.quote import (
    INTEL_QE_VENDOR_ID,
    CertDataType,
    EnclaveReportBody,
    Quote,
    TdReportBody,
    TeeType,
    parse_quote,
)
from attestd.tee.dcap.tcb import TcbEvaluation, evaluate_tcb
from attestd.tee.dcap.tcbinfo import TcbStatus

__all__ = ["VerifiedQuote", "verify_quote", "verify_collateral", "verify_p256"]

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def verify_p256(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """Check a raw r||s ECDSA P-256/SHA-256 signature."""
    if len(signature) != 64:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r and 0 < s):
        return False
    try:
        public_key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        return True
    except InvalidSignature:
        return False


@dataclass(frozen=True, slots=True)
class VerifiedQuote:
    """A quote whose signatures, QE binding and PCK chain verified (and, with collateral, its TCB).

    ``tcb`` is None only when the caller verified without collateral; claims derived from such a
    result carry no TCB status.
    """

    quote: Quote
    tee: str
    pck: PckCertChain
    tcb: TcbEvaluation | None
    collateral: Collateral | None
    verified_at: datetime
    #: SHA-256 of the quote structure (header through signature data)
    quote_hash: bytes

    @property
    def body(self) -> EnclaveReportBody | TdReportBody:
        return self.quote.body

    @property
    def qe_report(self) -> EnclaveReportBody:
        return self.quote.signature_data.qe.qe_report

    @property
    def fmspc(self) -> bytes:
        return self.pck.extensions.fmspc

    @property
    def tcb_status(self) -> TcbStatus | None:
        return self.tcb.status if self.tcb else None

    @property
    def advisory_ids(self) -> tuple[str, ...]:
        return self.tcb.advisory_ids if self.tcb else ()


def _window(name: str, issue: datetime, next_update: datetime, at: datetime, what: str) -> None:
    if at < issue:
        raise VerificationError("dcap.collateral_not_yet_valid",
                                f"{what} is issued {issue.isoformat()}, after {at.isoformat()}",
                                field=f"{name}.issueDate")
    if at > next_update:
        raise VerificationError("dcap.collateral_expired",
                                f"{what} has expired: nextUpdate {next_update.isoformat()} is before {at.isoformat()}",
                                field=f"{name}.nextUpdate",
                                details={"issue_date": issue.isoformat(), "next_update": next_update.isoformat(),
                                         "at": at.isoformat()})


def _signing_chain(chain: tuple[x509.Certificate, ...], root: x509.Certificate, at: datetime, field: str) -> None:
    if len(chain) < 2:
        raise VerificationError("dcap.collateral_chain_invalid",
                                f"{field} must hold the signing certificate and the root", field=field)
    verify_chain(list(chain), root, at, field=field, code="dcap.collateral_chain_invalid",
                 expired_code="dcap.collateral_expired",
                 names=tuple(["signing"] + [f"ca{i}" for i in range(1, len(chain) - 1)] + ["root"]))


def verify_collateral(collateral: Collateral, trusted_root: x509.Certificate, at: datetime) -> None:
    """Step 2: TCB Info, QE Identity and Root CA CRL are authentic and current at ``at``.

    The PCK CRL is checked against the quote's own PCK CA in :func:`verify_quote`.
    """
    at = utc(at)
    ti, qi = collateral.tcb_info, collateral.qe_identity
    _window("tcbInfo", ti.issue_date, ti.next_update, at, "tcbInfo")
    _window("enclaveIdentity", qi.issue_date, qi.next_update, at, f"{qi.id} identity")
    check_crl(collateral.root_ca_crl, trusted_root, at, field="root_ca_crl")
    for name, chain, doc in (("tcb_info_issuer_chain", collateral.tcb_info_issuer_chain, ti),
                             ("qe_identity_issuer_chain", collateral.qe_identity_issuer_chain, qi)):
        _signing_chain(chain, trusted_root, at, name)
        for cert in chain[:-1]:
            check_not_revoked(cert, collateral.root_ca_crl, field=f"{name}.signing")
        key = chain[0].public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not verify_p256(key, doc.signature, doc.signed_body):
            what = "tcbInfo" if doc is ti else "enclaveIdentity"
            raise VerificationError("dcap.collateral_signature_invalid",
                                    f"the {what} signature does not verify with the TCB Signing key",
                                    field=f"{what}.signature")


def verify_quote(
    quote: bytes | Quote,
    collateral: Collateral | CollateralStore | None,
    *,
    trusted_root: x509.Certificate | bytes | str,
    at: datetime,
    expected_tee: str | None = None,
) -> VerifiedQuote:
    """Verify a DCAP quote; see the module docstring for the checks and error codes.

    ``collateral`` may be a :class:`CollateralStore`, from which the quote's TEE type, FMSPC and PCK
    CA select the collateral. ``collateral=None`` must be passed explicitly to skip revocation and TCB evaluation (the result's
    ``tcb`` is then None). ``expected_tee`` ("SGX"/"TDX") rejects the other kind of quote.
    """
    at = utc(at)
    root = load_trusted_root(trusted_root)
    if not isinstance(quote, Quote) and expected_tee is not None and len(quote) >= 2:
        version = int.from_bytes(bytes(quote[:2]), "little")
        allowed = (4, 5) if expected_tee == "TDX" else (3, 5)
        if version not in allowed:
            raise EvidenceError("dcap.quote_version_unsupported",
                                f"quote format not supported: an {expected_tee} quote has version "
                                f"{' or '.join(map(str, allowed))}, this one {version}",
                                field="Quote Header.Version", offset=0)
    q = quote if isinstance(quote, Quote) else parse_quote(quote)
    tee = "TDX" if q.header.tee_type == TeeType.TDX else "SGX"
    if expected_tee is not None and tee != expected_tee:
        raise EvidenceError("dcap.tee_type_mismatch", f"expected an {expected_tee} quote, got {tee} "
                            f"(version {q.version})", field="Quote Header.TEE Type", offset=4)
    if q.header.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise VerificationError("dcap.qe_vendor_unknown",
                                f"QE vendor {q.header.qe_vendor_id.hex()} is not Intel's",
                                field="Quote Header.QE Vendor ID", offset=12)
    sig = q.signature_data
    qe = sig.qe

    cert = qe.certification_data
    if cert.cert_type != CertDataType.PCK_CERT_CHAIN:
        raise VerificationError("dcap.certification_data_unsupported",
                                f"certification data type {cert.cert_type} carries no PCK certificate chain "
                                "(type 5 is required for offline verification)",
                                field="QE Certification Data.Certification Data Type", offset=cert.offset - 6)
    chain = parse_pck_chain(cert.data)

    # 2. collateral
    if isinstance(collateral, CollateralStore):
        collateral = collateral.get(tee, chain.extensions.fmspc, chain.ca)
    if collateral is not None:
        verify_collateral(collateral, root, at)

    # 3. PCK chain
    verify_chain(chain.certificates, root, at, field="pck_chain", code="dcap.pck_chain_invalid",
                 expired_code="dcap.pck_chain_expired", names=("leaf", "intermediate", "root"))
    if collateral is not None:
        check_not_revoked(chain.intermediate, collateral.root_ca_crl, field="pck_chain.intermediate")
        if collateral.pck_crl.issuer != chain.intermediate.subject:
            raise VerificationError("dcap.collateral_mismatch",
                                    "the PCK CRL is not issued by the PCK certificate's CA", field="pck_crl")
        check_crl(collateral.pck_crl, chain.intermediate, at, field="pck_crl")
        check_not_revoked(chain.leaf, collateral.pck_crl, field="pck_chain.leaf")

    # 4. QE report signature by the PCK key
    pck_key = chain.leaf.public_key()
    if not isinstance(pck_key, ec.EllipticCurvePublicKey) or not verify_p256(
            pck_key, qe.qe_report_signature, qe.qe_report_raw):
        raise VerificationError("dcap.qe_report_signature_invalid",
                                "the QE report signature does not verify with the PCK certificate's key",
                                field="QE Report Signature")

    # 5. QE report data binds the attestation key and QE authentication data
    expected = hashlib.sha256(sig.attestation_key + qe.qe_auth_data).digest() + bytes(32)
    if qe.qe_report.report_data != expected:
        raise VerificationError("dcap.qe_report_data_mismatch",
                                "QE report data is not SHA-256(attestation key || QE authentication data)",
                                field="QE Report.REPORTDATA")

    # 6. quote signature by the attestation key
    code = f"{tee.lower()}.quote_signature_invalid"
    try:
        att_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + sig.attestation_key)
    except ValueError:
        raise VerificationError(code, "the ECDSA attestation key is not a P-256 point",
                                field="ECDSA Attestation Key") from None
    if not verify_p256(att_key, sig.signature, q.signed_data):
        raise VerificationError(code, "unable to verify message digest using quote's signature and ecdsa "
                                "attestation key", field="Quote Signature")

    # 7. TCB
    tcb = None
    if collateral is not None:
        tcb = evaluate_tcb(collateral.tcb_info, collateral.qe_identity, chain.extensions, qe.qe_report, q.body)
        if tcb.status == TcbStatus.REVOKED:
            raise VerificationError("dcap.tcb_revoked", "the platform TCB is revoked", field="tcbStatus",
                                    details={"advisory_ids": list(tcb.advisory_ids)})
    return VerifiedQuote(q, tee, chain, tcb, collateral, at, hashlib.sha256(q.raw).digest())
