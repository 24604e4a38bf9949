"""The service API without TPM evidence: health, metrics, tenants, auth, isolation, policies,
signers, discovery, nonces, problem details. Runs the real app (TestClient, real SQLite)."""

from __future__ import annotations

import os
import stat

import pytest
from service_helpers import bearer, decode_nonce, make_signer

from attestd.policy import builtin, policy_hash, sign_policy
from attestd.service.nonces import check_nonce
from attestd.tokens import policy_hash as document_hash

PERMIT_SB = 'version=1.0; authorizationrules { [type=="secureBootEnabled", value==true] => permit(); };'


def assert_problem(r, status: int, code: str, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"urn:attestd:error:{code}"
    assert body["error"] == {"code": code, "message": body["detail"]}
    assert body["requestId"] == r.headers["x-request-id"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_first_start_creates_default_tenant_and_private_credentials(service):
    path = service.data_dir / "initial-credentials.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(service.data_dir / "master.key").st_mode) == 0o600
    assert service.creds["issuer"] == "http://testserver/tenants/default"
    r = service.client.get("/tenants/default", headers=service.admin)
    assert r.status_code == 200 and r.json()["mode"] == "token"
    # tokens are stored hashed: the database holds no plaintext token
    db = (service.data_dir / "attestd.db").read_bytes()
    assert service.creds["adminToken"].encode() not in db
    # the default TPM policy is the built-in linux-secure-boot, which is not permit-all
    r = service.client.get("/tenants/default/policies/Tpm", headers=service.admin)
    assert r.json()["policy"] == builtin.text("linux-secure-boot")
    assert not builtin.load("linux-secure-boot").evaluate({}).permitted


def test_health_ready_metrics_openapi(service):
    c = service.client
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/readyz").json() == {"status": "ready"}
    r = c.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert len(c.get("/healthz", headers={"X-Request-Id": "bad id\t"}).headers["x-request-id"]) == 32
    text = c.get("/metrics").text
    assert 'attestd_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
    assert "attestd_http_request_duration_seconds_bucket" in text
    spec = c.get("/openapi.json").json()
    for path in ("/tenants/{t}/attest/Tpm", "/tenants/{t}/challenge", "/tenants/{t}/policies/{attestation_type}",
                 "/tenants/{t}/policies/{attestation_type}:reset", "/tenants/{t}/certs",
                 "/tenants/{t}/.well-known/openid-configuration"):
        assert path in spec["paths"], path


def test_readyz_fails_when_database_is_gone(service):
    service.state.store.engine.dispose()
    os.chmod(service.data_dir, 0o500)
    try:
        (service.data_dir / "attestd.db").rename(service.data_dir / "gone.db")
    except PermissionError:
        pass
    finally:
        os.chmod(service.data_dir, 0o700)
    (service.data_dir / "attestd.db").unlink(missing_ok=True)
    (service.data_dir / "attestd.db").mkdir()  # the path is now a directory: SQLite cannot open it
    assert_problem(service.client.get("/readyz"), 503, "store.unavailable")


def test_auth_errors(service):
    c = service.client
    r = c.get("/tenants/default/policies/Tpm")
    assert_problem(r, 401, "auth.missing", "Authorization")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_problem(c.get("/tenants/default/policies/Tpm", headers={"Authorization": "Basic x"}), 401, "auth.malformed")
    assert_problem(c.get("/tenants/default/policies/Tpm", headers=bearer("atd_nope")), 401, "auth.invalid_token")
    # a tenant admin is not an operator
    assert_problem(c.post("/tenants", json={"name": "x"}, headers=service.admin), 403, "auth.operator_required")


def test_tenant_cannot_read_or_change_another_tenants_policies_or_audit(service):
    c = service.client
    a = service.create_tenant("alpha")
    b = service.create_tenant("beta")
    assert c.put("/tenants/beta/policies/Tpm", content=PERMIT_SB, headers=b).status_code == 200
    before = c.get("/tenants/beta/policies/Tpm", headers=b).json()
    # alpha's token against beta: every read and write is refused
    for method, path, kw in [
        ("get", "/tenants/beta/policies/Tpm", {}),
        ("put", "/tenants/beta/policies/Tpm", {"content": "version=1.0; authorizationrules { => permit(); };"}),
        ("post", "/tenants/beta/policies/Tpm:reset", {}),
        ("get", "/tenants/beta/policies/Tpm/history", {}),
        ("get", "/tenants/beta/attestations", {}),
        ("get", "/tenants/beta/attestations/00000000-0000-4000-8000-000000000000", {}),
        ("get", "/tenants/beta/audit", {}),
        ("get", "/tenants/beta/certificates", {}),
        ("post", "/tenants/beta/certificates:add", {"json": {"certificate": make_signer().pem}}),
        ("post", "/tenants/beta/keys:rotate", {}),
        ("post", "/tenants/beta/tokens", {}),
    ]:
        assert_problem(getattr(c, method)(path, headers=a, **kw), 403, "auth.wrong_tenant")
    after = c.get("/tenants/beta/policies/Tpm", headers=b).json()
    assert after == before and after["policy"] == PERMIT_SB
    # beta's audit trail records beta's own change, and nothing alpha attempted
    events = c.get("/tenants/beta/audit", headers=b).json()["events"]
    assert [e["action"] for e in events][:2] == ["policy.set", "token.create"]
    assert all(e["actor"] != "tenant-token:" for e in events)
    # the operator may read any tenant
    assert c.get("/tenants/beta/policies/Tpm", headers=service.operator).status_code == 200


def test_create_tenant_validation(service):
    c, op = service.client, service.operator
    assert_problem(c.post("/tenants", json={"name": "Bad_Name"}, headers=op), 400, "tenant.invalid_name", "name")
    assert_problem(c.post("/tenants", json={"name": "x", "mode": "open"}, headers=op), 400, "tenant.invalid_mode")
    assert_problem(c.post("/tenants", json={"name": "iso", "mode": "isolated"}, headers=op), 400,
                   "tenant.signers_required")
    assert_problem(c.post("/tenants", json={"name": "iso", "mode": "isolated", "signers": ["junk"]}, headers=op),
                   400, "signer.invalid_certificate", "signers.0")
    assert_problem(c.post("/tenants", json={"name": "default"}, headers=op), 409, "tenant.exists")
    assert_problem(c.post("/tenants", json={"name": 5}, headers=op), 400, "request.invalid", "name")
    assert_problem(c.get("/tenants/nosuch/certs"), 404, "tenant.not_found")


def test_policy_versions_hash_and_reset(service):
    c, h = service.client, service.admin
    r = c.put("/tenants/default/policies/Tpm", content=PERMIT_SB, headers={**h, "content-type": "text/plain"})
    assert r.status_code == 200
    body = r.json()
    assert body["x-ms-policy-result"] == "Updated" and body["version"] == 2
    assert r.headers["x-ms-policy-token-hash"] == body["x-ms-policy-token-hash"] == document_hash(PERMIT_SB)
    assert body["x-ms-policy-hash"] == policy_hash(PERMIT_SB)
    r = c.put("/tenants/default/policies/tpm", json={"policy": PERMIT_SB + " "}, headers=h)
    assert r.json()["version"] == 3 and r.json()["x-ms-policy-token-hash"] == document_hash(PERMIT_SB + " ")
    r = c.post("/tenants/default/policies/Tpm:reset", headers=h)
    assert r.json()["x-ms-policy-result"] == "Removed" and r.json()["builtin"] == "linux-secure-boot"
    history = c.get("/tenants/default/policies/Tpm/history", headers=h).json()["versions"]
    assert [(v["version"], v["action"]) for v in history] == [(4, "reset"), (3, "set"), (2, "set"), (1, "default")]
    assert all(v["updatedBy"] for v in history)
    assert history[2]["x-ms-policy-token-hash"] == document_hash(PERMIT_SB)
    # errors
    bad = c.put("/tenants/default/policies/Tpm", content="version=1.0; authorizationrules { => permit() };",
                headers=h)
    problem = assert_problem(bad, 400, "policy.syntax", "policy")
    assert problem["details"]["line"] == 1
    assert_problem(c.put("/tenants/default/policies/Tpm", content=b"\xff\xfe", headers=h), 400, "request.not_utf8")
    assert_problem(c.put("/tenants/default/policies/Tpm", content=b"", headers=h), 400, "policy.empty")
    assert_problem(c.put("/tenants/default/policies/Nope", content=PERMIT_SB, headers=h), 404, "policy.unknown_type")
    # every type has a default, never permit-all (TEE defaults: docs/service.md)
    assert c.get("/tenants/default/policies/SevSnpVm", headers=h).json()["builtin"] == "attestd-sevsnpvm-default"
    assert_problem(c.put("/tenants/default/policies/Tpm", json={"policy": 1}, headers=h), 400,
                   "policy.invalid_request")


def test_signed_policy_in_token_mode(service):
    c, h = service.client, service.admin
    signer = make_signer()
    jws = sign_policy(PERMIT_SB, signer.key, [signer.cert])
    # not trusted yet
    assert_problem(c.put("/tenants/default/policies/Tpm", content=jws, headers=h), 422, "policy.untrusted_signer")
    assert c.post("/tenants/default/certificates:add", json={"certificate": signer.pem}, headers=h).json()["result"] == "Added"
    r = c.put("/tenants/default/policies/Tpm", content=jws, headers={**h, "content-type": "application/jose"})
    assert r.status_code == 200, r.text
    assert r.json()["signed"] and r.json()["policy"] == PERMIT_SB and r.json()["policyToken"] == jws
    assert r.headers["x-ms-policy-token-hash"] == document_hash(jws)
    assert r.json()["x-ms-policy-hash"] == policy_hash(PERMIT_SB)
    # an unsigned JWS (alg none) is accepted in token mode
    unsigned = sign_policy(PERMIT_SB, None, alg="none")
    assert c.put("/tenants/default/policies/Tpm", content=unsigned, headers=h).json()["signed"] is False


def test_isolated_mode(service):
    c = service.client
    first, second, outsider = make_signer("first"), make_signer("second"), make_signer("outsider")
    h = service.create_tenant("iso", "isolated", [first.pem])
    # plain text and unsigned JWS are refused
    assert_problem(c.put("/tenants/iso/policies/Tpm", content=PERMIT_SB, headers=h), 403,
                   "policy.signature_required", "policy")
    assert_problem(c.put("/tenants/iso/policies/Tpm", content=sign_policy(PERMIT_SB, None, alg="none"), headers=h),
                   422, "policy.unsigned_not_allowed")
    assert_problem(c.put("/tenants/iso/policies/Tpm", content=sign_policy(PERMIT_SB, outsider.key, [outsider.cert]),
                         headers=h), 422, "policy.untrusted_signer")
    ok = c.put("/tenants/iso/policies/Tpm", content=sign_policy(PERMIT_SB, first.key, [first.cert]), headers=h)
    assert ok.status_code == 200 and ok.json()["signer"]["subject"] == "CN=first"
    # adding a signer: the admin token alone is not enough, nor a JWS from an untrusted key
    assert_problem(c.post("/tenants/iso/certificates:add", json={"certificate": second.pem}, headers=h), 403,
                   "signer.signature_required")
    assert_problem(c.post("/tenants/iso/certificates:add", content=outsider.certificate_change(second), headers=h),
                   403, "signer.untrusted")
    assert_problem(c.post("/tenants/iso/certificates:add", content=first.certificate_change(second)), 401,
                   "auth.missing")
    tampered = first.certificate_change(second)
    head, _payload, sig = tampered.split(".")
    tampered = ".".join([head, outsider.certificate_change(outsider).split(".")[1], sig])
    assert_problem(c.post("/tenants/iso/certificates:add", content=tampered, headers=h), 403,
                   "signer.signature_invalid")
    r = c.post("/tenants/iso/certificates:add", content=first.certificate_change(second), headers=h)
    assert r.json()["result"] == "Added", r.text
    # now the second signer can sign policies and remove the first
    assert c.put("/tenants/iso/policies/Tpm", content=sign_policy(PERMIT_SB, second.key, [second.cert]),
                 headers=h).status_code == 200
    assert c.post("/tenants/iso/certificates:remove", content=second.certificate_change(first),
                  headers=h).json()["result"] == "Removed"
    assert_problem(c.put("/tenants/iso/policies/Tpm", content=sign_policy(PERMIT_SB, first.key, [first.cert]),
                         headers=h), 422, "policy.untrusted_signer")
    assert_problem(c.post("/tenants/iso/certificates:remove", content=second.certificate_change(second), headers=h),
                   409, "signer.last")
    # reset needs a signed JWS too
    assert_problem(c.post("/tenants/iso/policies/Tpm:reset", headers=h), 400, "signer.jws_malformed")
    assert c.post("/tenants/iso/policies/Tpm:reset", content=second.jws({}), headers=h).json()["builtin"]
    actions = [e["action"] for e in c.get("/tenants/iso/audit", headers=h).json()["events"]]
    assert actions.count("signer.add") == 1 and actions.count("signer.remove") == 1


def test_shared_mode_keeps_defaults(service):
    c = service.client
    h = service.create_tenant("shared1", "shared")
    assert_problem(c.put("/tenants/shared1/policies/Tpm", content=PERMIT_SB, headers=h), 403, "tenant.shared_mode")
    assert_problem(c.post("/tenants/shared1/certificates:add", json={"certificate": make_signer().pem}, headers=h),
                   403, "tenant.shared_mode")
    assert c.get("/tenants/shared1/policies/Tpm", headers=h).json()["builtin"] == "linux-secure-boot"


def test_discovery_and_key_rotation(service):
    c, h = service.client, service.admin
    conf = c.get("/tenants/default/.well-known/openid-configuration").json()
    assert conf["issuer"] == "http://testserver/tenants/default"
    assert conf["jwks_uri"] == "http://testserver/tenants/default/certs"
    keys = c.get("/tenants/default/certs").json()["keys"]
    assert len(keys) == 1
    r = c.post("/tenants/default/keys:rotate", headers=h)
    assert r.status_code == 200 and len(r.json()["keys"]) == 2
    assert len(c.get("/tenants/default/certs").json()["keys"]) == 2  # pre-published
    assert_problem(c.post("/tenants/default/keys:rotate", headers=h), 409, "keys.rotation_pending")
    # the key set is persisted sealed: the private key is not in the database in the clear
    db = (service.data_dir / "attestd.db").read_bytes()
    assert b"PRIVATE KEY" not in db


def test_challenge_nonces(service):
    c = service.client
    r = c.post("/tenants/default/challenge")
    assert r.status_code == 200
    nonce = r.json()["nonce"]
    assert len(decode_nonce(nonce)) == 32
    state = service.state
    key = state.store.sealer.nonce_key("default")
    checked = check_nonce(key, "default", nonce, now=service.clock())
    assert checked.expires_at.isoformat().startswith(r.json()["expiresAt"][:19])
    # another tenant's key, a flipped bit, expiry
    service.create_tenant("other")
    with pytest.raises(Exception) as e:
        check_nonce(state.store.sealer.nonce_key("other"), "other", nonce, now=service.clock())
    assert e.value.code == "nonce.invalid"
    raw = bytearray(decode_nonce(nonce))
    raw[7] ^= 1
    import base64

    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(Exception) as e:
        check_nonce(key, "default", forged, now=service.clock())
    assert e.value.code == "nonce.invalid"
    service.clock.advance(seconds=301)
    with pytest.raises(Exception) as e:
        check_nonce(key, "default", nonce, now=service.clock())
    assert e.value.code == "nonce.expired"
    # two challenges differ; issuing writes nothing
    assert c.post("/tenants/default/challenge").json()["nonce"] != c.post("/tenants/default/challenge").json()["nonce"]
    assert_problem(c.post("/tenants/nosuch/challenge"), 404, "tenant.not_found")


def test_unknown_route_and_method_are_problems(service):
    assert_problem(service.client.get("/nowhere"), 404, "http.not_found")
    assert_problem(service.client.delete("/healthz"), 405, "http.method_not_allowed")
