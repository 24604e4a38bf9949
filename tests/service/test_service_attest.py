"""TPM attestation end to end on the real app: swtpm PCRs replayed from a real QEMU Secure Boot
log, a quote over the service's nonce, verification by attestd.claims, policy, token, audit."""

from __future__ import annotations

import base64
import json

import pytest



from attestd.policy import builtin, policy_hash
from attestd.testing.swtpm import swtpm_available
from attestd.tokens import TokenVerificationError, verify_token

pytestmark = pytest.mark.skipif(not swtpm_available(), reason="swtpm/tpm2-tools not installed")

#: linux-secure-boot without its AK-certificate requirement (swtpm's AK has no certificate)
NO_AIK = "\n".join(line for line in builtin.text("linux-secure-boot").splitlines() if '"aikValidated"' not in line)
DENY_CMDLINE = '''version=1.2;
configurationrules { => issueproperty(type="required_pcr_mask", value=0x43FF); };
authorizationrules {
    ![type=="kernelCommandLine", issuer=="AttestationService", value=="this is not the command line"] => deny();
    => permit();
};
'''


@pytest.fixture(scope="module")
def booted():
    from service_tpm import BootedTPM

    b = BootedTPM("sb")
    yield b
    b.close()


def challenge(service, tenant="default") -> str:
    return service.client.post(f"/tenants/{tenant}/challenge").json()["nonce"]


def attest(service, doc, tenant="default", headers=None):
    return service.client.post(f"/tenants/{tenant}/attest/Tpm", json=doc, headers=headers or {})


def set_policy(service, text):
    r = service.client.put("/tenants/default/policies/Tpm", content=text, headers=service.admin)
    assert r.status_code == 200, r.text


def test_permit_token_audit_replay_reverify(service, booted):
    set_policy(service, NO_AIK)
    nonce = challenge(service)
    doc = booted.evidence(nonce)
    r = attest(service, doc)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    jwks = service.client.get("/tenants/default/certs").json()
    v = verify_token(token, jwks=jwks, issuer="http://testserver/tenants/default", now=service.clock(),
                     expected_nonce=nonce)
    assert v.claims["x-ms-attestation-type"] == "tpm"
    assert v.claims["x-ms-policy-hash"] == policy_hash(NO_AIK)
    assert v.claims["attestd-policy"] == "linux-secure-boot"
    assert v.claims["secureBootEnabled"] is True
    assert set(v.claims["bootApplications"]) >= {"shim", "grub", "kernel"}
    # audit record
    aid = r.headers["x-attestd-attestation-id"]
    rec = service.client.get(f"/tenants/default/attestations/{aid}", headers=service.admin).json()
    assert rec["outcome"] == "permit" and rec["tokenJti"] == v.claims["jti"]
    assert rec["evidence"]["quote"] == doc["quote"] and rec["claims"]["secureBootEnabled"] is True
    assert rec["policyHash"] == policy_hash(NO_AIK) and rec["trace"]
    assert rec["issuedClaims"]["secureBootEnabled"] is True  # stored as JSON, the token's claims
    # the nonce is single use
    again = attest(service, doc)
    assert again.status_code == 409 and again.json()["code"] == "nonce.replayed"
    # attestd audit reverify reaches the same decision without consuming anything
    from typer.testing import CliRunner

    from attestd.cli.serve import app

    res = CliRunner().invoke(app, ["audit", "reverify", aid, "--data-dir", str(service.data_dir)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["same"] and report["checks"]["nonceMac"] and report["checks"]["nonceConsumed"]
    metrics = service.client.get("/metrics").text
    assert 'attestd_attestations_total{outcome="permit",reason="ok",type="tpm"} 1.0' in metrics
    assert 'attestd_attestations_total{outcome="error",reason="nonce.replayed",type="tpm"} 1.0' in metrics


def test_reverify_detects_a_tampered_record(service, booted):
    set_policy(service, NO_AIK)
    r = attest(service, booted.evidence(challenge(service)))
    aid = r.headers["x-attestd-attestation-id"]
    from sqlalchemy import update
    from typer.testing import CliRunner

    from attestd.cli.serve import app
    from attestd.store import Attestation
    from attestd.store.blobs import insert, split

    def reverify():
        return CliRunner().invoke(app, ["audit", "reverify", aid, "--data-dir", str(service.data_dir)])

    assert reverify().exit_code == 0
    # a forged decision stored as a blob of its own (its digest right) and the record pointed at it
    record = service.state.store.get_attestation(aid)
    values = {"created_at": record.created_at, "claims": record.claims, "issued_claims": {"forged": True},
              "trace": record.trace}
    forged = split(values)
    with service.state.store.session() as s:
        insert(s.connection(), forged)
        s.execute(update(Attestation).where(Attestation.id == aid).values(decision_sha256=values["decision_sha256"]))
    res = reverify()
    assert res.exit_code == 1 and json.loads(res.output)["same"] is False


def test_a_record_whose_blob_was_altered_is_refused_not_shown(service, booted):
    set_policy(service, NO_AIK)
    aid = attest(service, booted.evidence(challenge(service))).headers["x-attestd-attestation-id"]
    from sqlalchemy import update

    from attestd.store.models import AttestationBlob

    record = service.state.store.get_attestation(aid)
    assert record.evidence["eventLog"] and record.claims and record.trace
    with service.state.store.session() as s:
        s.execute(update(AttestationBlob).where(AttestationBlob.sha256 == record.boot_sha256)
                  .values(data=b"AAAA"))
    r = service.client.get(f"/tenants/default/attestations/{aid}", headers=service.admin)
    assert r.status_code == 500 and r.json()["code"] == "store.blob_mismatch"
    assert "altered" in r.json()["detail"] and r.json()["field"] == "boot_sha256"


def test_housekeeping_prunes_records_past_retention(service, booted):
    """The default retention is 30 days: a record stays readable to day 30 and is gone after the
    next housekeeping round past it; its blobs go with it."""
    from sqlalchemy import func, select

    from attestd.store.models import AttestationBlob

    assert service.state.settings.attestation_retention_days == 30
    set_policy(service, NO_AIK)
    first = attest(service, booted.evidence(challenge(service))).headers["x-attestd-attestation-id"]
    service.clock.advance(days=29)
    second = attest(service, booted.evidence(challenge(service))).headers["x-attestd-attestation-id"]

    def stored(aid):
        return service.client.get(f"/tenants/default/attestations/{aid}", headers=service.admin).status_code

    def blobs():
        with service.state.store.connection() as conn:
            return conn.execute(select(func.count()).select_from(AttestationBlob)).scalar()

    assert blobs() == 2  # the same log and decision twice
    service.clock.advance(days=1, seconds=-1)
    service.client.portal.call(service.app.state.housekeep)
    assert stored(first) == stored(second) == 200
    service.clock.advance(seconds=2)
    service.client.portal.call(service.app.state.housekeep)
    assert (stored(first), stored(second)) == (404, 200) and blobs() == 2
    service.clock.advance(days=30)
    service.client.portal.call(service.app.state.housekeep)
    assert stored(second) == 404 and blobs() == 0


def test_a_failing_housekeeping_step_skips_none_of_the_others(service, monkeypatch, caplog):
    fleet = service.app.state.fleet
    ran = []

    def broken(*_a):
        raise RuntimeError("database went away")

    monkeypatch.setattr(service.state.store, "prune_attestations", broken)
    monkeypatch.setattr(fleet.fleet, "prune_certificates", lambda now: ran.append("certificates") or 0)
    monkeypatch.setattr(fleet, "mark_stale", lambda: ran.append("stale") or [])
    service.client.portal.call(service.app.state.housekeep)
    assert ran == ["certificates", "stale"]
    failed = [r for r in caplog.records if r.getMessage() == "housekeeping failed"]
    assert [r.step for r in failed] == ["attestation records"]


def test_denial_names_rule_and_claim_and_consumes_nonce(service, booted):
    set_policy(service, DENY_CMDLINE)
    doc = booted.evidence(challenge(service))
    r = attest(service, doc)
    assert r.status_code == 403, r.text
    p = r.json()
    assert p["code"] == "attestation.denied" and p["field"] == "kernelCommandLine"
    assert p["details"]["claim"] == "kernelCommandLine"
    assert p["details"]["rule"]["section"] == "authorizationrules" and p["details"]["rule"]["line"] == 4
    assert "kernelCommandLine" in p["detail"]
    rec = service.client.get(f"/tenants/default/attestations/{p['details']['attestationId']}",
                             headers=service.admin).json()
    assert rec["outcome"] == "deny" and rec["tokenJti"] is None
    assert attest(service, doc).json()["code"] == "nonce.replayed"
    assert 'reason="authorizationrules:1"' in service.client.get("/metrics").text


def test_policy_set_elsewhere_decides_at_once(service, booted):
    """A policy stored by another replica (written to the database behind this process's caches)
    decides the next attestation: the version an attestation was decided under is confirmed when
    it is recorded, and the decision is made again under the new one."""
    set_policy(service, NO_AIK)
    assert attest(service, booted.evidence(challenge(service))).status_code == 200  # this process caches NO_AIK
    from attestd.policy import policy_hash as text_hash
    from attestd.tokens import policy_hash as document_hash

    store = service.state.store
    store.add_policy_version("default", "Tpm", text=DENY_CMDLINE, document=DENY_CMDLINE,
                             policy_hash=text_hash(DENY_CMDLINE), token_hash=document_hash(DENY_CMDLINE),
                             signer_cert_pem=None, action="set", builtin=None, now=service.clock(),
                             actor="replica-b")
    r = attest(service, booted.evidence(challenge(service)))
    assert r.status_code == 403, r.text
    p = r.json()
    assert p["details"]["policyHash"] == text_hash(DENY_CMDLINE) and p["field"] == "kernelCommandLine"
    rec = service.client.get(f"/tenants/default/attestations/{p['details']['attestationId']}",
                             headers=service.admin).json()
    assert rec["outcome"] == "deny" and rec["policyHash"] == text_hash(DENY_CMDLINE)
    # one record per attestation: the first decision (under the old policy) was not stored
    listed = service.client.get("/tenants/default/attestations", headers=service.admin).json()
    assert sorted(a["outcome"] for a in listed["attestations"]) == ["deny", "permit"]


def test_default_policy_is_enforced(service, booted):
    # no policy change: the built-in linux-secure-boot decides; whatever it decides, the token (if
    # any) carries its hash and a denial names one of its rules.
    r = attest(service, booted.evidence(challenge(service)))
    if r.status_code == 200:
        claims = json.loads(base64.urlsafe_b64decode(r.json()["token"].split(".")[1] + "=="))
        assert claims["x-ms-policy-hash"] == policy_hash(builtin.text("linux-secure-boot"))
    else:
        assert r.status_code == 403 and r.json()["details"]["rule"]["section"] == "authorizationrules"


def test_quote_over_another_nonce_does_not_verify(service, booted):
    set_policy(service, NO_AIK)
    nonce = challenge(service)
    r = attest(service, booted.evidence(nonce, quote_nonce=b"\x01" * 32))
    assert r.status_code == 422, r.text
    assert r.json()["field"] in ("nonce", "quote")
    # nothing was consumed: the right quote over the same nonce still works
    assert attest(service, booted.evidence(nonce)).status_code == 200


def test_tampered_pcr_value_is_refused(service, booted):
    set_policy(service, NO_AIK)
    doc = booted.evidence(challenge(service))
    doc["pcrs"]["sha256"]["7"] = "00" * 32
    r = attest(service, doc)
    assert r.status_code == 422 and r.json()["field"] in ("pcrs", "quote"), r.text


def test_expired_nonce(service, booted):
    nonce = challenge(service)
    service.clock.advance(seconds=301)
    r = attest(service, booted.evidence(nonce))
    assert r.status_code == 400 and r.json()["code"] == "nonce.expired"


def test_quote_must_cover_required_pcrs(service, booted):
    set_policy(service, NO_AIK)
    r = attest(service, booted.evidence(challenge(service), selection={"sha256": [0, 7]}))
    assert r.status_code == 422 and r.json()["code"] == "quote.required_pcrs_missing"
    assert r.json()["details"]["missing"] == [1, 2, 3, 4, 5, 6, 8, 9, 14]


def test_runtime_data_is_bound_and_issued(service, booted):
    set_policy(service, NO_AIK)
    runtime = json.dumps({"pubkey": "abc"}).encode()
    nonce = challenge(service)
    rd = {"data": base64.urlsafe_b64encode(runtime).decode().rstrip("="), "dataType": "JSON"}
    r = attest(service, booted.evidence(nonce, runtime=runtime, runtimeData=rd))
    assert r.status_code == 200, r.text
    claims = json.loads(base64.urlsafe_b64decode(r.json()["token"].split(".")[1] + "=="))
    assert claims["x-ms-runtime"] == {"pubkey": "abc"}
    # the same runtime data with a quote over the bare nonce does not verify
    nonce = challenge(service)
    assert attest(service, booted.evidence(nonce, runtimeData=rd)).status_code == 422


def test_draft_policy_needs_admin_and_yields_a_draft_token(service, booted):
    doc = booted.evidence(challenge(service), draftPolicyForAttestation=NO_AIK)
    r = attest(service, doc)
    assert r.status_code == 401 and r.json()["code"] == "auth.missing"
    doc = booted.evidence(challenge(service), draftPolicyForAttestation=NO_AIK)
    r = attest(service, doc, headers=service.admin)
    assert r.status_code == 200, r.text
    jwks = service.client.get("/tenants/default/certs").json()
    with pytest.raises(TokenVerificationError) as e:
        verify_token(r.json()["token"], jwks=jwks, issuer="http://testserver/tenants/default", now=service.clock())
    assert e.value.code == "token.draft_policy"
    # the tenant's real policy did not change
    assert service.client.get("/tenants/default/policies/Tpm", headers=service.admin).json()["builtin"]


def test_another_tenants_nonce_is_refused(service, booted):
    service.create_tenant("other")
    set_policy(service, NO_AIK)
    r = attest(service, booted.evidence(challenge(service, "other")))
    assert r.status_code == 400 and r.json()["code"] == "nonce.invalid"


def test_candidate_policy_against_past_attestations(service, booted):
    """'What would this policy have denied?' - evaluated on the stored evidence, nothing activated."""
    set_policy(service, NO_AIK)
    for _ in range(2):
        assert attest(service, booted.evidence(challenge(service))).status_code == 200
    strict = NO_AIK.replace('=> permit();', '[type=="kernelParameters", value=="quiet"] => permit();')
    r = service.client.post("/tenants/default/policies/Tpm:test?last=10", content=strict, headers=service.admin)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["evaluated"] >= 2 and doc["wouldDeny"] >= 2 and doc["changed"] >= 2
    changed = [a for a in doc["attestations"] if a["recorded"] == "permit"]
    assert changed and all(a["candidate"] == "deny" and "explanation" in a for a in changed)
    # the active policy did not change
    assert service.client.get("/tenants/default/policies/Tpm", headers=service.admin).json()["policy"] == NO_AIK
    r = service.client.post("/tenants/default/policies/Tpm:test", content="version=1.0; nonsense",
                            headers=service.admin)
    assert r.status_code == 400 and r.json()["code"] == "policy.syntax"
