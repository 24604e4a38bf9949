"""Builders for event-data structures, written from the specs (not from Attestd's decoders).

UEFI 2.10 (device paths 10.3, EFI_LOAD_OPTION 3.1.3, EFI_SIGNATURE_LIST 32.4.1), TCG PFP 1.05
(UEFI_VARIABLE_DATA, UEFI_IMAGE_LOAD_EVENT, UEFI_PLATFORM_FIRMWARE_BLOB[2],
UEFI_HANDOFF_TABLE_POINTERS, UEFI_GPT_DATA) and wbcl.h (SIPA records).
"""

from __future__ import annotations

import struct
import uuid

EFI_GLOBAL_VARIABLE = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
EFI_IMAGE_SECURITY_DATABASE = "d719b2cb-3d3a-4596-a3bc-dad00e67656f"
SHIM_LOCK = "605dab50-e046-4300-abb6-3dd810dd8b23"
EFI_CERT_X509 = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"
EFI_CERT_SHA256 = "c1c41626-504c-4092-aca9-41f936934328"
MICROSOFT = "77fa9abd-0359-4d32-bd60-28f4e78f784b"


def guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


def utf16(text: str, nul: bool = True) -> bytes:
    return (text + ("\0" if nul else "")).encode("utf-16-le")


def variable_data(name: str, data: bytes, vendor: str = EFI_GLOBAL_VARIABLE) -> bytes:
    """UEFI_VARIABLE_DATA: GUID, u64 name length (CHAR16), u64 data length, name, data."""
    return guid(vendor) + struct.pack("<QQ", len(name), len(data)) + name.encode("utf-16-le") + data


def signature_list(sig_type: str, entries: list[tuple[str, bytes]], header: bytes = b"") -> bytes:
    """EFI_SIGNATURE_LIST with equal-size EFI_SIGNATURE_DATA entries (owner GUID + data)."""
    size = 16 + len(entries[0][1])
    body = b"".join(guid(owner) + data for owner, data in entries)
    total = 28 + len(header) + len(body)
    return guid(sig_type) + struct.pack("<III", total, len(header), size) + header + body


def node(ntype: int, subtype: int, body: bytes) -> bytes:
    return struct.pack("<BBH", ntype, subtype, 4 + len(body)) + body


END = node(0x7F, 0xFF, b"")
END_INSTANCE = node(0x7F, 0x01, b"")


def pci(device: int, function: int) -> bytes:
    return node(1, 1, bytes([function, device]))


def pciroot(uid: int) -> bytes:
    return node(2, 1, struct.pack("<II", 0x0A0341D0, uid))


def hd_gpt(part: int, start: int, size: int, sig: str) -> bytes:
    return node(4, 1, struct.pack("<IQQ", part, start, size) + guid(sig) + bytes([2, 2]))


def file_path(path: str) -> bytes:
    return node(4, 4, utf16(path))


def load_option(attrs: int, desc: str, paths: bytes, optional: bytes = b"") -> bytes:
    return struct.pack("<IH", attrs, len(paths)) + utf16(desc) + paths + optional


def image_load(location: int, length: int, link: int, path: bytes) -> bytes:
    return struct.pack("<QQQQ", location, length, link, len(path)) + path


def sipa(event_id: int, data: bytes) -> bytes:
    return struct.pack("<II", event_id, len(data)) + data
