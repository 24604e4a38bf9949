"""The fleet: enrollment with credential activation, host attestation with identity certificates,
quarantine and incidents, remediation and rejoin, webhooks. Routes (see docs/fleet.md):

==========================================================  =====================================
``POST /tenants/{t}/hosts:enroll`` (admin)                   EK (+ certificate) and AK -> host id and
                                                             a credential only that TPM can activate
``POST /tenants/{t}/hosts/{h}:activate`` (admin)             the activated secret -> the AK is trusted
``POST /tenants/{t}/hosts/{h}/attest``                       TPM evidence quoted by the enrolled AK
                                                             (+ an identity key certified by it) ->
                                                             token and identity certificate; failure
                                                             -> quarantine, incident, revocation
``GET /tenants/{t}/hosts``, ``GET .../hosts/{h}`` (admin)    state (``stale`` when overdue), history
``POST .../hosts/{h}:remediate`` / ``:retire`` (admin)       lifecycle
``PUT .../hosts/{h}/baseline`` (admin)                       the attestd-baseline/1 the host must match
``GET /tenants/{t}/incidents[/{id}]`` (admin)                what failed, in plain words
``GET /tenants/{t}/ca.pem``, ``GET /tenants/{t}/crl``        CA certificate, CRL (DER)
``POST /tenants/{t}/webhooks``, ``GET .../webhooks/deliveries``  signed event notifications
==========================================================  =====================================

States: ``enrolling`` -> ``trusted`` (first successful attestation after activation) <-> ``stale``
(missed its interval by ``stale_margin``; attesting again makes it trusted) and <->
``quarantined`` (any verification failure, policy denial or baseline difference) -> ``remediating``
(an operator's ``:remediate``) -> ``trusted`` (the next successful attestation); ``retired`` is final.
A quarantined host gets no token until it has been remediated and attests cleanly.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from attestd.errors import AttestdError, EvidenceError, VerificationError
from attestd.pki.ca import build_crl, create_ca, dump_ca_key, issue_host_certificate, load_ca_key
from attestd.service.dispatch import run_attestation
from attestd.service.evidence import TpmEvidence, decode_b64
from attestd.service.hotpath import JsonResponse
from attestd.service.problems import ApiError
from attestd.store.fleet import FleetStore
from attestd.store.models import Host, HostView, Incident, NewCertificate
from attestd.tpm import (
    check_ak_attributes,
    load_ek_certificate,
    load_signing_key,
    parse_attest,
    parse_public_any,
    verify_certify,
    verify_ek_chain,
)
from attestd.tpm.credential import make_credential
from attestd.tpm.ekcert import check_ek_matches, load_certificates
from attestd.tpm.seal import seal_to_ek

__all__ = ["WEBHOOK_EVENTS", "FleetService", "register_fleet_routes"]

log = logging.getLogger("attestd.fleet")
WEBHOOK_EVENTS = ("quarantine", "remediation", "rejoin", "stale", "enroll", "retire")
_ACTIVATION_TTL = _dt.timedelta(minutes=10)
_MAX_ATTEMPTS = 8


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("", max_length=255, description="the host's name (free text)")
    ekPublic: str = Field(..., min_length=4, max_length=4096, description="EK TPM2B_PUBLIC, base64")
    ekCertificate: str | None = Field(None, max_length=16384, description="EK certificate as read from NV, base64")
    akPublic: str = Field(..., min_length=4, max_length=4096, description="AK TPM2B_PUBLIC, base64")
    intervalSeconds: int = Field(300, ge=10, le=86400, description="how often the host attests")


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: str = Field(..., min_length=4, max_length=256, description="the secret ActivateCredential returned, base64")


class IdentityProof(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public: str = Field(..., max_length=4096, description="the identity key's TPM2B_PUBLIC, base64")
    certifyInfo: str = Field(..., max_length=4096, description="TPM2_Certify TPMS_ATTEST by the AK over the nonce")
    signature: str = Field(..., max_length=2048, description="its TPMT_SIGNATURE")


class HostEvidence(TpmEvidence):
    """TPM evidence of an enrolled host, optionally with an identity key to certify.

    ``imaFirstIndex`` > 0: ``imaLog`` holds only the entries from that index on, continuing the IMA
    state the host's previous attestation ended at (the answer's ``imaPosition``)."""

    model_config = ConfigDict(extra="forbid", title="HostEvidence")
    identity: IdentityProof | None = None
    imaFirstIndex: int = Field(0, ge=0, le=10_000_000)


class SecretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(..., min_length=4, max_length=256, description="the secret, base64 (1-128 bytes)")


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., min_length=8, max_length=2000, pattern=r"^https?://")
    events: list[str] = Field(default_factory=lambda: list(WEBHOOK_EVENTS))


def _b64(value: str, field: str) -> bytes:
    try:
        data = decode_b64(value)
    except ValueError as exc:
        raise EvidenceError("request.base64", f"{field}: {exc}", field=field) from None
    if not data:
        raise EvidenceError("request.base64", f"{field} is empty", field=field)
    return data


class Notifier:
    """Delivers queued webhook events: HMAC-SHA256 signed, retried with exponential backoff and
    jitter, every attempt recorded. ``X-Attestd-Signature: t=<unix>,v1=<hex HMAC(secret, t + "." + body)>``."""

    def __init__(self, fleet: FleetStore, clock: Callable[[], _dt.datetime]) -> None:
        self.fleet, self.clock = fleet, clock
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def kick(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="attestd-webhooks", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=5.0) as client:
            while True:
                self._wake.wait(1.0)
                self._wake.clear()
                try:
                    self.deliver_due(client)
                except Exception:  # keep delivering; the error is in each delivery's record
                    log.exception("webhook delivery loop")

    def deliver_due(self, client) -> int:
        now = _dt.datetime.now(_dt.UTC)
        done = 0
        for delivery, hook in self.fleet.due_deliveries(now):
            body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
            ts = str(int(time.time()))
            mac = hmac.new(self.fleet.webhook_secret(hook), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json", "X-Attestd-Event": delivery.event,
                       "X-Attestd-Delivery": str(delivery.id), "X-Attestd-Signature": f"t={ts},v1={mac}"}
            attempts = delivery.attempts + 1
            try:
                r = client.post(hook.url, content=body, headers=headers)
                ok, error = 200 <= r.status_code < 300, f"HTTP {r.status_code}"
            except Exception as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if ok:
                self.fleet.record_delivery(delivery.id, status="delivered", attempts=attempts, delivered_at=now,
                                           last_error=None)
                done += 1
            else:
                delay = min(2 ** attempts, 300) * (1 + random.random() / 4)
                self.fleet.record_delivery(
                    delivery.id, attempts=attempts, last_error=error,
                    status="failed" if attempts >= _MAX_ATTEMPTS else "pending",
                    next_attempt_at=now + _dt.timedelta(seconds=delay))
        return done


class FleetService:
    def __init__(self, st: Any) -> None:
        self.st = st
        self.fleet = FleetStore(st.store)
        self.notifier = Notifier(self.fleet, st.clock)
        self._cas: dict[str, tuple[Any, x509.Certificate]] = {}
        self._ca_pems: dict[str, str] = {}

    # -- CA --------------------------------------------------------------------------------------
    def ca(self, tenant: str):
        """The tenant CA (key, certificate), created on first use and kept in memory."""
        cached = self._cas.get(tenant)
        if cached is not None:
            return cached
        row = self.fleet.get_ca(tenant)
        if row is None:
            key, cert = create_ca(tenant, now=self.st.clock())
            row = self.fleet.add_ca(tenant, dump_ca_key(key), cert.public_bytes(serialization.Encoding.DER),
                                    now=self.st.clock())
        pair = (load_ca_key(self.fleet.open_ca_key(row)), x509.load_der_x509_certificate(row.cert_der))
        self._cas[tenant] = pair
        return pair

    # -- events ----------------------------------------------------------------------------------
    def notify(self, tenant: str, event: str, host: Host | HostView, **extra: Any) -> None:
        hooks = [h for h in self.fleet.webhooks(tenant) if event in h.events]
        if not hooks:
            return
        now = self.st.clock()
        payload = {"event": event, "tenant": tenant, "hostId": host.id, "hostName": host.name,
                   "state": host.state, "at": now.isoformat(), **extra}
        for hook in hooks:
            self.fleet.enqueue(hook, event, payload, now=now)
        self.notifier.kick()

    # -- enrollment ------------------------------------------------------------------------------
    def enroll(self, tenant: str, body: EnrollRequest, actor: str) -> dict[str, Any]:
        ek_raw = _b64(body.ekPublic, "ekPublic")
        ak_raw = _b64(body.akPublic, "akPublic")
        try:
            ek = parse_public_any(ek_raw)
        except EvidenceError as exc:
            raise EvidenceError(exc.code, exc.message, field="ekPublic", offset=exc.offset) from None
        try:
            ak = parse_public_any(ak_raw)
            check_ak_attributes(ak)
        except AttestdError as exc:
            raise type(exc)(exc.code, exc.message, field="akPublic", offset=exc.offset) from None
        cert_der = None
        roots_file = self.st.settings.ek_roots_file
        roots = load_certificates([Path(roots_file).read_bytes()], field="ekRoots") if roots_file else []
        if body.ekCertificate:
            cert_der = _b64(body.ekCertificate, "ekCertificate")
            cert = load_ek_certificate(cert_der)
            check_ek_matches(cert, ek.public_key())
            if roots:
                verify_ek_chain(cert, roots=[c for c in roots if c.subject == c.issuer],
                                intermediates=[c for c in roots if c.subject != c.issuer], at=self.st.clock())
        elif roots:
            raise VerificationError("ek.certificate_required", "this service requires an EK certificate",
                                    field="ekCertificate")
        secret = secrets.token_bytes(32)
        cred = make_credential(ek, ak.name, secret)
        now = self.st.clock()
        host = self.fleet.enroll(tenant, {
            "name": body.name, "ek_public": ek_raw, "ek_fingerprint": hashlib.sha256(ek.name).hexdigest(),
            "ek_certificate": cert_der, "ak_public": ak_raw, "ak_name": ak.name,
            "activation_hash": hashlib.sha256(secret).hexdigest(), "activation_expires_at": now + _ACTIVATION_TTL,
            "updated_at": now, "interval_seconds": body.intervalSeconds}, now=now, actor=actor)
        self.notify(tenant, "enroll", host)
        return {"hostId": host.id, "state": host.state,
                "credential": {"idObject": base64.b64encode(cred.id_object).decode(),
                               "encryptedSecret": base64.b64encode(cred.encrypted_secret).decode()}}

    def activate(self, tenant: str, host_id: str, body: ActivateRequest) -> dict[str, Any]:
        host = self.fleet.get_host(tenant, host_id)
        now = self.st.clock()
        if host.activation_hash is None:
            raise ApiError(409, "host.activation_used", "this host's credential was already activated; enroll again",
                           field="secret")
        if host.activation_expires_at is None or now > host.activation_expires_at:
            raise ApiError(410, "host.activation_expired", "the credential expired; enroll again", field="secret")
        digest = hashlib.sha256(_b64(body.secret, "secret")).hexdigest()
        if not hmac.compare_digest(digest, host.activation_hash):
            raise VerificationError("host.activation_failed",
                                    "the secret is not the credential's: the AK is not in the TPM holding the EK",
                                    field="secret")
        self.fleet.update_host(host.id, now=now, activation_hash=None, activation_expires_at=None)
        return {"hostId": host.id, "state": host.state, "akActivated": True}

    # -- attestation -----------------------------------------------------------------------------
    def attest(self, request: Request, tenant: str, host_id: str, evidence: HostEvidence,
               attest: Callable[..., JSONResponse]) -> JSONResponse:
        host, secrets_ = self.fleet.host_and_secrets(tenant, host_id)
        if host.state == "retired":
            raise ApiError(410, "host.retired", "this host is retired", field="hostId")
        if host.activation_hash is not None or host.ak_name is None:
            raise ApiError(409, "host.not_activated", "activate the enrollment credential first", field="hostId")
        try:
            sent = load_signing_key(evidence.ak_bytes())
        except EvidenceError as exc:
            raise EvidenceError(exc.code, exc.message, field="ak", offset=exc.offset) from None
        if sent.name is None or sent.name != host.ak_name:
            raise VerificationError("host.ak_mismatch", "the evidence's AK is not the AK this host enrolled", field="ak")
        # the identity proof first: a key the AK did not certify is refused (400/422), and is not
        # a reason to quarantine the host (it says nothing about its boot)
        identity = self._identity_key(host, evidence) if evidence.identity is not None else None
        # HostEvidence is a TpmEvidence whose members were validated by the same validators
        base = TpmEvidence.model_construct(**{k: getattr(evidence, k) for k in TpmEvidence.model_fields
                                              if getattr(evidence, k) is not None})
        ima_state = self._ima_continuation(host, evidence)
        now = self.st.clock()
        on_permit = None
        if host.state == "trusted":
            # the steady state: the host's update, its new certificate and the attestation record
            # are written in one transaction
            def on_permit(record: Any, result: Any) -> tuple[Callable[[Any], None], dict[str, Any]]:
                values, cert, extra = self._renewal(tenant, host, evidence, base, identity, result, record.id, now,
                                                    secrets_)
                return self.fleet.attested_writes(host.id, now=now, certificate=cert, **values), extra

        results: list = []
        try:
            response = attest(request, tenant, base, ak_enrolled=True, baseline=host.baseline, host_id=host.id,
                              ima_state=ima_state, results=results, on_permit=on_permit)
        except AttestdError as exc:
            if isinstance(exc, VerificationError) or exc.code == "attestation.denied":
                self._quarantine(host, exc)
            raise
        if on_permit is not None:
            return response
        attestation_id = response.headers.get("x-attestd-attestation-id")
        if host.state == "quarantined":
            self.fleet.update_host(host.id, now=now, last_attested_at=now)
            raise ApiError(403, "host.quarantined",
                           "the host is quarantined: an operator must remediate it before it can rejoin",
                           field="hostId", details={"attestationId": attestation_id})
        reason = {"enrolling": "first attestation", "remediating": "rejoin", "stale": "attested again"}[host.state]
        values, cert, extra = self._renewal(tenant, host, evidence, base, identity, results[0] if results else None,
                                            attestation_id, now, secrets_)
        host = self.fleet.transition(host.id, "trusted", now=now, reason=reason, actor="attestation",
                                     details={"attestationId": attestation_id}, **values)
        if cert is not None:
            self.fleet.add_certificate(cert, now=now)
        if reason == "rejoin":
            self.fleet.close_incidents(host.id, now=now)
            self.notify(tenant, "rejoin", host, attestationId=attestation_id)
        doc = json.loads(response.body)
        doc.update(extra, state=host.state)
        return JsonResponse(doc, headers={"x-attestd-attestation-id": attestation_id or ""})

    def _ima_continuation(self, host: Host | HostView, evidence: HostEvidence):
        """The stored IMA state an incremental list continues, or None for a whole list. A reboot
        (the quote's resetCount moved on) or a position the service does not hold is
        ``ima.state_reset`` (409): the agent sends its whole list - not a reason to quarantine."""
        from attestd.ima import ReplayState

        if evidence.imaFirstIndex == 0 or evidence.imaLog is None:
            return None
        stored = host.ima_state or {}
        reset = parse_attest(evidence.quote_list()[0][0]).clock_info.reset_count
        state = ReplayState.from_json(stored["replay"]) if stored.get("replay") else None
        if state is None or stored.get("resetCount") != reset or state.position != evidence.imaFirstIndex:
            raise ApiError(409, "ima.state_reset",
                           "send the whole IMA list: the service holds no IMA state at that position for this boot",
                           field="imaFirstIndex",
                           details={"position": state.position if state is not None and stored.get("resetCount") == reset
                                    else 0})
        return state

    def _renewal(self, tenant: str, host: Host | HostView, evidence: HostEvidence, base: TpmEvidence, identity: Any,
                 result: Any, attestation_id: str | None, now: _dt.datetime, secrets_: list[tuple[str, bytes]]
                 ) -> tuple[dict[str, Any], NewCertificate | None, dict[str, Any]]:
        """What a successful attestation gives the host: (its columns to update, its new identity
        certificate or None, the response's members besides the token)."""
        values: dict[str, Any] = {"last_attested_at": now, "last_good_attestation_id": attestation_id}
        extra: dict[str, Any] = {"hostId": host.id, "state": "trusted"}
        if result is not None and result.ima_state is not None:
            reset = parse_attest(evidence.quote_list()[0][0]).clock_info.reset_count
            values["ima_state"] = {"replay": result.ima_state.to_json(), "resetCount": reset}
            extra["imaPosition"] = result.ima_state.position
        cert = None
        if identity is not None:
            public, key = identity
            cert, pem = self._issue_certificate(tenant, host, key, now)
            values["identity_public"] = public
            extra.update(pem)
        sealed = self._sealed_secrets(host, base, secrets_)
        if sealed:
            extra["sealedSecrets"] = sealed
        return values, cert, extra

    def _identity_key(self, host: Host | HostView, evidence: HostEvidence) -> tuple[bytes, Any]:
        """(TPMT_PUBLIC, key) of the identity key, once its TPM2_Certify by the host's AK over this
        attestation's nonce verified."""
        proof = evidence.identity
        public = _b64(proof.public, "identity.public")
        nonce = decode_b64(evidence.nonce)
        try:
            key = load_signing_key(public)
            verify_certify(host.ak_public, _b64(proof.certifyInfo, "identity.certifyInfo"),
                           _b64(proof.signature, "identity.signature"), nonce=nonce, certified=key)
        except AttestdError as exc:
            raise type(exc)(exc.code, exc.message, field="identity", offset=exc.offset) from None
        return public, key.key

    def _issue_certificate(self, tenant: str, host: Host | HostView, key: Any, now: _dt.datetime
                           ) -> tuple[NewCertificate, dict[str, str]]:
        ca_key, ca_cert = self.ca(tenant)
        cert = issue_host_certificate(ca_key, ca_cert, key, tenant=tenant, host_id=host.id, now=now,
                                      lifetime=_dt.timedelta(seconds=max(3 * host.interval_seconds, 3600)))
        row = NewCertificate(serial=format(cert.serial_number, "x"), tenant_name=tenant, host_id=host.id,
                              not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                              der=cert.public_bytes(serialization.Encoding.DER))
        return row, {"certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
                     "caCertificate": self._ca_pem(tenant, ca_cert)}

    def _ca_pem(self, tenant: str, ca_cert: x509.Certificate) -> str:
        pem = self._ca_pems.get(tenant)
        if pem is None:
            pem = self._ca_pems[tenant] = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
        return pem

    def _sealed_secrets(self, host: Host | HostView, evidence: TpmEvidence, secrets_: list[tuple[str, bytes]]
                        ) -> list[dict[str, Any]]:
        """The host's secrets, each sealed to its EK and to the PCR values this attestation just
        proved (the SHA-256 bank of the verified quote): openable only by that TPM in that state."""
        if not secrets_:
            return []
        pcrs = {"sha256": evidence.pcr_values().get("sha256", {})}
        if not pcrs["sha256"]:
            return []
        out = []
        for name, value in secrets_:
            blob = seal_to_ek(host.ek_public, value, pcrs)
            out.append({"name": name, **blob.to_json()})
        return out

    def _quarantine(self, host: Host | HostView, exc: AttestdError) -> None:
        now = self.st.clock()
        details = dict(exc.details or {})
        summary = exc.message
        if exc.code == "baseline.mismatch":
            diffs = details.get("differences", [])
            summary = "the boot differs from the baseline:\n" + "\n".join(d["message"] for d in diffs)
        incident = Incident(id=str(uuid.uuid4()), tenant_name=host.tenant_name, host_id=host.id, opened_at=now,
                            code=exc.code, summary=summary,
                            details={"error": exc.to_problem() if hasattr(exc, "to_problem") else {"code": exc.code},
                                     **({"differences": details["differences"]} if "differences" in details else {})},
                            attestation_id=details.get("attestationId"),
                            last_good_attestation_id=host.last_good_attestation_id)
        self.fleet.open_incident(incident)
        revoked = self.fleet.revoke_certificates(host.id, now=now)
        if host.state != "quarantined":
            host = self.fleet.transition(host.id, "quarantined", now=now, reason=exc.code, actor="attestation",
                                         details={"incidentId": incident.id}, last_attested_at=now)
            self.notify(host.tenant_name, "quarantine", host, incidentId=incident.id, code=exc.code, summary=summary)
        log.warning("host quarantined", extra={"tenant": host.tenant_name, "host": host.id, "code": exc.code,
                                               "incident": incident.id, "revoked": revoked})

    # -- operators -------------------------------------------------------------------------------
    def host_json(self, host: Host | HostView, *, history: bool = False) -> dict[str, Any]:
        out = {"hostId": host.id, "name": host.name, "state": host.state, "stale": host.state == "stale",
               "createdAt": host.created_at.isoformat(),
               "lastAttestedAt": host.last_attested_at.isoformat() if host.last_attested_at else None,
               "lastGoodAttestationId": host.last_good_attestation_id, "certificateSerial": host.cert_serial,
               "intervalSeconds": host.interval_seconds, "akActivated": host.activation_hash is None,
               "hasBaseline": host.baseline is not None, "ekFingerprint": host.ek_fingerprint}
        if history:
            out["history"] = [{"at": e.at.isoformat(), "from": e.from_state, "to": e.to_state, "reason": e.reason,
                               "actor": e.actor, "details": e.details} for e in self.fleet.history(host.id)]
            out["incidents"] = [self.incident_json(i) for i in self.fleet.list_incidents(host.tenant_name,
                                                                                        host_id=host.id)]
        return out

    @staticmethod
    def incident_json(i: Incident) -> dict[str, Any]:
        return {"incidentId": i.id, "hostId": i.host_id, "openedAt": i.opened_at.isoformat(),
                "closedAt": i.closed_at.isoformat() if i.closed_at else None, "code": i.code, "summary": i.summary,
                "details": i.details, "attestationId": i.attestation_id,
                "lastGoodAttestationId": i.last_good_attestation_id}

    def mark_stale(self) -> list[str]:
        """Trusted hosts that missed their interval by the configured margin become ``stale`` (a
        ``stale`` webhook); their next clean attestation makes them trusted again."""
        now = self.st.clock()
        margin = self.st.settings.stale_margin
        changed = []
        for host in self.fleet.overdue(now, margin):
            try:
                host = self.fleet.transition(host.id, "stale", now=now, reason="missed attestation", actor="service",
                                             details={"lastAttestedAt": host.last_attested_at.isoformat()},
                                             expect=("trusted",))
            except AttestdError:  # attested (or changed) meanwhile, perhaps at another replica
                continue
            self.notify(host.tenant_name, "stale", host, lastAttestedAt=host.last_attested_at.isoformat())
            changed.append(host.id)
        return changed

    def remediate(self, tenant: str, host_id: str, actor: str) -> dict[str, Any]:
        self.fleet.get_host(tenant, host_id)
        host = self.fleet.transition(host_id, "remediating", now=self.st.clock(), reason="remediate", actor=actor,
                                     expect=("quarantined",))
        self.notify(tenant, "remediation", host)
        return self.host_json(host)

    def retire(self, tenant: str, host_id: str, actor: str) -> dict[str, Any]:
        self.fleet.get_host(tenant, host_id)
        now = self.st.clock()
        host = self.fleet.transition(host_id, "retired", now=now, reason="retire", actor=actor,
                                     expect=("enrolling", "trusted", "stale", "quarantined", "remediating"))
        self.fleet.revoke_certificates(host_id, now=now)
        self.notify(tenant, "retire", host)
        return self.host_json(host)

    def crl(self, tenant: str) -> bytes:
        ca_key, ca_cert = self.ca(tenant)
        now = self.st.clock()
        revoked = [(int(c.serial, 16), c.revoked_at) for c in self.fleet.revoked(tenant, now=now)]
        crl = build_crl(ca_key, ca_cert, revoked, now=now, number=self.fleet.next_crl_number(tenant))
        return crl.public_bytes(serialization.Encoding.DER)


def register_fleet_routes(app: FastAPI, st: Any, *, admin: Callable[[Request, str], Any],
                          attest: Callable[..., JSONResponse]) -> FleetService:
    svc = FleetService(st)
    tags = ["fleet"]

    @app.post("/tenants/{t}/hosts:enroll", tags=tags, status_code=201)
    def enroll_host(request: Request, t: str, body: EnrollRequest) -> dict[str, Any]:
        p = admin(request, t)
        st.tenants.get(t)
        return svc.enroll(t, body, p.actor)

    @app.post("/tenants/{t}/hosts/{h}:activate", tags=tags)
    def activate_host(request: Request, t: str, h: str, body: ActivateRequest) -> dict[str, Any]:
        admin(request, t)
        return svc.activate(t, h, body)

    @app.post("/tenants/{t}/hosts/{h}/attest", tags=tags,
              responses={403: {"description": "denied by the policy, or the host is quarantined"},
                         422: {"description": "evidence did not verify (the host is quarantined)"}})
    async def attest_host(request: Request, t: str, h: str, evidence: HostEvidence) -> JSONResponse:
        def run() -> JSONResponse:
            st.tenants.get(t, cached=True)
            return svc.attest(request, t, h, evidence, attest)

        return await run_attestation(request, st.inline_attestations, run)

    @app.get("/tenants/{t}/hosts", tags=tags)
    def list_hosts(request: Request, t: str, state: str | None = None) -> dict[str, Any]:
        admin(request, t)
        st.tenants.get(t)
        return {"hosts": [svc.host_json(hh) for hh in svc.fleet.list_hosts(t, state=state)]}

    @app.get("/tenants/{t}/hosts/{h}", tags=tags)
    def get_host(request: Request, t: str, h: str) -> dict[str, Any]:
        admin(request, t)
        return svc.host_json(svc.fleet.get_host(t, h), history=True)

    @app.post("/tenants/{t}/hosts/{h}:remediate", tags=tags)
    def remediate_host(request: Request, t: str, h: str) -> dict[str, Any]:
        p = admin(request, t)
        return svc.remediate(t, h, p.actor)

    @app.post("/tenants/{t}/hosts/{h}:retire", tags=tags)
    def retire_host(request: Request, t: str, h: str) -> dict[str, Any]:
        p = admin(request, t)
        return svc.retire(t, h, p.actor)

    @app.put("/tenants/{t}/hosts/{h}/baseline", tags=tags)
    def set_baseline(request: Request, t: str, h: str, body: dict[str, Any]) -> dict[str, Any]:
        from attestd.baseline import Baseline

        admin(request, t)
        svc.fleet.get_host(t, h)
        Baseline.from_json(body)  # baseline.invalid names the bad member
        host = svc.fleet.update_host(h, now=st.clock(), baseline=body)
        return svc.host_json(host)

    @app.put("/tenants/{t}/hosts/{h}/secrets/{name}", tags=tags)
    def set_host_secret(request: Request, t: str, h: str, name: str, body: SecretRequest) -> dict[str, Any]:
        """A secret released to the host after each successful attestation, sealed to its TPM and
        the attested PCR values (1-128 bytes, base64)."""
        admin(request, t)
        svc.fleet.get_host(t, h)
        value = _b64(body.value, "value")
        if len(value) > 128:
            raise EvidenceError("secret.size", "a sealed secret is at most 128 bytes", field="value")
        svc.fleet.set_secret(h, name, value, now=st.clock())
        return {"hostId": h, "name": name}

    @app.get("/tenants/{t}/incidents", tags=tags)
    def list_incidents(request: Request, t: str, host: str | None = None, open: bool = False) -> dict[str, Any]:
        admin(request, t)
        st.tenants.get(t)
        return {"incidents": [svc.incident_json(i) for i in svc.fleet.list_incidents(t, host_id=host, open_only=open)]}

    @app.get("/tenants/{t}/incidents/{i}", tags=tags)
    def get_incident(request: Request, t: str, i: str) -> dict[str, Any]:
        admin(request, t)
        return svc.incident_json(svc.fleet.get_incident(t, i))

    @app.get("/tenants/{t}/ca.pem", tags=tags, response_class=Response,
             responses={200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}}}})
    def ca_certificate(t: str) -> Response:
        st.tenants.get(t)
        _, cert = svc.ca(t)
        return Response(cert.public_bytes(serialization.Encoding.PEM), media_type="application/x-pem-file")

    @app.get("/tenants/{t}/crl", tags=tags, response_class=Response,
             responses={200: {"content": {"application/pkix-crl": {"schema": {"type": "string",
                                                                                "format": "binary"}}}}})
    def crl(t: str) -> Response:
        st.tenants.get(t)
        return Response(svc.crl(t), media_type="application/pkix-crl")

    @app.post("/tenants/{t}/webhooks", tags=tags, status_code=201)
    def add_webhook(request: Request, t: str, body: WebhookRequest) -> dict[str, Any]:
        admin(request, t)
        st.tenants.get(t)  # the operator token reaches any name: an unknown tenant is a 404, not a foreign-key 500
        unknown = [e for e in body.events if e not in WEBHOOK_EVENTS]
        if unknown:
            raise ApiError(400, "webhook.events", f"unknown events {unknown}; known: {list(WEBHOOK_EVENTS)}",
                           field="events")
        secret = secrets.token_bytes(32)
        hook = svc.fleet.add_webhook(t, body.url, secret, body.events, now=st.clock())
        return {"id": hook.id, "url": hook.url, "events": hook.events,
                "secret": base64.b64encode(secret).decode()}

    @app.get("/tenants/{t}/webhooks/deliveries", tags=tags)
    def deliveries(request: Request, t: str) -> dict[str, Any]:
        admin(request, t)
        st.tenants.get(t)
        return {"deliveries": [{"id": d.id, "event": d.event, "status": d.status, "attempts": d.attempts,
                                "lastError": d.last_error, "createdAt": d.created_at.isoformat(),
                                "deliveredAt": d.delivered_at.isoformat() if d.delivered_at else None}
                               for d in svc.fleet.deliveries(t)]}

    return svc
