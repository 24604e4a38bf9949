"""``attestd policy ...`` (the typer app in attestd.cli.policy)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from attestd.cli.policy import app
from attestd.policy import builtin, policy_hash

from .test_signing import make_signer

POLICY = (
    'version=1.0;\nauthorizationrules {\n  [type=="secureBootEnabled", value==true] => permit();\n};\n'
    'issuancerules {\n  c:[type=="tpmVersion"] => issue(type="tpm", value=c.value);\n};\n'
)


@pytest.fixture()
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


@pytest.fixture()
def files(tmp_path):
    p = tmp_path / "p.policy"
    p.write_text(POLICY)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"secureBootEnabled": True, "tpmVersion": 2}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"type": "secureBootEnabled", "value": False}]))
    return tmp_path, p, good, bad


def test_check(runner, files):
    tmp, p, _, _ = files
    r = runner.invoke(app, ["check", str(p)])
    assert r.exit_code == 0 and "ok: version 1.0" in r.stdout and policy_hash(POLICY) in r.stdout
    broken = tmp / "broken.policy"
    broken.write_text(POLICY.replace("value==true", "value=true"))
    r = runner.invoke(app, ["check", str(broken)])
    assert r.exit_code == 2
    assert (
        r.stderr.startswith("error: policy.syntax: line 3, column 36: ") and "did you mean '=='" in r.stderr
    )
    assert len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(app, ["check", str(tmp / "missing.policy")])
    assert r.exit_code == 2 and "input.not_found" in r.stderr


def test_eval_permit_and_deny(runner, files):
    _, p, good, bad = files
    r = runner.invoke(app, ["eval", "--policy", str(p), "--claims", str(good)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("decision: permit") and "tpm = 2" in r.stdout and "-> issue(tpm=2)" in r.stdout
    r = runner.invoke(app, ["eval", "--policy", str(p), "--claims", str(bad), "--json"])
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["decision"] == "deny" and out["issued_claims"] == {}
    assert out["trace"][0]["conditions"][0]["seen"] == [{"issuer": "AttestationService", "value": False}]
    assert "no permit() rule matched" in out["explanation"]


def test_eval_builtin_and_usage_errors(runner, files, tmp_path):
    _, p, good, _ = files
    r = runner.invoke(app, ["eval", "--builtin", "secured-core", "--claims", str(good), "--no-trace"])
    assert r.exit_code == 1 and "trace:" not in r.stdout and "denied by deny()" in r.stdout
    r = runner.invoke(app, ["eval", "--claims", str(good)])
    assert r.exit_code == 2 and "policy.usage" in r.stderr
    notjson = tmp_path / "x.json"
    notjson.write_text("{")
    r = runner.invoke(app, ["eval", "--policy", str(p), "--claims", str(notjson)])
    assert r.exit_code == 2 and "policy.claims_json" in r.stderr


def test_hash(runner, files):
    _, p, _, _ = files
    r = runner.invoke(app, ["hash", str(p)])
    assert r.exit_code == 0 and r.stdout.strip() == policy_hash(POLICY)


def test_builtin_list_show(runner):
    r = runner.invoke(app, ["builtin", "list"])
    assert r.exit_code == 0 and r.stdout.split() == list(builtin.list())
    r = runner.invoke(app, ["builtin", "show", "windows-host"])
    assert r.exit_code == 0 and r.stdout == builtin.text("windows-host")
    r = runner.invoke(app, ["builtin", "show", "nope"])
    assert r.exit_code == 2 and "policy.unknown_builtin" in r.stderr


def test_sign_then_verify(runner, files):
    tmp, p, _, _ = files
    key, cert = make_signer()
    kf, cf = tmp / "k.pem", tmp / "c.pem"
    kf.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = tmp / "p.jws"
    r = runner.invoke(app, ["sign", "--key", str(kf), "--cert", str(cf), str(p), "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify", "--trusted", str(cf), str(out)])
    assert r.exit_code == 0 and r.stdout == POLICY + "\n"
    _, other = make_signer("other")
    of = tmp / "o.pem"
    of.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    r = runner.invoke(app, ["verify", "--trusted", str(of), str(out)])
    assert r.exit_code == 2 and "policy.untrusted_signer" in r.stderr
    broken = tmp / "broken.policy"
    broken.write_text("version=1.0; nonsense")
    r = runner.invoke(app, ["sign", "--key", str(kf), "--cert", str(cf), str(broken)])
    assert r.exit_code == 2 and "policy.syntax" in r.stderr
