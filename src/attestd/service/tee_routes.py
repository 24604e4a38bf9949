"""The Azure-shaped TEE attestation routes: ``POST /tenants/{t}/attest/SgxEnclave``,
``/OpenEnclave``, ``/SevSnpVm`` and ``/TdxVm`` (``docs/service.md``, "TEE attestation").

Requests are Azure Attestation's (``AttestSgxEnclaveRequest``, ``AttestOpenEnclaveRequest``,
``AttestSevSnpVmRequest``, ``AttestTdxVmRequest``)::

    {"quote" | "report": base64url, "runtimeData": {"data": base64url, "dataType": "Binary"|"JSON"},
     "initTimeData": {...}, "nonce": "<from POST .../challenge>", "draftPolicyForAttestation": "..."}

The evidence member is ``quote`` for SgxEnclave and TdxVm, ``report`` for OpenEnclave (an
OpenEnclave report: 16-byte header + SGX quote) and SevSnpVm (base64url of the JSON
``{"SnpReport", "VcekCertChain", "Endorsements"?}``). JSON schema: ``docs/tee-request.schema.json``.

Pipeline (:func:`run_tee`, shared with ``attestd audit reverify``): the request is checked by the
pydantic models (400 naming the member); the nonce as the TPM route checks it (MAC, expiry, not yet
consumed); the evidence is verified offline by :func:`attestd.tee.evidence.verify_tee_evidence`
with the configured trust anchors and collateral (:class:`TeeTrust`); the tenant's policy for the
type evaluates the claims; a token carries the claims and what the policy issued.

Freshness, as on the TPM route: REPORT_DATA must hold the challenge nonce (zero-padded to 64
bytes) or, with ``runtimeData``, start with ``SHA-256(nonce || runtimeData)`` (SEV-SNP: followed
by 32 zero bytes). Without a nonce (allowed only with ``tee_nonce = "optional"``) the binding is
Azure's: ``SHA-256(runtimeData)``. The nonce is consumed with the attestation record once the
evidence verified (permit or deny): a second use is 409 ``nonce.replayed``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from attestd.errors import AttestdError, EvidenceError, VerificationError
from attestd.policy import compile_policy, policy_hash
from attestd.policy.evaluate import Decision, Policy
from attestd.service import attest as pipeline
from attestd.service.config import ConfigError, Settings
from attestd.service.evidence import RuntimeData, _b64_nonempty, decode_b64
from attestd.service.nonces import CheckedNonce, check_nonce
from attestd.service.problems import ApiError
from attestd.store.models import Attestation, NewAttestation
from attestd.tee.dcap.claims_common import b64url
from attestd.tee.dcap.collateral import CollateralStore
from attestd.tee.evidence import TrustAnchors, VerifiedTee, verify_tee_evidence
from attestd.tokens import TokenIssueError, issue_token, policy_signer_jwk
from attestd.tokens.issue import RESERVED_CLAIMS

__all__ = ["TEE_ROUTES", "TeeResult", "TeeRoute", "TeeTrust", "register_tee_routes", "request_model", "reverify_tee",
           "run_tee", "tee_trust"]

log = logging.getLogger("attestd.service")

#: one base64url evidence member (a quote is a few KiB; an SNP request with its PEM chain ~10 KiB)
_EVIDENCE_MAX = 256 * 1024


# -- request documents (Azure's shapes) ------------------------------------------------------------
#: base64url (Azure's encoding; the standard alphabet and padding are accepted too)
B64 = Annotated[str, Field(min_length=4, json_schema_extra={"contentEncoding": "base64",
                                                            "pattern": "^[A-Za-z0-9+/_-]*={0,2}$"}),
                AfterValidator(_b64_nonempty)]


class TeeData(RuntimeData):
    """Azure's ``RuntimeData`` / ``InitTimeData``: bytes and how to read them (the TPM evidence's
    ``runtimeData``, checked the same way)."""

    model_config = ConfigDict(extra="forbid", title="TeeData")
    dataType: Literal["Binary", "JSON"] = Field(
        "Binary", description="JSON: the bytes are a UTF-8 JSON object, issued as x-ms-runtime / x-ms-inittime")

    def raw(self) -> bytes:
        return decode_b64(self.data)

    def json_object(self) -> dict[str, Any] | None:
        return json.loads(self.raw()) if self.dataType == "JSON" else None


_EVIDENCE = Annotated[B64, Field(max_length=_EVIDENCE_MAX)]


class _TeeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runtimeData: TeeData | None = Field(
        None, description="data the TEE bound into REPORT_DATA: SHA-256(nonce || data) (SHA-256(data) without a "
                          "nonce) is its first 32 bytes")
    initTimeData: TeeData | None = Field(
        None, description="SevSnpVm: HOST_DATA must be SHA-256(data); not supported for SGX/TDX (400)")
    nonce: Annotated[str | None, Field(min_length=1, max_length=128,
                                       description="the nonce from POST .../challenge, bound into REPORT_DATA")] = None
    draftPolicyForAttestation: Annotated[str | None, Field(
        max_length=1024 * 1024, description="policy text or JWS to evaluate instead of the tenant's policy; needs "
                                            "the tenant's admin token; the token is marked draft")] = None

    @property
    def evidence(self) -> str:
        raise NotImplementedError


class AttestSgxEnclaveRequest(_TeeRequest):
    """Azure's AttestSgxEnclaveRequest."""

    model_config = ConfigDict(extra="forbid", title="AttestSgxEnclaveRequest")
    quote: Annotated[_EVIDENCE, Field(description="SGX DCAP quote (v3), base64url")]

    @property
    def evidence(self) -> str:
        return self.quote


class AttestOpenEnclaveRequest(_TeeRequest):
    """Azure's AttestOpenEnclaveRequest."""

    model_config = ConfigDict(extra="forbid", title="AttestOpenEnclaveRequest")
    report: Annotated[_EVIDENCE, Field(description="OpenEnclave report (16-byte header + SGX quote), base64url")]

    @property
    def evidence(self) -> str:
        return self.report


class AttestSevSnpVmRequest(_TeeRequest):
    """Azure's AttestSevSnpVmRequest."""

    model_config = ConfigDict(extra="forbid", title="AttestSevSnpVmRequest")
    report: Annotated[_EVIDENCE, Field(
        description='base64url of the JSON {"SnpReport": base64url(ATTESTATION_REPORT), "VcekCertChain": '
                    'base64url(PEM VCEK[, ASK, ARK]), "Endorsements"?}')]

    @property
    def evidence(self) -> str:
        return self.report


class AttestTdxVmRequest(_TeeRequest):
    """Azure's AttestTdxVmRequest."""

    model_config = ConfigDict(extra="forbid", title="AttestTdxVmRequest")
    quote: Annotated[_EVIDENCE, Field(description="TDX DCAP quote (v4/v5), base64url")]

    @property
    def evidence(self) -> str:
        return self.quote


@dataclass(frozen=True)
class TeeRoute:
    """One route: its verifier type, ``x-ms-attestation-type``, evidence member and request model."""

    name: str
    kind: str
    ms_type: str
    field: str
    model: type[_TeeRequest]


TEE_ROUTES: dict[str, TeeRoute] = {
    "SgxEnclave": TeeRoute("SgxEnclave", "sgx", "sgx", "quote", AttestSgxEnclaveRequest),
    "OpenEnclave": TeeRoute("OpenEnclave", "sgx", "sgx", "report", AttestOpenEnclaveRequest),
    "SevSnpVm": TeeRoute("SevSnpVm", "sevsnp", "sevsnpvm", "report", AttestSevSnpVmRequest),
    "TdxVm": TeeRoute("TdxVm", "tdx", "tdxvm", "quote", AttestTdxVmRequest),
}


def request_model(route: str) -> type[_TeeRequest]:
    return TEE_ROUTES[route].model


def json_schema() -> dict[str, Any]:
    """``docs/tee-request.schema.json``: the four request documents."""
    defs: dict[str, Any] = {}
    variants = {}
    for name, spec in TEE_ROUTES.items():
        schema = spec.model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[schema["title"]] = schema
        variants[name] = {"$ref": f"#/$defs/{schema['title']}"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://attestd.dev/schemas/tee-request.schema.json",
            "title": "TeeAttestRequest",
            "description": "Body of POST /tenants/{t}/attest/{SgxEnclave|OpenEnclave|SevSnpVm|TdxVm} "
                           "(properties: the route's request)",
            "properties": variants, "additionalProperties": False, "$defs": defs}


# -- trust anchors and collateral --------------------------------------------------------------------
class TeeTrust:
    """The service's TEE trust: AMD ARKs/ASKs, the Intel SGX Root CA, the Intel collateral
    directory, and (``tee_fetch``) a fetcher for what the directory lacks. Loaded once, at start:
    a bad path or certificate is a configuration error then, not a 500 later."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        s = settings
        amd = [Path(p) for p in (s.tee_amd_roots or "").split(os.pathsep) if p]
        intel = Path(s.tee_intel_root) if s.tee_intel_root else None
        for name, kwargs in (("tee_amd_roots", {"amd": amd}), ("tee_intel_root", {"intel_root": intel})):
            try:
                TrustAnchors.load(**kwargs)
            except OSError as exc:
                raise ConfigError("config.tee_anchor", f"{name}: cannot read {exc.filename}: {exc.strerror}",
                                  field=name) from None
            except AttestdError as exc:
                raise ConfigError("config.tee_anchor", f"{name}: {exc}", field=name) from None
        self.anchors = TrustAnchors.load(amd=amd, intel_root=intel)
        self.collateral: CollateralStore | None = None
        if s.tee_collateral_dir:
            try:
                self.collateral = CollateralStore.from_dir(s.tee_collateral_dir)
            except AttestdError as exc:
                raise ConfigError("config.tee_collateral", f"tee_collateral_dir: {exc}",
                                  field="tee_collateral_dir") from None
        self._fetcher: Any = None
        self._lock = threading.Lock()

    @property
    def fetcher(self) -> Any:
        """The collateral fetcher (``tee_fetch``), made on first use; None when fetching is off."""
        if not self.settings.tee_fetch:
            return None
        with self._lock:
            if self._fetcher is None:
                self._fetcher = self._make_fetcher()
            return self._fetcher

    def _make_fetcher(self) -> Any:
        from attestd.tee.fetch import (
            DEFAULT_AMD_KDS,
            DEFAULT_INTEL_PCS,
            DEFAULT_INTEL_ROOT_CA_CRL,
            CollateralFetcher,
            FetchConfig,
        )

        s = self.settings
        return CollateralFetcher(FetchConfig(
            amd_kds_url=s.tee_kds_url or DEFAULT_AMD_KDS, intel_pcs_url=s.tee_pcs_url or DEFAULT_INTEL_PCS,
            intel_root_ca_crl_url=s.tee_intel_root_crl_url or DEFAULT_INTEL_ROOT_CA_CRL,
            cache_dir=Path(s.tee_cache_dir) if s.tee_cache_dir else Path(s.data_dir) / "tee-cache"))

    def require(self, kind: str) -> None:
        """503 ``tee.not_configured`` when the service trusts nothing that could verify ``kind``."""
        if kind == "sevsnp" and not self.anchors.amd_arks:
            raise ApiError(503, "tee.not_configured", "this service trusts no AMD root key (setting tee_amd_roots)",
                           title="TEE attestation not configured")
        if kind in ("sgx", "tdx") and self.anchors.intel_root is None:
            raise ApiError(503, "tee.not_configured", "this service trusts no Intel SGX Root CA (setting "
                           "tee_intel_root)", title="TEE attestation not configured")

    def verify(self, kind: str, doc: dict[str, Any], *, at: datetime, runtime_data: bytes | None,
               nonce: bytes | None) -> VerifiedTee:
        fetcher = self.fetcher
        try:
            return verify_tee_evidence(kind, doc, anchors=self.anchors, at=at, collateral=self.collateral,
                                       runtime_data=runtime_data, nonce=nonce, fetcher=fetcher)
        except VerificationError as exc:
            # the directory does not cover this platform: fetch it (only when fetching is on)
            if exc.code != "dcap.collateral_missing" or fetcher is None or self.collateral is None:
                raise
        return verify_tee_evidence(kind, doc, anchors=self.anchors, at=at, collateral=None,
                                   runtime_data=runtime_data, nonce=nonce, fetcher=fetcher)


def tee_trust(state: Any) -> TeeTrust:
    """The state's :class:`TeeTrust` (built on first use; ``register_tee_routes`` builds it at start)."""
    trust = getattr(state, "_tee_trust", None)
    if trust is None:
        trust = TeeTrust(state.settings)
        state._tee_trust = trust
    return trust


# -- the pipeline ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TeeResult:
    #: JSON claims the policy saw (and the token carries, less the envelope claims)
    claims: dict[str, Any]
    decision: Decision
    verified: VerifiedTee
    #: ``x-ms-runtime`` / ``x-ms-inittime`` of the token (JSON objects), or None
    runtime: dict[str, Any] | None
    inittime: dict[str, Any] | None


#: request members an error may name as they are; anything else is inside the evidence member
_REQUEST_MEMBERS = ("quote", "report", "runtimeData", "initTimeData", "nonce")
#: error codes about a binding: the request member they concern
_BINDING_FIELDS = (("runtime_data", "runtimeData"), ("init_time_data", "initTimeData"), ("nonce_mismatch", "nonce"),
                   ("report_data_mismatch", "nonce"), ("unsupported_field", None))


def _locate(exc: AttestdError, evidence_field: str, *, nonce: bool, runtime: bool) -> AttestdError:
    """Name the request member at fault in ``field``; the structure member goes to ``details.structureField``."""
    if isinstance(exc, ApiError):
        return exc
    member = None
    for part, name in _BINDING_FIELDS:
        if part in exc.code:
            member = name
            break
    if member == "nonce" and not nonce:
        member = "runtimeData" if runtime else evidence_field
    if member is None:
        field = exc.field or ""
        if field.split(".")[0] in _REQUEST_MEMBERS:
            return exc
        member = evidence_field
    if exc.field == member:
        return exc
    details = dict(exc.details)
    if exc.field:
        details["structureField"] = exc.field
    new = type(exc)(exc.code, exc.message, field=member, offset=exc.offset, details=details)
    for attr in ("http_status", "title"):
        if attr in vars(exc):
            setattr(new, attr, getattr(exc, attr))
    return new


def _jsonable(claims: Any) -> dict[str, Any]:
    return json.loads(json.dumps(pipeline.jsonable(dict(claims)), default=str))


def run_tee(route: str, req: _TeeRequest, nonce: CheckedNonce | None, policy: Policy, *, at: datetime,
            trust: TeeTrust) -> TeeResult:
    """Verify the request's evidence (bound to ``nonce`` and runtimeData) at ``at`` and evaluate ``policy``.

    Raises :class:`EvidenceError` (400), :class:`VerificationError` (422) naming the request member,
    ``FetchError`` (503) or ``tee.not_configured`` (503). A denial is not an exception.
    """
    spec = TEE_ROUTES[route]
    trust.require(spec.kind)
    # canonical base64url: the request models decided what decodes, the verifier reads the bytes
    doc: dict[str, Any] = {spec.field: b64url(decode_b64(req.evidence))}
    if req.initTimeData is not None:
        doc["initTimeData"] = {"data": b64url(req.initTimeData.raw()), "dataType": req.initTimeData.dataType}
    rt = req.runtimeData.raw() if req.runtimeData is not None else None
    if nonce is not None and rt is not None:
        runtime_data, bound_nonce = nonce.raw + rt, None
    elif nonce is not None:
        runtime_data, bound_nonce = None, nonce.raw
    else:
        runtime_data, bound_nonce = rt, None
    try:
        verified = trust.verify(spec.kind, doc, at=at, runtime_data=runtime_data, nonce=bound_nonce)
    except AttestdError as exc:
        raise _locate(exc, spec.field, nonce=nonce is not None, runtime=rt is not None) from None
    claims = _jsonable(verified.claims)
    # runtime / init-time claims from what the client sent (the verifier saw nonce || runtimeData)
    for name in ("nonce", "x-ms-runtime", "x-ms-sgx-ehd"):
        claims.pop(name, None)
    runtime = req.runtimeData.json_object() if req.runtimeData is not None else None
    if rt is not None and spec.kind == "sgx":
        claims["x-ms-sgx-ehd"] = b64url(rt)
    if runtime is not None:
        claims["x-ms-runtime"] = runtime
    inittime = req.initTimeData.json_object() if req.initTimeData is not None else None
    claims["x-attestd-nonce-verified"] = nonce is not None
    if verified.notes:
        claims["x-attestd-verifier-notes"] = list(verified.notes)
    decision = policy.evaluate(claims)
    return TeeResult(claims, decision, verified, runtime, inittime)


def token_claims(result: TeeResult) -> dict[str, Any]:
    """The token's claims besides the envelope: what the policy issued, then the verified claims
    (which a policy cannot override)."""
    issued = pipeline.jsonable(dict(result.decision.issued_claims))
    return {**issued, **{k: v for k, v in result.claims.items() if k not in RESERVED_CLAIMS}}


def parse_request(route: str, evidence: dict[str, Any]) -> _TeeRequest:
    """A stored request document (an attestation record's evidence) as the route's model."""
    try:
        return TEE_ROUTES[route].model.model_validate(evidence)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise EvidenceError("request.invalid", f"{field}: {first.get('msg')}", field=field) from None


# -- routes ------------------------------------------------------------------------------------------
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed request or evidence (the problem names the member in `field`), or a bad nonce"},
    403: {"description": "denied by the policy (the problem names the rule and the claim it tested)"},
    409: {"description": "nonce already used"},
    422: {"description": "the evidence did not verify"},
    503: {"description": "TEE trust anchors not configured, or collateral could not be fetched"},
}


def register_tee_routes(app: FastAPI, st: Any, *, admin: Callable[[Request, str], Any]) -> None:
    """Add the four routes to ``app`` (``st`` is the :class:`~attestd.service.app.ServiceState`)."""
    trust = tee_trust(st)
    s = st.settings

    def count(label: str, outcome: str, reason: str) -> None:
        st.metrics.attestations.labels(label, outcome, reason).inc()

    def check_request_nonce(t: str, text: str | None, now: datetime) -> CheckedNonce | None:
        if text is None:
            if s.tee_nonce == "required":
                raise ApiError(400, "nonce.missing", "nonce is required: get one from POST /tenants/{t}/challenge and "
                               "bind it into REPORT_DATA", field="nonce")
            return None
        nonce = check_nonce(st.store.sealer.nonce_key(t), t, text, now=now)
        if st.store.nonce_consumed(t, nonce.nonce_id):
            raise ApiError(409, "nonce.replayed", "this nonce was already used; request a new challenge", field="nonce")
        return nonce

    def attest(request: Request, t: str, route: str, body: _TeeRequest) -> JSONResponse:
        spec = TEE_ROUTES[route]
        label = route.lower()
        tenant = st.tenants.get(t, cached=True)
        now = st.clock()
        draft = body.draftPolicyForAttestation is not None
        signer_cert = None
        try:
            nonce = check_request_nonce(t, body.nonce, now)
            if draft:
                admin(request, t)
                text, signer_cert = st.tenants.parse_policy_document(
                    tenant, body.draftPolicyForAttestation, field="draftPolicyForAttestation")
                policy_row, p_hash = None, policy_hash(text)
            else:
                policy_row = st.tenants.current_policy(t, route)
                text, p_hash = policy_row.text, policy_row.policy_hash
                if policy_row.signer_cert_pem:
                    from cryptography import x509

                    signer_cert = x509.load_pem_x509_certificate(policy_row.signer_cert_pem.encode())
            policy = compile_policy(text)
        except AttestdError as exc:
            count(label, "error", exc.code)
            raise
        record = NewAttestation(id=str(uuid.UUID(bytes=st.randbytes(16), version=4)), tenant_name=t, created_at=now,
                             attestation_type=route, evidence=body.model_dump(exclude_none=True), draft=draft,
                             policy_version_id=policy_row.id if policy_row else None, policy_hash=p_hash,
                             nonce_id=nonce.nonce_id if nonce else None)
        try:
            result = run_tee(route, body, nonce, policy, at=now, trust=trust)
        except AttestdError as exc:
            record.outcome, record.error_code, record.explanation = "error", exc.code, str(exc)
            st.store.record_attestation(record, consume_nonce=None)
            count(label, "error", exc.code)
            log.info("attestation failed", extra={"tenant": t, "attestation_id": record.id, "type": route,
                                                  "code": exc.code, "field": exc.field})
            raise
        decision = result.decision
        record.claims = result.claims
        record.trace = pipeline.jsonable(decision.to_dict().get("trace"))
        record.explanation = decision.explanation
        token = None
        if decision.permitted:
            keyset = st.tenants.keyset(tenant)
            props = decision.properties or {}
            lifetime = min(timedelta(seconds=s.token_lifetime_seconds), keyset.policy.max_token_lifetime)
            if props.get("report_validity_in_minutes"):
                lifetime = min(lifetime, timedelta(minutes=int(props["report_validity_in_minutes"])))
            try:
                token = issue_token(
                    token_claims(result), signer=keyset.active_signer(now), issuer=st.tenants.issuer(t), now=now,
                    lifetime=lifetime, attestation_type=spec.ms_type, policy_hash=p_hash,
                    nonce=nonce.text if nonce else None, runtime=result.runtime, inittime=result.inittime,
                    policy_signer=policy_signer_jwk(signer_cert) if signer_cert is not None else None,
                    draft=draft, include_x5c=not props.get("omit_x5c", False),
                    max_lifetime=keyset.policy.max_token_lifetime)
            except TokenIssueError as exc:  # the policy issued something a token cannot carry
                count(label, "error", exc.code)
                raise ApiError(422, exc.code, exc.message, field="policy", details=exc.details) from None
            record.outcome = "permit"
            record.issued_claims = pipeline.jsonable(dict(decision.issued_claims))
            record.token_jti = _jti(token)
        else:
            record.outcome = "deny"
        try:
            st.store.record_attestation(record, consume_nonce=(nonce.nonce_id, nonce.expires_at) if nonce else None)
        except AttestdError as exc:  # store.Conflict: the nonce was consumed meanwhile
            count(label, "error", exc.code)
            raise ApiError(409, exc.code, exc.message, field="nonce") from None
        if token is None:
            count(label, "deny", pipeline.denial_reason(decision))
            log.info("attestation denied", extra={"tenant": t, "attestation_id": record.id, "type": route,
                                                  "reason": pipeline.denial_reason(decision)})
            raise pipeline.denial_problem(decision, attestation_id=record.id, policy_hash=p_hash)
        count(label, "permit", "ok")
        log.info("attestation permitted", extra={"tenant": t, "attestation_id": record.id, "jti": record.token_jti,
                                                 "draft": draft, "type": route})
        return JSONResponse({"token": token}, headers={"x-attestd-attestation-id": record.id})

    def make(route: str):
        model = TEE_ROUTES[route].model

        def endpoint(request: Request, t: str, body: _TeeRequest) -> JSONResponse:
            started = time.perf_counter()
            try:
                return attest(request, t, route, body)
            finally:
                st.metrics.attestation_latency.labels(route.lower()).observe(time.perf_counter() - started)

        # the route's own model (annotations are strings here: give FastAPI the class itself)
        endpoint.__annotations__ = {"request": Request, "t": str, "body": model, "return": JSONResponse}
        endpoint.__name__ = f"attest_{route.lower()}"
        endpoint.__doc__ = (f"Azure's Attest{route}: verify the evidence offline, evaluate the tenant's {route} "
                            "policy, answer a token. Errors are RFC 9457 problems; with `Accept: application/json` "
                            "(and not application/problem+json) Azure's `{\"error\": {\"code\", \"message\"}}`.")
        return endpoint

    from attestd.service.app import TokenResponse

    for route in TEE_ROUTES:
        app.post(f"/tenants/{{t}}/attest/{route}", tags=["attestation"], name=f"attest_{route}",
                 summary=f"Attest{route} (Azure-shaped)",
                 response_model=TokenResponse, responses=_RESPONSES)(make(route))


def _jti(token: str) -> str | None:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("jti")


# -- audit -------------------------------------------------------------------------------------------
def reverify_tee(state: Any, record: Attestation) -> dict[str, Any]:
    """``attestd audit reverify`` for a TEE record: the stored request verified again at the recorded
    time with the service's current trust configuration, the recorded policy version evaluated,
    the nonce's MAC and consumption checked (never consumed again). Same report as for TPM."""
    from attestd.service.audit import reverify_record

    parsed: dict[str, _TeeRequest] = {}

    def parse() -> tuple[str | None, str | None]:
        req = parsed["request"] = parse_request(record.attestation_type, record.evidence)
        return req.nonce, req.draftPolicyForAttestation

    def run(nonce: CheckedNonce | None, policy: Policy) -> tuple[Any, Any]:
        result = run_tee(record.attestation_type, parsed["request"], nonce, policy, at=record.created_at,
                         trust=tee_trust(state))
        return result.decision, result.claims

    return reverify_record(state, record, parse=parse, run=run)
