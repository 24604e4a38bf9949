"""The ASGI application: :func:`create_app` (FastAPI). See ``docs/service.md`` for the API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from attestd import __version__
from attestd.claims.logcache import LogCache
from attestd.errors import AttestdError, EvidenceError, VerificationError
from attestd.policy import builtin, compile_policy, policy_hash
from attestd.service import attest as pipeline
from attestd.service.auth import Principal, require_operator, require_tenant_admin
from attestd.service.config import Settings
from attestd.service.dispatch import run_attestation
from attestd.service.evidence import TpmEvidence
from attestd.service.hotpath import JsonResponse, lean
from attestd.service.nonces import check_nonce, issue_nonce
from attestd.service.observability import Metrics, RequestContextMiddleware
from attestd.service.problems import ApiError, install_handlers
from attestd.service.tenants import (
    ATTESTATION_TYPES,
    TenantService,
    canonical_type,
    fingerprint,
)
from attestd.store import Attestation, Conflict, NewAttestation, PolicyChanged, PolicyVersion, Sealer, Store
from attestd.tokens import TokenIssueError, issue_token, jwks, openid_configuration, policy_signer_jwk

__all__ = ["ServiceState", "bootstrap", "create_app", "open_state"]

log = logging.getLogger("attestd.service")

CREDENTIALS_FILE = "initial-credentials.json"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceState:
    """What every request needs: settings, store, tenant rules, metrics, clock and randomness."""

    def __init__(self, settings: Settings, store: Store, *, clock: Callable[[], datetime],
                 randbytes: Callable[[int], bytes]) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.randbytes = randbytes
        self.tenants = TenantService(store, settings, clock=clock, randbytes=randbytes)
        self.metrics = Metrics()
        #: attestations run on the event loop (small requests, SQLite: see attestd.service.dispatch)
        self.inline_attestations = store.engine.dialect.name == "sqlite"
        #: verified event logs, for hosts that send the same log again (attestd.claims.logcache)
        self.log_cache = LogCache(settings.log_cache_entries)


def open_state(settings: Settings, *, clock: Callable[[], datetime] | None = None,
               randbytes: Callable[[int], bytes] | None = None) -> ServiceState:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    store = Store(settings.database, Sealer(settings.load_master_key()))
    return ServiceState(settings, store, clock=clock or _utcnow, randbytes=randbytes or secrets.token_bytes)


def bootstrap(state: ServiceState, *, announce: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """Migrate; on first start (no tenants) create the default tenant, its admin token and an operator
    token, write them to ``{data_dir}/initial-credentials.json`` (0600) and announce them once."""
    state.store.migrate()
    if state.store.list_tenants():
        return None
    s = state.settings
    try:
        _tenant, admin = state.tenants.create(s.default_tenant, s.default_tenant_mode, actor="bootstrap")
    except Conflict:  # another replica bootstrapped at the same moment
        return None
    operator = state.store.add_token(None, scope="operator", label="initial operator token", now=state.clock(),
                                     actor="bootstrap", randbytes=state.randbytes)
    creds = {"tenant": s.default_tenant, "issuer": s.issuer(s.default_tenant), "adminToken": admin,
             "operatorToken": operator}
    path = Path(s.data_dir) / CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=2)
    os.chmod(path, 0o600)
    creds["file"] = str(path)
    (announce or (lambda m: print(m, file=sys.stderr, flush=True)))(
        f"attestd: first start: created tenant {s.default_tenant!r} (issuer {creds['issuer']})\n"
        f"attestd:   admin token:    {admin}\n"
        f"attestd:   operator token: {operator}\n"
        f"attestd:   saved to {path} (mode 0600); they are not shown again")
    return creds


# -- request models ----------------------------------------------------------------------------------
class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=32)
    mode: str = Field("token", description="shared | token | isolated")
    signers: list[str] = Field(default_factory=list, max_length=16,
                               description="PEM certificates of trusted policy signers (isolated: at least one)")


class ChallengeResponse(BaseModel):
    nonce: str
    expiresAt: datetime


class TokenResponse(BaseModel):
    token: str


def _policy_json(row: PolicyVersion, result: str | None = None) -> dict[str, Any]:
    signer = None
    if row.signer_cert_pem:
        cert = x509.load_pem_x509_certificate(row.signer_cert_pem.encode())
        signer = {"subject": cert.subject.rfc4514_string(), "fingerprint": fingerprint(cert)}
    doc: dict[str, Any] = {
        "attestationType": row.attestation_type, "version": row.version, "policy": row.text,
        "x-ms-policy-hash": row.policy_hash, "x-ms-policy-token-hash": row.token_hash, "signed": row.signer_cert_pem is not None, "signer": signer,
        "builtin": row.builtin, "action": row.action, "updatedAt": row.created_at.isoformat(),
        "updatedBy": row.created_by,
    }
    if row.document != row.text:
        doc["policyToken"] = row.document
    if result:
        doc["x-ms-policy-result"] = result
    return doc


def _policy_response(row: PolicyVersion, result: str | None = None) -> JSONResponse:
    return JSONResponse(_policy_json(row, result), headers={"x-ms-policy-token-hash": row.token_hash})


def _attestation_json(a: Attestation, *, full: bool) -> dict[str, Any]:
    doc = {"id": a.id, "tenant": a.tenant_name, "createdAt": a.created_at.isoformat(),
           "attestationType": a.attestation_type, "outcome": a.outcome, "errorCode": a.error_code,
           "explanation": a.explanation, "policyVersionId": a.policy_version_id, "policyHash": a.policy_hash,
           "draft": a.draft, "tokenJti": a.token_jti}
    if full:
        doc.update({"evidence": a.evidence, "claims": a.claims, "issuedClaims": a.issued_claims, "trace": a.trace,
                    "nonceId": a.nonce_id})
    return doc


def _jti(token: str) -> str | None:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("jti")


_RAW_BODY = {"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}},
    "application/jose": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}}}}}


class _Checkpointer:
    """SQLite's WAL moved into the database every second by a background thread (a PASSIVE
    checkpoint: it never blocks the writer), so no request pays for the copy and its fsync."""

    INTERVAL = 1.0

    def __init__(self, store: Store) -> None:
        self._stop = threading.Event()
        self._thread = None
        if store.engine.dialect.name == "sqlite":
            self._thread = threading.Thread(target=self._run, args=(store,), name="attestd-checkpoint", daemon=True)
            self._thread.start()

    def _run(self, store: Store) -> None:
        while not self._stop.wait(self.INTERVAL):
            try:
                store.checkpoint()
            except Exception:  # keep going; readyz reports the database
                log.exception("WAL checkpoint failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def create_app(settings: Settings | None = None, *, state: ServiceState | None = None,
               clock: Callable[[], datetime] | None = None, randbytes: Callable[[int], bytes] | None = None,
               announce: Callable[[str], None] | None = None, warm: bool = False) -> FastAPI:
    """The service. ``clock`` and ``randbytes`` are injectable for tests; the lifespan migrates the
    database and bootstraps the default tenant (see :func:`bootstrap`), then with ``warm`` (``attestd
    serve``) does what the first attestations would do before it reports ready (:func:`warm_up`)."""
    if state is None:
        state = open_state(settings or Settings(), clock=clock, randbytes=randbytes)
    st = state
    s = st.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(bootstrap, st, announce=announce)
        if warm:
            await run_in_threadpool(warm_up, st, getattr(app.state, "fleet", None))
        app.state.ready = True

        async def housekeep() -> None:
            """One round, each step on its own (one failing does not skip the others): forget
            expired nonces, records past retention, expired certificates; mark hosts stale."""
            fleet = getattr(app.state, "fleet", None)
            steps = [("nonces", st.store.prune_nonces, (st.clock(),))]
            if s.attestation_retention_days:
                cutoff = st.clock() - timedelta(days=s.attestation_retention_days)
                steps.append(("attestation records", st.store.prune_attestations, (cutoff,)))
            if fleet is not None:
                steps += [("certificates", fleet.fleet.prune_certificates, (st.clock(),)),
                          ("stale hosts", fleet.mark_stale, ())]
            for name, step, args in steps:
                try:
                    done = await run_in_threadpool(step, *args)
                except Exception:  # keep serving; readyz reports the database
                    log.exception("housekeeping failed", extra={"step": name})
                    continue
                if not done:
                    continue
                if name == "stale hosts":
                    log.warning("hosts stale", extra={"hosts": done})
                else:
                    log.info(f"pruned {name}", extra={"count": done})

        async def housekeeping():
            while True:
                await asyncio.sleep(60)
                await housekeep()

        app.state.housekeep = housekeep
        task = asyncio.create_task(housekeeping())
        checkpointer = _Checkpointer(st.store)
        try:
            yield
        finally:
            app.state.ready = False
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            checkpointer.stop()
            st.store.close()
            log.info("shut down")

    app = FastAPI(title="attestd", version=__version__, lifespan=lifespan,
                  description="Self-hosted remote attestation service (Azure Attestation-shaped API). "
                              "Errors are RFC 9457 problem details with a stable `code` and Azure's "
                              "`error: {code, message}`.")
    app.state.attestd = st
    app.state.ready = False
    install_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=st.metrics, max_body_bytes=s.max_body_bytes)

    def admin(request: Request, t: str) -> Principal:
        return require_tenant_admin(request, st.store, t)

    # -- health ----------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> dict[str, str]:
        if not app.state.ready:
            raise ApiError(503, "service.starting", "the service is starting or stopping")
        try:
            st.store.ping()
        except Exception as exc:  # noqa: BLE001 - any driver error means not ready
            raise ApiError(503, "store.unavailable", f"database unreachable: {type(exc).__name__}") from None
        return {"status": "ready"}

    @app.get("/metrics", tags=["health"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    def metrics() -> Response:
        return Response(generate_latest(st.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- tenants ---------------------------------------------------------------------------------
    @app.post("/tenants", tags=["tenants"], status_code=201)
    def create_tenant(request: Request, body: TenantCreate) -> dict[str, Any]:
        p = require_operator(request, st.store)
        tenant, token = st.tenants.create(body.name, body.mode, signer_pems=body.signers, actor=p.actor)
        return {"name": tenant.name, "mode": tenant.mode, "issuer": st.tenants.issuer(tenant.name),
                "adminToken": token}

    @app.get("/tenants/{t}", tags=["tenants"])
    def get_tenant(request: Request, t: str) -> dict[str, Any]:
        admin(request, t)
        tenant = st.tenants.get(t)
        now = st.clock()
        keyset = st.tenants.keyset(tenant)
        return {"name": tenant.name, "mode": tenant.mode, "issuer": st.tenants.issuer(t),
                "createdAt": tenant.created_at.isoformat(), "activeKid": keyset.active_signer(now).kid,
                "attestationTypes": list(ATTESTATION_TYPES)}

    @app.post("/tenants/{t}/tokens", tags=["tenants"], status_code=201)
    def create_admin_token(request: Request, t: str, label: str = Query("", max_length=100)) -> dict[str, str]:
        p = admin(request, t)
        st.tenants.get(t)
        return {"adminToken": st.store.add_token(t, scope="tenant", label=label, now=st.clock(), actor=p.actor,
                                                 randbytes=st.randbytes)}

    @app.post("/tenants/{t}/keys:rotate", tags=["tenants"])
    def rotate_keys(request: Request, t: str) -> dict[str, Any]:
        p = admin(request, t)
        keyset = st.tenants.rotate_key(st.tenants.get(t), actor=p.actor)
        return {"keys": [{"kid": k.kid, "activatesAt": k.activates_at.isoformat(),
                          "retiredAt": k.retired_at.isoformat() if k.retired_at else None} for k in keyset.keys]}

    # -- discovery -------------------------------------------------------------------------------
    @app.get("/tenants/{t}/.well-known/openid-configuration", tags=["tokens"])
    def discovery(t: str) -> JSONResponse:
        st.tenants.get(t)
        return JSONResponse(openid_configuration(st.tenants.issuer(t)), headers={"Cache-Control": "max-age=300"})

    @app.get("/tenants/{t}/certs", tags=["tokens"])
    def certs(t: str) -> JSONResponse:
        tenant = st.tenants.get(t)
        return JSONResponse(jwks(st.tenants.keyset(tenant), st.clock()), headers={"Cache-Control": "max-age=300"})

    # -- freshness -------------------------------------------------------------------------------
    @app.post("/tenants/{t}/challenge", tags=["attestation"], response_model=ChallengeResponse)
    async def challenge(t: str) -> JSONResponse:
        # every host asks before each attestation: no query (a tenant row read in the last two
        # seconds; issuing writes nothing) and no thread hand-off
        st.tenants.get(t, cached=True)
        nonce, expires = issue_nonce(st.store.sealer.nonce_key(t), t, now=st.clock(),
                                     ttl=timedelta(seconds=s.nonce_ttl_seconds), randbytes=st.randbytes)
        return JsonResponse({"nonce": nonce, "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})

    # -- attestation -----------------------------------------------------------------------------
    @app.post("/tenants/{t}/attest/Tpm", tags=["attestation"],
              responses={400: {"description": "malformed evidence (problem details naming the field)"},
                         403: {"description": "denied by the policy (problem names the rule and claim)"},
                         409: {"description": "nonce already used"},
                         422: {"description": "evidence did not verify"}})
    async def attest_tpm(request: Request, t: str, evidence: TpmEvidence) -> JSONResponse:
        started = time.perf_counter()
        try:
            return await run_attestation(request, st.inline_attestations, _attest_tpm, request, t, evidence)
        finally:
            st.metrics.attestation_latency.labels("tpm").observe(time.perf_counter() - started)

    def _count(outcome: str, reason: str) -> None:
        st.metrics.attestations.labels("tpm", outcome, reason).inc()

    def _attest_tpm(request: Request, t: str, evidence: TpmEvidence, *, ak_enrolled: bool = False,
                    baseline: dict | None = None, host_id: str | None = None, ima_state: Any = None,
                    results: list | None = None, fresh_policy: bool = False,
                    on_permit: Callable[[NewAttestation, Any], tuple[Callable[[Any], None], dict[str, Any]]] | None = None,
                    ) -> JSONResponse:
        """Attest ``evidence`` and record it. ``on_permit(record, result)``, called for a permit
        before anything is stored, returns more writes for the record's transaction and more
        members for the response (a fleet host's update and identity certificate)."""
        tenant = st.tenants.get(t, cached=True)
        now = st.clock()
        draft = evidence.draftPolicyForAttestation is not None
        try:
            # single use is enforced when the attestation is recorded (the nonce's row is inserted
            # in the same transaction, unique across replicas): no lookup before the work
            nonce = check_nonce(st.store.sealer.nonce_key(t), t, evidence.nonce, now=now)
            signer_cert = None
            if draft:
                admin(request, t)
                text, signer_cert = st.tenants.parse_policy_document(
                    tenant, evidence.draftPolicyForAttestation, field="draftPolicyForAttestation")
                policy_row = None
                p_hash = policy_hash(text)
            else:
                policy_row = st.tenants.current_policy(t, "Tpm", cached=not fresh_policy)
                text = policy_row.text
                p_hash = policy_row.policy_hash
                if policy_row.signer_cert_pem:
                    signer_cert = x509.load_pem_x509_certificate(policy_row.signer_cert_pem.encode())
            policy = compile_policy(text)
        except AttestdError as exc:
            _count("error", exc.code)
            raise
        record = NewAttestation(id=str(uuid.UUID(bytes=st.randbytes(16), version=4)), tenant_name=t, created_at=now,
                             attestation_type="Tpm", evidence=evidence.model_dump(exclude_none=True), draft=draft,
                             policy_version_id=policy_row.id if policy_row else None, policy_hash=p_hash,
                             nonce_id=nonce.nonce_id, host_id=host_id)
        try:
            result = pipeline.run_tpm(evidence, nonce, policy, now=now, ak_enrolled=ak_enrolled, baseline=baseline,
                                      ima_state=ima_state, log_cache=st.log_cache)
            if results is not None:
                results.append(result)
        except (EvidenceError, VerificationError) as exc:
            record.outcome, record.error_code, record.explanation = "error", exc.code, str(exc)
            st.store.record_attestation(record, consume_nonce=None)
            _count("error", exc.code)
            raise
        decision = result.decision
        record.claims = result.claims
        record.trace = [entry.to_dict() for entry in decision.trace]  # JSON types already
        record.explanation = decision.explanation
        token = None
        if decision.permitted:
            keyset = st.tenants.keyset(tenant)
            props = decision.properties or {}
            lifetime = timedelta(seconds=s.token_lifetime_seconds)
            if props.get("report_validity_in_minutes"):
                lifetime = min(lifetime, timedelta(minutes=int(props["report_validity_in_minutes"])))
            lifetime = min(lifetime, keyset.policy.max_token_lifetime)
            try:
                token = issue_token(
                    decision.issued_claims, signer=keyset.active_signer(now), issuer=st.tenants.issuer(t), now=now,
                    lifetime=lifetime, attestation_type="tpm", policy_hash=p_hash, nonce=evidence.nonce,
                    policy_signer=policy_signer_jwk(signer_cert) if signer_cert is not None else None,
                    runtime=evidence.runtime_json(), draft=draft, include_x5c=not props.get("omit_x5c", False),
                    max_lifetime=keyset.policy.max_token_lifetime)
            except TokenIssueError as exc:  # the policy issued something a token cannot carry
                _count("error", exc.code)
                raise ApiError(422, exc.code, exc.message, field="policy", details=exc.details) from None
            record.outcome = "permit"
            record.issued_claims = pipeline.jsonable(decision.issued_claims)
            record.token_jti = _jti(token)
        else:
            record.outcome = "deny"
        also, extra = on_permit(record, result) if token is not None and on_permit is not None else (None, {})
        try:
            st.store.record_attestation(record, consume_nonce=(nonce.nonce_id, nonce.expires_at),
                                        policy_version=policy_row.version if policy_row is not None else None,
                                        also=also)
        except PolicyChanged:
            if fresh_policy:  # changed again in the moment since it was read: the client retries
                _count("error", "policy.changed")
                raise ApiError(409, "policy.changed", "the policy changed during the attestation; retry",
                               field="policy") from None
            if results:
                results.pop()
            return _attest_tpm(request, t, evidence, ak_enrolled=ak_enrolled, baseline=baseline, host_id=host_id,
                               ima_state=ima_state, results=results, fresh_policy=True, on_permit=on_permit)
        except Conflict as exc:
            _count("error", exc.code)
            raise ApiError(409, exc.code, exc.message, field="nonce") from None
        if token is None:
            _count("deny", pipeline.denial_reason(decision))
            raise pipeline.denial_problem(decision, attestation_id=record.id, policy_hash=p_hash)
        _count("permit", "ok")
        log.info("attestation permitted", extra={"tenant": t, "attestation_id": record.id, "jti": record.token_jti,
                                                 "draft": draft})
        return JsonResponse({"token": token, **extra}, headers={"x-attestd-attestation-id": record.id})

    # -- policies --------------------------------------------------------------------------------
    @app.get("/tenants/{t}/policies/{attestation_type}", tags=["policies"])
    def get_policy(request: Request, t: str, attestation_type: str) -> JSONResponse:
        admin(request, t)
        st.tenants.get(t)
        return _policy_response(st.tenants.current_policy(t, canonical_type(attestation_type)))

    @app.put("/tenants/{t}/policies/{attestation_type}", tags=["policies"], openapi_extra=_RAW_BODY)
    async def put_policy(request: Request, t: str, attestation_type: str) -> JSONResponse:
        p = await run_in_threadpool(admin, request, t)
        kind = canonical_type(attestation_type)
        body = await request.body()
        tenant = await run_in_threadpool(st.tenants.get, t)
        row = await run_in_threadpool(lambda: st.tenants.set_policy(tenant, kind, _policy_body(request, body),
                                                                     actor=p.actor))
        return _policy_response(row, "Updated")

    @app.post("/tenants/{t}/policies/{attestation_type}:reset", tags=["policies"])
    async def reset_policy(request: Request, t: str, attestation_type: str) -> JSONResponse:
        p = await run_in_threadpool(admin, request, t)
        kind = canonical_type(attestation_type)
        body = await request.body()
        tenant = await run_in_threadpool(st.tenants.get, t)
        row = await run_in_threadpool(lambda: st.tenants.reset_policy(tenant, kind, body, actor=p.actor))
        return _policy_response(row, "Removed")

    @app.post("/tenants/{t}/policies/{attestation_type}:test", tags=["policies"], openapi_extra=_RAW_BODY)
    async def test_policy(request: Request, t: str, attestation_type: str,
                          last: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        """What would this candidate policy have decided for the last N attestations? Nothing is
        activated: the body (policy text or JWS) is checked as a PUT would check it."""
        from attestd.service.audit import evaluate_candidate

        await run_in_threadpool(admin, request, t)
        kind = canonical_type(attestation_type)
        if kind != "Tpm":
            raise ApiError(400, "policy.test_type", "candidate evaluation is available for Tpm policies",
                           field="attestationType")
        body = await request.body()
        tenant = await run_in_threadpool(st.tenants.get, t)

        def run() -> dict[str, Any]:
            from attestd.service.tenants import _text

            text, _ = st.tenants.parse_policy_document(tenant, _text(body, "policy"), field="policy")
            return evaluate_candidate(st, t, text, last=last)

        return await run_in_threadpool(run)

    @app.get("/tenants/{t}/policies/{attestation_type}/history", tags=["policies"])
    def policy_history(request: Request, t: str, attestation_type: str) -> dict[str, Any]:
        admin(request, t)
        st.tenants.get(t)
        rows = st.store.policy_history(t, canonical_type(attestation_type))
        return {"versions": [{k: v for k, v in _policy_json(r).items() if k not in ("policy", "policyToken")}
                             for r in rows]}

    # -- policy signers --------------------------------------------------------------------------
    @app.get("/tenants/{t}/certificates", tags=["policies"])
    def list_certificates(request: Request, t: str) -> dict[str, Any]:
        admin(request, t)
        st.tenants.get(t)
        return {"certificates": [{"fingerprint": r.fingerprint, "certificate": r.cert_pem,
                                  "addedAt": r.added_at.isoformat(), "addedBy": r.added_by}
                                 for r in st.store.list_signers(t)]}

    async def _signer_change(request: Request, t: str, add: bool) -> dict[str, Any]:
        p = await run_in_threadpool(admin, request, t)
        body = await request.body()
        tenant = await run_in_threadpool(st.tenants.get, t)
        cert, changed = await run_in_threadpool(lambda: st.tenants.change_signer(tenant, body, add=add, actor=p.actor))
        return {"fingerprint": fingerprint(cert), "subject": cert.subject.rfc4514_string(),
                "result": ("Added" if add else "Removed") if changed else "Unchanged"}

    @app.post("/tenants/{t}/certificates:add", tags=["policies"], openapi_extra=_RAW_BODY)
    async def add_certificate(request: Request, t: str) -> dict[str, Any]:
        return await _signer_change(request, t, True)

    @app.post("/tenants/{t}/certificates:remove", tags=["policies"], openapi_extra=_RAW_BODY)
    async def remove_certificate(request: Request, t: str) -> dict[str, Any]:
        return await _signer_change(request, t, False)

    # -- audit -----------------------------------------------------------------------------------
    @app.get("/tenants/{t}/attestations", tags=["audit"])
    def list_attestations(request: Request, t: str, limit: int = Query(50, ge=1, le=500),
                          before: datetime | None = Query(None)) -> dict[str, Any]:
        admin(request, t)
        st.tenants.get(t)
        if before is not None and before.tzinfo is None:
            before = before.replace(tzinfo=UTC)
        rows = st.store.list_attestations(t, limit=limit, before=before)
        return {"attestations": [_attestation_json(a, full=False) for a in rows]}

    @app.get("/tenants/{t}/attestations/{attestation_id}", tags=["audit"])
    def get_attestation(request: Request, t: str, attestation_id: str) -> dict[str, Any]:
        admin(request, t)
        row = st.store.get_attestation(attestation_id, tenant=t)
        if row is None:
            raise ApiError(404, "attestation.not_found", f"no attestation {attestation_id!r} in tenant {t!r}",
                           field="attestationId")
        return _attestation_json(row, full=True)

    @app.get("/tenants/{t}/audit", tags=["audit"])
    def audit_events(request: Request, t: str, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        admin(request, t)
        st.tenants.get(t)
        return {"events": [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                            "details": e.details} for e in st.store.list_events(t, limit=limit)]}

    from attestd.service.fleet import register_fleet_routes
    from attestd.service.tee_routes import register_tee_routes

    register_tee_routes(app, st, admin=admin)

    app.state.fleet = register_fleet_routes(app, st, admin=admin, attest=_attest_tpm)
    _install_hot_routes(app, HOT_ROUTES)
    return app


def warm_up(st: ServiceState, fleet: Any = None) -> None:
    """Load what a worker's first attestations would: the policy language's parser (≈ 150 ms to
    build), the default tenant's key set, its current TPM policy compiled, its host CA. Without it,
    the first requests after a (rolling) restart queue behind ≈ 200 ms of set-up - in the fleet
    benchmark's open loop, the whole p99. Nothing here is needed: a failure is logged, not fatal."""
    try:
        name = st.settings.default_tenant
        tenant = st.tenants.get(name, cached=True)
        st.tenants.keyset(tenant)
        compile_policy(st.tenants.current_policy(name, "Tpm", cached=True).text)
        if fleet is not None and fleet.fleet.get_ca(name) is not None:
            fleet.ca(name)
    except Exception:  # noqa: BLE001 - a tenant removed or renamed: the parser alone
        log.warning("warm-up incomplete", exc_info=True)
        compile_policy(builtin.text("linux-secure-boot"))


#: what every host calls each interval: matched before the other routes (a router tries its
#: routes in order, one regular expression each; no other route matches these paths)
HOT_ROUTES = (("POST", "/tenants/{t}/challenge"), ("POST", "/tenants/{t}/hosts/{h}/attest"),
              ("POST", "/tenants/{t}/attest/Tpm"))


def _install_hot_routes(app: FastAPI, hot: tuple[tuple[str, str], ...]) -> None:
    """Put the ``hot`` routes first and give them the direct handler (:mod:`.hotpath`)."""
    routes = app.router.routes
    first = [r for key in hot for r in routes
             if (key[0] in (getattr(r, "methods", None) or ())) and getattr(r, "path", None) == key[1]]
    if len(first) != len(hot):
        raise RuntimeError("a hot route is missing")
    for route in first:
        if not lean(route):
            raise RuntimeError(f"{route.path}: not a shape the direct handler takes")
    routes[:] = first + [r for r in routes if r not in first]


def _policy_body(request: Request, body: bytes) -> bytes:
    """A policy arrives as text/plain or application/jose (the body is the document), or as JSON
    ``{"policy": "..."}``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise ApiError(400, "request.invalid_json", "the body is not JSON", field="body") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("policy"), str):
            raise ApiError(400, "policy.invalid_request", 'JSON bodies are {"policy": "<text or JWS>"}',
                           field="policy")
        return doc["policy"].encode("utf-8", "surrogatepass")
    return body
