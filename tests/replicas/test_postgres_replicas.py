"""Two `attestd serve` replicas on one real PostgreSQL server behave as one service: shared keys
(JWKS), single-use nonces across replicas, policies set through one applied at the other, and the
fleet's hosts and incidents visible at both."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import jwt
import pytest
from corpus_paths import FIXTURES, ROOT

SCRIPT = ROOT / "scripts" / "postgres.sh"
LOG = FIXTURES / "qemu" / "sb" / "binary_bios_measurements"
SELECTION = "sha256:0,1,2,3,4,5,6,7,8,9,14"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    # not under pytest's 0700 tmp dirs: the server runs as an unprivileged user when tests run as root
    base = Path(tempfile.mkdtemp(prefix="attestd-pg-"))
    os.chmod(base, 0o755)
    data = base / "data"
    port = _free_port()
    r = subprocess.run(["bash", str(SCRIPT), "start", str(data), str(port)], capture_output=True, text=True)
    if r.returncode == 3:
        pytest.skip("PostgreSQL server binaries are not installed (scripts/install-system-deps.sh installs them)")
    assert r.returncode == 0, r.stderr
    yield r.stdout.strip()
    subprocess.run(["bash", str(SCRIPT), "stop", str(data)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def _serve(data: Path, port: int, url: str, key: str) -> subprocess.Popen:
    env = {**os.environ, "ATTESTD_MASTER_KEY": key, "ATTESTD_LOG_LEVEL": "warning"}
    return subprocess.Popen([sys.executable, "-c", "from attestd.cli.main import main; main()", "serve",
                             "--data-dir", str(data), "--port", str(port), "--database-url", url],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(data / "server.log", "wb"))


def _ready(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"replica exited with {proc.returncode}")
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("replica did not become ready")


@pytest.fixture(scope="module")
def replicas(postgres, tmp_path_factory):
    key = base64.b64encode(os.urandom(32)).decode()
    dirs = [tmp_path_factory.mktemp(f"replica{i}") for i in range(2)]
    ports = [_free_port(), _free_port()]
    # both start at once on an empty database: migrations and bootstrap must serialise
    procs = [_serve(d, p, postgres, key) for d, p in zip(dirs, ports)]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for b, proc in zip(bases, procs):
            _ready(b, proc)
        creds = [json.loads((d / "initial-credentials.json").read_text()) for d in dirs
                 if (d / "initial-credentials.json").exists()]
        assert len(creds) == 1, "exactly one replica bootstraps the default tenant"
        yield bases, {"Authorization": f"Bearer {creds[0]['adminToken']}"}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)


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
    from attestd.testing.swtpm import swtpm_available

    if not swtpm_available():
        pytest.skip("swtpm / tpm2-tools not installed")
    pytest.importorskip("tpm2_pytss")
    q = Quoter()
    yield q
    q.close()


def test_both_replicas_publish_the_same_keys(replicas):
    (a, b), _ = replicas
    ja = httpx.get(a + "/tenants/default/certs").json()
    jb = httpx.get(b + "/tenants/default/certs").json()
    assert ja == jb and ja["keys"]
    conf = httpx.get(b + "/tenants/default/.well-known/openid-configuration").json()
    assert conf["issuer"].endswith("/tenants/default")


def test_nonce_from_one_replica_is_single_use_across_both(replicas, quoter):
    (a, b), admin = replicas
    current = httpx.get(a + "/tenants/default/policies/Tpm", headers=admin).json()["policy"]
    no_aik = "\n".join(line for line in current.splitlines() if '"aikValidated"' not in line)
    r = httpx.put(a + "/tenants/default/policies/Tpm", content=no_aik, headers=admin)
    assert r.status_code == 200, r.text
    nonce = httpx.post(a + "/tenants/default/challenge").json()["nonce"]
    doc = quoter.evidence(nonce)
    r = httpx.post(b + "/tenants/default/attest/Tpm", json=doc, timeout=30)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    # the token signed at B verifies with A's JWKS
    jwks = jwt.PyJWKClient(a + "/tenants/default/certs")
    claims = jwt.decode(token, jwks.get_signing_key_from_jwt(token).key, algorithms=["RS256", "ES256", "PS256"],
                        options={"verify_aud": False})
    assert claims["x-ms-attestation-type"] == "tpm"
    r = httpx.post(a + "/tenants/default/attest/Tpm", json=doc, timeout=30)
    assert r.status_code == 409 and r.json()["code"] == "nonce.replayed"


def test_policy_set_at_one_replica_applies_at_the_other(replicas, quoter):
    (a, b), admin = replicas
    deny = ('version=1.1;\nconfigurationrules { => issueproperty(type="required_pcr_mask", value=0x43FF); };\n'
            'authorizationrules { => deny(); };\n')
    assert httpx.put(a + "/tenants/default/policies/Tpm", content=deny, headers=admin).status_code == 200
    assert httpx.get(b + "/tenants/default/policies/Tpm", headers=admin).json()["policy"] == deny
    nonce = httpx.post(b + "/tenants/default/challenge").json()["nonce"]
    r = httpx.post(b + "/tenants/default/attest/Tpm", json=quoter.evidence(nonce), timeout=30)
    assert r.status_code == 403 and r.json()["code"] == "attestation.denied", r.text


def test_fleet_state_is_shared(replicas, quoter):
    (a, b), admin = replicas
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
