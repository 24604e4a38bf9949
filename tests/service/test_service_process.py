"""`attestd serve` as a real process on 127.0.0.1: first start, JSON logs, graceful SIGTERM, and a
relying party that verifies a token with PyJWT knowing only the issuer URL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from service_helpers import ROOT, bearer, credentials


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command() -> list[str]:
    """`attestd serve` once the lead registered it in attestd.cli.main; the same command otherwise."""
    from attestd.cli import main

    names = {c.name for c in main.app.registered_commands}
    if "serve" in names:
        return [sys.executable, "-c", "from attestd.cli.main import main; main()", "serve"]
    return [sys.executable, "-m", "attestd.cli.serve", "serve"]


def _start(data, *args: str, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """`attestd serve` on a free port with ``data`` as its data directory, once /readyz answers."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTESTD_")}
    env["ATTESTD_LOG_LEVEL"] = "INFO"
    proc = subprocess.Popen([*_command(), "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("server did not start: " + proc.stderr.read().decode(errors="replace"))
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("served")
    proc, base = _start(data)
    yield {"proc": proc, "base": base, "data": data}
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_served_process_end_to_end(server):
    base, data = server["base"], server["data"]
    creds = credentials(data)
    issuer = f"{base}/tenants/default"
    assert creds["issuer"] == issuer
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/openapi.json").json()["info"]["title"] == "attestd"
        assert c.get("/tenants/default/policies/Tpm", headers=bearer(creds["adminToken"])).status_code == 200
        assert c.get("/tenants/default/policies/Tpm").json()["code"] == "auth.missing"
        token = _attested_token(c, creds) if _can_attest() else None
    if token is not None:
        # the relying party knows only the issuer URL
        config = httpx.get(issuer + "/.well-known/openid-configuration").json()
        assert config["issuer"] == issuer
        key = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["RS256", "PS256", "ES256"], issuer=issuer,
                            options={"require": ["exp", "iat", "nbf", "iss"]})
        assert claims["x-ms-attestation-type"] == "tpm"
        # a token changed by one character does not verify
        with pytest.raises(jwt.InvalidSignatureError):
            head, body, sig = token.split(".")
            jwt.decode(".".join([head, body, sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]]), key.key,
                       algorithms=["RS256"], issuer=issuer)
    else:
        # without swtpm: discovery still resolves to the signing key set
        config = httpx.get(issuer + "/.well-known/openid-configuration").json()
        assert config["issuer"] == issuer
        assert httpx.get(config["jwks_uri"]).json()["keys"][0]["kid"]

    # graceful shutdown; the logs are JSON lines with request ids
    proc = server["proc"]
    proc.send_signal(signal.SIGTERM)
    # uvicorn finishes in-flight requests and the lifespan, then re-raises SIGTERM (exit status -15)
    assert proc.wait(30) in (0, -signal.SIGTERM)
    err = proc.stderr.read().decode()
    assert "admin token:" in err and creds["adminToken"] in err  # printed once, on first start
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [doc for doc in lines if doc.get("logger") == "attestd.access"]
    assert access and all(doc["request_id"] for doc in access)
    assert any(doc.get("route") == "/tenants/{t}/policies/{attestation_type}" and doc.get("status") == 401
               for doc in access)
    assert any(doc.get("msg") == "shut down" for doc in lines)


def test_served_with_two_workers(tmp_path):
    """``--workers 2``: one supervisor, two worker processes on one port, each with its own app
    (lifespan, warm-up) and all of them gone after SIGTERM, each having shut down gracefully."""
    proc, base = _start(tmp_path, "--workers", "2")
    try:
        creds = credentials(tmp_path)
        for _ in range(20):  # a new connection each, as hosts arrive
            r = httpx.post(base + "/tenants/default/challenge")
            assert r.status_code == 200 and r.json()["nonce"]
            assert httpx.get(base + "/tenants/default/policies/Tpm", headers=bearer(creds["adminToken"])).status_code == 200
        children = _children(proc.pid)
        assert len(children) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code in (0, -signal.SIGTERM)
    assert not any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in children)
    lines = [json.loads(line) for line in proc.stderr.read().decode().splitlines() if line.startswith("{")]
    assert {doc["pid"] for doc in lines if doc.get("msg") == "shut down"} == set(children)
    assert {doc["pid"] for doc in lines if doc.get("logger") == "attestd.access"} <= set(children)
    assert not [doc for doc in lines if doc.get("level") in ("error", "critical")]


def _children(pid: int) -> list[int]:
    """The worker processes (multiprocessing's resource tracker is a child too)."""
    pids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [p for p in pids if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"


def _can_attest() -> bool:
    from attestd.testing.swtpm import swtpm_available

    return swtpm_available()


def _attested_token(c: httpx.Client, creds) -> str:
    from service_tpm import BootedTPM

    from attestd.policy import builtin

    text = "\n".join(line for line in builtin.text("linux-secure-boot").splitlines() if '"aikValidated"' not in line)
    r = c.put("/tenants/default/policies/Tpm", content=text, headers=bearer(creds["adminToken"]))
    assert r.status_code == 200, r.text
    booted = BootedTPM("sb")
    try:
        nonce = c.post("/tenants/default/challenge").json()["nonce"]
        r = c.post("/tenants/default/attest/Tpm", json=booted.evidence(nonce))
    finally:
        booted.close()
    assert r.status_code == 200, r.text
    return r.json()["token"]
