"""``attestd eventlog show`` / ``attestd eventlog replay``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from attestd.cli.main import app
from attestd.errors import EvidenceError
from attestd.eventlog import parse

from evlog_builders import (
    EV_EFI_ACTION,
    EV_EFI_GPT_EVENT,
    EV_S_CRTM_VERSION,
    EV_SEPARATOR,
    SHA256,
    H,
    agile_log,
    measured,
)


@pytest.fixture()
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by default
        return CliRunner()


@pytest.fixture()
def boot_log(tmp_path):
    raw = agile_log(
        measured(0, EV_S_CRTM_VERSION, "v1\0".encode("utf-16-le")),
        measured(4, EV_EFI_ACTION, b"Calling EFI Application from Boot Option"),
        measured(5, EV_SEPARATOR, b"\0\0\0\0"),
        measured(5, EV_EFI_GPT_EVENT, b"gpt" * 10, digest_of=b"not the data"),
    )
    path = tmp_path / "binary_bios_measurements"
    path.write_bytes(raw)
    return path, parse(raw)


def _pcrs_json(values):
    return {bank: {str(p): v.hex() for p, v in sorted(vals.items())} for bank, vals in values.items()}


def test_replay_json_shape(runner, boot_log):
    path, log = boot_log
    r = runner.invoke(app, ["eventlog", "replay", str(path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"pcrs", "warnings"}
    assert out["pcrs"] == _pcrs_json(log.replay())
    assert list(out["pcrs"]) == ["sha1", "sha256"] and list(out["pcrs"]["sha1"]) == ["0", "4", "5"]
    assert [(w["code"], w["event"], w["bank"]) for w in out["warnings"]] == [
        ("eventlog.digest_not_data_hash", 4, "sha1"), ("eventlog.digest_not_data_hash", 4, "sha256")]


def test_replay_text(runner, boot_log):
    path, log = boot_log
    r = runner.invoke(app, ["eventlog", "replay", str(path)])
    assert r.exit_code == 0
    assert f"0x{log.replay()['sha256'][5].hex()}" in r.stdout and "digest_not_data_hash" in r.stdout


def test_replay_expected_match_and_mismatch(runner, boot_log, tmp_path):
    path, log = boot_log
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"pcrs": _pcrs_json(log.replay())}))
    r = runner.invoke(app, ["eventlog", "replay", str(path), "--expected", str(good), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["verification"]["ok"] is True
    assert {c["status"] for c in out["verification"]["checks"]} == {"match"}

    values = _pcrs_json(log.replay())
    values["sha256"]["5"] = "ab" * 32
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pcrs": values}))
    r = runner.invoke(app, ["eventlog", "replay", str(path), "--expected", str(bad)])
    assert r.exit_code == 1
    assert "MISMATCH bank sha256 PCR 5" in r.stdout and "ab" * 32 in r.stdout
    assert log.replay()["sha256"][5].hex() in r.stdout and "FAIL" in r.stdout
    r = runner.invoke(app, ["eventlog", "replay", str(path), "--expected", str(bad), "--json"])
    assert r.exit_code == 1
    mism = [c for c in json.loads(r.stdout)["verification"]["checks"] if c["status"] == "mismatch"]
    assert [(c["bank"], c["pcr"], c["expected"]) for c in mism] == [("sha256", 5, "ab" * 32)]


def test_replay_expected_with_quirk(runner, boot_log, tmp_path):
    path, log = boot_log
    values = log.replay()
    pcr5 = values["sha256"][5]
    for d in (b"Exit Boot Services Invocation", b"Exit Boot Services Returned with Success"):
        pcr5 = H(SHA256, pcr5 + H(SHA256, d))
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps({"sha256": {"5": pcr5.hex()}}))  # bare {bank: {...}} is accepted too
    r = runner.invoke(app, ["eventlog", "replay", str(path), "--expected", str(exp)])
    assert r.exit_code == 0, r.output
    assert "quirk: bank sha256 PCR 5 matches with ebs-not-logged" in r.stdout
    r = runner.invoke(app, ["eventlog", "replay", str(path), "--expected", str(exp), "--no-quirks"])
    assert r.exit_code == 1


def test_errors_are_one_line_with_code_and_offset(runner, tmp_path, boot_log):
    path, _ = boot_log
    broken = tmp_path / "broken"
    broken.write_bytes(path.read_bytes()[:-3])
    for cmd in (["eventlog", "replay", str(broken)], ["eventlog", "show", str(broken)]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: eventlog.truncated") and "offset" in lines[0]
    r = runner.invoke(app, ["eventlog", "replay", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "input.not_found" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = runner.invoke(app, ["eventlog", "replay", str(path), "--expected", str(bad)])
    assert r.exit_code == 2 and "input.json" in r.stderr
    bad.write_text(json.dumps({"pcrs": {"sha256": {"5": "00"}}}))
    r = runner.invoke(app, ["eventlog", "replay", str(path), "--expected", str(bad)])
    assert r.exit_code == 2 and "eventlog.expected_invalid" in r.stderr


def test_show_json(runner, boot_log):
    path, log = boot_log
    r = runner.invoke(app, ["eventlog", "show", str(path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["format"] == "crypto-agile" and out["banks"] == ["sha1", "sha256"]
    assert len(out["events"]) == len(log.events)
    for item, event in zip(out["events"], log.events):
        assert item["index"] == event.index and item["pcr"] == event.pcr and item["type_name"] == event.type_name
        assert item["digests"] == {b: d.hex() for b, d in event.digests.items()}
        assert item["data"] == event.data.hex()
        try:
            decoded = event.decode()
        except EvidenceError as err:  # the fake GPT event: a per-event note in the JSON, not a crash
            assert item["decoded"] is None and item["decode_error"]["code"] == err.code
        else:
            assert item["decoded"] == decoded.to_json() and "decode_error" not in item
    assert out["events"][2]["decoded"] is not None
    assert out["events"][4]["decode_error"]["offset"] == log.events[4].data_offset


def test_show_table(runner, boot_log):
    path, log = boot_log
    r = runner.invoke(app, ["eventlog", "show", str(path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "EV_EFI_ACTION" in r.stdout and "EV_EFI_GPT_EVENT" in r.stdout
    assert log.events[2].digests["sha1"].hex()[:12] in r.stdout
    assert log.events[2].digests["sha256"].hex()[:12] in r.stdout


def test_show_survives_undecodable_event_data(runner, tmp_path):
    # a UEFI variable event whose data is not a UEFI_VARIABLE_DATA: a per-event note, not a crash
    raw = agile_log(measured(7, 0x80000001, b"\x01\x02\x03"))
    path = tmp_path / "log"
    path.write_bytes(raw)
    r = runner.invoke(app, ["eventlog", "show", str(path), "--json"])
    assert r.exit_code == 0, r.output
    item = json.loads(r.stdout)["events"][1]
    assert item["decoded"] is None and item["decode_error"]["code"].startswith("eventlog.")
    r = runner.invoke(app, ["eventlog", "show", str(path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "cannot decode" in r.stdout


def test_show_corpus_logs_never_crash(runner, corpus):
    for path in [*sorted((corpus / "go-tpm-tools").glob("*.bin")), *sorted((corpus / "tpm2-tools").glob("*.bin"))]:
        r = runner.invoke(app, ["eventlog", "show", str(path), "--json"])
        assert r.exit_code == 0, (path, r.output)
        assert len(json.loads(r.stdout)["events"]) == len(parse(path.read_bytes()).events)
