"""Fixed-layout firmware events: blobs, handoff tables, separators and EV_NO_ACTION payloads.

* ``UEFI_PLATFORM_FIRMWARE_BLOB`` (TCG PFP 1.05, section 10.2 event data structures): ``BlobBase``
  (UEFI_PHYSICAL_ADDRESS),
  ``BlobLength`` (UINT64): EV_EFI_PLATFORM_FIRMWARE_BLOB, and blob-shaped EV_POST_CODE and
  EV_S_CRTM_CONTENTS.
* ``UEFI_PLATFORM_FIRMWARE_BLOB2`` (PFP 1.05, section 10.2): ``BlobDescriptionSize`` (UINT8),
  ``BlobDescription[BlobDescriptionSize]`` (ASCII), ``BlobBase``, ``BlobLength``:
  EV_EFI_PLATFORM_FIRMWARE_BLOB2 and EV_POST_CODE2.
* ``UEFI_HANDOFF_TABLE_POINTERS`` (PFP 1.05, section 10.2): ``NumberOfTables`` (UINT64) then
  ``EFI_CONFIGURATION_TABLE`` entries (UEFI 2.10, 4.6: ``VendorGuid``, ``VendorTable`` pointer):
  EV_EFI_HANDOFF_TABLES. ``UEFI_HANDOFF_TABLE_POINTERS2`` (PFP 1.05, section 10.2) prefixes a
  ``TableDescriptionSize``/``TableDescription``: EV_EFI_HANDOFF_TABLES2.
* EV_SEPARATOR (PFP 10.4.1, 3.3.2.2): ``00000000`` normally, ``FFFFFFFF`` (or ``00000001`` from
  some firmware) when a pre-OS error occurred; Windows Boot Manager logs ``WBCL``.
* EV_NO_ACTION (PFP 10.4.5): a 16-byte signature then a payload: ``Spec ID Event03`` (PFP
  10.4.5.1), ``StartupLocality`` (10.4.5.3, one UINT8 locality), ``SP800-155 Event`` /
  ``SP800-155 Event2`` / ``SP800-155 Event3`` (10.4.5.2, reference manifests), ``NvIndexInstance``
  / ``NvIndexDynamic`` (10.4.5.4-5); other payloads are kept raw.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from attestd.errors import EvidenceError
from attestd.eventlog.data.base import EventData, fail, reader, short_hex
from attestd.eventlog.data.guids import guid_name

__all__ = [
    "FirmwareBlob",
    "HandoffTables",
    "ConfigurationTable",
    "Separator",
    "NoActionEvent",
    "decode_blob",
    "decode_blob2",
    "decode_handoff_tables",
    "decode_handoff_tables2",
    "decode_separator",
    "decode_no_action",
]


@dataclass(frozen=True, slots=True)
class FirmwareBlob(EventData):
    """``UEFI_PLATFORM_FIRMWARE_BLOB`` or ``..._BLOB2`` (PFP 1.05, section 10.2): a blob's memory range."""

    kind: ClassVar[str] = "firmware_blob"
    blob_base: int
    blob_length: int
    #: ``BlobDescription`` of a BLOB2 structure (None for BLOB)
    description: str | None = None

    def summary(self) -> str:
        desc = f"{self.description} " if self.description is not None else ""
        return f"{desc}base 0x{self.blob_base:x} length 0x{self.blob_length:x}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "blob_base": self.blob_base}
        out["blob_length"] = self.blob_length
        if self.description is not None:
            out["description"] = self.description
        return out


def decode_blob(data: bytes, *, base_offset: int = 0) -> FirmwareBlob:
    r = reader(data, base_offset)
    base = r.u64("UEFI_PLATFORM_FIRMWARE_BLOB.BlobBase")
    length = r.u64("UEFI_PLATFORM_FIRMWARE_BLOB.BlobLength")
    r.expect_end("UEFI_PLATFORM_FIRMWARE_BLOB")
    return FirmwareBlob(base, length)


def decode_blob2(data: bytes, *, base_offset: int = 0) -> FirmwareBlob:
    r = reader(data, base_offset)
    desc = r.sized(1, "UEFI_PLATFORM_FIRMWARE_BLOB2.BlobDescription")
    base = r.u64("UEFI_PLATFORM_FIRMWARE_BLOB2.BlobBase")
    length = r.u64("UEFI_PLATFORM_FIRMWARE_BLOB2.BlobLength")
    r.expect_end("UEFI_PLATFORM_FIRMWARE_BLOB2")
    return FirmwareBlob(base, length, desc.rstrip(b"\0").decode("ascii", "replace"))


@dataclass(frozen=True, slots=True)
class ConfigurationTable:
    """``EFI_CONFIGURATION_TABLE`` (UEFI 2.10, 4.6): vendor GUID and table address."""

    vendor_guid: uuid.UUID
    vendor_table: int

    @property
    def name(self) -> str | None:
        return guid_name(self.vendor_guid)

    def to_json(self) -> dict[str, Any]:
        return {"vendor_guid": str(self.vendor_guid), "name": self.name, "vendor_table": self.vendor_table}


@dataclass(frozen=True, slots=True)
class HandoffTables(EventData):
    """``UEFI_HANDOFF_TABLE_POINTERS`` / ``...POINTERS2`` (PFP 1.05, section 10.2)."""

    kind: ClassVar[str] = "handoff_tables"
    tables: tuple[ConfigurationTable, ...]
    description: str | None = None

    def summary(self) -> str:
        names = ", ".join(t.name or str(t.vendor_guid) for t in self.tables)
        desc = f"{self.description}: " if self.description is not None else ""
        return f"{desc}{len(self.tables)} table{'s' if len(self.tables) != 1 else ''} ({names})"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "tables": [t.to_json() for t in self.tables]}
        if self.description is not None:
            out["description"] = self.description
        return out


def _tables(r, structure: str) -> tuple[ConfigurationTable, ...]:
    count_off = r.offset
    count = r.u64(f"{structure}.NumberOfTables")
    remaining = r.remaining
    # VendorTable is a UINTN pointer: 8 bytes on 64-bit firmware, 4 on 32-bit
    if count and remaining == count * 24:
        ptr = 8
    elif count and remaining == count * 20:
        ptr = 4
    else:
        raise fail(
            "handoff_tables",
            f"NumberOfTables {count} does not match the {remaining} bytes of table entries",
            field=f"{structure}.NumberOfTables",
            offset=count_off,
        )
    tables = []
    for _ in range(count):
        guid = uuid.UUID(bytes_le=r.bytes(16, "EFI_CONFIGURATION_TABLE.VendorGuid"))
        field = "EFI_CONFIGURATION_TABLE.VendorTable"
        addr = r.u64(field) if ptr == 8 else r.u32(field)
        tables.append(ConfigurationTable(guid, addr))
    return tuple(tables)


def decode_handoff_tables(data: bytes, *, base_offset: int = 0) -> HandoffTables:
    r = reader(data, base_offset)
    return HandoffTables(_tables(r, "UEFI_HANDOFF_TABLE_POINTERS"))


def decode_handoff_tables2(data: bytes, *, base_offset: int = 0) -> HandoffTables:
    r = reader(data, base_offset)
    desc = r.sized(1, "UEFI_HANDOFF_TABLE_POINTERS2.TableDescription")
    tables = _tables(r, "UEFI_HANDOFF_TABLE_POINTERS2")
    return HandoffTables(tables, desc.rstrip(b"\0").decode("ascii", "replace"))


@dataclass(frozen=True, slots=True)
class Separator(EventData):
    """EV_SEPARATOR data: ``normal`` (00000000), ``error`` (FFFFFFFF / 00000001), ``wbcl``, ``other``."""

    kind: ClassVar[str] = "separator"
    value: bytes
    #: ``"normal"``, ``"error"``, ``"wbcl"`` or ``"other"``
    meaning: str

    @property
    def is_error(self) -> bool:
        return self.meaning == "error"

    def summary(self) -> str:
        if self.meaning == "wbcl":
            return "WBCL (Windows Boot Configuration Log separator)"
        if self.meaning == "other":
            return f"{short_hex(self.value)} (non-standard separator)"
        return f"{self.value.hex()} ({self.meaning})"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value.hex(), "meaning": self.meaning}


def decode_separator(data: bytes) -> Separator:
    if data == b"\0\0\0\0":
        return Separator(data, "normal")
    if data in (b"\xff\xff\xff\xff", b"\x01\0\0\0"):
        return Separator(data, "error")
    if data == b"WBCL":
        return Separator(data, "wbcl")
    return Separator(data, "other")


_SPEC_ID = b"Spec ID Event03\0"
_LOCALITY = b"StartupLocality\0"
_NO_ACTION_SIGNATURES = {
    b"SP800-155 Event\0": "SP800-155 Event",
    b"SP800-155 Event2": "SP800-155 Event2",
    b"SP800-155 Event3": "SP800-155 Event3",
    b"NvIndexInstance\0": "NvIndexInstance",
    b"NvIndexDynamic\0\0": "NvIndexDynamic",
    b"Spec ID Event00\0": "Spec ID Event00",
}


@dataclass(frozen=True, slots=True)
class NoActionEvent(EventData):
    """EV_NO_ACTION data identified by its 16-byte signature (PFP 10.4.5).

    ``startup_locality`` is set for ``StartupLocality`` events (the locality the TPM2_Startup came
    from: 0 or 3, or 4 for an H-CRTM); ``spec_id`` holds the parsed Spec ID Event03 header.
    """

    kind: ClassVar[str] = "no_action"
    signature: str
    payload: bytes
    startup_locality: int | None = None
    spec_id: Any = None
    note: str | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        return (self.note,) if self.note else ()

    def summary(self) -> str:
        if self.startup_locality is not None:
            return f"StartupLocality {self.startup_locality}"
        if self.spec_id is not None:
            banks = ", ".join(a.bank for a in self.spec_id.digest_sizes)
            return f"{self.signature} ({banks})"
        return f"{self.signature}: {len(self.payload)} bytes"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "signature": self.signature, "payload": self.payload.hex()}
        if self.startup_locality is not None:
            out["startup_locality"] = self.startup_locality
        if self.spec_id is not None:
            out["spec_id"] = self.spec_id.to_json()
        if self.note:
            out["warning"] = self.note
        return out


def decode_no_action(data: bytes, *, base_offset: int = 0) -> NoActionEvent | None:
    """Decode a known EV_NO_ACTION payload; None when the signature is not one of PFP 10.4.5's."""
    sig = data[:16]
    if sig == _LOCALITY:
        if len(data) != 17:
            raise fail(
                "startup_locality",
                f"StartupLocality event is {len(data)} bytes, expected 17",
                field="TCG_EfiStartupLocalityEvent",
                offset=base_offset,
            )
        return NoActionEvent("StartupLocality", data[16:], startup_locality=data[16])
    if sig == _SPEC_ID:
        from attestd.eventlog.parser import parse_spec_id_event

        try:
            spec = parse_spec_id_event(data, base_offset=base_offset)
        except EvidenceError as exc:
            # the log parser tolerates some malformed headers (vendorInfo past the event, as
            # tpm2-tools' specid-vendordata.bin); report instead of failing the event
            return NoActionEvent("Spec ID Event03", data[16:], note=f"{exc.code}: {exc.message}")
        return NoActionEvent("Spec ID Event03", data[16:], spec_id=spec)
    name = _NO_ACTION_SIGNATURES.get(sig)
    if name is not None:
        return NoActionEvent(name, data[16:])
    return None
