"""Windows boot configuration claims: the real GCP WBCL, and latching on hand-built SIPA records."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from corpus_paths import FIXTURES

from attestd.claims.windows import windows_claims
from attestd.eventlog import parse
from attestd.eventlog.model import Event

EV_EVENT_TAG = 6
TRUSTBOUNDARY = 0x40010001
LOADEDMODULE = 0x40010003
BOOTDEBUGGING = 0x00040001
OSKERNELDEBUG = 0x00050001
CODEINTEGRITY = 0x00050002
TESTSIGNING = 0x00050003
DEP = 0x00050004
SAFEMODE = 0x00050005
VSM_LAUNCH_TYPE = 0x00050012
BITLOCKER = 0x00020005
FILEPATH = 0x00070001
AUTHENTICODEHASH = 0x00070004
IMAGEBASE = 0x00070007


def sipa(event_id: int, data: bytes) -> bytes:
    """One SIPA record (wbcl.h): UINT32 id, UINT32 size, data."""
    return struct.pack("<II", event_id, len(data)) + data


def container(event_id: int, *records: bytes) -> bytes:
    return sipa(event_id, b"".join(records))


def tag_event(index: int, pcr: int, *records: bytes) -> Event:
    """An EV_EVENT_TAG whose TCG_PCClientTaggedEventStruct carries a trust boundary."""
    body = b"".join(records)
    data = struct.pack("<II", TRUSTBOUNDARY, len(body)) + body
    return Event(index, pcr, EV_EVENT_TAG, {"sha1": bytes(20)}, data, 0, len(data), 0)


def b(value: bool) -> bytes:
    return bytes([1 if value else 0])


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def test_weakening_settings_latch_on():
    events = [
        tag_event(1, 12, sipa(BOOTDEBUGGING, b(False)), sipa(TESTSIGNING, b(False))),
        tag_event(2, 12, sipa(BOOTDEBUGGING, b(True)), sipa(TESTSIGNING, b(False))),
        tag_event(3, 13, sipa(BOOTDEBUGGING, b(False))),
    ]
    w = windows_claims(events)
    assert w.boot_debugging is True and w.test_signing is False
    assert w.azure()["bootDebuggingDisabled"] is False and w.azure()["testSigningDisabled"] is True
    assert w.sources["boot_debugging"] == (1, 2, 3)


def test_a_malformed_weakening_value_counts_as_set():
    w = windows_claims([tag_event(1, 12, sipa(OSKERNELDEBUG, b"\x00\x00"))])
    assert w.kernel_debugging is True and w.azure()["osKernelDebuggingDisabled"] is False


def test_strengthening_settings_latch_off():
    w = windows_claims([
        tag_event(1, 12, sipa(CODEINTEGRITY, b(True)), sipa(DEP, u64(1))),
        tag_event(2, 13, sipa(CODEINTEGRITY, b(False)), sipa(DEP, u64(1))),
    ])
    assert w.code_integrity is False and w.dep is True
    assert w.azure()["codeIntegrityEnabled"] is False and w.azure()["depEnabled"] is True


def test_unmeasured_settings_never_assert_security():
    w = windows_claims([tag_event(1, 12, sipa(BITLOCKER, u64(0)))])
    assert w.code_integrity is None and w.safe_mode is None
    azure = w.azure()
    for claim in ("codeIntegrityEnabled", "depEnabled", "vbsEnabled", "hvciEnabled", "iommuEnabled",
                  "bootDebuggingDisabled", "osKernelDebuggingDisabled", "testSigningDisabled", "notSafeMode",
                  "notWinPE"):
        assert azure[claim] is False, claim


def test_vbs_and_safe_mode():
    w = windows_claims([tag_event(1, 12, sipa(VSM_LAUNCH_TYPE, u64(1)), sipa(SAFEMODE, b(True)))])
    assert w.vbs is True and w.azure()["vbsEnabled"] is True
    assert w.azure()["notSafeMode"] is False


def test_modules_merge_by_authenticode_hash():
    digest = bytes(range(32))
    path = "\\Windows\\system32\\hal.dll".encode("utf-16-le") + b"\0\0"
    w = windows_claims([
        tag_event(1, 12, container(LOADEDMODULE, sipa(AUTHENTICODEHASH, digest), sipa(IMAGEBASE, u64(0x1000)))),
        tag_event(2, 13, container(LOADEDMODULE, sipa(FILEPATH, path), sipa(AUTHENTICODEHASH, digest))),
    ])
    (module,) = w.modules
    assert module.file_path == "\\Windows\\system32\\hal.dll" and module.image_base == (0x1000,)
    assert module.authenticode_hash == digest.hex()


def test_bitlocker_unlocks_come_from_pcr_12_only():
    w = windows_claims([tag_event(1, 12, sipa(BITLOCKER, u64(4))), tag_event(2, 13, sipa(BITLOCKER, u64(4)))])
    assert w.bitlocker_unlocks == (4,)


def test_a_linux_log_has_no_windows_claims():
    log = parse((FIXTURES / "qemu" / "sb" / "binary_bios_measurements").read_bytes())
    assert windows_claims(log.events) is None


@pytest.mark.corpus
def test_windows_gcp_shielded_vm(corpus):
    doc = json.loads((corpus / "go-attestation" / "windows_gcp_shielded_vm.json").read_text())
    expected = json.loads((corpus / "go-attestation" / "expected.json").read_text())
    want = expected["windows_gcp_shielded_vm.json"]["expected"]["windows_events (go-attestation ParseWinEvents)"]
    w = windows_claims(parse(base64.b64decode(doc["Log"]["Raw"])).events)
    assert w.cold_boot is want["ColdBoot"] is True
    assert w.boot_count == want["BootCount"] == 4
    assert w.dep is want["DEPEnabled"] is True
    assert w.code_integrity is want["CodeIntegrityEnabled"] is True
    assert list(w.bitlocker_unlocks) == want["BitlockerUnlocks"] == [0, 0]
    (elam,) = w.elam
    assert elam.keyname == "Windows Defender" and elam.measured == want["ELAM"]["Windows Defender"]["Measured"]
    modules = {m.authenticode_hash: m for m in w.modules}
    for digest, m in want["LoadedModules_sample"].items():
        got = modules[digest]
        assert got.file_path == m["FilePath"] and list(got.image_base) == m["ImageBase"]
        assert got.image_size == m["ImageSize"] and got.hash_algorithm == m["HashAlgorithm"].lower()
        assert got.image_validated is m["ImageValidated"]
        assert got.authority_issuer == m["AuthorityIssuer"] and got.authority_publisher == m["AuthorityPublisher"]
        assert got.authority_serial == m["AuthoritySerial"] and got.authority_sha1_thumbprint == m["AuthoritySHA1"]
    azure = w.azure()
    assert azure["bootDebuggingDisabled"] and azure["osKernelDebuggingDisabled"] and azure["testSigningDisabled"]
    assert azure["notSafeMode"] and azure["notWinPE"] and azure["elamDriverLoaded"]
    assert azure["vbsEnabled"] is False  # VsmLaunchType 0: this VM ran without VBS
