"""Decoded event data of the real public logs in ../shared/corpus against their expected values.

Expected values come from the corpus' ``expected*.json`` files and ``INDEX.md`` (UPSTREAM values of
go-attestation, go-tpm-tools and keylime), and from the certificate files shipped with them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from attestd.errors import EvidenceError
from attestd.eventlog import parse
from attestd.eventlog.constants import EventType as E
from attestd.eventlog.data import (
    AuthorityValue,
    BoolValue,
    ImageLoad,
    IplEvent,
    RawEventData,
    Separator,
    SignatureDatabase,
    SipaEventData,
    UefiVariable,
    decode,
)

LOGS = [
    "go-attestation/sb_cert_eventlog",
    "go-attestation/option_rom_eventlog",
    "go-attestation/short_no_action_eventlog",
    "go-attestation/crypto_agile_eventlog",
    "go-attestation/ubuntu_2104_shielded_vm_no_secure_boot_eventlog",
    "go-attestation/coreos_36_shielded_vm_no_secure_boot_eventlog",
    "go-tpm-tools/arch-linux-workstation.bin",
    "go-tpm-tools/cos-85-amd-sev.bin",
    "go-tpm-tools/cos-93-amd-sev.bin",
    "go-tpm-tools/debian-10.bin",
    "go-tpm-tools/glinux-alex.bin",
    "go-tpm-tools/rhel8-uefi.bin",
    "go-tpm-tools/ubuntu-1804-amd-sev.bin",
    "go-tpm-tools/ubuntu-2104-no-dbx.bin",
    "go-tpm-tools/ubuntu-2104-no-secure-boot.bin",
    "tpm2-tools/event-bootorder.bin",
    "tpm2-tools/event-postcode.bin",
    "tpm2-tools/event-sd-boot-fedora37.bin",
    "tpm2-tools/event-uefi-sha1-log.bin",
    "tpm2-tools/event-uefiaction.bin",
    "tpm2-tools/event-uefivar.bin",
    "tpm2-tools/specid-vendordata.bin",
    "keylime/binary_bios_measurements",
    "keylime/binary_bios_measurements-secureboot",
]


def _log(corpus: Path, name: str):
    raw = (corpus / name).read_bytes()
    if name.endswith(".json"):
        raw = base64.b64decode(json.loads(raw)["Log"]["Raw"])
    return parse(raw)


def _decoded(log):
    return [(e, decode(e.event_type, e.data, pcr=e.pcr, base_offset=e.data_offset)) for e in log.events]


@pytest.mark.parametrize("name", LOGS + ["go-attestation/windows_gcp_shielded_vm.json"])
def test_every_corpus_event_decodes(corpus, name):
    """Every event of every real log decodes, renders a summary and JSON, and nothing is left raw
    that Attestd knows how to decode (the opaque/vendor types are listed)."""
    opaque = {E.EV_NONHOST_INFO, E.EV_PLATFORM_CONFIG_FLAGS, E.EV_COMPACT_HASH, E.EV_S_CRTM_VERSION, E.EV_NO_ACTION}
    for event, d in _decoded(_log(corpus, name)):
        assert isinstance(d.summary(), str)
        json.dumps(d.to_json())
        if isinstance(d, RawEventData):
            assert event.event_type in opaque, (event.index, event.type_name, d.summary())
        # the lazy hook the parser exposes gives the same result
        assert event.decode() == d


def _read_cert(corpus: Path, name: str) -> bytes:
    return (corpus / "go-tpm-tools" / "secure-boot" / name).read_bytes()


def _variables(log, event_type=E.EV_EFI_VARIABLE_DRIVER_CONFIG) -> dict[str, UefiVariable]:
    return {d.name: d for e, d in _decoded(log) if e.event_type == event_type}


def test_ubuntu_1804_secure_boot_databases(corpus):
    """go-tpm-tools UbuntuAmdSevGCE: db = {Windows Production PCA 2011, UEFI CA 2011} and no hashes,
    PK = exactly the GCE default PK, KEK = exactly Microsoft Corporation KEK CA 2011."""
    v = _variables(_log(corpus, "go-tpm-tools/ubuntu-1804-amd-sev.bin"))
    for name in ("PK", "KEK", "db"):
        assert isinstance(v[name].value, SignatureDatabase)
    assert [c.der for c in v["PK"].value.certificates] == [_read_cert(corpus, "GcePk.crt")]
    assert [c.der for c in v["KEK"].value.certificates] == [_read_cert(corpus, "MicCorKEKCA2011_2011-06-24.crt")]
    assert v["KEK"].value.certificates[0].subject_cn == "Microsoft Corporation KEK CA 2011"
    db = v["db"].value
    assert {c.der for c in db.certificates} == {
        _read_cert(corpus, "MicWinProPCA2011_2011-10-19.crt"),
        _read_cert(corpus, "MicCorUEFCA2011_2011-06-27.crt"),
    }
    assert len(db.certificates) == 2 and db.digests == ()
    assert {c.subject_cn for c in db.certificates} == {
        "Microsoft Windows Production PCA 2011",
        "Microsoft Corporation UEFI CA 2011",
    }
    assert v["db"].summary().startswith("db: 2 X509 certs (")


def _post_separator_authorities(log) -> list[AuthorityValue]:
    seen_sep = False
    out = []
    for e, d in _decoded(log):
        if e.pcr != 7:
            continue
        if e.event_type == E.EV_SEPARATOR:
            seen_sep = True
        elif e.event_type == E.EV_EFI_VARIABLE_AUTHORITY and seen_sep and isinstance(d.value, AuthorityValue):
            out.append(d.value)
    return out


@pytest.mark.parametrize(
    "name,issuers",
    [
        (
            "sb_cert_eventlog",
            ["Microsoft Corporation UEFI CA 2011", "Canonical Ltd. Master Certificate Authority",
             "Canonical Ltd. Master Certificate Authority"],
        ),
        ("option_rom_eventlog", ["Microsoft Corporation UEFI CA 2011", "Microsoft Windows Production PCA 2011"]),
    ],
)
def test_go_attestation_post_separator_authorities(corpus, name, issuers):
    expected = json.loads((corpus / "go-attestation" / "expected.json").read_text())
    auths = _post_separator_authorities(_log(corpus, f"go-attestation/{name}"))
    assert len(auths) == expected[name]["expected"]["secureboot_PostSeparatorAuthority_count"]
    assert [a.entry.certificate.subject_cn for a in auths] == issuers
    assert all(a.entry.certificate.warning is None for a in auths)


def test_option_rom_driver_load_source_hints(corpus):
    expected = json.loads((corpus / "go-attestation" / "expected.json").read_text())
    hints = [
        d.load_source_hint or "UnknownSource"
        for e, d in _decoded(_log(corpus, "go-attestation/option_rom_eventlog"))
        if e.pcr == 2 and e.event_type == E.EV_EFI_BOOT_SERVICES_DRIVER
    ]
    assert hints == expected["option_rom_eventlog"]["expected"]["DriverLoadSourceHints"]


@pytest.mark.parametrize("case,file", [("COS85AmdSev", "cos-85-amd-sev.bin"), ("COS93AmdSev", "cos-93-amd-sev.bin")])
def test_cos_kernel_command_line_and_grub_files(corpus, case, file):
    expected = json.loads((corpus / "go-tpm-tools" / "expected_eventlogs.json").read_text())[case]
    ipl = [(e, d) for e, d in _decoded(_log(corpus, f"go-tpm-tools/{file}")) if e.event_type == E.EV_IPL]
    assert all(isinstance(d, IplEvent) for _, d in ipl)
    cmdlines = [d for _, d in ipl if d.prefix == "kernel_cmdline"]
    assert len(cmdlines) == 1
    (cmd,) = cmdlines
    # the measured string is NUL terminated; upstream keeps that NUL in its expected value
    assert cmd.nul_terminated and cmd.encoding == "ascii"
    assert cmd.value + "\0" == expected["expected_linux_kernel_cmdline"]
    files = [d.value for e, d in ipl if d.is_file]
    assert len(files) == 2
    assert files[0].endswith("/grub.cfg") and files[1] == "/syslinux/vmlinuz.A"


def test_windows_wbcl(corpus):
    """go-attestation ParseWinEvents on windows_gcp_shielded_vm.json (expected.json)."""
    expected = json.loads((corpus / "go-attestation" / "expected.json").read_text())
    win = expected["windows_gcp_shielded_vm.json"]["expected"]["windows_events (go-attestation ParseWinEvents)"]
    decoded = [(e, d) for e, d in _decoded(_log(corpus, "go-attestation/windows_gcp_shielded_vm.json"))
               if e.pcr in (12, 13)]
    sipa = [(e, d) for e, d in decoded if isinstance(d, SipaEventData)]
    assert len(sipa) == 4
    assert [d.meaning for e, d in decoded if isinstance(d, Separator)] == ["wbcl", "wbcl"]

    def values(name, pcrs=(12, 13)):
        return [v for e, d in sipa if e.pcr in pcrs for v in d.values(name)]

    assert set(values("SIPAEVENT_BOOTCOUNTER")) == {win["BootCount"]}
    assert values("SIPAEVENT_TRANSFER_CONTROL", (12,))[-1] == 1  # 1 = winload: a cold boot
    assert win["ColdBoot"] is True
    dep = values("SIPAEVENT_DATAEXECUTIONPREVENTION")
    assert dep and all(dep) == win["DEPEnabled"]
    ci = values("SIPAEVENT_CODEINTEGRITY")
    assert ci and all(ci) == win["CodeIntegrityEnabled"]
    assert values("SIPAEVENT_BITLOCKER_UNLOCK", (12,)) == win["BitlockerUnlocks"]
    elam = {drv.keyname: drv for e, d in sipa for drv in d.elam_drivers}
    assert set(elam) == set(win["ELAM"])
    assert elam["Windows Defender"].measured.hex() == win["ELAM"]["Windows Defender"]["Measured"]

    # modules keyed by Authenticode hash, merged over both PCRs as go-attestation does
    modules: dict[str, dict] = {}
    for e, d in sipa:
        for m in d.loaded_modules:
            key = m.authenticode_hash.hex()
            bases = modules.get(key, {}).get("ImageBase", [])
            modules[key] = {
                "FilePath": m.file_path or "",
                "ImageBase": ([m.image_base] if m.image_base else []) + bases,
                "ImageSize": m.image_size or 0,
                "HashAlgorithm": m.hash_algorithm,
                "ImageValidated": bool(m.image_validated),
                "AuthorityIssuer": m.authority_issuer or "",
                "AuthorityPublisher": m.authority_publisher or "",
                "AuthoritySerial": (m.authority_serial or b"").hex(),
                "AuthoritySHA1": (m.authority_sha1_thumbprint or b"").hex(),
            }
    for key, want in win["LoadedModules_sample"].items():
        assert modules[key] == want


@pytest.mark.parametrize(
    "name,value", [("keylime/binary_bios_measurements", 0), ("keylime/binary_bios_measurements-secureboot", 1)]
)
def test_keylime_secureboot_variable(corpus, name, value):
    sb = _variables(_log(corpus, name))["SecureBoot"]
    assert isinstance(sb.value, BoolValue) and sb.value.value == value
    assert sb.summary() == f"SecureBoot = {value} ({'enabled' if value else 'disabled'})"


def test_arch_linux_zero_length_secureboot(corpus):
    """The variable is decoded, typed and flagged; it does not raise."""
    sb = _variables(_log(corpus, "go-tpm-tools/arch-linux-workstation.bin"))["SecureBoot"]
    assert sb.data == b"" and sb.value.value is None
    assert sb.warnings == ("SecureBoot data is 0 bytes, expected 1",)


def test_systemd_boot_utf16_strings(corpus):
    log = _log(corpus, "go-tpm-tools/arch-linux-workstation.bin")
    (ipl,) = [d for e, d in _decoded(log) if e.event_type == E.EV_IPL]
    assert ipl.encoding == "utf-16le"
    assert ipl.text.startswith(r"initrd=\intel-ucode.img initrd=\initramfs-linux-lts.img ")
    fedora = _log(corpus, "tpm2-tools/event-sd-boot-fedora37.bin")
    texts = [(e.pcr, d) for e, d in _decoded(fedora) if e.event_type in (E.EV_IPL, E.EV_EVENT_TAG)]
    assert [(p, d.summary()) for p, d in texts] == [
        (12, " console=ttyS0 console=tty0 efi=debug "),
        (12, " console=ttyS0 console=tty0 efi=debug "),
        (9, "INITRD_EVENT_TAG_ID: Linux initrd"),
    ]


def test_shim_authorities_and_sbat(corpus):
    log = _log(corpus, "keylime/binary_bios_measurements-secureboot")
    auth = {d.name: d for e, d in _decoded(log) if e.event_type == E.EV_EFI_VARIABLE_AUTHORITY}
    assert auth["SbatLevel"].value.text == "sbat,1,2023012900\nshim,2\ngrub,3\ngrub.debian,4\n"
    assert auth["vendor_db"].value.entry.certificate.subject_cn == "Red Hat Secure Boot CA 5"
    assert auth["db"].value.entry.certificate.subject_cn == "Microsoft Corporation UEFI CA 2011"
    coreos = _log(corpus, "go-attestation/coreos_36_shielded_vm_no_secure_boot_eventlog")
    trusted = [d for e, d in _decoded(coreos) if e.event_type == E.EV_EFI_VARIABLE_AUTHORITY and d.name == "MokListTrusted"]
    assert [d.value.data for d in trusted] == [b"\x01"]


def test_image_load_paths(corpus):
    log = _log(corpus, "go-tpm-tools/rhel8-uefi.bin")
    apps = [d for e, d in _decoded(log) if e.event_type == E.EV_EFI_BOOT_SERVICES_APPLICATION]
    assert all(isinstance(d, ImageLoad) for d in apps)
    assert apps[0].device_path.text == (
        r"PciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x1,0x0)/HD(1,GPT,ef72374c-2630-46a1-88d6-082693781140,0x800,0x64000)"
        r"/\EFI\redhat\shimx64.efi"
    )
    assert apps[1].device_path.text == r"\EFI\redhat\grubx64.efi"


def test_corrupted_corpus_event_reports_absolute_offset(corpus):
    log = _log(corpus, "go-tpm-tools/ubuntu-1804-amd-sev.bin")
    ev = next(e for e in log.events if e.event_type == E.EV_EFI_VARIABLE_DRIVER_CONFIG and b"d\x00b\x00x" in e.data[:50])
    data = bytearray(ev.data)
    data[38 + 16 : 38 + 20] = (10**6).to_bytes(4, "little")  # first list's SignatureListSize
    with pytest.raises(EvidenceError) as ei:
        decode(ev.event_type, bytes(data), base_offset=ev.data_offset)
    assert ei.value.code == "eventlog.data.signature_list"
    assert ei.value.offset == ev.data_offset + 38 + 16
