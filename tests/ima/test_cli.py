"""``attestd ima replay`` / ``attestd ima show``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from attestd.cli.main import app
from attestd.testing.imagen import generate


@pytest.fixture()
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by default
        return CliRunner()


@pytest.fixture()
def files(tmp_path):
    g = generate(120, seed=6, templates=("ima-ng", "ima-sig"), violation_rate=0.02)
    b, a = tmp_path / "binary_runtime_measurements", tmp_path / "ascii_runtime_measurements"
    b.write_bytes(g.binary)
    a.write_bytes(g.ascii)
    return g, b, a


def test_replay_json(runner, files):
    g, b, a = files
    for f in (b, a):
        r = runner.invoke(app, ["ima", "replay", str(f), "--json"])
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert out["entries"] == 120
        assert out["pcrs"] == {bank: {"10": v[10].hex()} for bank, v in g.expected.items()}
        assert any("violation" in w for w in out["warnings"])


def test_replay_text_and_bank(runner, files):
    g, b, _ = files
    r = runner.invoke(app, ["ima", "replay", str(b), "--bank", "sha256"])
    assert r.exit_code == 0
    assert g.expected["sha256"][10].hex() in r.stdout and g.expected["sha1"][10].hex() not in r.stdout


def test_replay_pcr10_prefix(runner, files):
    g, b, _ = files
    value = g.running_pcr10["sha256"][79].hex()
    r = runner.invoke(app, ["ima", "replay", str(b), "--json", "--pcr10", value])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["match"] == {"bank": "sha256", "pcr10": value, "entries": 80}
    r = runner.invoke(app, ["ima", "replay", str(b), "--pcr10", "00" * 19 + "01"])
    assert r.exit_code == 1 and "no prefix" in r.stdout


def test_replay_errors_one_line_exit_2(runner, files, tmp_path):
    g, b, _ = files
    data = bytearray(g.binary)
    data[g.offsets[5] + 4] ^= 1
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    r = runner.invoke(app, ["ima", "replay", str(bad)])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ima.template_hash_mismatch") and f"offset {g.offsets[5]}" in lines[0]
    trunc = tmp_path / "trunc"
    trunc.write_bytes(g.binary[:-5])
    r = runner.invoke(app, ["ima", "replay", str(trunc)])
    assert r.exit_code == 2 and r.stderr.startswith("error: ima.truncated") and "offset" in r.stderr
    r = runner.invoke(app, ["ima", "replay", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "input.not_found" in r.stderr
    r = runner.invoke(app, ["ima", "replay", str(b), "--pcr10", "xyz"])
    assert r.exit_code == 2 and "ima.replay.pcr_value" in r.stderr


def test_show(runner, files):
    g, _, a = files
    r = runner.invoke(app, ["ima", "show", str(a), "--json"])
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert len(out["entries"]) == 120 and out["entries"][0]["name"] == "boot_aggregate"
    assert [e["index"] for e in out["entries"] if e["violation"]] == g.violations
    r = runner.invoke(app, ["ima", "show", str(a)])
    assert r.exit_code == 0 and "boot_aggregate" in r.stdout


def test_corpus_cli(runner, corpus):
    k = corpus / "keylime"
    r = runner.invoke(app, ["ima", "show", str(k / "ima_ascii_measurements_openpower.txt"), "--json",
                            "--key", str(k / "ima_rsa2048pub.pem"), "--key", str(k / "ima_secp256k1pub.pem")])
    assert r.exit_code == 0
    sigs = [e["signature"]["status"] for e in json.loads(r.stdout)["entries"]]
    assert sigs == ["unsigned"] * 3 + ["valid"] * 2
    r = runner.invoke(app, ["ima", "replay", str(k / "ima_ascii_bad_signature.txt")])
    assert r.exit_code == 2 and "ima.template_hash_mismatch" in r.stderr
