"""attestd.eventlog.data on structures built from the specs: values, text forms, errors and offsets."""

from __future__ import annotations

import datetime
import hashlib
import struct
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attestd.errors import EvidenceError
from attestd.eventlog.constants import EventType as E
from attestd.eventlog.data import (
    AuthorityValue,
    BoolValue,
    FirmwareBlob,
    GptEvent,
    HandoffTables,
    ImageLoad,
    IplEvent,
    LoadOption,
    NoActionEvent,
    RawEventData,
    Separator,
    SignatureDatabase,
    SipaEventData,
    TaggedEvent,
    TextEvent,
    TextValue,
    U16ListValue,
    UefiVariable,
    decode,
    parse_device_path,
)
from attestd.eventlog.data.text import detect_text

from evdata_build import (
    EFI_CERT_SHA256,
    EFI_CERT_X509,
    EFI_IMAGE_SECURITY_DATABASE,
    END,
    END_INSTANCE,
    MICROSOFT,
    SHIM_LOCK,
    file_path,
    guid,
    hd_gpt,
    image_load,
    load_option,
    node,
    pci,
    pciroot,
    signature_list,
    sipa,
    utf16,
    variable_data,
)

DISK = "c359e798-596a-42b6-b6f6-eca290429d99"


@pytest.fixture(scope="module")
def cert_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Attestd Test db CA")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Attestd Test Root")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(0x1234ABCD)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


# -- UEFI variables ----------------------------------------------------------------------------


@pytest.mark.parametrize("value,text", [(b"\x01", "SecureBoot = 1 (enabled)"), (b"\x00", "SecureBoot = 0 (disabled)")])
def test_secureboot_value(value, text):
    d = decode(E.EV_EFI_VARIABLE_DRIVER_CONFIG, variable_data("SecureBoot", value))
    assert isinstance(d, UefiVariable) and isinstance(d.value, BoolValue)
    assert d.value.value == value[0]
    assert d.summary() == text
    assert d.to_json()["variable_name"] == "8be4df61-93ca-11d2-aa0d-00e098032b8c"
    assert d.to_json()["unicode_name"] == "SecureBoot"
    assert d.warnings == ()


def test_zero_length_secureboot_is_a_typed_warning():
    d = decode(E.EV_EFI_VARIABLE_DRIVER_CONFIG, variable_data("SecureBoot", b""))
    assert isinstance(d.value, BoolValue) and d.value.value is None
    assert d.warnings == ("SecureBoot data is 0 bytes, expected 1",)
    assert d.summary() == "SecureBoot = <0 bytes> (expected 1)"
    assert d.to_json()["value"] == {"kind": "bool", "value": None, "enabled": None}


def test_signature_database_with_cert_and_hashes(cert_der):
    h1, h2 = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    value = signature_list(EFI_CERT_X509, [(MICROSOFT, cert_der)]) + signature_list(
        EFI_CERT_SHA256, [(MICROSOFT, h1), (SHIM_LOCK, h2)]
    )
    d = decode(E.EV_EFI_VARIABLE_DRIVER_CONFIG, variable_data("db", value, EFI_IMAGE_SECURITY_DATABASE))
    db = d.value
    assert isinstance(db, SignatureDatabase)
    assert len(db.lists) == 2
    (cert,) = db.certificates
    assert cert.subject == "CN=Attestd Test db CA" and cert.issuer == "CN=Attestd Test Root"
    assert cert.serial == "1234abcd"
    assert cert.sha256 == hashlib.sha256(cert_der).hexdigest()
    assert [e.digest for e in db.digests] == [h1, h2]
    assert [str(e.owner) for e in db.entries] == [MICROSOFT, MICROSOFT, SHIM_LOCK]
    assert d.summary() == "db: 1 X509 cert (Attestd Test db CA), 2 sha256 hashes"
    j = d.to_json()["value"]
    assert j["lists"][0]["entries"][0]["certificate"]["serial"] == "1234abcd"
    assert j["lists"][1]["entries"][1]["digest"] == h2.hex()


def test_unparseable_certificate_is_kept_with_a_warning():
    bogus = b"\x30\x03\x02\x01\x01"  # a DER SEQUENCE that is no certificate
    d = decode(
        E.EV_EFI_VARIABLE_DRIVER_CONFIG,
        variable_data("db", signature_list(EFI_CERT_X509, [(MICROSOFT, bogus)]), EFI_IMAGE_SECURITY_DATABASE),
    )
    (cert,) = d.value.certificates
    assert cert.subject is None and cert.der == bogus and cert.warning
    assert len(d.warnings) == 1
    assert d.to_json()["value"]["lists"][0]["entries"][0]["certificate"]["der"] == bogus.hex()


@pytest.mark.parametrize(
    "mutate,field,delta",
    [
        (lambda sl: sl[:16] + struct.pack("<I", 27) + sl[20:], "EFI_SIGNATURE_LIST.SignatureListSize", 16),
        (lambda sl: sl[:24] + struct.pack("<I", 0) + sl[28:], "EFI_SIGNATURE_LIST.SignatureSize", 24),
        (lambda sl: sl[:24] + struct.pack("<I", 47) + sl[28:], "EFI_SIGNATURE_LIST.SignatureSize", 24),
        (lambda sl: sl[:20] + struct.pack("<I", 1000) + sl[24:], "EFI_SIGNATURE_LIST.SignatureHeaderSize", 20),
    ],
)
def test_bad_signature_list_reports_field_and_absolute_offset(mutate, field, delta):
    sl = mutate(signature_list(EFI_CERT_SHA256, [(MICROSOFT, bytes(32))]))
    data = variable_data("dbx", sl, EFI_IMAGE_SECURITY_DATABASE)
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_VARIABLE_DRIVER_CONFIG, data, base_offset=1000)
    assert ei.value.code == "eventlog.data.signature_list"
    assert ei.value.field == field
    # header (16 + 8 + 8) + name "dbx" (6 bytes) precede the list
    assert ei.value.offset == 1000 + 38 + delta


def test_variable_lengths_past_the_data():
    data = variable_data("PK", b"")
    big_name = data[:16] + struct.pack("<Q", 1 << 62) + data[24:]
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_VARIABLE_DRIVER_CONFIG, big_name, base_offset=50)
    assert (ei.value.code, ei.value.field, ei.value.offset) == (
        "eventlog.data.truncated",
        "UEFI_VARIABLE_DATA.UnicodeNameLength",
        66,
    )
    big_data = data[:24] + struct.pack("<Q", 99) + data[32:]
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_VARIABLE_BOOT, big_data)
    assert (ei.value.code, ei.value.field, ei.value.offset) == (
        "eventlog.data.truncated",
        "UEFI_VARIABLE_DATA.VariableDataLength",
        24,
    )


def test_boot_order_and_load_option():
    d = decode(E.EV_EFI_VARIABLE_BOOT, variable_data("BootOrder", struct.pack("<3H", 3, 0, 0x1F)))
    assert isinstance(d.value, U16ListValue) and d.value.values == (3, 0, 0x1F)
    assert d.summary() == "BootOrder: 0003,0000,001F"
    path = pciroot(0) + pci(6, 0) + hd_gpt(15, 0x2800, 0x35000, DISK) + file_path(r"\EFI\BOOT\BOOTX64.EFI") + END
    d = decode(E.EV_EFI_VARIABLE_BOOT2, variable_data("Boot0003", load_option(1, "ubuntu", path, b"\xaa\xbb")))
    opt = d.value
    assert isinstance(opt, LoadOption)
    assert opt.active and opt.description == "ubuntu" and opt.optional_data == b"\xaa\xbb"
    expected = rf"PciRoot(0x0)/Pci(0x6,0x0)/HD(15,GPT,{DISK},0x2800,0x35000)/\EFI\BOOT\BOOTX64.EFI"
    assert opt.device_path == expected
    assert d.summary() == f'Boot0003: "ubuntu" {expected} +2 bytes optional data'


def test_load_option_errors():
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_VARIABLE_BOOT, variable_data("Boot0000", struct.pack("<IH", 1, 0) + "abc".encode("utf-16-le")))
    assert ei.value.code == "eventlog.data.load_option" and ei.value.field == "EFI_LOAD_OPTION.Description"
    bad = load_option(1, "x", END)[:4] + struct.pack("<H", 200) + load_option(1, "x", END)[6:]
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_VARIABLE_BOOT, variable_data("Boot0000", bad))
    assert ei.value.field == "EFI_LOAD_OPTION.FilePathListLength"
    assert ei.value.offset == 32 + 16 + 4


def test_authority_shapes(cert_der):
    # EFI_SIGNATURE_DATA: owner GUID + certificate
    d = decode(E.EV_EFI_VARIABLE_AUTHORITY, variable_data("db", guid(MICROSOFT) + cert_der, EFI_IMAGE_SECURITY_DATABASE))
    assert isinstance(d.value, AuthorityValue) and not d.value.owner_missing
    assert d.value.entry.certificate.subject_cn == "Attestd Test db CA"
    assert str(d.value.entry.owner) == MICROSOFT
    assert d.summary() == "db: Attestd Test db CA (owner Microsoft)"
    # old shim: the bare certificate
    d = decode(E.EV_EFI_VARIABLE_AUTHORITY, variable_data("Shim", cert_der, SHIM_LOCK))
    assert d.value.owner_missing and d.value.entry.certificate.der == cert_der
    # SbatLevel text
    d = decode(E.EV_EFI_VARIABLE_AUTHORITY, variable_data("SbatLevel", b"sbat,1,2021030218\n", SHIM_LOCK))
    assert isinstance(d.value, TextValue) and d.value.text == "sbat,1,2021030218\n"
    # an image authorised by its hash in db
    digest = hashlib.sha256(b"image").digest()
    d = decode(E.EV_EFI_VARIABLE_AUTHORITY, variable_data("db", guid(MICROSOFT) + digest, EFI_IMAGE_SECURITY_DATABASE))
    assert d.value.entry.digest == digest and d.value.entry.type == "sha256"


def test_trailing_bytes_after_variable_data_are_a_warning():
    d = decode(E.EV_EFI_VARIABLE_AUTHORITY, variable_data("MokListTrusted", b"\x01", SHIM_LOCK) + bytes(6))
    assert d.trailing == bytes(6)
    assert d.warnings == ("6 bytes after VariableData (ignored)",)


# -- device paths ------------------------------------------------------------------------------

MAC = bytes.fromhex("525400123456") + bytes(26)


@pytest.mark.parametrize(
    "raw,text",
    [
        (pciroot(3) + pci(0x1F, 2), "PciRoot(0x3)/Pci(0x1f,0x2)"),
        (node(2, 1, struct.pack("<II", 0x0A0841D0, 1)), "PcieRoot(0x1)"),
        (node(2, 1, struct.pack("<II", 0x050141D0, 0)), "Serial(0x0)"),
        (node(2, 1, struct.pack("<II", 0x0C0941D0, 2)), "Acpi(PNP0C09,0x2)"),
        (node(2, 1, struct.pack("<II", 0x12345678, 2)), "Acpi(0x12345678,0x2)"),
        (node(2, 3, struct.pack("<I", 0x80010100)), "AcpiAdr(0x80010100)"),
        (node(1, 3, struct.pack("<IQQ", 11, 0xFF000000, 0xFFFFFFFF)), "MemoryMapped(0xb,0xff000000,0xffffffff)"),
        (node(1, 4, guid(MICROSOFT)), f"VenHw({MICROSOFT})"),
        (node(1, 4, guid(MICROSOFT) + b"\x01\x02"), f"VenHw({MICROSOFT},0102)"),
        (node(1, 5, struct.pack("<I", 7)), "Ctrl(0x7)"),
        (node(3, 1, struct.pack("<BBH", 1, 0, 0)), "Ata(Secondary,Master,0x0)"),
        (node(3, 2, struct.pack("<HH", 1, 0)), "Scsi(0x1,0x0)"),
        (node(3, 5, bytes([3, 1])), "USB(0x3,0x1)"),
        (node(3, 0x0F, struct.pack("<HHBBB", 0x46D, 0xC52B, 3, 1, 2)), "UsbClass(0x46d,0xc52b,0x3,0x1,0x2)"),
        (node(3, 0x12, struct.pack("<HHH", 1, 0xFFFF, 0)), "Sata(0x1,0xffff,0x0)"),
        (node(3, 0x0B, MAC + b"\x01"), "MAC(525400123456,0x1)"),
        (
            node(3, 0x0C, bytes([10, 0, 0, 2, 10, 0, 0, 1]) + struct.pack("<HHHB", 68, 67, 17, 0) + bytes(8)),
            "IPv4(10.0.0.1,UDP,DHCP,10.0.0.2,0.0.0.0,0.0.0.0)",
        ),
        (
            node(3, 0x0D, bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack("<HHHBB", 0, 0, 6, 1, 64) + bytes(16)),
            "IPv6(::2,TCP,StatelessAutoConfigure,::1,64,::)",
        ),
        (node(3, 0x17, struct.pack("<I", 1) + bytes(range(1, 9))), "NVMe(0x1,08-07-06-05-04-03-02-01)"),
        (node(3, 0x18, b"http://boot.example/x.efi"), "Uri(http://boot.example/x.efi)"),
        (node(3, 0x14, struct.pack("<H", 42)), "Vlan(42)"),
        (node(3, 0x0E, struct.pack("<IQBBB", 0, 115200, 8, 1, 1)), "Uart(115200,8,N,1)"),
        (node(3, 0x0A, guid("e0c14753-f9be-11d2-9a0c-0090273fc14d")), "VenPcAnsi()"),
        (node(4, 1, struct.pack("<IQQ", 1, 63, 1000) + struct.pack("<I", 0xDEADBEEF) + bytes(12) + bytes([1, 1])),
         "HD(1,MBR,0xdeadbeef,0x3f,0x3e8)"),
        (hd_gpt(1, 0x800, 0x100000, DISK), f"HD(1,GPT,{DISK},0x800,0x100000)"),
        (node(4, 2, struct.pack("<IQQ", 0, 16, 32)), "CDROM(0x0,0x10,0x20)"),
        (node(4, 3, guid(SHIM_LOCK)), f"VenMedia({SHIM_LOCK})"),
        (file_path(r"\EFI\BOOT\BOOTX64.EFI"), r"\EFI\BOOT\BOOTX64.EFI"),
        (node(4, 6, guid(SHIM_LOCK)), f"FvFile({SHIM_LOCK})"),
        (node(4, 7, guid(MICROSOFT)), f"Fv({MICROSOFT})"),
        (node(4, 8, struct.pack("<IQQ", 0, 0x15C00, 0x47FFF)), "Offset(0x15c00,0x47fff)"),
        (node(5, 1, struct.pack("<HH", 2, 0) + b"VirtScsi(0,3,0) Disk\0"), "BBS(HD,VirtScsi(0,3,0) Disk,0x0)"),
        (node(9, 9, b"\xab"), "Path(9,9,ab)"),
        (node(3, 0x7E, b""), "Path(3,126)"),
        (node(1, 1, b"\x00"), "Path(1,1,00)"),  # a PCI node too short for its fields
        (pciroot(0) + END_INSTANCE + pciroot(1), "PciRoot(0x0),PciRoot(0x1)"),
    ],
)
def test_device_path_text(raw, text):
    path = parse_device_path(raw + END)
    assert path.text == text
    assert path.terminated


def test_device_path_errors_and_padding():
    with pytest.raises(EvidenceError) as ei:
        parse_device_path(pci(1, 0) + struct.pack("<BBH", 1, 1, 2), base_offset=100)
    assert (ei.value.code, ei.value.offset) == ("eventlog.data.device_path", 100 + 6 + 2)
    with pytest.raises(EvidenceError) as ei:
        parse_device_path(pci(1, 0) + struct.pack("<BBH", 4, 4, 40) + b"ab")
    assert ei.value.code == "eventlog.data.device_path" and ei.value.offset == 8
    # zero padding after End Entire is ignored; a path without End is reported as unterminated
    assert parse_device_path(pciroot(0) + END + bytes(8)).text == "PciRoot(0x0)"
    assert not parse_device_path(pciroot(0)).terminated


# -- image load, strings, blobs ------------------------------------------------------------------


def test_image_load():
    path = pciroot(0) + pci(3, 0) + node(4, 8, struct.pack("<IQQ", 0, 0x15C00, 0x47FFF)) + END
    d = decode(E.EV_EFI_BOOT_SERVICES_DRIVER, image_load(0xBE3E8018, 0x167B38, 0, path))
    assert isinstance(d, ImageLoad)
    assert (d.image_location_in_memory, d.image_length_in_memory, d.length_of_device_path) == (
        0xBE3E8018,
        0x167B38,
        len(path),
    )
    assert d.device_path.text == "PciRoot(0x0)/Pci(0x3,0x0)/Offset(0x15c00,0x47fff)"
    assert d.load_source_hint == "PciMmioSource"
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_BOOT_SERVICES_APPLICATION, image_load(0, 0, 0, path)[:-3], base_offset=7)
    assert ei.value.field == "UEFI_IMAGE_LOAD_EVENT.LengthOfDevicePath" and ei.value.offset == 7 + 24


@pytest.mark.parametrize(
    "data,pcr,prefix,value,encoding,nul",
    [
        (b"grub_cmd: linux /vmlinuz root=/dev/sda1\0", 8, "grub_cmd", "linux /vmlinuz root=/dev/sda1", "ascii", True),
        (b"kernel_cmdline: /vmlinuz ro quiet\0", 8, "kernel_cmdline", "/vmlinuz ro quiet", "ascii", True),
        (b"grub_cmd search --label boot", 8, "grub_cmd", "search --label boot", "ascii", False),
        (b"(hd0,gpt1)/boot/grub/grub.cfg\0", 9, None, "(hd0,gpt1)/boot/grub/grub.cfg", "ascii", True),
        (utf16(" console=ttyS0 quiet"), 12, None, " console=ttyS0 quiet", "utf-16le", True),
        (utf16("initrd=\\x.img", nul=False) + b"\0", 12, None, "initrd=\\x.img", "utf-16le", True),
        ("räksmörgås".encode() + b"\0", 8, None, "räksmörgås", "utf-8", True),
    ],
)
def test_ipl_strings(data, pcr, prefix, value, encoding, nul):
    d = decode(E.EV_IPL, data, pcr=pcr)
    assert isinstance(d, IplEvent)
    assert (d.prefix, d.value, d.encoding, d.nul_terminated) == (prefix, value, encoding, nul)
    assert d.is_file == (pcr == 9 and prefix is None)


def test_binary_ipl_and_texts():
    assert isinstance(decode(E.EV_IPL, b"\x01\x02\xff\x00\x10"), RawEventData)
    d = decode(E.EV_EFI_ACTION, b"Calling EFI Application from Boot Option")
    assert isinstance(d, TextEvent) and d.summary() == "Calling EFI Application from Boot Option"
    d = decode(E.EV_S_CRTM_VERSION, utf16("GCE Virtual Firmware v1"))
    assert (d.text, d.encoding, d.nul_terminated) == ("GCE Virtual Firmware v1", "utf-16le", True)
    assert decode(E.EV_S_CRTM_VERSION, b"\0\0").text == ""
    guid_like = bytes.fromhex("1efb6b540c1d5540a4ad4ef4bf17b83a")
    assert isinstance(decode(E.EV_S_CRTM_VERSION, guid_like), RawEventData)
    assert decode(E.EV_POST_CODE, b"ACPI DATA").text == "ACPI DATA"


def test_blobs_and_tables():
    blob = struct.pack("<QQ", 0xFF130000, 0xA7F000)
    for et in (E.EV_EFI_PLATFORM_FIRMWARE_BLOB, E.EV_POST_CODE, E.EV_S_CRTM_CONTENTS):
        d = decode(et, blob)
        assert isinstance(d, FirmwareBlob) and (d.blob_base, d.blob_length) == (0xFF130000, 0xA7F000)
    d = decode(E.EV_EFI_PLATFORM_FIRMWARE_BLOB2, b"\x07POST CO" + blob)
    assert d.description == "POST CO" and d.summary() == "POST CO base 0xff130000 length 0xa7f000"
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_PLATFORM_FIRMWARE_BLOB, blob + b"x", base_offset=10)
    assert (ei.value.code, ei.value.offset) == ("eventlog.data.trailing_data", 26)
    smbios3 = "f2fd1544-9794-4a2c-992e-e5bbcf20e394"
    d = decode(E.EV_EFI_HANDOFF_TABLES, struct.pack("<Q", 1) + guid(smbios3) + struct.pack("<Q", 0x8FCB0000))
    assert isinstance(d, HandoffTables)
    assert d.tables[0].name == "SMBIOS3_TABLE_GUID" and d.tables[0].vendor_table == 0x8FCB0000
    d = decode(E.EV_EFI_HANDOFF_TABLES2, b"\x03abc" + struct.pack("<Q", 1) + guid(smbios3) + struct.pack("<Q", 5))
    assert d.description == "abc" and d.summary() == "abc: 1 table (SMBIOS3_TABLE_GUID)"
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_HANDOFF_TABLES, struct.pack("<Q", 2) + guid(smbios3) + struct.pack("<Q", 5))
    assert ei.value.code == "eventlog.data.handoff_tables"


@pytest.mark.parametrize(
    "data,meaning",
    [(b"\0\0\0\0", "normal"), (b"\xff\xff\xff\xff", "error"), (b"\x01\0\0\0", "error"), (b"WBCL", "wbcl"), (b"\x02", "other")],
)
def test_separator(data, meaning):
    d = decode(E.EV_SEPARATOR, data)
    assert isinstance(d, Separator) and d.meaning == meaning and d.is_error == (meaning == "error")


def test_no_action():
    d = decode(E.EV_NO_ACTION, b"StartupLocality\0\x03")
    assert isinstance(d, NoActionEvent) and d.startup_locality == 3 and d.summary() == "StartupLocality 3"
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_NO_ACTION, b"StartupLocality\0\x03\x00", base_offset=5)
    assert (ei.value.code, ei.value.offset) == ("eventlog.data.startup_locality", 5)
    d = decode(E.EV_NO_ACTION, b"SP800-155 Event\0" + b"rim")
    assert d.signature == "SP800-155 Event" and d.payload == b"rim"
    assert isinstance(decode(E.EV_NO_ACTION, b"whatever"), RawEventData)


def test_gpt():
    header = (
        b"EFI PART" + struct.pack("<IIII", 0x10000, 92, 0x1234, 0) + struct.pack("<QQQQ", 1, 99, 34, 90)
        + guid(DISK) + struct.pack("<QIII", 2, 128, 128, 0xABCD)
    )
    name = "EFI system partition".encode("utf-16-le").ljust(72, b"\0")
    esp = guid("c12a7328-f81f-11d2-ba4b-00a0c93ec93b") + guid(MICROSOFT) + struct.pack("<QQQ", 2048, 4095, 0) + name
    d = decode(E.EV_EFI_GPT_EVENT, header + struct.pack("<Q", 1) + esp)
    assert isinstance(d, GptEvent)
    assert d.header.disk_guid == uuid.UUID(DISK) and d.header.size_of_partition_entry == 128
    (p,) = d.partitions
    assert (p.partition_name, p.type_name, p.starting_lba, p.ending_lba) == ("EFI system partition", "EFI System", 2048, 4095)
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_GPT_EVENT, header + struct.pack("<Q", 2) + esp, base_offset=3)
    assert (ei.value.code, ei.value.field, ei.value.offset) == ("eventlog.data.gpt", "UEFI_GPT_DATA.NumberOfPartitions", 3 + 92)
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EFI_GPT_EVENT, b"NOT PART" + header[8:] + struct.pack("<Q", 0))
    assert ei.value.code == "eventlog.data.gpt"


# -- tagged events / SIPA ------------------------------------------------------------------------


def test_sipa_container_values():
    module = sipa(0x40010003, (
        sipa(0x00070001, utf16(r"\Windows\System32\drivers\x.sys"))
        + sipa(0x00070003, struct.pack("<I", 0x800C))
        + sipa(0x00070004, bytes(range(32)))
        + sipa(0x0007000A, b"\x01")
    ))
    body = (
        sipa(0x00020002, struct.pack("<Q", 7))
        + sipa(0x00050002, b"\x01")
        + sipa(0x00050004, struct.pack("<Q", 1))
        + sipa(0x00050009, utf16(r"\Windows"))
        + sipa(0x00050003, b"\x01\x02")  # wrong size: kept as bytes with a note
        + module
    )
    d = decode(E.EV_EVENT_TAG, sipa(0x40010001, body), pcr=12)
    assert isinstance(d, SipaEventData)
    assert d.root.name == "SIPAEVENT_TRUSTBOUNDARY"
    assert d.values("SIPAEVENT_BOOTCOUNTER") == [7]
    assert d.values("SIPAEVENT_CODEINTEGRITY") == [True]
    assert d.values("SIPAEVENT_DATAEXECUTIONPREVENTION") == [True]
    assert d.values("SIPAEVENT_SYSTEMROOT") == [r"\Windows"]
    assert d.values("SIPAEVENT_TESTSIGNING") == [b"\x01\x02"]
    assert d.warnings == ("SIPAEVENT_TESTSIGNING: 2 bytes, expected 1",)
    (m,) = d.loaded_modules
    assert (m.file_path, m.hash_algorithm, m.authenticode_hash, m.image_validated) == (
        r"\Windows\System32\drivers\x.sys",
        "SHA256",
        bytes(range(32)),
        True,
    )


def test_sipa_and_tagged_errors():
    inner = sipa(0x00020002, struct.pack("<Q", 7))
    bad = inner[:4] + struct.pack("<I", 9) + inner[8:]
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EVENT_TAG, sipa(0x40010001, bad), base_offset=100)
    assert (ei.value.code, ei.value.offset) == ("eventlog.data.sipa", 100 + 8 + 4)
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EVENT_TAG, struct.pack("<II", 1, 5) + b"ab")
    assert ei.value.code == "eventlog.data.tagged_event"
    deep = sipa(0x00020002, struct.pack("<Q", 1))
    for _ in range(40):
        deep = sipa(0x40010001, deep)
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_EVENT_TAG, deep)
    assert ei.value.code == "eventlog.data.sipa"
    d = decode(E.EV_EVENT_TAG, sipa(0x8F3B22EC, b"Linux initrd\0"))
    assert isinstance(d, TaggedEvent) and d.name == "INITRD_EVENT_TAG_ID" and d.text == "Linux initrd"
    assert d.summary() == "INITRD_EVENT_TAG_ID: Linux initrd"


def test_unknown_and_opaque_types_are_raw():
    assert decode(0x1234, b"\x01").reason == "unknown event type"
    d = decode(E.EV_PLATFORM_CONFIG_FLAGS, b"FeatureTME=0")
    assert isinstance(d, RawEventData) and d.reason == "opaque"
    assert d.summary() == "12 bytes: 'FeatureTME=0'"
    assert decode(E.EV_NONHOST_INFO, b"\x00\x01").to_json() == {
        "kind": "raw", "reason": "opaque", "size": 2, "data": "0001",
    }


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"", ("", "ascii", False)),
        (b"WBCL", ("WBCL", "ascii", False)),
        (b"a\0", ("a", "ascii", True)),
        (utf16("ab"), ("ab", "utf-16le", True)),
        ("ab".encode("utf-16-le"), ("ab", "utf-16le", False)),
        (b"a\0b\0c", None),
        (b"\xff\xfe\x00", None),
        (b"ab\x07", None),
    ],
)
def test_detect_text(data, expected):
    found = detect_text(data)
    assert (None if found is None else (found.text, found.encoding, found.nul_terminated)) == expected


def test_decode_rejects_non_bytes():
    with pytest.raises(EvidenceError) as ei:
        decode(E.EV_IPL, "text")  # type: ignore[arg-type]
    assert ei.value.code == "eventlog.data.type"
