"""UEFI_GPT_DATA: the data of EV_EFI_GPT_EVENT (and EV_EFI_GPT_EVENT2).

TCG PFP 1.05 (revision 23), section 10.2, ``UEFI_GPT_DATA`` (Table 10)::

    UEFI_PARTITION_TABLE_HEADER UEFIPartitionHeader;   // UEFI 2.10, 5.3.2 Table 5-5 (92 bytes)
    UINT64                      NumberOfPartitions;
    UEFI_PARTITION_ENTRY        Partitions[NumberOfPartitions];   // UEFI 2.10, 5.3.3 Table 5-6

Each partition entry is ``SizeOfPartitionEntry`` bytes (128 on every known disk); only the entries
whose type GUID is not zero are logged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from attestd.eventlog.data.base import EventData, fail, reader
from attestd.eventlog.data.guids import read_guid
from attestd.eventlog.data.text import utf16_until_nul

__all__ = ["GptHeader", "GptPartition", "GptEvent", "decode_gpt"]

_HEADER_SIZE = 92
_MIN_ENTRY = 128
_PARTITION_TYPES = {
    uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"): "EFI System",
    uuid.UUID("21686148-6449-6e6f-744e-656564454649"): "BIOS boot",
    uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4"): "Linux filesystem",
    uuid.UUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"): "Microsoft basic data",
    uuid.UUID("e3c9e316-0b5c-4db8-817d-f92df00215ae"): "Microsoft reserved",
    uuid.UUID("de94bba4-06d1-4d40-a16a-bfd50179d6ac"): "Windows recovery",
    uuid.UUID("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"): "Linux swap",
    uuid.UUID("e6d6d379-f507-44c2-a23c-238f2a3df928"): "Linux LVM",
    uuid.UUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"): "Linux root (x86-64)",
    uuid.UUID("bc13c2ff-59e6-4262-a352-b275fd6f7172"): "Linux extended boot",
}


@dataclass(frozen=True, slots=True)
class GptHeader:
    """``EFI_PARTITION_TABLE_HEADER`` (UEFI 2.10, 5.3.2)."""

    signature: bytes
    revision: int
    header_size: int
    header_crc32: int
    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int
    disk_guid: uuid.UUID
    partition_entry_lba: int
    number_of_partition_entries: int
    size_of_partition_entry: int
    partition_entry_array_crc32: int

    def to_json(self) -> dict[str, Any]:
        return {
            "signature": self.signature.decode("ascii", "replace"),
            "revision": self.revision,
            "header_size": self.header_size,
            "header_crc32": self.header_crc32,
            "my_lba": self.my_lba,
            "alternate_lba": self.alternate_lba,
            "first_usable_lba": self.first_usable_lba,
            "last_usable_lba": self.last_usable_lba,
            "disk_guid": str(self.disk_guid),
            "partition_entry_lba": self.partition_entry_lba,
            "number_of_partition_entries": self.number_of_partition_entries,
            "size_of_partition_entry": self.size_of_partition_entry,
            "partition_entry_array_crc32": self.partition_entry_array_crc32,
        }


@dataclass(frozen=True, slots=True)
class GptPartition:
    """``EFI_PARTITION_ENTRY`` (UEFI 2.10, 5.3.3)."""

    partition_type_guid: uuid.UUID
    unique_partition_guid: uuid.UUID
    starting_lba: int
    ending_lba: int
    attributes: int
    partition_name: str

    @property
    def type_name(self) -> str | None:
        return _PARTITION_TYPES.get(self.partition_type_guid)

    def to_json(self) -> dict[str, Any]:
        return {
            "partition_type_guid": str(self.partition_type_guid),
            "type_name": self.type_name,
            "unique_partition_guid": str(self.unique_partition_guid),
            "starting_lba": self.starting_lba,
            "ending_lba": self.ending_lba,
            "attributes": self.attributes,
            "partition_name": self.partition_name,
        }


@dataclass(frozen=True, slots=True)
class GptEvent(EventData):
    """``UEFI_GPT_DATA`` (PFP 1.05, section 10.2, Table 10)."""

    kind: ClassVar[str] = "gpt"
    header: GptHeader
    partitions: tuple[GptPartition, ...]

    def summary(self) -> str:
        parts = ", ".join(
            f"{i + 1}:{p.partition_name or p.type_name or p.partition_type_guid}"
            for i, p in enumerate(self.partitions)
        )
        return f"disk {self.header.disk_guid}, {len(self.partitions)} partitions ({parts})"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "header": self.header.to_json(),
            "number_of_partitions": len(self.partitions),
            "partitions": [p.to_json() for p in self.partitions],
        }


def decode_gpt(data: bytes, *, base_offset: int = 0) -> GptEvent:
    r = reader(data, base_offset)
    sig_off = r.offset
    signature = r.bytes(8, "UEFI_PARTITION_TABLE_HEADER.Signature")
    if signature != b"EFI PART":
        raise fail(
            "gpt",
            f"GPT header signature is {signature!r}, expected b'EFI PART'",
            field="UEFI_PARTITION_TABLE_HEADER.Signature",
            offset=sig_off,
        )
    revision = r.u32("UEFI_PARTITION_TABLE_HEADER.Revision")
    header_size = r.u32("UEFI_PARTITION_TABLE_HEADER.HeaderSize")
    header_crc = r.u32("UEFI_PARTITION_TABLE_HEADER.HeaderCRC32")
    r.skip(4, "UEFI_PARTITION_TABLE_HEADER.Reserved")
    my_lba = r.u64("UEFI_PARTITION_TABLE_HEADER.MyLBA")
    alt_lba = r.u64("UEFI_PARTITION_TABLE_HEADER.AlternateLBA")
    first = r.u64("UEFI_PARTITION_TABLE_HEADER.FirstUsableLBA")
    last = r.u64("UEFI_PARTITION_TABLE_HEADER.LastUsableLBA")
    disk_guid = read_guid(r, "UEFI_PARTITION_TABLE_HEADER.DiskGUID")
    entry_lba = r.u64("UEFI_PARTITION_TABLE_HEADER.PartitionEntryLBA")
    n_entries = r.u32("UEFI_PARTITION_TABLE_HEADER.NumberOfPartitionEntries")
    size_off = r.offset
    entry_size = r.u32("UEFI_PARTITION_TABLE_HEADER.SizeOfPartitionEntry")
    array_crc = r.u32("UEFI_PARTITION_TABLE_HEADER.PartitionEntryArrayCRC32")
    header = GptHeader(
        signature, revision, header_size, header_crc, my_lba, alt_lba, first, last, disk_guid,
        entry_lba, n_entries, entry_size, array_crc,
    )
    count_off = r.offset
    count = r.u64("UEFI_GPT_DATA.NumberOfPartitions")
    if entry_size < _MIN_ENTRY:
        raise fail(
            "gpt",
            f"SizeOfPartitionEntry {entry_size} is smaller than the {_MIN_ENTRY}-byte EFI_PARTITION_ENTRY",
            field="UEFI_PARTITION_TABLE_HEADER.SizeOfPartitionEntry",
            offset=size_off,
        )
    if count * entry_size != r.remaining:
        raise fail(
            "gpt",
            f"NumberOfPartitions {count} x {entry_size} bytes does not match the {r.remaining} bytes left",
            field="UEFI_GPT_DATA.NumberOfPartitions",
            offset=count_off,
        )
    partitions = []
    for _ in range(count):
        entry = r.sub(entry_size, "UEFI_PARTITION_ENTRY")
        ptype = read_guid(entry, "UEFI_PARTITION_ENTRY.PartitionTypeGUID")
        unique = read_guid(entry, "UEFI_PARTITION_ENTRY.UniquePartitionGUID")
        start = entry.u64("UEFI_PARTITION_ENTRY.StartingLBA")
        end = entry.u64("UEFI_PARTITION_ENTRY.EndingLBA")
        attrs = entry.u64("UEFI_PARTITION_ENTRY.Attributes")
        name, _ = utf16_until_nul(entry.bytes(72, "UEFI_PARTITION_ENTRY.PartitionName"))
        partitions.append(GptPartition(ptype, unique, start, end, attrs, name))
    return GptEvent(header, tuple(partitions))
