"""Windows boot-state claims from a verified WBCL (attestd.claims.windows).

The real GCP Shielded VM log (go-attestation's windows_gcp_shielded_vm.json, read in place from the
shared corpus) must yield what go-attestation's ParseWinEvents found (corpus expected.json); hand-built
SIPA records (wbcl.h: UINT32 id, UINT32 size, data; containers nest) pin down the latching rules,
the separator rule, the Azure booleans and the malformed-framing errors.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct

import pytest
from corpus_paths import FIXTURES

from attestd.claims.windows import WindowsClaims, windows_claims
from attestd.errors import EvidenceError
from attestd.eventlog import parse
from attestd.eventlog.data import SipaEventData
from attestd.eventlog.model import Event

EV_SEPARATOR = 4
EV_EVENT_TAG = 6
EV_S_CRTM_VERSION = 8

# wbcl.h SIPA event ids
TRUSTBOUNDARY = 0x40010001
ELAM_AGGREGATION = 0x40010002
LOADEDMODULE = 0x40010003
BOOTCOUNTER = 0x00020002
TRANSFER_CONTROL = 0x00020003
BITLOCKER_UNLOCK = 0x00020005
APPLICATION_SVN = 0x00020009
BOOTDEBUGGING = 0x00040001
OSKERNELDEBUG = 0x00050001
CODEINTEGRITY = 0x00050002
TESTSIGNING = 0x00050003
DEP = 0x00050004
SAFEMODE = 0x00050005
WINPE = 0x00050006
HYPERVISOR_LAUNCH_TYPE = 0x0005000A
HYPERVISOR_DEBUG = 0x0005000D
VSM_LAUNCH_TYPE = 0x00050012
FLIGHTSIGNING = 0x00050021
BOOT_DMA_PROTECTION = 0x00050030
FILEPATH = 0x00070001
AUTHENTICODEHASH = 0x00070004
IMAGEBASE = 0x00070007
IMAGEVALIDATED = 0x0007000A
ELAM_KEYNAME = 0x00090001
ELAM_MEASURED = 0x00090004
VBS_VSM_REQUIRED = 0x000A0001
VBS_IOMMU_REQUIRED = 0x000A0003
VBS_HVCI_POLICY = 0x000A0007
DRTM_STATE_AUTH = 0x000C0001

#: every Azure boolean that asserts a secure state
SECURE_CLAIMS = ("bootDebuggingDisabled", "osKernelDebuggingDisabled", "hypervisorDebuggingDisabled",
                 "testSigningDisabled", "flightSigningNotEnabled", "notSafeMode", "notWinPE",
                 "codeIntegrityEnabled", "depEnabled", "vbsEnabled", "hvciEnabled", "iommuEnabled",
                 "drtmLaunched", "elamDriverLoaded", "windowsDefenderElamDriverLoaded")


# -- a small WBCL builder ------------------------------------------------------------------------

def rec(event_id: int, data: bytes) -> bytes:
    """One SIPA record: UINT32 EventID, UINT32 EventDataSize, data."""
    return struct.pack("<II", event_id, len(data)) + data


def box(event_id: int, *records: bytes) -> bytes:
    """A SIPA container holding ``records``."""
    return rec(event_id, b"".join(records))


def tb(*records: bytes) -> bytes:
    """The data of an EV_EVENT_TAG: a TCG_PCClientTaggedEventStruct holding a trust boundary."""
    return box(TRUSTBOUNDARY, *records)


def flag(value: bool) -> bytes:
    return bytes([value])


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def utf16(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


def event(index: int, pcr: int, data: bytes, etype: int = EV_EVENT_TAG) -> Event:
    return Event(index, pcr, etype, {"sha1": hashlib.sha1(data).digest()}, data, 0, len(data), 0)


def separator(index: int, pcr: int) -> Event:
    return event(index, pcr, b"WBCL", EV_SEPARATOR)


def claims(*events: Event) -> WindowsClaims:
    w = windows_claims(list(events))
    assert w is not None
    return w


def sha1_log(*records: tuple[int, int, bytes]) -> bytes:
    """A SHA-1 format (TCG_PCClientPCREvent) log of (pcr, type, data) records after an S-CRTM version."""
    out = b""
    for pcr, etype, data in ((0, EV_S_CRTM_VERSION, b"\0\0"), *records):
        out += struct.pack("<II20sI", pcr, etype, hashlib.sha1(data).digest(), len(data)) + data
    return out


# -- the real Windows log ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gcp(corpus):
    doc = json.loads((corpus / "go-attestation" / "windows_gcp_shielded_vm.json").read_text())
    expected = json.loads((corpus / "go-attestation" / "expected.json").read_text())
    want = expected["windows_gcp_shielded_vm.json"]["expected"]["windows_events (go-attestation ParseWinEvents)"]
    log = parse(base64.b64decode(doc["Log"]["Raw"]))
    return log, windows_claims(log.events), want


def test_gcp_boot_state_matches_go_attestation(gcp):
    _log, w, want = gcp
    assert w.cold_boot is want["ColdBoot"] is True and w.transfer_control == 1 and w.resumed is False
    assert w.boot_counter == want["BootCount"] == 4
    assert w.dep is (want["DEPEnabled"] is True) is True and w.dep_policy == 1
    assert w.code_integrity is (want["CodeIntegrityEnabled"] is True) is True
    assert list(w.bitlocker_unlocks) == want["BitlockerUnlocks"] == [0, 0]
    (elam,) = w.elam_drivers
    assert elam.keyname == "Windows Defender" == next(iter(want["ELAM"]))
    assert elam.measured == want["ELAM"]["Windows Defender"]["Measured"] and elam.measured.startswith("067d5b9d")
    # what the log says about the weakening settings: all measured off, hypervisor debugging not at all
    assert (w.boot_debugging, w.kernel_debugging, w.test_signing, w.flight_signing, w.safe_mode, w.winpe) == (
        False, False, False, False, False, False)
    assert w.hypervisor_debugging is None and w.hypervisor_launch_type == 0 and w.hypervisor_launched is False
    assert w.vbs is False and w.vsm_launch_type == 0 and w.hvci is None and w.iommu is None and not w.drtm
    assert w.boot_manager_svn == 1 and w.system_root == "\\Windows"
    assert w.boot_revocation_list.hash_algorithm == "sha256"
    assert w.boot_revocation_list.creation_time.year == 2017
    assert w.boot_events == (11, 12, 13, 14, 15, 16) and w.post_boot_events == () and w.notes == ()


def test_gcp_loaded_modules_with_path_hash_and_signer(gcp):
    _log, w, want = gcp
    modules = {m.authenticode_hash: m for m in w.loaded_modules}
    assert len(want["LoadedModules_sample"]) == 3
    for digest, m in want["LoadedModules_sample"].items():
        got = modules[digest]
        assert got.file_path == m["FilePath"]
        assert got.hash_algorithm == m["HashAlgorithm"].lower() == "sha256"
        assert got.authority_publisher == m["AuthorityPublisher"] and got.authority_issuer == m["AuthorityIssuer"]
        assert got.authority_serial == m["AuthoritySerial"] and got.authority_sha1_thumbprint == m["AuthoritySHA1"]
        assert got.image_validated is m["ImageValidated"] is True
        assert list(got.image_base) == m["ImageBase"] and got.image_size == m["ImageSize"]
        assert got.events == (14, 15)  # PCR 12 (hash, base) and PCR 13 (path, signer) merged
    vioscsi = modules["0fdce7d71936f79445e7d2c84cbeb97c948d3730e0b839166b0a4e625c2d4547"]
    assert vioscsi.azure()["authorityPublisher"] == "Microsoft Windows Hardware Compatibility Publisher"


def test_gcp_walk_agrees_with_the_event_data_decoder(gcp):
    """The claims walk the SIPA records themselves (for speed); the decoder's tree must agree."""
    log, w, _want = gcp
    decoded = [e.decode() for e in log.events if e.event_type == EV_EVENT_TAG]
    assert all(isinstance(d, SipaEventData) for d in decoded)
    hashes = {m.authenticode_hash.hex() for d in decoded for m in d.loaded_modules}
    assert {m.authenticode_hash for m in w.loaded_modules} == hashes and len(hashes) == 64
    paths = {m.file_path for d in decoded for m in d.loaded_modules if m.file_path}
    assert {m.file_path for m in w.loaded_modules if m.file_path} == paths
    assert [(d.keyname, d.measured.hex()) for x in decoded for d in x.elam_drivers] == [
        (e.keyname, e.measured) for e in w.elam_drivers]
    ci = [v for d in decoded for v in d.values("SIPAEVENT_CODEINTEGRITY")]
    assert ci == [True] * 4 and w.sources["code_integrity"] == (11, 12, 14, 15)


def test_gcp_azure_claims(gcp):
    _log, w, _want = gcp
    azure = w.azure()
    for name in ("bootDebuggingDisabled", "osKernelDebuggingDisabled", "testSigningDisabled",
                 "flightSigningNotEnabled", "notSafeMode", "notWinPE", "codeIntegrityEnabled", "depEnabled",
                 "elamDriverLoaded", "windowsDefenderElamDriverLoaded", "coldBoot"):
        assert azure[name] is True, name
    # no hypervisor was launched (HYPERVISOR_LAUNCH_TYPE 0, VSM_LAUNCH_TYPE 0): no hypervisor debugger
    assert azure["hypervisorDebuggingDisabled"] is True
    for name in ("vbsEnabled", "hvciEnabled", "iommuEnabled", "drtmLaunched", "bitlockerEnabled"):
        assert azure[name] is False, name
    assert azure["bitlockerUnlocks"] == [0, 0] and azure["bitlockerEnabledValue"] is None
    assert azure["bootCount"] == 4 and azure["bootMgrSvn"] == 1 and azure["depPolicy"] == 1
    assert azure["elamDrivers"] == ["Windows Defender"]
    assert len(azure["loadedModules"]) == len(azure["loadedModuleHashes"]) == 64
    assert azure["bootRevListInfo"].startswith("80a19aad7073d301")
    sources = w.azure_sources()
    assert set(sources) == set(azure)
    assert sources["codeIntegrityEnabled"] == (11, 12, 14, 15) and sources["notSafeMode"] == (14, 15)
    assert w.decided_by["code_integrity"] == 11 and w.decided_by["hypervisor_launched"] == 14
    doc = json.loads(json.dumps(w.to_json()))
    assert doc["coldBoot"] is True and doc["transferControlName"] == "OSLOADER"
    assert doc["bitlockerUnlockFlags"] == [["NONE"], ["NONE"]] and doc["elam"][0]["measured"].startswith("067d5b9d")
    assert doc["loadedModules"][0]["authenticodeHash"] == w.loaded_modules[0].authenticode_hash
    json.dumps(azure)


# -- latching ------------------------------------------------------------------------------------

def test_boot_debugging_in_either_of_two_boot_segments_latches_on():
    for first, second in ((False, True), (True, False)):
        w = claims(event(1, 12, tb(rec(BOOTDEBUGGING, flag(first)))),
                   event(2, 12, tb(rec(BOOTDEBUGGING, flag(second)))))
        assert w.boot_debugging is True and w.azure()["bootDebuggingDisabled"] is False
        assert w.sources["boot_debugging"] == (1, 2)
        assert w.decided_by["boot_debugging"] == (2 if second else 1)
    w = claims(event(1, 12, tb(rec(BOOTDEBUGGING, flag(False)))), event(2, 13, tb(rec(BOOTDEBUGGING, flag(False)))))
    assert w.boot_debugging is False and w.azure()["bootDebuggingDisabled"] is True


def test_boot_debugging_latches_in_a_parsed_log_with_two_trust_boundaries():
    log = parse(sha1_log(
        (12, EV_EVENT_TAG, tb(rec(BOOTCOUNTER, u64(7)), rec(BOOTDEBUGGING, flag(False)),
                              rec(TRANSFER_CONTROL, u32(1)))),
        (12, EV_EVENT_TAG, tb(rec(BOOTDEBUGGING, flag(True)), rec(OSKERNELDEBUG, flag(False)))),
        (12, EV_SEPARATOR, b"WBCL"),
    ))
    w = windows_claims(log.events)
    assert w.boot_debugging is True and w.kernel_debugging is False and w.decided_by["boot_debugging"] == 2
    assert w.boot_counter == 7 and w.cold_boot is True and w.boot_events == (1, 2)
    assert w.azure()["bootDebuggingDisabled"] is False and w.azure()["osKernelDebuggingDisabled"] is True


def test_every_weakening_setting_latches_on():
    for sipa_id, name, claim in ((OSKERNELDEBUG, "kernel_debugging", "osKernelDebuggingDisabled"),
                                 (HYPERVISOR_DEBUG, "hypervisor_debugging", "hypervisorDebuggingDisabled"),
                                 (TESTSIGNING, "test_signing", "testSigningDisabled"),
                                 (FLIGHTSIGNING, "flight_signing", "flightSigningNotEnabled"),
                                 (SAFEMODE, "safe_mode", "notSafeMode"),
                                 (WINPE, "winpe", "notWinPE")):
        w = claims(event(1, 12, tb(rec(sipa_id, flag(False)))), event(2, 13, tb(rec(sipa_id, flag(True)))))
        assert getattr(w, name) is True and w.azure()[claim] is False, name
        w = claims(event(1, 12, tb(rec(sipa_id, flag(False)))), event(2, 13, tb(rec(sipa_id, flag(False)))))
        assert getattr(w, name) is False and w.azure()[claim] is True, name


@pytest.mark.parametrize("value", [b"\x02", b"\x00\x00", b"", b"\x00\x01"])
def test_a_weakening_record_that_is_not_a_clean_false_counts_as_set(value):
    w = claims(event(1, 12, tb(rec(TESTSIGNING, flag(False)), rec(TESTSIGNING, value))))
    assert w.test_signing is True and w.azure()["testSigningDisabled"] is False


def test_code_integrity_true_then_false_latches_off():
    w = claims(event(1, 12, tb(rec(CODEINTEGRITY, flag(True)))), event(2, 13, tb(rec(CODEINTEGRITY, flag(False)))))
    assert w.code_integrity is False and w.decided_by["code_integrity"] == 2
    assert w.azure()["codeIntegrityEnabled"] is False
    w = claims(event(1, 12, tb(rec(CODEINTEGRITY, flag(False)))), event(2, 13, tb(rec(CODEINTEGRITY, flag(True)))))
    assert w.code_integrity is False and w.decided_by["code_integrity"] == 1
    w = claims(event(1, 12, tb(rec(CODEINTEGRITY, flag(True)))), event(2, 13, tb(rec(CODEINTEGRITY, flag(True)))))
    assert w.code_integrity is True and w.azure()["codeIntegrityEnabled"] is True


def test_a_malformed_strengthening_record_counts_as_off():
    w = claims(event(1, 12, tb(rec(CODEINTEGRITY, flag(True)), rec(CODEINTEGRITY, b"\x01\x00"),
                               rec(DEP, u64(1)), rec(DEP, u32(1)))))
    assert w.code_integrity is False and w.dep is False
    assert w.azure()["codeIntegrityEnabled"] is False and w.azure()["depEnabled"] is False


def test_unmeasured_settings_are_unknown_and_never_assert_security():
    w = claims(event(1, 12, tb(rec(BITLOCKER_UNLOCK, u32(4)))))
    for name in ("boot_debugging", "kernel_debugging", "hypervisor_debugging", "test_signing", "flight_signing",
                 "safe_mode", "winpe", "code_integrity", "dep", "vbs", "hvci", "iommu", "hypervisor_launched",
                 "transfer_control", "boot_counter", "cold_boot"):
        assert getattr(w, name) is None, name
    azure = w.azure()
    for claim in SECURE_CLAIMS:
        assert azure[claim] is False, claim
    assert azure["coldBoot"] is None and azure["bootCount"] is None and azure["depPolicy"] is None
    assert azure["bitlockerUnlocks"] == [4] and azure["bitlockerEnabled"] is True
    assert azure["bitlockerEnabledValue"] == 4


def test_hypervisor_debugging_is_disabled_only_when_measured_or_no_hypervisor_ran():
    def disabled(*records: bytes) -> bool:
        return claims(event(1, 12, tb(rec(BOOTCOUNTER, u64(1)), *records))).azure()["hypervisorDebuggingDisabled"]

    assert disabled() is False  # nothing known
    assert disabled(rec(HYPERVISOR_LAUNCH_TYPE, u64(0))) is True  # no hypervisor, no hypervisor debugger
    assert disabled(rec(HYPERVISOR_LAUNCH_TYPE, u64(1))) is False
    assert disabled(rec(HYPERVISOR_LAUNCH_TYPE, u64(0)), rec(VSM_LAUNCH_TYPE, u64(1))) is False  # VBS runs one
    assert disabled(rec(HYPERVISOR_LAUNCH_TYPE, u64(1)), rec(HYPERVISOR_DEBUG, flag(False))) is True
    assert disabled(rec(HYPERVISOR_LAUNCH_TYPE, u64(0)), rec(HYPERVISOR_DEBUG, flag(True))) is False


def test_vbs_hvci_and_iommu():
    w = claims(event(1, 12, tb(rec(VSM_LAUNCH_TYPE, u64(1)), rec(VBS_VSM_REQUIRED, flag(True)),
                               rec(VBS_HVCI_POLICY, u64(1)), rec(VBS_IOMMU_REQUIRED, flag(True)))))
    azure = w.azure()
    assert azure["vbsEnabled"] and azure["hvciEnabled"] and azure["iommuEnabled"]
    assert w.hvci_policy == 1 and w.vsm_launch_type == 1 and w.hypervisor_launched is True
    # HVCI policy without its enable bit, and VBS off in a second boundary: both latch off
    w = claims(event(1, 12, tb(rec(VSM_LAUNCH_TYPE, u64(1)), rec(VBS_HVCI_POLICY, u64(2)))),
               event(2, 13, tb(rec(VSM_LAUNCH_TYPE, u64(0)))))
    assert w.vbs is False and w.hvci is False and w.azure()["vbsEnabled"] is False
    # HVCI needs VBS; VBS required counts when the launch type is not measured
    assert claims(event(1, 12, tb(rec(VBS_HVCI_POLICY, u64(1))))).azure()["hvciEnabled"] is False
    assert claims(event(1, 12, tb(rec(VBS_VSM_REQUIRED, flag(True)), rec(VBS_HVCI_POLICY, u64(1))))).azure()[
        "hvciEnabled"] is True
    # IOMMU: required by VBS or boot DMA protection, each latching off on its own
    assert claims(event(1, 12, tb(rec(BOOT_DMA_PROTECTION, flag(True))))).azure()["iommuEnabled"] is True
    w = claims(event(1, 12, tb(rec(VBS_IOMMU_REQUIRED, flag(True)))), event(2, 13, tb(rec(VBS_IOMMU_REQUIRED,
                                                                                           flag(False)))))
    assert w.iommu_required is False and w.azure()["iommuEnabled"] is False


def test_drtm_record_means_a_dynamic_launch():
    w = claims(event(1, 19, tb(rec(DRTM_STATE_AUTH, b"\x01\x02"))))
    assert w.drtm is True and w.azure()["drtmLaunched"] is True and w.decided_by["drtm"] == 1
    assert claims(event(1, 12, tb(rec(CODEINTEGRITY, flag(True))))).azure()["drtmLaunched"] is False


# -- separators and PCRs -------------------------------------------------------------------------

def test_records_after_the_wbcl_separator_can_only_weaken():
    w = claims(
        event(1, 12, tb(rec(BOOTDEBUGGING, flag(False)), rec(DEP, u64(1)), rec(BITLOCKER_UNLOCK, u32(4)),
                        rec(TRANSFER_CONTROL, u32(1)))),
        separator(2, 12),
        # the running OS extends PCR 12: may latch weakening on / strengthening off ...
        event(3, 12, tb(rec(BOOTDEBUGGING, flag(True)), rec(DEP, u64(0)),
                        # ... but never make anything look secure or add boot facts
                        rec(CODEINTEGRITY, flag(True)), rec(SAFEMODE, flag(False)), rec(BITLOCKER_UNLOCK, u32(0x40)),
                        rec(TRANSFER_CONTROL, u32(2)), rec(DRTM_STATE_AUTH, b"\x01"),
                        box(LOADEDMODULE, rec(AUTHENTICODEHASH, bytes(32)), rec(IMAGEVALIDATED, flag(True))),
                        box(ELAM_AGGREGATION, rec(ELAM_KEYNAME, utf16("Fake AV"))))),
    )
    assert w.boot_debugging is True and w.dep is False and w.decided_by["dep"] == 3
    assert w.code_integrity is None and w.azure()["codeIntegrityEnabled"] is False
    assert w.safe_mode is None and w.azure()["notSafeMode"] is False and "safe_mode" not in w.sources
    assert w.bitlocker_unlocks == (4,) and w.transfer_control == 1 and w.drtm is False
    assert w.loaded_modules == () and w.elam_drivers == ()
    assert w.boot_events == (1,) and w.post_boot_events == (3,)


def test_a_separator_only_ends_its_own_pcr():
    w = claims(separator(1, 12), event(2, 13, tb(rec(CODEINTEGRITY, flag(True)))))
    assert w.code_integrity is True and w.post_boot_events == ()


def test_sipa_records_outside_the_wbcl_pcrs_are_ignored():
    assert windows_claims([event(1, 23, tb(rec(CODEINTEGRITY, flag(True)))),
                           event(2, 9, tb(rec(VSM_LAUNCH_TYPE, u64(1))))]) is None
    w = claims(event(1, 12, tb(rec(BOOTCOUNTER, u64(3)))), event(2, 16, tb(rec(CODEINTEGRITY, flag(True)))))
    assert w.code_integrity is None and w.boot_events == (1,)


def test_tagged_events_that_are_not_sipa_are_not_windows():
    initrd = struct.pack("<II", 0x8F3B22EC, 12) + b"Linux initrd"  # the Linux EFI stub's tag
    assert windows_claims([event(1, 12, initrd), event(2, 9, initrd)]) is None


@pytest.mark.parametrize("variant", ["sb", "nosb", "sb-second", "sb-initsh"])
def test_a_linux_log_has_no_windows_claims(variant):
    log = parse((FIXTURES / "qemu" / variant / "binary_bios_measurements").read_bytes())
    assert windows_claims(log.events) is None


# -- boot facts ----------------------------------------------------------------------------------

def test_bitlocker_unlocks_come_from_pcr_12_and_transfer_control_tells_a_resume():
    w = claims(event(1, 12, tb(rec(BITLOCKER_UNLOCK, u32(0x14)), rec(TRANSFER_CONTROL, u32(2)),
                               rec(APPLICATION_SVN, u32(3)))),
               event(2, 13, tb(rec(BITLOCKER_UNLOCK, u32(0x14)), rec(APPLICATION_SVN, u32(9)))))
    assert w.bitlocker_unlocks == (0x14,) and w.boot_manager_svn == 3
    assert w.resumed is True and w.cold_boot is False and w.azure()["coldBoot"] is False
    assert w.to_json()["bitlockerUnlockFlags"] == [["TPM", "PIN"]] and w.to_json()["transferControlName"] == "RESUME"


def test_conflicting_boot_counters_are_noted():
    w = claims(event(1, 12, tb(rec(BOOTCOUNTER, u64(4)))), event(2, 13, tb(rec(BOOTCOUNTER, u64(5)))))
    assert w.boot_counter == 4 and w.notes == ("event 2: BOOTCOUNTER 5 differs from 4",)


def test_modules_merge_by_hash_and_windows_defender_elam():
    digest = bytes(range(32))
    wdboot = "\\Windows\\system32\\drivers\\wd\\WdBoot.sys"
    w = claims(
        event(1, 12, tb(box(LOADEDMODULE, rec(AUTHENTICODEHASH, digest), rec(IMAGEBASE, u64(0x1000))))),
        event(2, 13, tb(box(LOADEDMODULE, rec(FILEPATH, utf16(wdboot)), rec(AUTHENTICODEHASH, digest),
                            rec(IMAGEVALIDATED, flag(True))),
                        box(ELAM_AGGREGATION, rec(ELAM_KEYNAME, utf16("Windows Defender")),
                            rec(ELAM_MEASURED, b"\x06\x7d")),
                        box(ELAM_AGGREGATION, rec(ELAM_MEASURED, b"\x01")))),
    )
    (module,) = w.loaded_modules
    assert module.file_path == wdboot and module.image_base == (0x1000,) and module.events == (1, 2)
    assert module.authenticode_hash == digest.hex() and module.image_validated is True
    azure = w.azure()
    assert azure["windowsDefenderElamDriverLoaded"] is True and azure["elamDrivers"] == ["Windows Defender"]
    assert w.elam_drivers[0].measured == "067d"
    assert w.notes == ("event 2: ELAM_AGGREGATION without ELAM_KEYNAME ignored",)
    # not validated: not loaded as far as the claim goes
    w = claims(event(1, 13, tb(box(LOADEDMODULE, rec(FILEPATH, utf16(wdboot)), rec(AUTHENTICODEHASH, digest),
                                   rec(IMAGEVALIDATED, flag(False))))))
    assert w.azure()["windowsDefenderElamDriverLoaded"] is False and w.azure()["elamDriverLoaded"] is False


# -- malformed framing: the decoder's error ------------------------------------------------------

def _nested(depth: int) -> bytes:
    data = rec(CODEINTEGRITY, flag(True))
    for _ in range(depth):
        data = box(TRUSTBOUNDARY, data)
    return data


@pytest.mark.parametrize("data", [
    tb(rec(CODEINTEGRITY, flag(True)))[:-1],                       # tagged EventDataSize too large
    tb(rec(CODEINTEGRITY, flag(True))) + b"\0",                    # ... too small
    box(TRUSTBOUNDARY, rec(CODEINTEGRITY, flag(True)), b"\x01\x00\x05"),  # a truncated record header
    box(TRUSTBOUNDARY, struct.pack("<II", CODEINTEGRITY, 9) + b"\x01"),  # a record larger than its container
    box(TRUSTBOUNDARY, box(LOADEDMODULE, struct.pack("<II", FILEPATH, 40))),  # ... inside a module
    _nested(17),                                                   # containers nested too deep
    b"\x01\x00",                                                   # shorter than a header
], ids=["size-large", "size-small", "header", "overrun", "module-overrun", "depth", "short"])
def test_malformed_sipa_raises_the_decoders_error(data):
    e = event(5, 12, data)
    with pytest.raises(EvidenceError) as decoder:
        event(5, 12, data).decode()
    with pytest.raises(EvidenceError) as ours:
        windows_claims([e])
    assert (ours.value.code, ours.value.offset, ours.value.message) == (
        decoder.value.code, decoder.value.offset, decoder.value.message)
    assert ours.value.code.startswith("eventlog.data.")


def test_framing_checks_agree_with_the_decoder_on_mutated_records():
    """Byte flips, bogus sizes and truncations of a WBCL: an error exactly when the decoder errs."""
    rnd = random.Random(2024)
    good = tb(rec(BOOTCOUNTER, u64(4)), rec(CODEINTEGRITY, flag(True)),
              box(LOADEDMODULE, rec(FILEPATH, utf16("\\Windows\\system32\\hal.dll")),
                  rec(AUTHENTICODEHASH, bytes(32)), rec(IMAGEVALIDATED, flag(True))),
              box(ELAM_AGGREGATION, rec(ELAM_KEYNAME, utf16("Windows Defender")), rec(ELAM_MEASURED, bytes(20))))
    errors = 0
    for _ in range(400):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 3)):
            op = rnd.random()
            if op < 0.4:
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            elif op < 0.8:
                i = rnd.randrange(len(data) - 4)
                data[i : i + 4] = rnd.randrange(64).to_bytes(4, "little")
            else:
                del data[rnd.randrange(8, len(data)):]
        data = bytes(data)
        try:
            event(1, 12, data).decode()
            expected = None
        except EvidenceError as exc:
            expected = (exc.code, exc.offset, exc.message)
            errors += 1
        try:
            windows_claims([event(1, 12, data)])
            got = None
        except EvidenceError as exc:
            got = (exc.code, exc.offset, exc.message)
        assert got == expected, data.hex()
    assert 50 < errors < 350  # both outcomes exercised


def test_nesting_the_decoder_accepts_is_accepted():
    w = claims(event(1, 12, _nested(16)))
    assert w.code_integrity is True
