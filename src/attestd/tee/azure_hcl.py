"""Azure confidential-VM HCL report: the paravisor's wrapper around an SNP report or a TDREPORT.

Layout (all little-endian; as documented in the shared corpus INDEX.md and in Microsoft's
``az-cvm-vtpm`` crate, ``hcl/mod.rs``)::

    0x000  ATTESTATION_HEADER   signature "HCLA", version u32, report_size u32, request_type u32,
                                status u32, reserved u32[3]                                (32 bytes)
    0x020  hw_report            SEV-SNP ATTESTATION_REPORT (1184 bytes) or TDX TDREPORT
                                (first 1024 bytes), in a 1184-byte slot
    0x4C0  IGVM_REQUEST_DATA    data_size u32, version u32, report_type u32 (2 = SNP, 4 = TDX),
                                report_data_hash_type u32 (1 = SHA-256, 2 = SHA-384, 3 = SHA-512),
                                variable_data_size u32                                     (20 bytes)
    0x4D4  variable_data        JSON runtime claims: {"keys": [HCLAkPub, ...], "vm-configuration",
                                "user-data"}

``report_size`` counts the bytes in use from offset 0 (the buffer read from the vTPM NV index may
be longer, zero-filled). The hardware report's REPORT_DATA begins with the hash of
``variable_data`` (:meth:`HclReport.variable_data_digest`), which binds the vTPM AK to the hardware
report. This module only parses; it raises only :class:`~attestd.errors.EvidenceError`
(``hcl.*``). Verifying the SNP report is :func:`attestd.tee.snp.verify_snp_report`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

from attestd.binary import Reader
from attestd.errors import EvidenceError

__all__ = [
    "HW_REPORT_OFFSET",
    "HW_REPORT_SLOT",
    "HclHashType",
    "HclReport",
    "HclReportType",
    "parse_hcl_report",
]

HCL_SIGNATURE = b"HCLA"
HW_REPORT_OFFSET = 0x20
HW_REPORT_SLOT = 1184  # max(SNP ATTESTATION_REPORT, TDREPORT)
IGVM_REQUEST_OFFSET = HW_REPORT_OFFSET + HW_REPORT_SLOT  # 0x4C0
IGVM_REQUEST_HEADER = 20
SNP_REPORT_SIZE = 1184
TD_REPORT_SIZE = 1024


class HclReportType(IntEnum):
    SNP = 2
    TDX = 4


class HclHashType(IntEnum):
    SHA256 = 1
    SHA384 = 2
    SHA512 = 3

    def digest(self, data: bytes) -> bytes:
        return hashlib.new(self.name.lower(), data).digest()


@dataclass(frozen=True, slots=True)
class HclReport:
    """A parsed HCL report. ``hw_report`` is the SNP report (1184 bytes) or TDREPORT (1024 bytes)."""

    version: int
    report_size: int
    request_type: int
    status: int
    report_type: HclReportType
    request_data_version: int
    hash_type: HclHashType
    hw_report: bytes
    variable_data: bytes

    def variable_data_digest(self) -> bytes:
        """Hash of the variable data, which the hardware report's REPORT_DATA begins with."""
        return self.hash_type.digest(self.variable_data)

    def snp_report(self) -> bytes:
        """The SEV-SNP ATTESTATION_REPORT bytes; ``hcl.report_type`` if this wraps a TDREPORT."""
        if self.report_type is not HclReportType.SNP:
            raise EvidenceError(
                "hcl.report_type",
                f"the HCL report carries a {self.report_type.name} report, not SNP",
                field="IGVM_REQUEST_DATA.report_type",
                offset=IGVM_REQUEST_OFFSET + 8,
            )
        return self.hw_report


def parse_hcl_report(data: bytes | bytearray | memoryview) -> HclReport:
    """Parse an HCL report (header, hardware report slot, IGVM request data, variable data)."""
    r = Reader(bytes(data), prefix="hcl")
    signature = r.bytes(4, "ATTESTATION_HEADER.signature")
    if signature != HCL_SIGNATURE:
        raise EvidenceError(
            "hcl.bad_signature",
            f"header signature is {signature!r}, expected b'HCLA'",
            field="ATTESTATION_HEADER.signature",
            offset=0,
        )
    version = r.u32("ATTESTATION_HEADER.version")
    report_size = r.u32("ATTESTATION_HEADER.report_size")
    request_type = r.u32("ATTESTATION_HEADER.request_type")
    status = r.u32("ATTESTATION_HEADER.status")
    r.skip(12, "ATTESTATION_HEADER.reserved")
    slot = r.bytes(HW_REPORT_SLOT, "hw_report")
    data_size = r.u32("IGVM_REQUEST_DATA.data_size")
    req_version = r.u32("IGVM_REQUEST_DATA.version")
    report_type_raw = r.u32("IGVM_REQUEST_DATA.report_type")
    hash_raw = r.u32("IGVM_REQUEST_DATA.report_data_hash_type")
    var_size = r.u32("IGVM_REQUEST_DATA.variable_data_size")
    try:
        report_type = HclReportType(report_type_raw)
    except ValueError:
        raise EvidenceError(
            "hcl.report_type",
            f"unknown report_type {report_type_raw} (2 = SNP, 4 = TDX)",
            field="IGVM_REQUEST_DATA.report_type",
            offset=IGVM_REQUEST_OFFSET + 8,
        ) from None
    try:
        hash_type = HclHashType(hash_raw)
    except ValueError:
        raise EvidenceError(
            "hcl.hash_type",
            f"unknown report_data_hash_type {hash_raw} (1 = SHA-256, 2 = SHA-384, 3 = SHA-512)",
            field="IGVM_REQUEST_DATA.report_data_hash_type",
            offset=IGVM_REQUEST_OFFSET + 12,
        ) from None
    if data_size != IGVM_REQUEST_HEADER + var_size:
        raise EvidenceError(
            "hcl.length",
            f"data_size {data_size} is not 20 + variable_data_size {var_size}",
            field="IGVM_REQUEST_DATA.data_size",
            offset=IGVM_REQUEST_OFFSET,
        )
    variable_data = r.bytes(var_size, "IGVM_REQUEST_DATA.variable_data")
    used = r.pos
    if report_size != used:
        raise EvidenceError(
            "hcl.length",
            f"report_size {report_size} is not the {used} bytes the structures occupy",
            field="ATTESTATION_HEADER.report_size",
            offset=8,
        )
    tail = r.rest()
    if tail.strip(b"\x00"):
        raise EvidenceError(
            "hcl.trailing_data",
            "non-zero bytes after the HCL report",
            field="HCL report",
            offset=used,
        )
    size = SNP_REPORT_SIZE if report_type is HclReportType.SNP else TD_REPORT_SIZE
    return HclReport(
        version=version,
        report_size=report_size,
        request_type=request_type,
        status=status,
        report_type=report_type,
        request_data_version=req_version,
        hash_type=hash_type,
        hw_report=slot[:size],
        variable_data=variable_data,
    )
