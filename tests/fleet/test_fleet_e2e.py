"""The whole loop with real parts: swtpm holding a real boot's PCRs, the agent (tpm2-pytss) and a
real `attestd serve` over HTTP - enroll, attest, identity certificate; break the boot state ->
quarantine, incident, webhook, revocation; remediate -> rejoin; a baseline catches init=/bin/sh."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from corpus_paths import FIXTURES
from cryptography import x509

from attestd.testing.bootreplay import replay_into_swtpm
from attestd.testing.swtpm import SwTPM, swtpm_available

pytestmark = [pytest.mark.swtpm]
if not swtpm_available():
    pytest.skip("swtpm / tpm2-tools not installed", allow_module_level=True)
pytest.importorskip("tpm2_pytss", reason="tpm2-pytss is not installed")

from attestd.agent.client import Agent, AgentConfig, AgentError
from attestd.agent.tpm import AgentTPM

QEMU = FIXTURES / "qemu"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A local webhook receiver that checks each delivery's HMAC signature."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict, bool]] = []
        self.secret: bytes | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts, mac = dict(p.split("=", 1) for p in self.headers["X-Attestd-Signature"].split(",")).values()
                good = outer.secret is not None and hmac.compare_digest(
                    mac, hmac.new(outer.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest())
                outer.events.append((self.headers["X-Attestd-Event"], json.loads(body), good))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, event: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, payload, good in self.events:
                if name == event:
                    assert good, "webhook signature does not verify"
                    return payload
            time.sleep(0.1)
        raise AssertionError(f"no {event} webhook; got {[e[0] for e in self.events]}")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from attestd.cli.main import main; main()", "serve",
                             "--data-dir", str(data), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=open(data / "server.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    creds = json.loads((data / "initial-credentials.json").read_text())
    yield url, creds["adminToken"]
    proc.terminate()
    proc.wait(15)


def test_enroll_attest_quarantine_remediate_rejoin(service, tmp_path):
    url, token = service
    admin = {"Authorization": f"Bearer {token}"}
    api = httpx.Client(base_url=url, headers=admin, timeout=30)
    receiver = Receiver()
    r = api.post("/tenants/default/webhooks", json={"url": receiver.url})
    assert r.status_code == 201, r.text
    receiver.secret = __import__("base64").b64decode(r.json()["secret"])

    swtpm = SwTPM()
    swtpm.__enter__()
    try:
        log = QEMU / "sb" / "binary_bios_measurements"
        replay_into_swtpm(swtpm, log.read_bytes())
        config = AgentConfig(server=url, tenant="default", token=token, state_dir=tmp_path / "agent",
                             eventlog=str(log), ima=None, name="web-1")
        tpm = AgentTPM(swtpm.tcti)
        agent = Agent(config, tpm)
        host = agent.enroll()
        assert api.get(f"/tenants/default/hosts/{host}").json()["state"] == "enrolling"

        # a secret the service releases after attestation, sealed to this TPM and the attested PCRs
        r = api.put(f"/tenants/default/hosts/{host}/secrets/disk-key",
                    json={"value": __import__("base64").b64encode(b"luks passphrase").decode()})
        assert r.status_code == 200, r.text

        # 1. the default policy (linux-secure-boot, aikValidated from credential activation) permits
        answer = agent.attest()
        (sealed,) = answer["sealedSecrets"]
        assert sealed["name"] == "disk-key" and agent.unseal(sealed) == b"luks passphrase"
        assert answer["state"] == "trusted" and answer["token"]
        cert = x509.load_pem_x509_certificate(answer["certificate"].encode())
        ca_pem = api.get("/tenants/default/ca.pem").content
        (tmp_path / "ca.pem").write_bytes(ca_pem)
        (tmp_path / "host.pem").write_text(answer["certificate"])
        out = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "host.pem")],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        identity = tpm.identity_key("ecc")
        from attestd.tpm import parse_public_any
        assert cert.public_key().public_numbers() == parse_public_any(identity.public).public_key().public_numbers()
        assert f"urn:attestd:host:default:{host}" in str(cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value)

        # 2. a covered PCR changes after boot: the sealed secret no longer opens, and the log no
        #    longer replays -> quarantine
        swtpm.extend(8, {"sha256": b"\x42" * 32, "sha1": b"\x42" * 20})
        from attestd.agent.tpm import TPMError
        with pytest.raises(TPMError):
            agent.unseal(sealed)
        with pytest.raises(AgentError) as info:
            agent.attest()
        assert info.value.code == "eventlog.replay_mismatch"
        state = api.get(f"/tenants/default/hosts/{host}").json()
        assert state["state"] == "quarantined"
        incident = state["incidents"][0]
        assert incident["code"] == "eventlog.replay_mismatch"
        assert "PCR 8" in incident["summary"] and "sha256" in incident["summary"]
        assert incident["lastGoodAttestationId"] is not None
        assert incident["lastGoodAttestationId"] == state["lastGoodAttestationId"]
        payload = receiver.wait_for("quarantine")
        assert payload["hostId"] == host and payload["incidentId"] == incident["incidentId"]
        crl = x509.load_der_x509_crl(api.get("/tenants/default/crl").content)
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        # still quarantined: a clean attestation alone does not bring it back
        tpm.close()
        swtpm.restart()
        replay_into_swtpm(swtpm, log.read_bytes())
        tpm = AgentTPM(swtpm.tcti)
        agent = Agent(config, tpm)
        with pytest.raises(AgentError) as info:
            agent.attest()
        assert info.value.code == "host.quarantined"

        # 3. remediate -> the next clean attestation rejoins
        assert api.post(f"/tenants/default/hosts/{host}:remediate").json()["state"] == "remediating"
        receiver.wait_for("remediation")
        answer = agent.attest()
        assert answer["state"] == "trusted" and answer["certificate"]
        receiver.wait_for("rejoin")
        state = api.get(f"/tenants/default/hosts/{host}").json()
        assert [h["to"] for h in state["history"]] == ["enrolling", "trusted", "quarantined", "remediating", "trusted"]
        assert state["incidents"][0]["closedAt"] is not None

        # 4. a baseline learned from the good boot quarantines the boot with init=/bin/sh
        from attestd.baseline import learn
        from attestd.eventlog import parse
        r = api.put(f"/tenants/default/hosts/{host}/baseline", json=learn(parse(log.read_bytes())).to_json())
        assert r.status_code == 200, r.text
        tpm.close()
        swtpm.restart()
        initsh = QEMU / "sb-initsh" / "binary_bios_measurements"
        replay_into_swtpm(swtpm, initsh.read_bytes())
        tpm = AgentTPM(swtpm.tcti)
        agent = Agent(AgentConfig(**{**config.__dict__, "eventlog": str(initsh)}), tpm)
        with pytest.raises(AgentError) as info:
            agent.attest()
        assert info.value.code == "baseline.mismatch"
        incidents = api.get("/tenants/default/incidents", params={"host": host, "open": True}).json()["incidents"]
        assert len(incidents) == 1
        summary = incidents[0]["summary"]
        assert "PCR 8" in summary and "init=/bin/sh" in summary and "kernel command line changed" in summary
        tpm.close()

        # the same over the command line
        from typer.testing import CliRunner

        from attestd.cli.main import app

        run = CliRunner().invoke
        common = ["--server", url, "--token", token]
        r = run(app, ["hosts", "list", *common, "--json"])
        assert r.exit_code == 0 and json.loads(r.output)["hosts"][0]["state"] == "quarantined"
        r = run(app, ["incidents", "show", incidents[0]["incidentId"], *common])
        assert r.exit_code == 0 and "init=/bin/sh" in r.output
        r = run(app, ["hosts", "show", host, *common])
        assert r.exit_code == 0 and "remediating" in r.output
        r = run(app, ["hosts", "remediate", host, *common])
        assert r.exit_code == 0 and "remediating" in r.output
        r = run(app, ["agent", "attest", "--once", "--server", url, "--tcti", swtpm.tcti, "--state-dir",
                      str(tmp_path / "agent"), "--eventlog", str(initsh), "--ima", ""])
        assert r.exit_code == 1 and "baseline.mismatch" in r.output
    finally:
        swtpm.__exit__(None, None, None)



def test_agent_command_line(service, tmp_path):
    from typer.testing import CliRunner

    from attestd.cli.main import app

    url, token = service
    run = CliRunner().invoke
    with SwTPM() as swtpm:
        log = QEMU / "sb-second" / "binary_bios_measurements"
        replay_into_swtpm(swtpm, log.read_bytes())
        state = tmp_path / "agent"
        r = run(app, ["agent", "enroll", "--server", url, "--token", token, "--tcti", swtpm.tcti,
                      "--state-dir", str(state), "--name", "db-1"])
        assert r.exit_code == 0, r.output
        host = json.loads((state / "agent.json").read_text())["hostId"]
        r = run(app, ["agent", "attest", "--once", "--server", url, "--tcti", swtpm.tcti, "--state-dir", str(state),
                      "--eventlog", str(log), "--ima", ""])
        assert r.exit_code == 0, r.output
        assert f"host {host} is trusted" in r.output
        cert = x509.load_pem_x509_certificate((state / "identity.pem").read_bytes())
        assert cert.subject.rfc4514_string() == f"O=default,CN={host}"
        r = run(app, ["hosts", "retire", host, "--server", url, "--token", token])
        assert r.exit_code == 0 and "retired" in r.output
        r = run(app, ["agent", "attest", "--once", "--server", url, "--tcti", swtpm.tcti, "--state-dir", str(state),
                      "--eventlog", str(log), "--ima", ""])
        assert r.exit_code == 1 and "host.retired" in r.output
