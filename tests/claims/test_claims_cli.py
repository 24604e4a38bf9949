"""`attestd claims` and `attestd policy eval --eventlog` from the command line."""

from __future__ import annotations

import json

from corpus_paths import FIXTURES
from typer.testing import CliRunner

from attestd.cli.main import app

QEMU = FIXTURES / "qemu"
runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_claims_table_and_json():
    log = str(QEMU / "sb" / "binary_bios_measurements")
    result = _run("claims", "--eventlog", log)
    assert result.exit_code == 0, result.output
    assert "self-replay" in result.output and "secureBootEnabled" in result.output
    result = _run("claims", "--eventlog", log, "--pcrs", str(QEMU / "sb" / "pcrs.json"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["provenance"] == "pcrs"
    assert doc["claims"]["bootApplications"] == ["shim", "grub", "kernel"]
    assert doc["uefi"]["databases"]["PK"]["certificates"][0]["commonName"] == "Debian UEFI Secure Boot (PK/KEK key)"
    assert doc["bootChain"]["kernelImagePath"] == "/vmlinuz"


def test_claims_with_ima_and_events():
    result = _run("claims", "--eventlog", str(QEMU / "sb" / "binary_bios_measurements"),
                  "--ima", str(QEMU / "sb" / "ima" / "binary_runtime_measurements"),
                  "--pcrs", str(QEMU / "sb" / "pcrs_after.json"), "--json", "--events")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["ima"]["measurements"][0]["path"] == "boot_aggregate"
    assert doc["claims"]["events"]["Events"][0]["EventSeq"] == 1
    assert doc["claims"]["ima"]["Measurements"][0]["Path"] == "boot_aggregate"


def test_claims_errors_are_one_line(tmp_path):
    bad = tmp_path / "log.bin"
    bad.write_bytes(b"\x00" * 10)
    result = _run("claims", "--eventlog", str(bad))
    assert result.exit_code == 2
    assert result.output.startswith("error: eventlog.") or "error: eventlog." in result.output
    pcrs = tmp_path / "pcrs.json"
    pcrs.write_text(json.dumps({"sha256": {"7": "00" * 32}}))
    result = _run("claims", "--eventlog", str(QEMU / "sb" / "binary_bios_measurements"), "--pcrs", str(pcrs))
    assert result.exit_code == 2 and "eventlog.replay_mismatch" in result.output


def test_policy_eval_on_an_event_log():
    sb = str(QEMU / "sb" / "binary_bios_measurements")
    result = _run("policy", "eval", "--builtin", "linux-secure-boot", "--eventlog", sb,
                  "--pcrs", str(QEMU / "sb" / "pcrs.json"), "--aik-validated")
    assert result.exit_code == 0, result.output
    assert "decision: permit" in result.output
    result = _run("policy", "eval", "--builtin", "linux-secure-boot",
                  "--eventlog", str(QEMU / "nosb" / "binary_bios_measurements"), "--aik-validated", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output[result.output.index("{"):])
    assert doc["permitted"] is False and "secureBootEnabled" in doc["explanation"]
    result = _run("policy", "eval", "--builtin", "linux-secure-boot", "--eventlog", sb, "--claims", sb)
    assert result.exit_code == 2 and "policy.usage" in result.output
