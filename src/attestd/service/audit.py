"""``attestd audit reverify``: re-run a stored attestation and compare the decision.

The nonce was consumed when the attestation was recorded, so reverification checks the nonce's
MAC (it was issued by this tenant), that it had not expired when the attestation was recorded,
that it is the nonce the record consumed, and that the consumed-nonce table still holds it (while
its expiry has not passed) - it never consumes it again. The evidence is then verified again and
the recorded policy version evaluated against the claims; the result must match the recorded
outcome, error code and issued claims.
"""

from __future__ import annotations

from typing import Any

from attestd.errors import AttestdError
from attestd.policy import compile_policy
from attestd.service import attest as pipeline
from attestd.service.app import ServiceState
from attestd.service.evidence import TpmEvidence
from attestd.service.nonces import check_nonce
from attestd.service.problems import ApiError

__all__ = ["reverify"]


def reverify(state: ServiceState, attestation_id: str) -> dict[str, Any]:
    record = state.store.get_attestation(attestation_id)
    if record is None:
        raise ApiError(404, "attestation.not_found", f"no attestation {attestation_id!r}", field="id")
    stored = {"outcome": record.outcome, "errorCode": record.error_code, "issuedClaims": record.issued_claims,
              "policyHash": record.policy_hash}
    checks: dict[str, Any] = {}
    evidence = TpmEvidence.model_validate(record.evidence)
    again: dict[str, Any] = {"outcome": None, "errorCode": None, "issuedClaims": None,
                             "policyHash": record.policy_hash}
    try:
        nonce = check_nonce(state.store.sealer.nonce_key(record.tenant_name), record.tenant_name, evidence.nonce,
                            now=record.created_at)
        checks["nonceMac"] = True
        checks["nonceMatchesRecord"] = nonce.nonce_id == record.nonce_id
        if record.outcome in ("permit", "deny"):
            checks["nonceConsumed"] = (state.store.nonce_consumed(record.tenant_name, nonce.nonce_id)
                                       or nonce.expires_at <= state.clock())
        if record.draft:
            tenant = state.tenants.get(record.tenant_name)
            text, _ = state.tenants.parse_policy_document(tenant, evidence.draftPolicyForAttestation or "",
                                                          field="draftPolicyForAttestation")
        else:
            row = state.store.get_policy_version(record.policy_version_id) if record.policy_version_id else None
            if row is None:
                raise ApiError(404, "policy.version_missing", "the recorded policy version no longer exists")
            text = row.text
            checks["policyHash"] = row.policy_hash == record.policy_hash
        result = pipeline.run_tpm(evidence, nonce, compile_policy(text), now=record.created_at)
        again["outcome"] = "permit" if result.decision.permitted else "deny"
        if result.decision.permitted:
            again["issuedClaims"] = pipeline.jsonable(result.decision.issued_claims)
        checks["claims"] = result.claims == record.claims if record.claims is not None else None
    except AttestdError as exc:
        again["outcome"], again["errorCode"] = "error", exc.code
    same = (again["outcome"] == stored["outcome"] and again["errorCode"] == stored["errorCode"]
            and again["issuedClaims"] == stored["issuedClaims"]
            and all(v is not False for v in checks.values()))
    return {"id": record.id, "tenant": record.tenant_name, "createdAt": record.created_at.isoformat(),
            "same": same, "stored": stored, "reverified": again, "checks": checks}
