"""Two `attestd serve` processes on one real PostgreSQL server behave as one service: they start
together on an empty database (one migrates first, one bootstraps), publish the same keys, accept a
nonce issued by the other exactly once, apply each other's policies, see each other's tenants, key
rotations and fleet. Both get the same database URL, master key and public URL, as in production
(docs/service.md, "PostgreSQL and replicas")."""

from __future__ import annotations

import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest
from corpus_paths import FIXTURES
from pg_support import Replica, free_port

LOG = FIXTURES / "qemu" / "sb" / "binary_bios_measurements"
SELECTION = "sha256:0,1,2,3,4,5,6,7,8,9,14"
ALGS = ["RS256", "ES256", "PS256"]


@pytest.fixture(scope="module")
def replicas(pg_server, tmp_path_factory):
    url = pg_server.create_database("replicas")
    key = base64.b64encode(os.urandom(32)).decode()  # ATTESTD_MASTER_KEY, the same on both
    public = f"http://127.0.0.1:{free_port()}"  # the load balancer's address: the issuer base
    # both start at once on an empty database: migrations and the first-start bootstrap serialise
    procs = [Replica(tmp_path_factory.mktemp(f"replica{i}"), url, key, public_url=public) for i in range(2)]
    try:
        for p in procs:
            p.wait_ready()
        creds = [json.loads((p.data_dir / "initial-credentials.json").read_text()) for p in procs
                 if (p.data_dir / "initial-credentials.json").exists()]
        assert len(creds) == 1, "exactly one replica bootstraps the default tenant"
        yield Cluster(procs, creds[0], public)
    finally:
        for p in procs:
            p.stop()
        for p in procs:
            assert "Traceback" not in p.log(), p.log()


class Cluster:
    def __init__(self, procs: list[Replica], creds: dict, public: str) -> None:
        self.a, self.b = (p.base for p in procs)
        self.admin = {"Authorization": f"Bearer {creds['adminToken']}"}
        self.operator = {"Authorization": f"Bearer {creds['operatorToken']}"}
        self.issuer = f"{public}/tenants/default"
        assert creds["issuer"] == self.issuer

    def set_policy(self, base: str, text: str) -> None:
        r = httpx.put(base + "/tenants/default/policies/Tpm", content=text, headers=self.admin)
        assert r.status_code == 200, r.text


def _jwks(base: str, tenant: str = "default") -> dict:
    return httpx.get(f"{base}/tenants/{tenant}/certs").json()


def _verify(token: str, jwks: dict, issuer: str) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid].key
    return jwt.decode(token, key, algorithms=ALGS, issuer=issuer, options={"verify_aud": False})


class Quoter:
    """swtpm with the QEMU boot's PCRs and an ECC AK, quoting through the agent's TPM layer."""

    def __init__(self) -> None:
        from attestd.agent.tpm import AgentTPM
        from attestd.testing.bootreplay import replay_into_swtpm
        from attestd.testing.swtpm import SwTPM

        self.swtpm = SwTPM()
        self.swtpm.__enter__()
        replay_into_swtpm(self.swtpm, LOG.read_bytes())
        self.tpm = AgentTPM(self.swtpm.tcti)
        self.ak = self.tpm.ak("ecc")

    def evidence(self, nonce: str) -> dict:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        quote, sig = self.tpm.quote(self.ak, raw, SELECTION)
        pcrs = self.tpm.read_pcrs(SELECTION)
        return {"ak": base64.b64encode(self.ak.public).decode(), "quote": base64.b64encode(quote).decode(),
                "signature": base64.b64encode(sig).decode(), "nonce": nonce,
                "pcrs": {b: {str(i): v.hex() for i, v in vals.items()} for b, vals in pcrs.items()},
                "eventLog": base64.b64encode(LOG.read_bytes()).decode()}

    def close(self) -> None:
        self.tpm.close()
        self.swtpm.__exit__(None, None, None)


@pytest.fixture(scope="module")
def quoter():
    import importlib.util

    from attestd.testing.swtpm import swtpm_available

    if importlib.util.find_spec("attestd.claims") is None:
        pytest.skip("attestd.claims is not importable (POST /attest/Tpm runs it)")
    if not swtpm_available():
        pytest.skip("swtpm / tpm2-tools not installed")
    pytest.importorskip("tpm2_pytss")
    q = Quoter()
    yield q
    q.close()


def _no_aik_policy() -> str:
    """The default policy without its AK-certificate rule (swtpm's AK has no certificate)."""
    from attestd.policy import builtin

    return "\n".join(line for line in builtin.text("linux-secure-boot").splitlines() if '"aikValidated"' not in line)


# -- without a TPM ---------------------------------------------------------------------------------
def test_both_replicas_publish_the_same_keys(replicas):
    ja, jb = _jwks(replicas.a), _jwks(replicas.b)
    assert ja == jb and ja["keys"]
    for base in (replicas.a, replicas.b):
        conf = httpx.get(base + "/tenants/default/.well-known/openid-configuration").json()
        assert conf["issuer"] == replicas.issuer  # one service: one issuer


def test_a_rotation_at_one_replica_is_published_by_the_other(replicas):
    before = {k["kid"] for k in _jwks(replicas.b)["keys"]}
    r = httpx.post(replicas.a + "/tenants/default/keys:rotate", headers=replicas.admin)
    assert r.status_code == 200, r.text
    after = {k["kid"] for k in _jwks(replicas.a)["keys"]}
    assert after > before
    deadline = time.monotonic() + 5  # replicas cache a tenant's row for 2 s
    while {k["kid"] for k in _jwks(replicas.b)["keys"]} != after:
        assert time.monotonic() < deadline, "B never published the key rotated at A"
        time.sleep(0.2)
    # a second rotation while one waits is refused at either replica: the key set is one row
    r = httpx.post(replicas.b + "/tenants/default/keys:rotate", headers=replicas.admin)
    assert r.status_code == 409 and r.json()["code"] == "keys.rotation_pending"


def test_a_tenant_created_at_one_replica_exists_at_the_other(replicas):
    r = httpx.post(replicas.a + "/tenants", json={"name": "second", "mode": "token"}, headers=replicas.operator)
    assert r.status_code == 201, r.text
    admin = {"Authorization": f"Bearer {r.json()['adminToken']}"}
    r = httpx.get(replicas.b + "/tenants/second", headers=admin)  # its token works at B too
    assert r.status_code == 200 and r.json()["mode"] == "token", r.text
    assert _jwks(replicas.a, "second") == _jwks(replicas.b, "second")
    # the same name created again through B: one database, one tenant
    r = httpx.post(replicas.b + "/tenants", json={"name": "second", "mode": "token"}, headers=replicas.operator)
    assert r.status_code == 409 and r.json()["code"] == "tenant.exists"


def test_a_policy_set_at_one_replica_is_served_by_the_other(replicas):
    text = _no_aik_policy()
    replicas.set_policy(replicas.a, text)
    got = httpx.get(replicas.b + "/tenants/default/policies/Tpm", headers=replicas.admin).json()
    history = httpx.get(replicas.b + "/tenants/default/policies/Tpm/history", headers=replicas.admin).json()
    assert got["policy"] == text and got["action"] == "set"
    versions = [v["version"] for v in (history["versions"] if isinstance(history, dict) else history)]
    assert versions[0] == got["version"] and versions == sorted(versions, reverse=True)


def test_a_nonce_issued_by_one_replica_is_valid_at_the_other(replicas):
    """Without a TPM: B checks A's nonce (shared MAC key from the master key) and gets as far as the
    quote; a nonce altered by one bit is refused at B as forged."""
    nonce = httpx.post(replicas.a + "/tenants/default/challenge").json()["nonce"]
    doc = {"ak": base64.b64encode(b"\x00" * 8).decode(), "quote": "AAAA", "signature": "AAAA", "nonce": nonce,
           "pcrs": {"sha256": {"0": "00" * 32}}}  # well formed; the nonce is checked first, then the AK
    r = httpx.post(replicas.b + "/tenants/default/attest/Tpm", json=doc)
    assert r.status_code == 400 and r.json()["field"] == "ak", r.text  # past the nonce
    raw = bytearray(base64.urlsafe_b64decode(nonce + "="))
    raw[20] ^= 1
    doc["nonce"] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    r = httpx.post(replicas.b + "/tenants/default/attest/Tpm", json=doc)
    assert r.status_code == 400 and r.json()["code"] == "nonce.invalid", r.text


# -- with swtpm: real attestations -----------------------------------------------------------------
def test_nonce_from_one_replica_is_single_use_across_both(replicas, quoter):
    a, b = replicas.a, replicas.b
    replicas.set_policy(a, _no_aik_policy())
    nonce = httpx.post(a + "/tenants/default/challenge").json()["nonce"]
    doc = quoter.evidence(nonce)
    r = httpx.post(b + "/tenants/default/attest/Tpm", json=doc, timeout=30)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    # the token signed at B verifies with A's JWKS (and B's), under the one issuer
    claims = _verify(token, _jwks(a), replicas.issuer)
    assert claims["x-ms-attestation-type"] == "tpm" and claims["nonce"] == nonce
    assert _verify(token, _jwks(b), replicas.issuer) == claims
    # used at B, refused at A (and at B)
    for base in (a, b):
        r = httpx.post(base + "/tenants/default/attest/Tpm", json=doc, timeout=30)
        assert r.status_code == 409 and r.json()["code"] == "nonce.replayed", r.text


def test_one_nonce_sent_to_both_replicas_at_once_is_accepted_once(replicas, quoter):
    replicas.set_policy(replicas.b, _no_aik_policy())
    nonce = httpx.post(replicas.b + "/tenants/default/challenge").json()["nonce"]
    doc = quoter.evidence(nonce)

    def attest(base):
        r = httpx.post(base + "/tenants/default/attest/Tpm", json=doc, timeout=30)
        return r.status_code, r.json().get("code")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attest, [replicas.a, replicas.b, replicas.a, replicas.b]))
    assert sorted(results, key=str) == [(200, None)] + [(409, "nonce.replayed")] * 3, results


def test_policy_set_at_one_replica_applies_at_the_other(replicas, quoter):
    a, b = replicas.a, replicas.b
    deny = ('version=1.1;\nconfigurationrules { => issueproperty(type="required_pcr_mask", value=0x43FF); };\n'
            'authorizationrules { => deny(); };\n')
    replicas.set_policy(a, deny)
    assert httpx.get(b + "/tenants/default/policies/Tpm", headers=replicas.admin).json()["policy"] == deny
    nonce = httpx.post(b + "/tenants/default/challenge").json()["nonce"]
    r = httpx.post(b + "/tenants/default/attest/Tpm", json=quoter.evidence(nonce), timeout=30)
    assert r.status_code == 403 and r.json()["code"] == "attestation.denied", r.text
    # and back: permitted at A by the policy set through B
    replicas.set_policy(b, _no_aik_policy())
    nonce = httpx.post(b + "/tenants/default/challenge").json()["nonce"]
    r = httpx.post(a + "/tenants/default/attest/Tpm", json=quoter.evidence(nonce), timeout=30)
    assert r.status_code == 200, r.text


def test_fleet_state_is_shared(replicas, quoter):
    a, b, admin = replicas.a, replicas.b, replicas.admin
    ek = quoter.tpm.ek("ecc")
    body = {"name": "replica-test", "ekPublic": base64.b64encode(ek.public).decode(),
            "akPublic": base64.b64encode(quoter.ak.public).decode()}
    enrolled = httpx.post(a + "/tenants/default/hosts:enroll", json=body, headers=admin).json()
    cred = enrolled["credential"]
    secret = quoter.tpm.activate_credential(quoter.ak, ek, base64.b64decode(cred["idObject"]),
                                            base64.b64decode(cred["encryptedSecret"]))
    r = httpx.post(b + f"/tenants/default/hosts/{enrolled['hostId']}:activate",
                   json={"secret": base64.b64encode(secret).decode()}, headers=admin)
    assert r.status_code == 200 and r.json()["akActivated"] is True
    hosts = httpx.get(b + "/tenants/default/hosts", headers=admin).json()["hosts"]
    assert [h["hostId"] for h in hosts] == [enrolled["hostId"]]
    assert httpx.get(a + "/tenants/default/ca.pem").content == httpx.get(b + "/tenants/default/ca.pem").content
