"""Offline verification of an AMD SEV-SNP attestation report.

:func:`verify_snp_report` is the one entry point that yields claims. It follows go-tpm-tools'
``VerifyAttestation`` discipline: nothing is read from the report for a caller until every check
passed, and the result type, :class:`VerifiedSnpReport`, cannot be built any other way.

Checks, in order (the first failure is raised):

1. the report parses (:class:`~attestd.errors.EvidenceError`, ``snp.*``);
2. VCEK/VLEK -> ASK/ASVK -> trusted ARK verifies at ``at`` (:func:`~.certs.verify_chain`);
3. the report's SIGNING_KEY names the kind of key the chain ends in (``snp.signing_key_mismatch``);
4. the product line agrees across the chain's CNs, the VCEK productName and, for v3+ reports, the
   CPUID fields (``snp.product_mismatch``);
5. the endorsement key was issued for this chip and TCB: CHIP_ID equals the VCEK hwID unless the
   host masked it (``snp.chip_id_mismatch``), and REPORTED_TCB equals the VCEK's SPL extensions
   (``snp.tcb_mismatch``). These run before the signature so that the usual operational failure,
   a VCEK fetched for another TCB or machine, is named as such rather than as a bad signature;
6. SIGNATURE_ALGO is ECDSA P-384/SHA-384 (``snp.unsupported_signature_algo``) and the signature
   over bytes [0, 0x2A0) verifies with the endorsement key (``snp.signature_invalid``);
7. REPORT_DATA equals ``expected_report_data`` when given (``snp.report_data_mismatch``).

Time is an input: ``at`` is compared with the certificates' validity; the clock is never read.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestd.errors import VerificationError
from attestd.tee.snp.certs import CertInput, EndorsementKeyInfo, VerifiedChain, verify_chain
from attestd.tee.snp.claims import _build_claims
from attestd.tee.snp.report import (
    SIG_ALGO_ECDSA_P384_SHA384,
    AttestationReport,
    ProductLine,
    SigningKey,
    parse_report,
)

__all__ = [
    "VerifiedSnpReport",
    "check_chip_id",
    "check_product",
    "check_reported_tcb",
    "verify_report_signature",
    "verify_snp_report",
]

_P = "ATTESTATION_REPORT"
# Order of the P-384 group: r and s must lie in [1, n-1].
_P384_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973

_ISSUE = object()


@dataclass(frozen=True, slots=True)
class VerifiedSnpReport:
    """A report whose chain, binding and signature verified. Only :func:`verify_snp_report` makes one.

    ``claims`` holds Azure Attestation's ``x-ms-sevsnpvm-*`` claims plus Attestd's own
    ``x-attestd-sevsnpvm-*`` extras (see :mod:`attestd.tee.snp.claims`).
    """

    report: AttestationReport
    product_line: ProductLine
    signing_key: SigningKey
    endorsement: EndorsementKeyInfo
    certificate_sha256: Mapping[str, str]
    verified_at: datetime
    claims: Mapping[str, Any]
    _issued: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._issued is not _ISSUE:
            raise TypeError("VerifiedSnpReport is created only by verify_snp_report()")


def verify_report_signature(report: AttestationReport, key: ec.EllipticCurvePublicKey) -> None:
    """ECDSA P-384/SHA-384 over ``report.signed_bytes`` with R, S read little-endian (56860, "Signature")."""
    if report.signature_algo != SIG_ALGO_ECDSA_P384_SHA384:
        raise VerificationError(
            "snp.unsupported_signature_algo",
            f"SIGNATURE_ALGO {report.signature_algo} is not ECDSA P-384 with SHA-384 (1)",
            field=f"{_P}.SIGNATURE_ALGO",
            offset=0x34,
        )
    r, s = report.signature_r, report.signature_s
    if not (0 < r < _P384_N and 0 < s < _P384_N):
        raise VerificationError(
            "snp.signature_invalid",
            "signature R or S is outside [1, n-1]",
            field=f"{_P}.SIGNATURE",
            offset=0x2A0,
        )
    try:
        key.verify(encode_dss_signature(r, s), report.signed_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise VerificationError(
            "snp.signature_invalid",
            "the report signature does not verify with the endorsement key",
            field=f"{_P}.SIGNATURE",
            offset=0x2A0,
        ) from None


def check_chip_id(report: AttestationReport, info: EndorsementKeyInfo) -> None:
    """CHIP_ID must equal the VCEK's hwID (Turin: 8 bytes, then zeros) unless MASK_CHIP_KEY is set."""
    if info.kind is not SigningKey.VCEK or report.signer_info.mask_chip_key:
        return
    hwid = info.hwid or b""
    expected = hwid + bytes(64 - len(hwid))
    if not hmac.compare_digest(report.chip_id, expected):
        raise VerificationError(
            "snp.chip_id_mismatch",
            f"CHIP_ID {report.chip_id.hex()} is not the VCEK's hwID {hwid.hex()}",
            field=f"{_P}.CHIP_ID",
            offset=0x1A0,
            details={"chip_id": report.chip_id.hex(), "hwid": hwid.hex()},
        )


def check_reported_tcb(report: AttestationReport, info: EndorsementKeyInfo, product: ProductLine) -> None:
    """REPORTED_TCB must equal the TCB the endorsement key was issued for (its SPL extensions)."""
    tcb = report.reported_tcb
    want = info.components()
    if product is ProductLine.TURIN and info.fmc_spl is None:
        raise VerificationError(
            "snp.tcb_mismatch",
            "a Turin VCEK must carry fmcSPL (1.3.6.1.4.1.3704.1.3.9)",
            field=f"{_P}.REPORTED_TCB",
            offset=0x180,
        )
    got = tcb.components()
    diffs = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    if product is not ProductLine.TURIN and tcb.reserved != bytes(info.spl_4_7):
        diffs["spl_4_7"] = (tcb.reserved.hex(), bytes(info.spl_4_7).hex())  # type: ignore[assignment]
    if diffs:
        text = ", ".join(f"{k} {g} != {w}" for k, (g, w) in diffs.items())
        raise VerificationError(
            "snp.tcb_mismatch",
            f"REPORTED_TCB {tcb} is not the TCB the {info.kind.name} was issued for ({text})",
            field=f"{_P}.REPORTED_TCB",
            offset=0x180,
            details={"reported": got, "certified": want},
        )


def check_product(report: AttestationReport, chain: VerifiedChain) -> None:
    """Chain product line == VCEK productName product == CPUID product (v3+)."""
    product = chain.product_line
    named = chain.info.product_name.partition("-")[0]
    if named != product.value:
        raise VerificationError(
            "snp.product_mismatch",
            f"{chain.kind.name} productName {chain.info.product_name!r} is not a {product.value} product",
            field="VCEK.productName",
        )
    if report.cpuid_fam_id is not None and report.cpuid_product is not product:
        got = report.cpuid_product.value if report.cpuid_product else "an unknown product"
        raise VerificationError(
            "snp.product_mismatch",
            f"report CPUID family 0x{report.cpuid_fam_id:02x} model 0x{report.cpuid_mod_id:02x} is {got}, "
            f"but the certificate chain is {product.value}'s",
            field=f"{_P}.CPUID_FAM_ID",
            offset=0x188,
        )


def _expected_report_data(value: bytes) -> bytes:
    value = bytes(value)
    if len(value) > 64:
        raise ValueError(f"expected_report_data is {len(value)} bytes, at most 64")
    return value + bytes(64 - len(value))


def verify_snp_report(
    report: bytes | bytearray | memoryview,
    *,
    vcek: CertInput | None,
    chain: CertInput | Sequence[CertInput] | None,
    trusted_arks: CertInput | Sequence[CertInput],
    at: datetime,
    expected_report_data: bytes | None = None,
) -> VerifiedSnpReport:
    """Verify a raw ATTESTATION_REPORT and return its claims.

    ``vcek``: the VCEK or VLEK (DER or PEM), or ``None`` when ``chain`` carries it. ``chain``: the
    ASK/ASVK and optionally the ARK (PEM bundle, DER list or certificate objects).
    ``trusted_arks``: the ARKs to anchor in. ``at``: timezone-aware verification time.
    ``expected_report_data``: when given, REPORT_DATA must equal it (shorter values are zero-padded
    to 64 bytes, the convention of Azure and Trustee).
    """
    parsed = parse_report(report)
    verified_chain = verify_chain(vcek=vcek, chain=chain, trusted_arks=trusted_arks, at=at)
    product = verified_chain.product_line
    if parsed.cpuid_product is None and parsed.product_line is not product:
        # v2 (or unknown CPUID): decode the TCB fields with the chain's product layout.
        parsed = parse_report(report, product_line=product)

    signer = parsed.signer_info.signing_key
    if signer is not verified_chain.kind:
        raise VerificationError(
            "snp.signing_key_mismatch",
            f"the report's SIGNING_KEY is {signer.name}, but the certificate given is a {verified_chain.kind.name}",
            field=f"{_P}.SIGNING_KEY",
            offset=0x48,
        )
    check_product(parsed, verified_chain)
    check_chip_id(parsed, verified_chain.info)
    check_reported_tcb(parsed, verified_chain.info, product)
    verify_report_signature(parsed, verified_chain.public_key)
    if expected_report_data is not None:
        want = _expected_report_data(expected_report_data)
        if not hmac.compare_digest(parsed.report_data, want):
            raise VerificationError(
                "snp.report_data_mismatch",
                f"REPORT_DATA {parsed.report_data.hex()} is not the expected {want.hex()}",
                field=f"{_P}.REPORT_DATA",
                offset=0x50,
            )
    claims = _build_claims(parsed, product=product, signing_key=signer)
    return VerifiedSnpReport(
        report=parsed,
        product_line=product,
        signing_key=signer,
        endorsement=verified_chain.info,
        certificate_sha256=MappingProxyType(verified_chain.fingerprints()),
        verified_at=at,
        claims=MappingProxyType(claims),
        _issued=_ISSUE,
    )
