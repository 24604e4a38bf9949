"""Azure Attestation's ``AttestSevSnpVm`` request, parsed and verified offline.

The request body (Azure REST API "Attestation - Attest Sev Snp Vm", and the example
``AttestSevSnpVm.json`` in Azure/azure-rest-api-specs)::

    {
      "report": base64url( JSON {
          "SnpReport":      base64url(ATTESTATION_REPORT),
          "VcekCertChain":  base64url(PEM: VCEK, ASK, ARK),
          "Endorsements":   optional, e.g. ACI's {"Uvm": [...]}
      } ),
      "runtimeData":  {"data": base64url, "dataType": "JSON" | "Binary"},   optional
      "initTimeData": {"data": base64url, "dataType": "JSON" | "Binary"},   optional
      "nonce": "...",                                                       optional
      "draftPolicyForAttestation": "..."                                    optional
    }

Bindings Azure enforces and :func:`verify_azure_snp_request` checks:

* ``runtimeData``: REPORT_DATA = SHA-256(runtimeData.data) followed by 32 zero bytes (in Azure's
  example the token's ``x-ms-sevsnpvm-reportdata`` is exactly that);
* ``initTimeData``: HOST_DATA = SHA-256(initTimeData.data).

Base64 fields are accepted in either alphabet, with or without padding (Azure's own example mixes
them). Malformed input is an :class:`~attestd.errors.EvidenceError` ``azure.*``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.snp.certs import CertInput
from attestd.tee.snp.verify import VerifiedSnpReport, verify_snp_report

__all__ = [
    "AzureData",
    "AzureSnpRequest",
    "AzureSnpResult",
    "decode_base64_any",
    "parse_azure_snp_report_field",
    "parse_azure_snp_request",
    "verify_azure_snp_request",
]

_B64_CHARS = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


def decode_base64_any(text: str, field: str) -> bytes:
    """Decode base64 or base64url, padded or not; anything else is ``azure.bad_base64``."""
    if not isinstance(text, str):
        raise EvidenceError("azure.bad_field", f"{field} must be a base64 string", field=field)
    s = "".join(text.split())
    if not _B64_CHARS.match(s) or len(s.rstrip("=")) % 4 == 1:
        raise EvidenceError("azure.bad_base64", f"{field} is not base64/base64url text", field=field)
    core = s.rstrip("=").translate(str.maketrans("-_", "+/"))
    if s.endswith("=") and len(s) % 4:
        raise EvidenceError("azure.bad_base64", f"{field} has wrong base64 padding", field=field)
    try:
        return base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceError(
            "azure.bad_base64", f"{field} is not base64/base64url text", field=field
        ) from None


def _json(raw: bytes | str, field: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EvidenceError("azure.bad_json", f"{field} is not JSON: {exc}", field=field) from None


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise EvidenceError("azure.bad_field", f"{field} must be a JSON object", field=field)
    return value


@dataclass(frozen=True, slots=True)
class AzureData:
    """``runtimeData`` / ``initTimeData``: the bytes and their declared type (``JSON`` or ``Binary``)."""

    data: bytes
    data_type: str | None

    def json(self, field: str = "data") -> Any:
        return _json(self.data, field)


@dataclass(frozen=True, slots=True)
class AzureSnpRequest:
    """A parsed ``AttestSevSnpVm`` request body; nothing in it is verified yet."""

    snp_report: bytes
    vcek_cert_chain: bytes  # PEM text: VCEK, ASK, ARK
    endorsements: Any | None
    runtime_data: AzureData | None
    init_time_data: AzureData | None
    nonce: str | None
    draft_policy: str | None


def parse_azure_snp_report_field(report: str) -> tuple[bytes, bytes, Any | None]:
    """Decode the ``report`` member: (SnpReport bytes, VcekCertChain PEM bytes, Endorsements or None)."""
    inner = _object(_json(decode_base64_any(report, "report"), "report"), "report")
    for key in ("SnpReport", "VcekCertChain"):
        if key not in inner:
            raise EvidenceError("azure.missing_field", f"report JSON lacks {key}", field=f"report.{key}")
    snp = decode_base64_any(inner["SnpReport"], "report.SnpReport")
    chain = decode_base64_any(inner["VcekCertChain"], "report.VcekCertChain")
    return snp, chain, inner.get("Endorsements")


def _data(body: Mapping[str, Any], key: str) -> AzureData | None:
    value = body.get(key)
    if value is None:
        return None
    obj = _object(value, key)
    if "data" not in obj:
        raise EvidenceError("azure.missing_field", f"{key} lacks data", field=f"{key}.data")
    data_type = obj.get("dataType")
    if data_type is not None and not isinstance(data_type, str):
        raise EvidenceError("azure.bad_field", f"{key}.dataType must be a string", field=f"{key}.dataType")
    return AzureData(decode_base64_any(obj["data"], f"{key}.data"), data_type)


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise EvidenceError("azure.bad_field", f"{key} must be a string", field=key)
    return value


def parse_azure_snp_request(body: bytes | str | Mapping[str, Any]) -> AzureSnpRequest:
    """Parse an ``AttestSevSnpVm`` request body (JSON text or an already decoded object)."""
    obj = _object(body if isinstance(body, Mapping) else _json(body, "request"), "request")
    if "report" not in obj:
        raise EvidenceError("azure.missing_field", "request lacks report", field="report")
    snp, chain, endorsements = parse_azure_snp_report_field(obj["report"])
    return AzureSnpRequest(
        snp_report=snp,
        vcek_cert_chain=chain,
        endorsements=endorsements,
        runtime_data=_data(obj, "runtimeData"),
        init_time_data=_data(obj, "initTimeData"),
        nonce=_opt_str(obj, "nonce"),
        draft_policy=_opt_str(obj, "draftPolicyForAttestation"),
    )


@dataclass(frozen=True, slots=True)
class AzureSnpResult:
    """A verified request: the SNP verification plus the runtime/init-time bindings and claims."""

    snp: VerifiedSnpReport
    runtime_data: AzureData | None
    init_time_data: AzureData | None
    claims: Mapping[str, Any]


def _data_claim(data: AzureData, field: str) -> Any:
    if (data.data_type or "").lower() == "json":
        return data.json(field)
    return base64.urlsafe_b64encode(data.data).rstrip(b"=").decode()


def verify_azure_snp_request(
    request: AzureSnpRequest,
    *,
    trusted_arks: CertInput | Sequence[CertInput],
    at: datetime,
) -> AzureSnpResult:
    """Verify the SNP report with the request's VCEK chain, then the runtimeData/initTimeData bindings.

    Claims are the SNP claims plus ``x-ms-runtime`` / ``x-ms-inittime`` (the JSON, or base64url of
    binary data) and ``nonce`` when the request carries them.
    """
    verified = verify_snp_report(
        request.snp_report, vcek=None, chain=request.vcek_cert_chain, trusted_arks=trusted_arks, at=at
    )
    report = verified.report
    claims = dict(verified.claims)
    if request.runtime_data is not None:
        want = hashlib.sha256(request.runtime_data.data).digest() + bytes(32)
        if not hmac.compare_digest(report.report_data, want):
            raise VerificationError(
                "azure.runtime_data_mismatch",
                f"REPORT_DATA {report.report_data.hex()} is not SHA-256(runtimeData) || 0^32 = {want.hex()}",
                field="ATTESTATION_REPORT.REPORT_DATA",
                offset=0x50,
            )
        claims["x-ms-runtime"] = _data_claim(request.runtime_data, "runtimeData.data")
    if request.init_time_data is not None:
        want = hashlib.sha256(request.init_time_data.data).digest()
        if not hmac.compare_digest(report.host_data, want):
            raise VerificationError(
                "azure.init_time_data_mismatch",
                f"HOST_DATA {report.host_data.hex()} is not SHA-256(initTimeData) = {want.hex()}",
                field="ATTESTATION_REPORT.HOST_DATA",
                offset=0xC0,
            )
        claims["x-ms-inittime"] = _data_claim(request.init_time_data, "initTimeData.data")
    if request.nonce is not None:
        claims["nonce"] = request.nonce
    return AzureSnpResult(
        snp=verified,
        runtime_data=request.runtime_data,
        init_time_data=request.init_time_data,
        claims=MappingProxyType(claims),
    )
