"""EFI_GUID decoding and a table of well-known GUIDs.

An ``EFI_GUID`` (UEFI 2.10, Appendix A "GUID and Time Formats") is 16 bytes: ``Data1`` (u32),
``Data2`` (u16) and ``Data3`` (u16) little-endian, then ``Data4`` (8 bytes) as is. Python's
``uuid.UUID(bytes_le=...)`` is exactly that layout, and ``str()`` of it is the canonical text form
(``8be4df61-93ca-11d2-aa0d-00e098032b8c``) used in JSON and device-path text.

Names are the specs' ``#define`` names (UEFI 2.10, PI 1.8, shim, edk2 MdePkg) so output can be
searched for.
"""

from __future__ import annotations

import functools
import uuid

from attestd.binary import Reader

__all__ = [
    "EFI_GLOBAL_VARIABLE",
    "EFI_IMAGE_SECURITY_DATABASE_GUID",
    "SHIM_LOCK_GUID",
    "EFI_CERT_X509_GUID",
    "EFI_CERT_SHA1_GUID",
    "EFI_CERT_SHA224_GUID",
    "EFI_CERT_SHA256_GUID",
    "EFI_CERT_SHA384_GUID",
    "EFI_CERT_SHA512_GUID",
    "EFI_CERT_RSA2048_GUID",
    "EFI_CERT_RSA2048_SHA256_GUID",
    "EFI_CERT_RSA2048_SHA1_GUID",
    "EFI_CERT_X509_SHA256_GUID",
    "EFI_CERT_X509_SHA384_GUID",
    "EFI_CERT_X509_SHA512_GUID",
    "EFI_CERT_TYPE_PKCS7_GUID",
    "MICROSOFT_OWNER_GUID",
    "KNOWN_GUIDS",
    "guid_name",
    "read_guid",
    "guid_from_bytes",
]


def _g(text: str) -> uuid.UUID:
    return uuid.UUID(text)


EFI_GLOBAL_VARIABLE = _g("8be4df61-93ca-11d2-aa0d-00e098032b8c")
EFI_IMAGE_SECURITY_DATABASE_GUID = _g("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
SHIM_LOCK_GUID = _g("605dab50-e046-4300-abb6-3dd810dd8b23")

# UEFI 2.10, 32.4.1 "Signature Database": EFI_SIGNATURE_LIST.SignatureType values.
EFI_CERT_SHA256_GUID = _g("c1c41626-504c-4092-aca9-41f936934328")
EFI_CERT_RSA2048_GUID = _g("3c5766e8-269c-4e34-aa14-ed776e85b3b6")
EFI_CERT_RSA2048_SHA256_GUID = _g("e2b36190-879b-4a3d-ad8d-f2e7bba32784")
EFI_CERT_SHA1_GUID = _g("826ca512-cf10-4ac9-b187-be01496631bd")
EFI_CERT_RSA2048_SHA1_GUID = _g("67f8444f-8743-48f1-a328-1eaab8736080")
EFI_CERT_X509_GUID = _g("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
EFI_CERT_SHA224_GUID = _g("0b6e5233-a65c-44c9-9407-d9ab83bfc8bd")
EFI_CERT_SHA384_GUID = _g("ff3e5307-9fd0-48c9-85f1-8ad56c701e01")
EFI_CERT_SHA512_GUID = _g("093e0fae-a6c4-4f50-9f1b-d41e2b89c19a")
EFI_CERT_X509_SHA256_GUID = _g("3bd2a492-96c0-4079-b420-fcf98ef103ed")
EFI_CERT_X509_SHA384_GUID = _g("7076876e-80c2-4ee6-aad2-28b349a6865b")
EFI_CERT_X509_SHA512_GUID = _g("446dbf63-2502-4cda-bcfa-2465d2b0fe9d")
EFI_CERT_TYPE_PKCS7_GUID = _g("4aafd29d-68df-49ee-8aa9-347d375665a7")

#: SignatureOwner of Microsoft's KEK/db/dbx entries.
MICROSOFT_OWNER_GUID = _g("77fa9abd-0359-4d32-bd60-28f4e78f784b")

KNOWN_GUIDS: dict[uuid.UUID, str] = {
    # variable namespaces
    EFI_GLOBAL_VARIABLE: "EFI_GLOBAL_VARIABLE",
    EFI_IMAGE_SECURITY_DATABASE_GUID: "EFI_IMAGE_SECURITY_DATABASE_GUID",
    SHIM_LOCK_GUID: "SHIM_LOCK_GUID",
    # signature types
    EFI_CERT_SHA256_GUID: "EFI_CERT_SHA256_GUID",
    EFI_CERT_RSA2048_GUID: "EFI_CERT_RSA2048_GUID",
    EFI_CERT_RSA2048_SHA256_GUID: "EFI_CERT_RSA2048_SHA256_GUID",
    EFI_CERT_SHA1_GUID: "EFI_CERT_SHA1_GUID",
    EFI_CERT_RSA2048_SHA1_GUID: "EFI_CERT_RSA2048_SHA1_GUID",
    EFI_CERT_X509_GUID: "EFI_CERT_X509_GUID",
    EFI_CERT_SHA224_GUID: "EFI_CERT_SHA224_GUID",
    EFI_CERT_SHA384_GUID: "EFI_CERT_SHA384_GUID",
    EFI_CERT_SHA512_GUID: "EFI_CERT_SHA512_GUID",
    EFI_CERT_X509_SHA256_GUID: "EFI_CERT_X509_SHA256_GUID",
    EFI_CERT_X509_SHA384_GUID: "EFI_CERT_X509_SHA384_GUID",
    EFI_CERT_X509_SHA512_GUID: "EFI_CERT_X509_SHA512_GUID",
    EFI_CERT_TYPE_PKCS7_GUID: "EFI_CERT_TYPE_PKCS7_GUID",
    # signature owners
    MICROSOFT_OWNER_GUID: "Microsoft",
    # configuration tables (EV_EFI_HANDOFF_TABLES; UEFI 2.10, 4.6 "EFI Configuration Table")
    _g("8868e871-e4f1-11d3-bc22-0080c73c8881"): "EFI_ACPI_20_TABLE_GUID",
    _g("eb9d2d30-2d88-11d3-9a16-0090273fc14d"): "ACPI_TABLE_GUID",
    _g("eb9d2d31-2d88-11d3-9a16-0090273fc14d"): "SMBIOS_TABLE_GUID",
    _g("f2fd1544-9794-4a2c-992e-e5bbcf20e394"): "SMBIOS3_TABLE_GUID",
    _g("eb9d2d2f-2d88-11d3-9a16-0090273fc14d"): "MPS_TABLE_GUID",
    _g("eb9d2d32-2d88-11d3-9a16-0090273fc14d"): "SAL_SYSTEM_TABLE_GUID",
    _g("b1b621d5-f19c-41a5-830b-d9152c69aae0"): "EFI_DTB_TABLE_GUID",
    _g("dcfa911d-26eb-469f-a220-38b7dc461220"): "EFI_MEMORY_ATTRIBUTES_TABLE_GUID",
    _g("b122a263-3661-4f68-9929-78f8b0d62180"): "EFI_SYSTEM_RESOURCE_TABLE_GUID",
    _g("eb66918a-7eef-402a-842e-931d21c38ae9"): "EFI_RT_PROPERTIES_TABLE_GUID",
    _g("05ad34ba-6f02-4214-952e-4da0398e2bb9"): "EFI_DXE_SERVICES_TABLE_GUID",
    _g("7739f24c-93d7-11d4-9a3a-0090273fc14d"): "EFI_HOB_LIST_GUID",
    _g("067b1f5f-cf26-44c5-8554-93d777912d42"): "EFI_CC_BLOB_GUID",
    # device-path vendor GUIDs (UEFI 2.10, 10.3.4.x / 10.6.1.x)
    _g("e0c14753-f9be-11d2-9a0c-0090273fc14d"): "DEVICE_PATH_MESSAGING_PC_ANSI",
    _g("dfa66065-b419-11d3-9a2d-0090273fc14d"): "DEVICE_PATH_MESSAGING_VT_100",
    _g("7baec70b-57e0-4c76-8e87-2f9e28088343"): "DEVICE_PATH_MESSAGING_VT_100_PLUS",
    _g("ad15a0d6-8bec-4acf-a073-d01de77e2d88"): "DEVICE_PATH_MESSAGING_VT_UTF8",
    _g("37499a9d-542f-4c89-a026-35da142094e4"): "EFI_UART_DEVICE_PATH_GUID",
    _g("d487ddb4-008b-11d9-afdc-001083ffca4d"): "EFI_SAS_DEVICE_PATH_GUID",
}


def guid_name(guid: uuid.UUID) -> str | None:
    """The well-known name of ``guid``, or None."""
    return KNOWN_GUIDS.get(guid)


@functools.lru_cache(maxsize=4096)
def _guid(raw: bytes) -> uuid.UUID:
    # A few GUIDs (variable vendors, signature types, owners of hundreds of dbx entries) make up
    # nearly every GUID in a log; UUIDs are immutable, so they are shared.
    return uuid.UUID(bytes_le=raw)


def guid_from_bytes(raw: bytes) -> uuid.UUID:
    """An ``EFI_GUID`` from its 16 wire bytes (the caller checked the length)."""
    return _guid(bytes(raw))


def read_guid(r: Reader, field: str) -> uuid.UUID:
    """Read one ``EFI_GUID``; truncation raises through the reader."""
    return _guid(r.bytes(16, field))

