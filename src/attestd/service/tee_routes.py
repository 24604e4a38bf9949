"""The Azure-shaped TEE attestation routes: ``POST /tenants/{t}/attest/SevSnpVm``, ``/SgxEnclave``,
``/OpenEnclave`` and ``/TdxVm``.

The request is Azure Attestation's: ``{"quote" | "report": base64url, "runtimeData": {"data",
"dataType"}, "initTimeData": {...}, "nonce": "...", "draftPolicyForAttestation": "..."}`` (for
SevSnpVm, ``report`` is base64url of ``{"SnpReport", "VcekCertChain"}``). It is verified by
:func:`attestd.tee.evidence.verify_tee_evidence` with the service's configured trust anchors
(``tee_amd_roots``, ``tee_intel_root``) and Intel collateral (``tee_collateral_dir``), offline; then
the tenant's policy for that type decides. As in Azure, ``runtimeData`` binds the report
(SHA-256 in REPORT_DATA) and ``nonce`` is echoed in the token.

Token: Azure's envelope (``x-ms-attestation-type`` ``sevsnpvm``/``sgx``/``tdxvm``,
``x-ms-policy-hash``, ``x-ms-runtime`` for JSON runtime data), the verified TEE claims
(``x-ms-sgx-mrenclave``, ``x-ms-sevsnpvm-launchmeasurement``, ...) and what the policy issued.
A type without a policy refuses attestation (``policy.not_set``): there is no permit-all default.
Errors are RFC 9457 problems that also carry Azure's ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from datetime import timedelta
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from attestd.errors import AttestdError, EvidenceError, VerificationError
from attestd.policy import compile_policy, policy_hash
from attestd.service import attest as pipeline
from attestd.store.models import Attestation
from attestd.tee.dcap.collateral import CollateralStore
from attestd.tee.evidence import TrustAnchors, verify_tee_evidence
from attestd.tokens import issue_token, policy_signer_jwk
from attestd.tokens.issue import RESERVED_CLAIMS

__all__ = ["TEE_ROUTES", "register_tee_routes"]

#: route attestation type -> (verifier evidence type, x-ms-attestation-type)
TEE_ROUTES = {"SevSnpVm": ("sevsnp", "sevsnpvm"), "SgxEnclave": ("sgx", "sgx"), "OpenEnclave": ("sgx", "sgx"),
              "TdxVm": ("tdx", "tdxvm")}


class RuntimeDataModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: str = Field(..., max_length=65536)
    dataType: str = Field("Binary", pattern="^(Binary|JSON)$")


class TeeRequest(BaseModel):
    """Azure's AttestSgxEnclaveRequest / AttestOpenEnclaveRequest / AttestSevSnpVmRequest / AttestTdxVmRequest."""

    model_config = ConfigDict(extra="forbid", title="TeeAttestRequest")
    quote: str | None = Field(None, max_length=1 << 20, description="SGX/TDX quote, base64url")
    report: str | None = Field(None, max_length=1 << 20, description="OpenEnclave report or SEV-SNP request, base64url")
    runtimeData: RuntimeDataModel | None = None
    initTimeData: RuntimeDataModel | None = None
    nonce: str | None = Field(None, max_length=256)
    draftPolicyForAttestation: str | None = Field(None, max_length=1 << 20)


class _Anchors:
    def __init__(self, settings: Any) -> None:
        self.settings = settings

    @functools.cached_property
    def anchors(self) -> TrustAnchors:
        from pathlib import Path

        s = self.settings
        amd = [Path(p) for p in (s.tee_amd_roots or "").split(os.pathsep) if p]
        return TrustAnchors.load(amd=amd, intel_root=Path(s.tee_intel_root) if s.tee_intel_root else None)

    @functools.cached_property
    def collateral(self) -> CollateralStore | None:
        d = self.settings.tee_collateral_dir
        return CollateralStore.from_dir(d) if d else None


def _json_safe(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in json.loads(json.dumps(claims, default=str)).items() if k not in RESERVED_CLAIMS}


def register_tee_routes(app: FastAPI, st: Any, *, admin: Callable[[Request, str], Any]) -> None:
    trust = _Anchors(st.settings)

    def attest(request: Request, t: str, route: str, body: TeeRequest) -> JSONResponse:
        kind, ms_type = TEE_ROUTES[route]
        tenant = st.tenants.get(t, cached=True)
        now = st.clock()
        doc = body.model_dump(exclude_none=True, exclude={"draftPolicyForAttestation"})
        if not doc.get("quote") and not doc.get("report"):
            raise EvidenceError("tee.request", "send the evidence in 'quote' (SGX, TDX) or 'report' (OpenEnclave, "
                                "SEV-SNP)", field="quote")
        draft = body.draftPolicyForAttestation is not None
        signer_cert = None
        if draft:
            admin(request, t)
            text, signer_cert = st.tenants.parse_policy_document(tenant, body.draftPolicyForAttestation,
                                                                 field="draftPolicyForAttestation")
            policy_row = None
            p_hash = policy_hash(text)
        else:
            policy_row = st.tenants.current_policy(t, route)
            text, p_hash = policy_row.text, policy_row.policy_hash
            if policy_row.signer_cert_pem:
                from cryptography import x509

                signer_cert = x509.load_pem_x509_certificate(policy_row.signer_cert_pem.encode())
        policy = compile_policy(text)
        record = Attestation(id=str(uuid.UUID(bytes=st.randbytes(16), version=4)), tenant_name=t, created_at=now,
                             attestation_type=route, evidence=doc, draft=draft,
                             policy_version_id=policy_row.id if policy_row else None, policy_hash=p_hash)
        try:
            verified = verify_tee_evidence(kind, doc, anchors=trust.anchors, at=now, collateral=trust.collateral)
        except (EvidenceError, VerificationError) as exc:
            record.outcome, record.error_code, record.explanation = "error", exc.code, str(exc)
            st.store.record_attestation(record, consume_nonce=None)
            raise
        claims = _json_safe(dict(verified.claims))
        decision = policy.evaluate(claims)
        record.claims = claims
        record.trace = pipeline.jsonable(decision.to_dict().get("trace"))
        record.explanation = decision.explanation
        if not decision.permitted:
            record.outcome = "deny"
            st.store.record_attestation(record, consume_nonce=None)
            raise pipeline.denial_problem(decision, attestation_id=record.id, policy_hash=p_hash)
        keyset = st.tenants.keyset(tenant)
        runtime = None
        if body.runtimeData is not None and body.runtimeData.dataType == "JSON":
            from attestd.tee.snp.azure import decode_base64_any

            runtime = json.loads(decode_base64_any(body.runtimeData.data, "runtimeData.data"))
        token_claims = {**claims, **pipeline.jsonable(dict(decision.issued_claims))}
        token = issue_token(token_claims, signer=keyset.active_signer(now), issuer=st.tenants.issuer(t), now=now,
                            lifetime=min(timedelta(seconds=st.settings.token_lifetime_seconds),
                                         keyset.policy.max_token_lifetime),
                            attestation_type=ms_type, policy_hash=p_hash, nonce=body.nonce, runtime=runtime,
                            policy_signer=policy_signer_jwk(signer_cert) if signer_cert is not None else None,
                            draft=draft, max_lifetime=keyset.policy.max_token_lifetime)
        record.outcome = "permit"
        record.issued_claims = pipeline.jsonable(dict(decision.issued_claims))
        st.store.record_attestation(record, consume_nonce=None)
        return JSONResponse({"token": token}, headers={"x-attestd-attestation-id": record.id})

    def make(route: str):
        def endpoint(request: Request, t: str, body: TeeRequest) -> JSONResponse:
            try:
                return attest(request, t, route, body)
            except AttestdError:
                st.metrics.attestations.labels(route.lower(), "error", "evidence").inc()
                raise

        endpoint.__name__ = f"attest_{route.lower()}"
        return endpoint

    for route in TEE_ROUTES:
        app.post(f"/tenants/{{t}}/attest/{route}", tags=["attestation"], name=f"attest_{route}",
                 responses={400: {"description": "malformed evidence"},
                            403: {"description": "denied by the policy"},
                            404: {"description": "no policy for this type"},
                            422: {"description": "evidence did not verify"}})(make(route))
