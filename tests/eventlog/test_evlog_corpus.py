"""Real public logs from ../shared/corpus (INDEX.md section 1) against their upstream expected values.

UPSTREAM/CROSS-CHECKED values must match exactly; DERIVED values (keylime, some go-attestation logs)
are regression checks only. Files are read in place; nothing is copied into the repository.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from attestd.eventlog import LogFormat, parse
from attestd.eventlog.constants import EventType

from evlog_builders import SHA1, SHA256, independent_replay
from evlog_yaml import compare_with_tpm2_eventlog as _compare_with_yaml
from evlog_yaml import load_tpm2_eventlog_yaml

EV_BSA = int(EventType.EV_EFI_BOOT_SERVICES_APPLICATION)
EV_EFI_ACTION = int(EventType.EV_EFI_ACTION)

GO_TPM_TOOLS_CASES = ["Rhel8GCE", "UbuntuAmdSevGCE", "Ubuntu2104NoDbxGCE", "Ubuntu2104NoSecureBootGCE",
                      "GlinuxNoSecureBootLaptop", "ArchLinuxWorkstation", "Debian10GCE", "COS85AmdSev",
                      "COS93AmdSev"]
TPM2_TOOLS_LOGS = ["event-bootorder.bin", "event-postcode.bin", "event-uefi-sha1-log.bin",
                   "event-sd-boot-fedora37.bin", "specid-vendordata.bin", "event-uefivar.bin",
                   "event-uefiaction.bin"]


def _read(corpus: Path, *parts: str) -> bytes:
    return corpus.joinpath(*parts).read_bytes()


def _hexmap(pcrs: dict) -> dict[str, dict[int, bytes]]:
    return {bank: {int(i): bytes.fromhex(v) for i, v in vals.items()} for bank, vals in pcrs.items()}


# -- go-tpm-tools ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gtt_expected(corpus):
    return json.loads((corpus / "go-tpm-tools" / "expected_eventlogs.json").read_text())


def test_go_tpm_tools_case_list_is_complete(gtt_expected):
    assert sorted(k for k in gtt_expected if not k.startswith("_")) == sorted(GO_TPM_TOOLS_CASES)


@pytest.mark.parametrize("case", GO_TPM_TOOLS_CASES)
def test_go_tpm_tools_logs_replay_to_upstream_pcrs(corpus, gtt_expected, case):
    spec = gtt_expected[case]
    log = parse(_read(corpus, "go-tpm-tools", spec["file"]))
    expected = _hexmap(spec["pcrs"])
    report = log.verify(expected, quirks=False)
    assert report.ok and all(c.status == "match" for c in report.checks)
    assert sum(len(v) for v in expected.values()) == len(report.checks)
    replayed = log.replay()
    for bank, values in expected.items():
        assert replayed[bank] == values  # exactly the PCRs that have events, every one matching
    # expected_efi_app_digests: digests of the EV_EFI_BOOT_SERVICES_APPLICATION events in PCR4, in order
    apps = [e for e in log.events if e.pcr == 4 and e.event_type == EV_BSA]
    for bank, digests in spec.get("expected_efi_app_digests", {}).items():
        assert [e.digests[bank].hex() for e in apps] == digests
    if case == "Debian10GCE":
        assert log.format is LogFormat.SHA1


def test_arch_linux_zero_length_secureboot_variable(corpus, gtt_expected):
    """INDEX.md: the SecureBoot variable has zero-length data; parsing and replay must not break."""
    log = parse(_read(corpus, "go-tpm-tools", "arch-linux-workstation.bin"))
    sb = [e for e in log.events
          if e.event_type == EventType.EV_EFI_VARIABLE_DRIVER_CONFIG and "SecureBoot".encode("utf-16-le") in e.data]
    assert len(sb) == 1
    assert int.from_bytes(sb[0].data[24:32], "little") == 0  # VariableDataLength
    assert log.compare(_hexmap(gtt_expected["ArchLinuxWorkstation"]["pcrs"])).ok
    # EFI applications are measured with no "Calling EFI Application from Boot Option" action before
    # them (a strict parser's "before CallingEFIApp event"): replay does not care about event order
    assert len([e for e in log.events if e.event_type == EV_BSA]) == 2
    assert not any(e.event_type == EV_EFI_ACTION for e in log.events)


def test_go_tpm_tools_logs_match_an_independent_replay(corpus, gtt_expected):
    for case in GO_TPM_TOOLS_CASES:
        log = parse(_read(corpus, "go-tpm-tools", gtt_expected[case]["file"]))
        names = {"sha1": SHA1, "sha256": SHA256}
        events = [(e.pcr, e.event_type, {names[b]: d for b, d in e.digests.items() if b in names})
                  for e in log.events[1 if log.spec_id else 0:]]
        # glinux-alex.bin starts with a StartupLocality(3) EV_NO_ACTION event: PCR0 starts at 0...03
        locality = 3 if case == "GlinuxNoSecureBootLaptop" else 0
        assert any(e.data == b"StartupLocality\0\3" for e in log.events) == bool(locality)
        replayed = log.replay()
        assert {b: replayed[b] for b in ("sha1", "sha256") if b in replayed} == independent_replay(
            events, locality=locality)


def test_ebs_quirk_on_a_real_log_with_its_ebs_events_removed(corpus, gtt_expected):
    raw = _read(corpus, "go-tpm-tools", "rhel8-uefi.bin")
    log = parse(raw)
    ebs = [e for e in log.events if e.pcr == 5 and e.event_type == EV_EFI_ACTION
           and e.data.startswith(b"Exit Boot Services")]
    assert [e.data for e in ebs] == [b"Exit Boot Services Invocation", b"Exit Boot Services Returned with Success"]
    expected = _hexmap(gtt_expected["Rhel8GCE"]["pcrs"])

    def without(*events):
        out = raw
        for e in sorted(events, key=lambda e: -e.offset):
            out = out[:e.offset] + out[e.offset + e.size:]
        return parse(out)

    stripped = without(*ebs)
    report = stripped.verify(expected)
    assert [(q.name, q.bank, q.pcr) for q in report.quirks_applied] == [("ebs-not-logged", "sha1", 5),
                                                                        ("ebs-not-logged", "sha256", 5)]
    assert not stripped.compare(expected, quirks=False).ok
    # only the success event missing: the quirk's precondition fails, the mismatch stands
    half = without(ebs[1])
    report = half.compare(expected)
    assert [(c.bank, c.pcr) for c in report.mismatches] == [("sha1", 5), ("sha256", 5)]
    assert report.quirks_applied == ()
    # debian-10 logs no ExitBootServices yet matches without any quirk
    debian = parse(_read(corpus, "go-tpm-tools", "debian-10.bin"))
    assert debian.verify(_hexmap(gtt_expected["Debian10GCE"]["pcrs"])).quirks_applied == ()


# -- go-attestation ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ga_expected(corpus):
    return json.loads((corpus / "go-attestation" / "expected.json").read_text())


def test_sb_cert_eventlog(corpus, ga_expected):
    log = parse(_read(corpus, "go-attestation", "sb_cert_eventlog"))
    assert log.format is LogFormat.CRYPTO_AGILE and log.banks == ("sha1", "sha256", "sha384")
    assert len(log.events) == 15
    expected = _hexmap(ga_expected["sb_cert_eventlog"]["expected_pcrs"])
    report = log.verify(expected, quirks=False)
    matched = {(c.bank, c.pcr) for c in report.checks if c.status == "match"}
    assert matched == {(b, p) for b in ("sha1", "sha256") for p in (0, 4, 5, 7)}
    assert all(c.status == "not_logged" for c in report.checks if (c.bank, c.pcr) not in matched)
    # authorities measured after the separator (go-attestation issue #157)
    sep = next(e.index for e in log.events if e.pcr == 7 and e.event_type == EventType.EV_SEPARATOR)
    after = [e for e in log.events if e.index > sep and e.event_type == EventType.EV_EFI_VARIABLE_AUTHORITY]
    assert len(after) == ga_expected["sb_cert_eventlog"]["expected"]["secureboot_PostSeparatorAuthority_count"]


def test_option_rom_eventlog(corpus, ga_expected):
    log = parse(_read(corpus, "go-attestation", "option_rom_eventlog"))
    assert log.format is LogFormat.SHA1 and len(log.events) == 61
    report = log.verify(_hexmap(ga_expected["option_rom_eventlog"]["expected_pcrs"]), quirks=False)
    assert [c.status for c in report.checks] == ["match"] * 8


def test_short_no_action_eventlog(corpus):
    log = parse(_read(corpus, "go-attestation", "short_no_action_eventlog"))
    assert log.format is LogFormat.SHA1 and len(log.events) == 1
    assert log.events[0].event_type == EventType.EV_NO_ACTION and log.replay() == {}


@pytest.mark.parametrize(("name", "events", "banks"), [
    ("crypto_agile_eventlog", 27, ("sha256",)),
    ("coreos_36_shielded_vm_no_secure_boot_eventlog", 76, ("sha1", "sha256", "sha384")),
])
def test_go_attestation_derived_regressions(corpus, ga_expected, name, events, banks):
    log = parse(_read(corpus, "go-attestation", name))
    assert len(log.events) == events and log.banks == banks
    derived = next(v for k, v in ga_expected[name].items() if k.startswith("derived_replayed_pcrs"))
    assert log.verify(_hexmap(derived), quirks=False).ok


def test_ubuntu_2104_go_attestation_copy(corpus, gtt_expected):
    raw = _read(corpus, "go-attestation", "ubuntu_2104_shielded_vm_no_secure_boot_eventlog")
    assert raw == _read(corpus, "go-tpm-tools", "ubuntu-2104-no-secure-boot.bin")
    log = parse(raw)
    assert len(log.events) == 106
    assert log.verify(_hexmap(gtt_expected["Ubuntu2104NoSecureBootGCE"]["pcrs"])).ok


def test_windows_wbcl_replays_to_its_pcrs(corpus):
    doc = json.loads((corpus / "go-attestation" / "windows_gcp_shielded_vm.json").read_text())
    log = parse(base64.b64decode(doc["Log"]["Raw"]))
    assert log.format is LogFormat.SHA1 and len(log.events) == 21
    assert {p["DigestAlg"] for p in doc["Log"]["PCRs"]} == {3}  # SHA1
    pcrs = {"sha1": {p["Index"]: base64.b64decode(p["Digest"]) for p in doc["Log"]["PCRs"]}}
    assert len(pcrs["sha1"]) == 24
    report = log.verify(pcrs, quirks=False)
    assert sorted(c.pcr for c in report.checks if c.status == "match") == [0, 4, 5, 7, 11, 12, 13, 14]
    assert {c.status for c in report.checks} == {"match", "not_logged"}


# -- tpm2-tools --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TPM2_TOOLS_LOGS)
def test_tpm2_tools_logs_match_tpm2_eventlog_yaml(corpus, name):
    events, pcrs = load_tpm2_eventlog_yaml(corpus / "tpm2-tools" / f"{name}.yaml")
    log = parse(_read(corpus, "tpm2-tools", name))
    _compare_with_yaml(log, events, pcrs)
    if name in ("event-uefivar.bin", "event-uefiaction.bin"):
        assert log.banks == ("sha1", "sha256", "sha384", "sha512") and set(log.replay()) == {"sha1", "sha256"}
    if name == "specid-vendordata.bin":
        assert log.spec_id.vendor_info == bytes.fromhex("deadbeef") and pcrs == {}


def test_gce_ubuntu_2104_yaml_is_the_no_dbx_log(corpus, gtt_expected):
    events, pcrs = load_tpm2_eventlog_yaml(corpus / "tpm2-tools" / "event-gce-ubuntu-2104-log.bin.yaml")
    log = parse(_read(corpus, "go-tpm-tools", "ubuntu-2104-no-dbx.bin"))
    assert len(events) == 112 and set(pcrs) == {"sha1", "sha256", "sha384"}
    _compare_with_yaml(log, events, pcrs)
    # the two upstreams agree: tpm2-tools' replay equals go-tpm-tools' TPM values where both exist
    for bank, values in _hexmap(gtt_expected["Ubuntu2104NoDbxGCE"]["pcrs"]).items():
        assert {p: pcrs[bank][p] for p in values} == values


# -- keylime -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["binary_bios_measurements", "binary_bios_measurements-secureboot"])
def test_keylime_logs_regression(corpus, name):
    expected = json.loads((corpus / "keylime" / "expected.json").read_text())[name]["derived_replay"]
    log = parse(_read(corpus, "keylime", name))
    assert len(log.events) == expected["events"]
    assert log.banks == tuple(expected["banks"])
    assert log.replay() == _hexmap(expected["derived_replayed_pcrs"])
