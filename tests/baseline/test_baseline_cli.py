"""``attestd baseline learn|compare`` (the sub-application, as registered under ``attestd baseline``)."""

from __future__ import annotations

import json

import pytest
from corpus_paths import FIXTURES
from typer.testing import CliRunner

from attestd.cli.baseline import app

QEMU = FIXTURES / "qemu"
runner = CliRunner()


def _bios(variant: str) -> str:
    return str(QEMU / variant / "binary_bios_measurements")


def _ima(variant: str) -> str:
    return str(QEMU / variant / "ima" / "binary_runtime_measurements")


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline") / "baseline.json"
    r = runner.invoke(app, ["learn", "--eventlog", _bios("sb"), "--ima", _ima("sb"), "--name", "sb", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output == (f"baseline: 48 events in PCRs [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14], 2 IMA files; "
                        f"allowances: 0 anyDigest rules -> {out}\n")
    return out


def test_second_boot_matches(learned):
    r = runner.invoke(app, ["compare", str(learned), "--eventlog", _bios("sb-second"), "--ima", _ima("sb-second")])
    assert r.exit_code == 0, r.output
    assert r.output == "match: PCRs [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14] and the IMA-measured files are as in the baseline\n"


def test_init_sh(learned):
    r = runner.invoke(app, ["compare", str(learned), "--eventlog", _bios("sb-initsh")])
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[0] == "4 differences from the baseline:"
    assert lines[2].startswith('  PCR 8, event 40, EV_IPL: GRUB command changed: expected "linux /vmlinuz ')
    assert lines[2].endswith(' panic=-1 init=/bin/sh" (added init=/bin/sh)')
    assert lines[3].startswith("  PCR 8, event 44, EV_IPL: kernel command line changed:")


def test_nosb_json(learned):
    r = runner.invoke(app, ["compare", str(learned), "--json", "--eventlog", _bios("nosb")])
    assert r.exit_code == 1
    doc = json.loads(r.output)
    assert doc["matches"] is False and doc["imaCompared"] is False and doc["banks"]["7"] == "sha256"
    sb = next(d for d in doc["differences"] if d["expected"] and d["expected"]["summary"].startswith("SecureBoot"))
    assert sb["kind"] == "changed" and sb["pcr"] == 7
    assert sb["expected"] == {"event": 4, "type": "EV_EFI_VARIABLE_DRIVER_CONFIG", "summary": "SecureBoot = 1 (enabled)",
                              "digest": "ccfc4bb32888a345bc8aeadaba552b627d99348c767681ab3141f5b01e40a40e"}
    assert sb["found"]["summary"] == "SecureBoot = 0 (disabled)" and sb["found"]["event"] == 4
    missing = [d for d in doc["differences"] if d["kind"] == "missing"]
    assert missing and all(d["found"] is None for d in missing)


def test_learn_with_allowances_to_stdout():
    r = runner.invoke(app, ["learn", "--eventlog", _bios("sb"), "-o", "-", "--allow", "boot-order",
                            "--ignore-pcr", "9", "--ignore-pcr", "8"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["allowances"] == {"ignorePcrs": [8, 9], "anyDigest": [
        {"pcr": 1, "type": "EV_EFI_VARIABLE_BOOT*", "meaning": "BootOrder*"}]}
    assert "ima" not in doc


def test_edited_allowance_makes_init_sh_match(learned, tmp_path):
    doc = json.loads(learned.read_text())
    doc["allowances"]["ignorePcrs"] = [8, 9]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    r = runner.invoke(app, ["compare", str(edited), "--eventlog", _bios("sb-initsh")])
    assert r.exit_code == 0 and r.output.startswith("match: PCRs [0, 1, 2, 3, 4, 5, 6, 7, 14]")


def test_ima_given_but_not_in_the_baseline(tmp_path):
    out = tmp_path / "b.json"
    assert runner.invoke(app, ["learn", "--eventlog", _bios("sb"), "-o", str(out)]).exit_code == 0
    r = runner.invoke(app, ["compare", str(out), "--eventlog", _bios("sb"), "--ima", _ima("sb")])
    assert r.exit_code == 0 and "note: the baseline has no IMA files" in r.output


@pytest.mark.parametrize("content,code", [
    ("{not json", "baseline.invalid: $: "),
    ('{"format": "attestd-baseline/1", "pcrs": {"7": [{"event": 4}]}}', "baseline.invalid: pcrs.7[0].type: "),
    ('{"format": "attestd-baseline/1", "pcrs": {}, "allowances": {"ignorePCRs": [8]}}',
     "baseline.invalid: allowances.ignorePCRs: unknown member"),
])
def test_bad_baseline_is_exit_2(tmp_path, content, code):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    r = runner.invoke(app, ["compare", str(bad), "--eventlog", _bios("sb")])
    assert r.exit_code == 2 and f"error: {code}" in r.output


def test_bad_inputs_are_exit_2(learned, tmp_path):
    r = runner.invoke(app, ["compare", str(learned), "--eventlog", str(tmp_path / "absent")])
    assert r.exit_code == 2 and "input.not_found" in r.output
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00" * 7)
    r = runner.invoke(app, ["compare", str(learned), "--eventlog", str(garbage)])
    assert r.exit_code == 2 and "error: eventlog." in r.output
    r = runner.invoke(app, ["learn", "--eventlog", _bios("sb"), "-o", "-", "--allow", "everything"])
    assert r.exit_code == 2 and "unknown allowance 'everything'" in r.output
    r = runner.invoke(app, ["learn", "--eventlog", _bios("sb"), "-o", "-", "--ignore-pcr", "40"])
    assert r.exit_code == 2 and "input.invalid" in r.output
    r = runner.invoke(app, ["learn", "--eventlog", _bios("sb"), "-o", "-", "--ima-allow-new"])
    assert r.exit_code == 2 and "need --ima" in r.output
