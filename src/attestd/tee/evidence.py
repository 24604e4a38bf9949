"""One front for every TEE evidence type: :func:`verify_tee_evidence` -> :class:`VerifiedTee`.

The CLI (``attestd tee verify``) and the service call this; it picks the input format, the trust
anchors and the collateral, calls the verifier of that technology and returns its claims.

Evidence types and accepted inputs (``evidence`` is bytes, text or an already decoded JSON object):

``sevsnp``
    a raw ATTESTATION_REPORT (v2-v5), or Azure's ``AttestSevSnpVm`` request JSON
    ``{"report": base64url({"SnpReport", "VcekCertChain"}), "runtimeData", "initTimeData", "nonce"}``
    (:mod:`attestd.tee.snp.azure`). The VCEK comes from the request, ``vcek`` or the fetcher; the
    ASK from the request, ``vcek``, :attr:`TrustAnchors.amd_intermediates` or the fetcher.
``sgx``
    a raw SGX quote (v3), an OpenEnclave report (16-byte header + quote), or Azure's
    ``AttestSgxEnclave`` / ``AttestOpenEnclave`` request JSON ``{"quote"|"report": base64url,
    "runtimeData", "nonce"}``.
``tdx``
    a raw TD quote (v4/v5), or Azure's ``AttestTdxVm`` request JSON ``{"quote"|"report": base64url,
    "runtimeData", "nonce"}``. ``ccel`` (the CCEL log) is replayed against RTMR0-3 when given.
``azure-cvm``
    Azure confidential VM evidence: HCL report + vTPM quote (+ VCEK or TD quote), in the JSON
    shapes of :func:`attestd.tee.azure_cvm.parse_azure_cvm_evidence`.

Bindings: ``runtime_data`` (or a request's ``runtimeData``) must hash (SHA-256) into the first 32
bytes of REPORT_DATA (for SNP also followed by 32 zero bytes, Azure's rule). ``nonce`` is the
challenge: for ``azure-cvm`` the vTPM quote's extraData must equal it; for the others REPORT_DATA
must equal it, zero-padded to 64 bytes (Trustee's ``expected_report_data``). A request's own
``nonce`` member is only echoed as the ``nonce`` claim, as Azure does.

Trust anchors are always the caller's (:class:`TrustAnchors`); time is always an input (``at``).
Intel quotes without collateral (``collateral=None`` and no fetcher) verify signatures and the PCK
chain only; the result then has ``tcb_status=None`` and says so in ``notes``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.azure_cvm import VerifiedAzureCvm, parse_azure_cvm_evidence, verify_azure_cvm
from attestd.tee.dcap.claims_common import b64url
from attestd.tee.dcap.collateral import Collateral, CollateralStore
from attestd.tee.dcap.pck import load_trusted_root
from attestd.tee.dcap.verify import VerifiedQuote
from attestd.tee.fetch import CollateralFetcher
from attestd.tee.sgx import sgx_claims, verify_sgx_quote
from attestd.tee.snp.azure import (
    AzureData,
    decode_base64_any,
    parse_azure_snp_request,
    verify_azure_snp_request,
)
from attestd.tee.snp.certs import CertInput, load_certificates
from attestd.tee.snp.verify import verify_snp_report
from attestd.tee.tdx import tdx_claims, verify_tdx_quote
from attestd.tee.tdx.verify import VerifiedTdQuote

__all__ = ["EvidenceType", "TrustAnchors", "VerifiedTee", "verify_tee_evidence"]


class EvidenceType(str, Enum):
    SEVSNP = "sevsnp"
    SGX = "sgx"
    TDX = "tdx"
    AZURE_CVM = "azure-cvm"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The verifier's trust anchors: AMD ARKs (plus ASK/ASVK intermediates to complete chains that
    arrive without them) and the Intel SGX Root CA. Nothing is trusted by default."""

    amd_arks: tuple[x509.Certificate, ...] = ()
    amd_intermediates: tuple[x509.Certificate, ...] = ()
    intel_root: x509.Certificate | None = None

    @classmethod
    def load(
        cls,
        *,
        amd: Iterable[CertInput | Path] = (),
        intel_root: x509.Certificate | bytes | str | Path | None = None,
    ) -> TrustAnchors:
        """From certificates or files (PEM bundles such as KDS ``cert_chain``, or DER). Self-signed
        AMD certificates become trusted ARKs; the others (ASK/ASVK) intermediates, which still
        must chain to a trusted ARK."""
        arks: list[x509.Certificate] = []
        inter: list[x509.Certificate] = []
        for item in amd:
            data = item.read_bytes() if isinstance(item, Path) else item
            for cert in load_certificates(data, "amd_anchor"):
                (arks if cert.subject == cert.issuer else inter).append(cert)
        root = None
        if intel_root is not None:
            root = load_trusted_root(intel_root.read_bytes() if isinstance(intel_root, Path) else intel_root)
        return cls(tuple(arks), tuple(inter), root)


@dataclass(frozen=True, slots=True)
class VerifiedTee:
    """The outcome of :func:`verify_tee_evidence`: the claims and what they rest on.

    ``result`` is the technology verifier's own result (``VerifiedSnpReport``, ``AzureSnpResult``,
    ``VerifiedQuote``, ``VerifiedTdQuote`` or ``VerifiedAzureCvm``). ``notes`` lists what was *not*
    checked or where collateral came from (stale cache, no collateral, nonce not given).
    """

    type: EvidenceType
    input_format: str
    claims: Mapping[str, Any]
    verified_at: datetime
    tcb_status: str | None
    notes: tuple[str, ...]
    result: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": True,
            "type": self.type.value,
            "input_format": self.input_format,
            "verified_at": self.verified_at.isoformat(),
            "tcb_status": self.tcb_status,
            "notes": list(self.notes),
            "claims": json.loads(json.dumps(dict(self.claims), default=str)),
        }


# -- helpers -------------------------------------------------------------------------------------


def _as_bytes(evidence: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> bytes | Mapping[str, Any]:
    if isinstance(evidence, Mapping):
        return evidence
    if isinstance(evidence, str):
        return evidence.encode()
    return bytes(evidence)


def _json_object(data: bytes | Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The evidence as a JSON object when it is one (raw binary evidence never starts with '{')."""
    if isinstance(data, Mapping):
        return data
    if data.lstrip()[:1] != b"{":
        return None
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EvidenceError("tee.bad_json", f"evidence looks like JSON but does not parse: {exc}",
                            field="evidence") from None
    if not isinstance(obj, dict):
        raise EvidenceError("tee.bad_json", "evidence JSON must be an object", field="evidence")
    return obj


def _request_data(obj: Mapping[str, Any], key: str) -> AzureData | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or "data" not in value:
        raise EvidenceError("azure.missing_field", f"{key} must be an object with data", field=f"{key}.data")
    dtype = value.get("dataType")
    if dtype is not None and not isinstance(dtype, str):
        raise EvidenceError("azure.bad_field", f"{key}.dataType must be a string", field=f"{key}.dataType")
    return AzureData(decode_base64_any(value["data"], f"{key}.data"), dtype)


def _request_nonce(obj: Mapping[str, Any]) -> str | None:
    nonce = obj.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise EvidenceError("azure.bad_field", "nonce must be a string", field="nonce")
    return nonce


def _runtime_claim(data: bytes, data_type: str | None) -> Any:
    if (data_type or "").lower() == "json" or data_type is None:
        try:
            doc = json.loads(data.rstrip(b"\0"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            if data_type is not None:
                raise EvidenceError("azure.bad_json", "runtimeData is declared JSON but does not parse",
                                    field="runtimeData.data") from None
            return b64url(data)
        return doc
    return b64url(data)


def _padded(value: bytes, field: str = "nonce") -> bytes:
    if len(value) > 64:
        raise EvidenceError("input.nonce_length", f"{field} is {len(value)} bytes; REPORT_DATA holds 64",
                            field=field)
    return bytes(value) + bytes(64 - len(value))


def _check_report_data(report_data: bytes, nonce: bytes, field: str) -> None:
    want = _padded(nonce)
    if report_data != want:
        raise VerificationError("tee.nonce_mismatch",
                                f"REPORT_DATA {report_data.hex()} is not the nonce {want.hex()} (zero-padded)",
                                field=field)


_OE_HEADER = 16


def _strip_oe_header(data: bytes) -> tuple[bytes, bool]:
    """An OpenEnclave remote report is ``version=1 u32, type=2 u32, size u64`` then the SGX quote."""
    if (len(data) > _OE_HEADER and int.from_bytes(data[0:4], "little") == 1
            and int.from_bytes(data[4:8], "little") == 2
            and int.from_bytes(data[8:16], "little") == len(data) - _OE_HEADER):
        return data[_OE_HEADER:], True
    return data, False


# -- per type ------------------------------------------------------------------------------------


def _snp_pool(anchors: TrustAnchors, *extra: Any) -> list[x509.Certificate]:
    pool = list(anchors.amd_intermediates)
    for item in extra:
        if item is not None:
            pool.extend(load_certificates(item, "vcek"))
    return pool


def _pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def _verify_snp(data, anchors, at, vcek, runtime_data, nonce, fetcher, notes):
    if not anchors.amd_arks:
        raise EvidenceError("input.trust_anchor_missing", "SEV-SNP verification needs trusted AMD ARKs",
                            field="trusted_arks")
    obj = _json_object(data)
    if obj is not None:
        req = parse_azure_snp_request(obj)
        extra = anchors.amd_intermediates + (tuple(load_certificates(vcek, "vcek")) if vcek is not None else ())
        if extra:
            req = dataclasses.replace(req, vcek_cert_chain=req.vcek_cert_chain + b"\n" + _pem(extra))
        if runtime_data is not None:
            if req.runtime_data is not None and req.runtime_data.data != runtime_data:
                raise EvidenceError("input.runtime_data_conflict",
                                    "runtime data given both in the request and separately, and they differ",
                                    field="runtimeData")
            req = dataclasses.replace(req, runtime_data=AzureData(runtime_data, None))
        res = verify_azure_snp_request(req, trusted_arks=anchors.amd_arks, at=at)
        if nonce is not None:
            _check_report_data(res.snp.report.report_data, nonce, "ATTESTATION_REPORT.REPORT_DATA")
        return "azure-sevsnpvm-request", dict(res.claims), None, res
    report = bytes(data)
    sources: list[Any] = [vcek]
    if vcek is None:
        if fetcher is None:
            raise EvidenceError("input.vcek_missing",
                                "a raw SNP report needs its VCEK (give one, or configure a collateral fetcher)",
                                field="vcek")
        endorsements = fetcher.vcek_for_report(report)
        sources = [endorsements.vcek, endorsements.chain]
        notes.extend(f"fetched {i.describe()}" for i in endorsements.items)
    pool = _snp_pool(anchors, *sources)
    verified = verify_snp_report(report, vcek=None, chain=pool, trusted_arks=anchors.amd_arks, at=at,
                                 expected_report_data=None if nonce is None else _padded(nonce))
    claims = dict(verified.claims)
    if runtime_data is not None:
        want = hashlib.sha256(runtime_data).digest() + bytes(32)
        if verified.report.report_data != want:
            raise VerificationError("azure.runtime_data_mismatch",
                                    f"REPORT_DATA {verified.report.report_data.hex()} is not SHA-256(runtime data)"
                                    f" || 0^32 = {want.hex()}", field="ATTESTATION_REPORT.REPORT_DATA",
                                    offset=0x50)
        claims["x-ms-runtime"] = _runtime_claim(runtime_data, None)
    return "raw-report", claims, None, verified


def _dcap_inputs(data, kind: str):
    """(quote bytes, format name, runtime AzureData, request nonce) for a raw or request-shaped quote."""
    obj = _json_object(data)
    if obj is None:
        raw, oe = _strip_oe_header(bytes(data))
        return raw, ("openenclave-report" if oe else "raw-quote"), None, None
    field = "quote" if "quote" in obj else "report" if "report" in obj else None
    if field is None:
        raise EvidenceError("azure.missing_field", f"{kind} request lacks quote", field="quote")
    if obj.get("initTimeData") is not None:
        raise EvidenceError("tee.unsupported_field", f"initTimeData is not supported for {kind} evidence",
                            field="initTimeData")
    raw, oe = _strip_oe_header(decode_base64_any(obj[field], field))
    fmt = f"azure-{kind.lower()}-request" + ("-openenclave" if oe else "")
    return raw, fmt, _request_data(obj, "runtimeData"), _request_nonce(obj)


def _collateral(quote: bytes, collateral, fetcher, notes):
    if collateral is not None:
        return collateral
    if fetcher is not None:
        fetched = fetcher.collateral_for_quote(quote)
        notes.extend(f"fetched {i.describe()}" for i in fetched.items)
        return fetched.collateral
    notes.append("no collateral: TCB status not evaluated, revocation not checked")
    return None


def _verify_dcap(kind, data, anchors, at, collateral, runtime_data, nonce, ccel, fetcher, notes):
    if anchors.intel_root is None:
        raise EvidenceError("input.trust_anchor_missing", f"{kind} verification needs the Intel SGX Root CA",
                            field="trusted_root")
    quote, fmt, rt, req_nonce = _dcap_inputs(data, kind)
    if runtime_data is not None:
        if rt is not None and rt.data != runtime_data:
            raise EvidenceError("input.runtime_data_conflict",
                                "runtime data given both in the request and separately, and they differ",
                                field="runtimeData")
        rt = AzureData(runtime_data, rt.data_type if rt else None)
    coll = _collateral(quote, collateral, fetcher, notes)
    if kind == "SGX":
        if ccel is not None:
            raise EvidenceError("input.ccel_unsupported", "a CCEL belongs to TDX evidence", field="ccel")
        v: VerifiedQuote = verify_sgx_quote(quote, coll, trusted_root=anchors.intel_root, at=at)
        result: Any = v
        claims = sgx_claims(v, runtime_data=rt.data if rt else None)
        if rt is not None and (rt.data_type or "").lower() == "json":
            claims["x-ms-runtime"] = _runtime_claim(rt.data, rt.data_type)
    else:
        r = verify_tdx_quote(quote, coll, trusted_root=anchors.intel_root, at=at, ccel=ccel)
        v = r.verified if isinstance(r, VerifiedTdQuote) else r
        result = r
        claims = tdx_claims(v, runtime_data=rt.data if rt else None)
        if ccel is not None:
            claims["x-attestd-tdx-ccel-replayed"] = True
    if nonce is not None:
        _check_report_data(v.body.report_data, nonce, "REPORTDATA")
    if req_nonce is not None:
        claims["nonce"] = req_nonce
    return fmt, claims, (v.tcb_status.value if v.tcb_status is not None else None), result


def _verify_cvm(data, anchors, at, collateral, vcek, nonce, fetcher, notes):
    ev = parse_azure_cvm_evidence(data if isinstance(data, Mapping) else bytes(data))
    coll = collateral
    if ev.td_quote is not None:
        if anchors.intel_root is None:
            raise EvidenceError("input.trust_anchor_missing", "a TDX CVM needs the Intel SGX Root CA",
                                field="trusted_root")
        coll = _collateral(ev.td_quote, collateral, fetcher, notes)
    elif not anchors.amd_arks:
        raise EvidenceError("input.trust_anchor_missing", "an SNP CVM needs trusted AMD ARKs", field="trusted_arks")
    vcek_in: Any = vcek
    if ev.td_quote is None and vcek is None and ev.vcek is None:
        if fetcher is None:
            raise EvidenceError("input.vcek_missing", "the evidence carries no VCEK and no fetcher is configured",
                                field="vcek")
        from attestd.tee.azure_hcl import parse_hcl_report

        endorsements = fetcher.vcek_for_report(parse_hcl_report(ev.hcl_report).hw_report)
        notes.extend(f"fetched {i.describe()}" for i in endorsements.items)
        vcek_in = [*load_certificates(endorsements.vcek, "vcek"), *load_certificates(endorsements.chain, "chain")]
    res: VerifiedAzureCvm = verify_azure_cvm(
        ev, at=at, nonce=nonce, trusted_arks=anchors.amd_arks or None, amd_chain=anchors.amd_intermediates or None,
        vcek=vcek_in, intel_root=anchors.intel_root, collateral=coll)
    if not res.nonce_verified:
        notes.append("no nonce given: the vTPM quote's extraData was not compared (freshness not checked)")
    tcb = res.tdx.tcb_status.value if res.tdx is not None and res.tdx.tcb_status is not None else None
    return ev.layout, dict(res.claims), tcb, res


# -- the front -----------------------------------------------------------------------------------


def verify_tee_evidence(
    evidence_type: EvidenceType | str,
    evidence: bytes | bytearray | memoryview | str | Mapping[str, Any],
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | CollateralStore | None = None,
    vcek: CertInput | None = None,
    runtime_data: bytes | None = None,
    nonce: bytes | None = None,
    ccel: bytes | None = None,
    fetcher: CollateralFetcher | None = None,
) -> VerifiedTee:
    """Verify TEE evidence of ``evidence_type`` (see the module docstring) and return its claims.

    ``collateral``: Intel collateral (one :class:`Collateral` or a :class:`CollateralStore`);
    ``vcek``: the VCEK/VLEK (DER or PEM, possibly with its ASK); ``fetcher``: fetch what is missing
    (VCEK and chain from AMD KDS, collateral from Intel PCS). Errors are ``EvidenceError`` /
    ``VerificationError`` (and :class:`~attestd.tee.fetch.FetchError` from the fetcher).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("verification time 'at' must be timezone-aware")
    try:
        kind = EvidenceType(evidence_type)
    except ValueError:
        raise EvidenceError("input.evidence_type", f"unknown evidence type {evidence_type!r} "
                            f"({', '.join(t.value for t in EvidenceType)})", field="type") from None
    data = _as_bytes(evidence)
    notes: list[str] = []
    if ccel is not None and kind is not EvidenceType.TDX:
        raise EvidenceError("input.ccel_unsupported", "a CCEL is only replayed for tdx evidence", field="ccel")
    if kind is EvidenceType.SEVSNP:
        fmt, claims, tcb, result = _verify_snp(data, anchors, at, vcek, runtime_data, nonce, fetcher, notes)
    elif kind is EvidenceType.SGX:
        fmt, claims, tcb, result = _verify_dcap("SGX", data, anchors, at, collateral, runtime_data, nonce, None,
                                                fetcher, notes)
    elif kind is EvidenceType.TDX:
        fmt, claims, tcb, result = _verify_dcap("TDX", data, anchors, at, collateral, runtime_data, nonce, ccel,
                                                fetcher, notes)
    else:
        if runtime_data is not None:
            raise EvidenceError("input.runtime_data_unsupported",
                                "azure-cvm evidence carries its runtime data in the HCL report", field="runtime_data")
        fmt, claims, tcb, result = _verify_cvm(data, anchors, at, collateral, vcek, nonce, fetcher, notes)
    return VerifiedTee(kind, fmt, MappingProxyType(claims), at, tcb, tuple(notes), result)

