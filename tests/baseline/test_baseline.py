"""Baselines learned from the project's QEMU boots: match, and differences named by event."""

from __future__ import annotations

import json

import pytest
from corpus_paths import FIXTURES
from typer.testing import CliRunner

from attestd.baseline import Baseline, compare, learn
from attestd.cli.main import app
from attestd.errors import EvidenceError
from attestd.eventlog import parse
from attestd.ima import parse as parse_ima

QEMU = FIXTURES / "qemu"
runner = CliRunner()


def _log(variant: str):
    return parse((QEMU / variant / "binary_bios_measurements").read_bytes())


@pytest.fixture(scope="module")
def baseline():
    return learn(_log("sb"), name="sb")


def test_second_boot_matches(baseline):
    result = compare(baseline, _log("sb-second"))
    assert result.matches and result.differences == ()
    assert result.compared_pcrs == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14)


def test_init_sh_is_named_as_the_pcr8_grub_command(baseline):
    result = compare(baseline, _log("sb-initsh"))
    assert not result.matches
    pcr8 = [d for d in result.differences if d.pcr == 8]
    assert {d.kind for d in pcr8} == {"changed"}
    cmdline = next(d for d in pcr8 if "kernel command line changed" in d.message)
    assert cmdline.added == ("init=/bin/sh",) and cmdline.removed == ()
    assert cmdline.expected == "kernel_cmdline: /vmlinuz console=ttyS0 rootfstype=ramfs ima_policy=tcb " \
                               "ima_template=ima-ng ima_hash=sha256 panic=-1"
    assert cmdline.found == cmdline.expected + " init=/bin/sh"
    assert cmdline.message.startswith("PCR 8, event 44, EV_IPL: kernel command line changed: expected \"/vmlinuz")
    linux = next(d for d in pcr8 if 'GRUB command changed: expected "linux ' in d.message)
    assert linux.added == ("init=/bin/sh",)
    # grub.cfg itself (PCR 9) changed too; nothing else did
    assert {(d.pcr, d.kind) for d in result.differences} == {(8, "changed"), (9, "changed")}


def test_secure_boot_off_is_named_in_pcr7(baseline):
    result = compare(baseline, _log("nosb"))
    sb = next(d for d in result.differences if d.pcr == 7 and d.expected and d.expected.startswith("SecureBoot"))
    assert sb.kind == "changed"
    assert sb.expected == "SecureBoot = 1 (enabled)" and sb.found == "SecureBoot = 0 (disabled)"
    assert sb.message == ('PCR 7, event 4, EV_EFI_VARIABLE_DRIVER_CONFIG: changed: '
                          'expected "SecureBoot = 1 (enabled)" found "SecureBoot = 0 (disabled)"')
    # without Secure Boot shim does not LoadImage the kernel: two PCR 4 events are missing
    missing = [d for d in result.differences if d.kind == "missing" and d.pcr == 4]
    assert len(missing) == 2


def test_round_trip_and_an_edited_allowance(baseline):
    doc = json.loads(json.dumps(baseline.to_json()))
    again = Baseline.from_json(doc)
    assert again.to_json() == baseline.to_json()
    doc["allowances"]["ignorePcrs"] = [8, 9]
    assert compare(Baseline.from_json(doc), _log("sb-initsh")).matches
    # allowing any digest for GRUB's kernel_cmdline event alone is not enough: the linux command differs too
    doc["allowances"]["ignorePcrs"] = [9]
    doc["allowances"]["anyDigest"].append({"pcr": 8, "type": "EV_IPL", "meaning": "kernel_cmdline: *"})
    left = compare(Baseline.from_json(doc), _log("sb-initsh")).differences
    assert left and all("kernel command line" not in d.message for d in left)


@pytest.mark.parametrize("mutate,path", [
    (lambda d: d.update(format="other/1"), "format"),
    (lambda d: d["pcrs"]["7"][0].update(digests={"sha256": "XYZ"}), "pcrs.7[0].digests.sha256"),
    (lambda d: d["pcrs"]["7"][1].pop("type"), "pcrs.7[1].type"),
    (lambda d: d["allowances"].update(ignorePcrs=["8"]), "allowances.ignorePcrs[0]"),
    (lambda d: d["pcrs"].update({"x": []}), "pcrs.x"),
])
def test_malformed_baseline_names_the_field(baseline, mutate, path):
    doc = json.loads(json.dumps(baseline.to_json()))
    mutate(doc)
    with pytest.raises(EvidenceError) as info:
        Baseline.from_json(doc)
    assert info.value.code == "baseline.invalid" and info.value.field == path


def test_ima_changed_and_new_files():
    ima_text = (QEMU / "sb" / "ima" / "ascii_runtime_measurements").read_text()
    base = learn(_log("sb"), ima=parse_ima(ima_text.encode()), ima_allow_changed=("/etc/*",))
    assert compare(base, _log("sb"), ima=parse_ima(ima_text.encode())).matches
    lines = ima_text.splitlines()
    path = lines[2].split()[-1]
    old = lines[2].split()[3]
    lines[2] = lines[2].replace(old, "sha256:" + "ab" * 32)
    lines.append(lines[1].replace(lines[1].split()[-1], "/tmp/dropper"))
    result = compare(base, _log("sb"), ima=parse_ima(("\n".join(lines) + "\n").encode()))
    kinds = {(d.kind, d.message.split(": ", 1)[1].split(" ")[0]) for d in result.differences}
    assert kinds == {("ima-changed", path), ("ima-new", "/tmp/dropper")}


def test_cli_learn_and_compare(tmp_path):
    out = tmp_path / "baseline.json"
    r = runner.invoke(app, ["baseline", "learn", "--eventlog", str(QEMU / "sb" / "binary_bios_measurements"),
                            "-o", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["baseline", "compare", str(out), "--eventlog",
                            str(QEMU / "sb-second" / "binary_bios_measurements")])
    assert r.exit_code == 0 and r.output.startswith("match")
    r = runner.invoke(app, ["baseline", "compare", str(out), "--eventlog",
                            str(QEMU / "sb-initsh" / "binary_bios_measurements")])
    assert r.exit_code == 1 and "init=/bin/sh" in r.output and "PCR 8, event 44" in r.output
    r = runner.invoke(app, ["baseline", "compare", str(out), "--json", "--eventlog",
                            str(QEMU / "nosb" / "binary_bios_measurements")])
    assert r.exit_code == 1
    doc = json.loads(r.output)
    assert doc["matches"] is False and any(d["expected"] == "SecureBoot = 1 (enabled)" for d in doc["differences"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = runner.invoke(app, ["baseline", "compare", str(bad), "--eventlog",
                            str(QEMU / "sb" / "binary_bios_measurements")])
    assert r.exit_code == 2 and "baseline.invalid" in r.output
