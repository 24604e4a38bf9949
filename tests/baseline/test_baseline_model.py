"""The baseline document: a versioned JSON format that round-trips, and precise errors when edited wrongly."""

from __future__ import annotations

import json

import pytest
from corpus_paths import FIXTURES

from attestd.baseline import FORMAT, Allowances, AnyDigest, Baseline, compare, learn
from attestd.errors import EvidenceError
from attestd.eventlog import parse
from attestd.ima import parse as parse_ima

QEMU = FIXTURES / "qemu"


@pytest.fixture(scope="module")
def doc():
    log = parse((QEMU / "sb" / "binary_bios_measurements").read_bytes())
    ima = parse_ima((QEMU / "sb" / "ima" / "binary_runtime_measurements").read_bytes())
    base = learn(log, ima=ima, name="sb", allowances=Allowances.preset("boot-options", ignore_pcrs=(14,)),
                 ima_allow_changed=("/var/log/*",))
    return base.to_json()


def _copy(doc):
    return json.loads(json.dumps(doc))


def test_document_shape(doc):
    assert doc["format"] == FORMAT == "attestd-baseline/1"
    assert doc["name"] == "sb" and doc["source"]["events"] == 49 and doc["source"]["imaEntries"] == 3
    assert list(doc["pcrs"]) == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "14"]
    assert doc["pcrs"]["7"][0] == {
        "event": 4, "type": "EV_EFI_VARIABLE_DRIVER_CONFIG",
        "digests": {"sha1": "d4fdd1f14d4041494deb8fc990c45343d2277d08",
                    "sha256": "ccfc4bb32888a345bc8aeadaba552b627d99348c767681ab3141f5b01e40a40e"},
        "meaning": "SecureBoot = 1 (enabled)"}
    assert doc["allowances"]["ignorePcrs"] == [14]
    assert doc["allowances"]["anyDigest"][1] == {"pcr": 1, "type": "EV_EFI_VARIABLE_BOOT*",
                                                 "meaning": "Boot[0-9A-F][0-9A-F][0-9A-F][0-9A-F]*", "optional": True}
    assert doc["ima"] == {"files": {"/bin/busybox": ["sha256:3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6"],
                                    "/init": ["sha256:be41b8914831747041f6dab901ed0500644b3184bd90a8aa3d1c710123a9ea4c"]},
                          "allowChanged": ["/var/log/*"], "allowNew": False}


def test_round_trip(doc):
    again = Baseline.from_json(_copy(doc))
    assert again.to_json() == doc
    assert again.allowances.any_digest[1] == AnyDigest(1, "EV_EFI_VARIABLE_BOOT*",
                                                       "Boot[0-9A-F][0-9A-F][0-9A-F][0-9A-F]*", optional=True)
    log = parse((QEMU / "sb-initsh" / "binary_bios_measurements").read_bytes())
    assert compare(again, log).to_json() == compare(Baseline.from_json(_copy(doc)), log).to_json()


def test_minimal_document():
    base = Baseline.from_json({"format": FORMAT, "pcrs": {}})
    assert base.pcrs == {} and base.allowances == Allowances() and base.ima is None


def _set(path, value):
    def mutate(d):
        *parents, last = path
        for p in parents:
            d = d[p]
        d[last] = value
    return mutate


def _pop(path):
    def mutate(d):
        *parents, last = path
        for p in parents:
            d = d[p]
        del d[last]
    return mutate


@pytest.mark.parametrize("mutate,field", [
    (_set(["format"], "attestd-baseline/2"), "format"),
    (_pop(["format"]), "format"),
    (_pop(["pcrs"]), "pcrs"),
    (_set(["pcrs", "x"], []), "pcrs.x"),
    (_set(["pcrs", "32"], []), "pcrs.32"),
    (_set(["pcrs", "7"], {}), "pcrs.7"),
    (_set(["pcrs", "7", 0, "digests", "sha256"], "XYZ"), "pcrs.7[0].digests.sha256"),
    (_set(["pcrs", "7", 0, "digests", "sha256"], "ab" * 31), "pcrs.7[0].digests.sha256"),
    (_set(["pcrs", "7", 0, "digests"], {}), "pcrs.7[0].digests"),
    (_pop(["pcrs", "7", 1, "type"]), "pcrs.7[1].type"),
    (_set(["pcrs", "7", 1, "event"], "5"), "pcrs.7[1].event"),
    (_set(["pcrs", "7", 1, "event"], True), "pcrs.7[1].event"),
    (_set(["pcrs", "7", 1, "meaning"], 5), "pcrs.7[1].meaning"),
    (_set(["pcrs", "7", 1, "digest"], "ab"), "pcrs.7[1].digest"),
    (_set(["allowances", "ignorePcrs"], ["8"]), "allowances.ignorePcrs[0]"),
    (_set(["allowances", "ignorePcrs"], [8, 40]), "allowances.ignorePcrs[1]"),
    (_set(["allowances", "ignorePcrs"], 8), "allowances.ignorePcrs"),
    (_set(["allowances", "ignorePCRs"], [8]), "allowances.ignorePCRs"),
    (_set(["allowances", "anyDigest", 0, "pcr"], None), "allowances.anyDigest[0].pcr"),
    (_set(["allowances", "anyDigest", 1, "optional"], "yes"), "allowances.anyDigest[1].optional"),
    (_set(["allowances", "anyDigest", 1], "BootOrder"), "allowances.anyDigest[1]"),
    (_set(["ima", "files", "/init"], "sha256:00"), "ima.files['/init']"),
    (_set(["ima", "files", "/init"], [1]), "ima.files['/init'][0]"),
    (_set(["ima", "allowNew"], "true"), "ima.allowNew"),
    (_set(["ima", "allowChanged"], ["/var/log/*", None]), "ima.allowChanged[1]"),
    (_set(["name"], 7), "name"),
    (_set(["createdAt"], 7), "createdAt"),
    (_set(["extra"], 1), "extra"),
])
def test_malformed_baseline_names_the_field(doc, mutate, field):
    bad = _copy(doc)
    mutate(bad)
    with pytest.raises(EvidenceError) as info:
        Baseline.from_json(bad)
    assert info.value.code == "baseline.invalid"
    assert info.value.field == field
    assert str(info.value).startswith(f"baseline.invalid: {field}: ")


def test_not_an_object():
    with pytest.raises(EvidenceError) as info:
        Baseline.from_json([])
    assert (info.value.code, info.value.field) == ("baseline.invalid", "$")
