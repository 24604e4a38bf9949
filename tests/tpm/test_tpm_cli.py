"""``attestd quote verify|show|make-credential`` on real swtpm output (files as tpm2-tools writes them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from attestd.cli.main import app
from attestd.tpm import parse_public_2b

pytestmark = pytest.mark.swtpm

SEL = {"sha1": [0, 16], "sha256": [0, 7, 16], "sha384": [16]}


@pytest.fixture()
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by default
        return CliRunner()


@pytest.fixture(scope="module")
def files(keys, tmp_path_factory):
    """tpm2-tools' own files: ak.pub (TPM2B_PUBLIC), quote.msg, quote.sig, tpm2_pcrread YAML, JSON."""
    tpm, ak = keys.tpm, keys.aks["ecc-sha256"]
    d = tmp_path_factory.mktemp("cli")
    nonce = bytes.fromhex("c0ffee0123456789")
    q = tpm.quote(ak, SEL, nonce=nonce)
    (d / "ak.pub").write_bytes(ak.public)
    (d / "ak.pem").write_bytes(parse_public_2b(ak.public).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (d / "quote.msg").write_bytes(q.attest)
    (d / "quote.sig").write_bytes(q.signature)
    (d / "pcrs.yaml").write_text(tpm.run("tpm2_pcrread", "sha1:0,16+sha256:0,7,16+sha384:16", flush=False).stdout)
    (d / "quote.out").write_text(q.stdout)
    pcrs = {b: {str(i): v.hex() for i, v in vals.items()} for b, vals in q.pcrs.items()}
    (d / "pcrs.json").write_text(json.dumps(pcrs))
    (d / "replay.json").write_text(json.dumps({"pcrs": pcrs, "warnings": []}))
    return d, nonce, q


def _args(d, nonce, *extra, ak="ak.pub"):
    return ["quote", "verify", "--ak", str(d / ak), "--quote", str(d / "quote.msg"), "--signature",
            str(d / "quote.sig"), "--nonce", nonce.hex(), *extra]


def test_verify_readable(runner, files):
    d, nonce, _ = files
    r = runner.invoke(app, _args(d, nonce, "--pcrs", str(d / "pcrs.yaml")))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("OK: quote verified (ecdsa-sha256)")
    assert "selection:       sha1:0,16+sha256:0,7,16+sha384:16" in r.stdout
    assert "match the supplied values" in r.stdout and "resetCount" in r.stdout
    r = runner.invoke(app, _args(d, nonce))
    assert r.exit_code == 0 and "NOT checked" in r.stdout


@pytest.mark.parametrize("pcrs", ["pcrs.yaml", "pcrs.json", "replay.json", "quote.out"])
@pytest.mark.parametrize("ak", ["ak.pub", "ak.pem"])
def test_verify_json_all_input_forms(runner, files, pcrs, ak):
    d, nonce, q = files
    r = runner.invoke(app, _args(d, nonce, "--pcrs", str(d / pcrs), "--json", ak=ak))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["verified"] is True and doc["pcrsVerified"] is True
    assert doc["extraData"] == nonce.hex()
    assert doc["pcrs"]["sha384"]["16"] == q.pcrs["sha384"][16].hex()
    assert set(doc["clockInfo"]) == {"clock", "resetCount", "restartCount", "safe"}


def test_verify_failures_are_one_line_exit_2(runner, files, tmp_path):
    d, nonce, q = files
    r = runner.invoke(app, _args(d, b"\x00" + nonce))
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: quote.nonce_mismatch:") and "offset" in r.stderr
    bad = json.loads((d / "pcrs.json").read_text())
    bad["sha256"]["7"] = "00" * 31 + "01"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    r = runner.invoke(app, _args(d, nonce, "--pcrs", str(tmp_path / "bad.json"), "--json"))
    assert r.exit_code == 2 and r.stderr.startswith("error: quote.pcr_digest_mismatch:")
    assert json.loads(r.stdout)["error"]["code"] == "quote.pcr_digest_mismatch"
    flipped = bytearray(q.attest)
    flipped[0] ^= 1
    (tmp_path / "m").write_bytes(bytes(flipped))
    r = runner.invoke(app, ["quote", "verify", "--ak", str(d / "ak.pub"), "--quote", str(tmp_path / "m"),
                            "--signature", str(d / "quote.sig"), "--nonce", nonce.hex()])
    assert r.exit_code == 2 and r.stderr.startswith("error: quote.magic:") and "offset 0" in r.stderr
    (tmp_path / "t").write_bytes(q.attest[:30])
    r = runner.invoke(app, ["quote", "verify", "--ak", str(d / "ak.pub"), "--quote", str(tmp_path / "t"),
                            "--signature", str(d / "quote.sig"), "--nonce", nonce.hex()])
    assert r.exit_code == 2 and r.stderr.startswith("error: tpm.truncated:")
    r = runner.invoke(app, _args(d, nonce)[:-1] + ["zz"])
    assert r.exit_code == 2 and r.stderr.startswith("error: input.hex:")
    r = runner.invoke(app, _args(d, nonce, "--pcrs", str(tmp_path / "missing.json")))
    assert r.exit_code == 2 and r.stderr.startswith("error: input.not_found:")


def test_show(runner, files):
    d, nonce, q = files
    r = runner.invoke(app, ["quote", "show", str(d / "quote.msg")])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["type"] == "TPM_ST_ATTEST_QUOTE" and doc["extraData"] == nonce.hex()
    r = runner.invoke(app, ["quote", "show", "-t", "public", str(d / "ak.pub")])
    assert json.loads(r.stdout)["parameters"]["curveID"] == "NIST_P256"
    r = runner.invoke(app, ["quote", "show", "-t", "signature", str(d / "quote.sig")])
    assert json.loads(r.stdout)["sigAlg"] == "ecdsa"
    r = runner.invoke(app, ["quote", "show", "-t", "signature", str(d / "quote.msg")])
    assert r.exit_code == 2 and r.stderr.startswith("error: tpm.")


def test_make_credential_command_round_trip(runner, keys, tmp_path):
    ek, ak = keys.eks["rsa"], keys.aks["rsa-sha256"]
    (tmp_path / "ek.pub").write_bytes(ek.public)
    (tmp_path / "ak.name").write_bytes(ak.name)
    out = tmp_path / "cred.out"
    r = runner.invoke(app, ["quote", "make-credential", "--ek", str(tmp_path / "ek.pub"), "--name",
                            str(tmp_path / "ak.name"), "--secret", "deadbeef", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert keys.tpm.activate_credential(ak, ek, out.read_bytes()) == bytes.fromhex("deadbeef")
    # the EK as PEM (e.g. from its certificate) and the Name as hex
    (tmp_path / "ek.pem").write_bytes(parse_public_2b(ek.public).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    r = runner.invoke(app, ["quote", "make-credential", "--ek", str(tmp_path / "ek.pem"), "--name", ak.name.hex(),
                            "--secret", "0102", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert keys.tpm.activate_credential(ak, ek, out.read_bytes()) == b"\x01\x02"


def test_console_script(files):
    """The installed entry point, as a user runs it."""
    d, nonce, q = files
    p = subprocess.run([sys.executable, "-m", "attestd.cli.main", *_args(d, nonce, "--pcrs", str(d / "pcrs.yaml"))],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("OK: quote verified")
