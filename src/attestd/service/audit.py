"""``attestd audit reverify``: re-run a stored attestation and compare the decision.

The nonce was consumed when the attestation was recorded, so reverification checks the nonce's
MAC (it was issued by this tenant), that it had not expired when the attestation was recorded,
that it is the nonce the record consumed, and that the consumed-nonce table still holds it (while
its expiry has not passed) - it never consumes it again. The evidence is then verified again and
the recorded policy version evaluated against the claims; the result must match the recorded
outcome, error code and issued claims.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attestd.errors import AttestdError
from attestd.policy import compile_policy
from attestd.policy.evaluate import Decision, Policy
from attestd.service import attest as pipeline
from attestd.service.app import ServiceState
from attestd.service.evidence import TpmEvidence
from attestd.service.nonces import CheckedNonce, check_nonce
from attestd.service.problems import ApiError
from attestd.store import Attestation

__all__ = ["evaluate_candidate", "reverify", "reverify_record"]


def _enrolled(state: ServiceState, record, evidence: TpmEvidence) -> bool:
    """A fleet attestation's AK counts as validated if it is still the host's enrolled AK."""
    if not record.host_id:
        return False
    from attestd.store.fleet import FleetStore
    from attestd.tpm import parse_public_any

    try:
        host = FleetStore(state.store).get_host(record.tenant_name, record.host_id)
    except AttestdError:
        return False
    return parse_public_any(evidence.ak_bytes()).name == host.ak_name


def reverify(state: ServiceState, attestation_id: str) -> dict[str, Any]:
    record = state.store.get_attestation(attestation_id)
    if record is None:
        raise ApiError(404, "attestation.not_found", f"no attestation {attestation_id!r}", field="id")
    if record.attestation_type != "Tpm":  # SgxEnclave, OpenEnclave, SevSnpVm, TdxVm
        from attestd.service.tee_routes import reverify_tee

        return reverify_tee(state, record)
    evidence = TpmEvidence.model_validate(record.evidence)

    def run(nonce: CheckedNonce | None, policy: Policy) -> tuple[Decision, Any]:
        result = pipeline.run_tpm(evidence, nonce, policy, now=record.created_at,
                                  ak_enrolled=_enrolled(state, record, evidence))
        return result.decision, result.claims

    return reverify_record(state, record, parse=lambda: (evidence.nonce, evidence.draftPolicyForAttestation), run=run)


def reverify_record(state: ServiceState, record: Attestation, *,
                    parse: Callable[[], tuple[str | None, str | None]],
                    run: Callable[[CheckedNonce | None, Policy], tuple[Decision, Any]]) -> dict[str, Any]:
    """The reverification report of ``record`` of any type: ``parse()`` reads its stored request
    (nonce, draft policy), ``run(nonce, policy)`` verifies it again and evaluates the policy (the
    decision and the claims). The nonce is checked, never consumed; the recorded policy version is
    the one evaluated."""
    stored = {"outcome": record.outcome, "errorCode": record.error_code, "issuedClaims": record.issued_claims,
              "policyHash": record.policy_hash}
    checks: dict[str, Any] = {}
    again: dict[str, Any] = {"outcome": None, "errorCode": None, "issuedClaims": None,
                             "policyHash": record.policy_hash}
    try:
        nonce_text, draft_document = parse()
        nonce = None
        if nonce_text is not None:
            nonce = check_nonce(state.store.sealer.nonce_key(record.tenant_name), record.tenant_name, nonce_text,
                                now=record.created_at)
            checks["nonceMac"] = True
            checks["nonceMatchesRecord"] = nonce.nonce_id == record.nonce_id
            if record.outcome in ("permit", "deny"):
                checks["nonceConsumed"] = (state.store.nonce_consumed(record.tenant_name, nonce.nonce_id)
                                           or nonce.expires_at <= state.clock())
        if record.draft:
            tenant = state.tenants.get(record.tenant_name)
            text, _ = state.tenants.parse_policy_document(tenant, draft_document or "",
                                                          field="draftPolicyForAttestation")
        else:
            row = state.store.get_policy_version(record.policy_version_id) if record.policy_version_id else None
            if row is None and record.policy_version_id is None and record.policy_hash:
                # decided under a default that was never stored (version 0)
                row = state.tenants.current_policy(record.tenant_name, record.attestation_type)
                row = row if row.id is None and row.policy_hash == record.policy_hash else None
            if row is None:
                raise ApiError(404, "policy.version_missing", "the recorded policy version no longer exists")
            text = row.text
            checks["policyHash"] = row.policy_hash == record.policy_hash
        decision, claims = run(nonce, compile_policy(text))
        again["outcome"] = "permit" if decision.permitted else "deny"
        if decision.permitted:
            again["issuedClaims"] = pipeline.jsonable(dict(decision.issued_claims))
        checks["claims"] = claims == record.claims if record.claims is not None else None
    except AttestdError as exc:
        again["outcome"], again["errorCode"] = "error", exc.code
    same = (again["outcome"] == stored["outcome"] and again["errorCode"] == stored["errorCode"]
            and again["issuedClaims"] == stored["issuedClaims"]
            and all(v is not False for v in checks.values()))
    return {"id": record.id, "tenant": record.tenant_name, "createdAt": record.created_at.isoformat(),
            "same": same, "stored": stored, "reverified": again, "checks": checks}


def evaluate_candidate(state: ServiceState, tenant: str, text: str, *, last: int) -> dict[str, Any]:
    """What would ``text`` have decided for the tenant's last ``last`` TPM attestations? Each stored
    evidence is verified again (at its recorded time, its nonce checked but not consumed) and the
    candidate evaluated; the result lists every attestation whose outcome would change."""
    policy = compile_policy(text)
    rows = [r for r in state.store.list_attestations(tenant, limit=last, whole=True) if r.attestation_type == "Tpm"]
    items = []
    counts = {"permit": 0, "deny": 0, "error": 0}
    for record in rows:
        item: dict[str, Any] = {"id": record.id, "createdAt": record.created_at.isoformat(),
                                "recorded": record.outcome}
        try:
            evidence = TpmEvidence.model_validate(record.evidence)
            nonce = check_nonce(state.store.sealer.nonce_key(tenant), tenant, evidence.nonce, now=record.created_at)
            result = pipeline.run_tpm(evidence, nonce, policy, now=record.created_at,
                                      ak_enrolled=_enrolled(state, record, evidence))
            item["candidate"] = "permit" if result.decision.permitted else "deny"
            if not result.decision.permitted:
                item["explanation"] = result.decision.explanation
        except AttestdError as exc:
            item["candidate"], item["errorCode"] = "error", exc.code
        item["changed"] = item["candidate"] != record.outcome
        counts[item["candidate"]] += 1
        items.append(item)
    return {"policyHash": policy.hash, "evaluated": len(items), "wouldPermit": counts["permit"],
            "wouldDeny": counts["deny"], "errors": counts["error"],
            "changed": sum(1 for i in items if i["changed"]), "attestations": items}
