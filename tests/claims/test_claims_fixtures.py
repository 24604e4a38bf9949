"""Claims from the project's own QEMU/OVMF/swtpm boots (Debian's signed shim -> GRUB -> kernel)."""

from __future__ import annotations

import json

import pytest
from corpus_paths import FIXTURES

from attestd.claims import (
    JSON_CLAIMS,
    VerifiedTpmEvidence,
    build_claims,
    inspect_eventlog,
    verify_eventlog,
)
from attestd.errors import VerificationError

QEMU = FIXTURES / "qemu"


def _log(variant: str) -> bytes:
    return (QEMU / variant / "binary_bios_measurements").read_bytes()


def _pcrs(variant: str, name: str = "pcrs.json") -> dict:
    doc = json.loads((QEMU / variant / name).read_text())
    return {bank: {int(i): bytes.fromhex(v) for i, v in values.items()} for bank, values in doc.items()}


def _meta(variant: str) -> dict:
    return json.loads((QEMU / variant / "meta.json").read_text())


@pytest.fixture(scope="module")
def sb():
    return build_claims(verify_eventlog(_log("sb"), _pcrs("sb")))


def test_secure_boot_and_keys(sb):
    flat = sb.flat(())
    assert flat["secureBootEnabled"] is True and flat["secureBootEnforced"] is True
    assert flat["secureBootPk"] == ["Debian UEFI Secure Boot (PK/KEK key)"]
    assert flat["secureBootKek"] == ["Debian UEFI Secure Boot (PK/KEK key)", "Microsoft Corporation KEK CA 2011"]
    assert flat["secureBootDb"] == ["Microsoft Windows Production PCA 2011", "Microsoft Corporation UEFI CA 2011"]
    assert flat["secureBootDbxCount"] == 1 and len(sb.uefi.databases["dbx"].digests) == 1
    # the authorities that verified shim (db: Microsoft UEFI CA) and the kernel (shim's MokListRT: Debian CA)
    assert flat["secureBootAuthorities"] == ["Microsoft Corporation UEFI CA 2011", "Debian Secure Boot CA"]
    assert flat["shimSbatLevel"].splitlines()[0].startswith("sbat,1,")
    assert set(flat) >= {"mokListDigest", "mokListXDigest", "mokListTrustedDigest"}
    db = sb.uefi.databases["db"]
    assert all(len(c.sha256) == 64 and c.issuer for c in db.certificates)
    assert sb.uefi.secure_boot_event == 4


def test_boot_chain(sb):
    flat = sb.flat(())
    meta = _meta("sb")
    assert flat["bootApplications"] == ["shim", "grub", "kernel"]
    apps = sb.boot.applications
    assert [a.kind for a in apps] == ["shim", "grub", "kernel", "kernel"]
    assert apps[0].file_path == "\\EFI\\BOOT\\BOOTX64.EFI" and apps[1].file_path == "\\EFI\\BOOT\\grubx64.efi"
    # the measured command line is what the booted guest saw in /proc/cmdline (GRUB adds BOOT_IMAGE=)
    assert flat["kernelImagePath"] == "/vmlinuz"
    assert f"BOOT_IMAGE={flat['kernelImagePath']} {flat['kernelCommandLine']}" == meta["kernel_cmdline"]
    assert flat["kernelDebuggingDisabled"] is True
    assert "linux /vmlinuz " + flat["kernelCommandLine"] in flat["grubCommands"]
    assert sb.boot.kernel.path == "/vmlinuz" and sb.boot.initrd.path == "/initrd.img"
    assert flat["kernelDigest"] == sb.boot.kernel.digests["sha256"]
    assert sb.boot.separators[7] == ("normal",) and set(sb.boot.separators) == set(range(8))
    assert flat["drtmLaunched"] is False and flat["exitBootServices"] is True


def test_second_boot_has_the_same_claims(sb):
    second = build_claims(verify_eventlog(_log("sb-second"), _pcrs("sb-second")))
    assert second.flat(()) == sb.flat(())


def test_init_sh_boot_changes_only_the_command_line(sb):
    initsh = build_claims(verify_eventlog(_log("sb-initsh"), _pcrs("sb-initsh"))).flat(())
    base = sb.flat(())
    assert "init=/bin/sh" in initsh["kernelParameters"] and "init=/bin/sh" not in base["kernelParameters"]
    changed = {k for k in base if base[k] != initsh.get(k)}
    assert changed == {"kernelCommandLine", "kernelParameters", "grubCommands"}


def test_secure_boot_off():
    flat = build_claims(verify_eventlog(_log("nosb"), _pcrs("nosb"))).flat(())
    assert flat["secureBootEnabled"] is False and flat["secureBootEnforced"] is False
    # without Secure Boot shim does not LoadImage the kernel: PCR 4 has shim and GRUB only
    assert flat["bootApplications"] == ["shim", "grub"]


def test_log_that_does_not_replay_is_refused():
    pcrs = _pcrs("sb")
    pcrs["sha256"][8] = bytes(32)
    with pytest.raises(VerificationError) as info:
        verify_eventlog(_log("sb"), pcrs)
    assert info.value.code == "eventlog.replay_mismatch" and info.value.field == "pcrs.sha256.8"


def test_pcrs_without_a_value_are_not_believed():
    pcrs = _pcrs("sb")
    for bank in pcrs.values():
        bank.pop(8)
        bank.pop(9)
    claims = build_claims(verify_eventlog(_log("sb"), pcrs))
    flat = claims.flat(())
    assert claims.evidence.unverified_pcrs == (8, 9)
    # GRUB's commands and files are in PCR 8/9: with no trusted value they yield no claim
    for name in ("kernelCommandLine", "grubCommands", "kernelDigest", "initrdDigest"):
        assert name not in flat
    assert flat["secureBootEnabled"] is True


def test_ima_claims_cover_the_quoted_prefix_only():
    pcrs = _pcrs("sb", "pcrs_after.json")
    ima = (QEMU / "sb" / "ima" / "binary_runtime_measurements").read_bytes()
    claims = build_claims(verify_eventlog(_log("sb"), pcrs, ima_log=ima))
    assert claims.ima.measurements[0].path == "boot_aggregate"
    assert claims.ima.unverified_entries == 0
    flat = claims.flat(("ima",))
    assert flat["imaMeasurementCount"] == len(claims.ima.measurements) > 1
    assert flat["ima"]["Measurements"][1]["Digest"].startswith("sha256:")
    # an IMA log without a trusted PCR 10 is refused, not half-believed
    for bank in pcrs.values():
        bank.pop(10)
    with pytest.raises(VerificationError) as info:
        verify_eventlog(_log("sb"), pcrs, ima_log=ima)
    assert info.value.code == "ima.pcr_not_quoted"


def test_self_replay_is_labelled():
    claims = build_claims(inspect_eventlog(_log("sb")))
    assert claims.provenance == "self-replay"
    assert claims.flat(())["secureBootEnabled"] is True


def test_only_the_verifier_makes_verified_evidence():
    with pytest.raises(TypeError):
        VerifiedTpmEvidence(provenance="quote", pcrs={}, eventlog=None, replay=None, verified_pcrs=frozenset())
    with pytest.raises(TypeError):
        build_claims({"secureBootEnabled": True})  # type: ignore[arg-type]


def test_json_claims_are_built_on_demand(sb):
    assert not JSON_CLAIMS & set(sb.flat(()))
    flat = sb.flat({"events"})
    assert "events" in flat and "pcrs" not in flat
    assert set(sb.flat()) >= {"events", "pcrs"}


def test_events_claim_shape(sb):
    events = sb.json_claim("events")["Events"]
    sbvar = next(e for e in events if e["EventTypeString"] == "EV_EFI_VARIABLE_DRIVER_CONFIG")
    assert sbvar == {
        "EventSeq": 4,
        "PcrIndex": 7,
        "EventTypeString": "EV_EFI_VARIABLE_DRIVER_CONFIG",
        "Digests": {"SHA1": sbvar["Digests"]["SHA1"], "SHA256": sbvar["Digests"]["SHA256"]},
        "ProcessedData": {"VariableGuid": "8BE4DF61-93CA-11D2-AA0D-00E098032B8C", "UnicodeName": "SecureBoot",
                          "VariableData": "AQ"},
    }
    assert all(e["EventTypeString"] != "EV_NO_ACTION" for e in events)
    app = next(e for e in events if e["EventTypeString"] == "EV_EFI_BOOT_SERVICES_APPLICATION")
    assert app["ProcessedData"]["DevicePath"].endswith("\\EFI\\BOOT\\BOOTX64.EFI")
    pcrs = sb.json_claim("pcrs")["PCRs"]
    assert pcrs[0]["Index"] == 0 and set(pcrs[0]["Digests"]) == {"SHA1", "SHA256"}
    assert pcrs[0]["Digests"]["SHA256"] == _pcrs("sb")["sha256"][0].hex()


def test_forged_event_data_is_refused():
    """Change the SecureBoot variable's data from 1 to 0 and keep its digests: the log still
    replays to the TPM's PCRs, but the data is not what was measured."""
    from attestd.eventlog import parse

    data = bytearray(_log("sb"))
    ev = parse(bytes(data)).events[4]
    assert ev.decode().name == "SecureBoot" and ev.data[-1] == 1
    data[ev.data_offset + len(ev.data) - 1] = 0
    with pytest.raises(VerificationError) as info:
        verify_eventlog(bytes(data), _pcrs("sb"))
    err = info.value
    assert err.code == "eventlog.data_not_measured" and err.details["event"] == 4 and err.offset == ev.offset
    # in a PCR no quote covers, the forged event is simply not read
    pcrs = _pcrs("sb")
    for bank in pcrs.values():
        bank.pop(7)
    claims = build_claims(verify_eventlog(bytes(data), pcrs))
    assert 7 in claims.evidence.unverified_pcrs and claims.uefi.secure_boot is None
    assert claims.flat(())["secureBootEnabled"] is False  # not measured (in a trusted PCR) is not enabled
