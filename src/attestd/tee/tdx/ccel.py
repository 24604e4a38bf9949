"""TDX CCEL: the ACPI "CCEL" table and the confidential-computing event log, replayed to RTMRs.

* ACPI 6.5, section 5.2.34 "Confidential Computing Event Log Table (CCEL)": the 36-byte ACPI header
  (signature ``CCEL``), then CC Type (1 byte; 2 = Intel TDX), CC Subtype (1), Reserved (2), Log Area
  Minimum Length (LAML, uint64) and Log Area Start Address (LASA, uint64): 56 bytes.
* The log itself is a TCG crypto-agile event log (TCG PC Client PFP 10.2.2, ``TCG_PCR_EVENT2``
  after a Spec ID Event03 header) whose ``PCRIndex`` is a *CC measurement register index*
  ("UEFI Specification 2.10, section 38.4.1 EFI_CC_MEASUREMENT_PROTOCOL" and Intel TDX
  "Guest-Hypervisor Communication Interface" / TDX Virtual Firmware Design Guide section 4.3.4):
  MR index 0 = MRTD, 1 = RTMR0, 2 = RTMR1, 3 = RTMR2, 4 = RTMR3. TDX extends RTMRs with SHA-384.
* The log area is padded up to LAML (0xFF or 0x00 fill); the log ends at the first record whose
  ``PCRIndex`` and ``EventType`` are both all-ones or both zero.

Framing is parsed here only to find where the log ends; the events are parsed by
:func:`attestd.eventlog.parse` and replayed with its replay (logged digests, EV_NO_ACTION skipped),
so digests that do not match the event data (TD-shim) still replay as the firmware extended them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from attestd import eventlog
from attestd.errors import EvidenceError, VerificationError

__all__ = ["CcelTable", "CcelLog", "parse_ccel_table", "parse_ccel", "replay_rtmrs", "verify_rtmrs", "MR_INDEX_TO_RTMR"]

#: CC MR index -> RTMR number (index 0 is MRTD, which no event extends at run time).
MR_INDEX_TO_RTMR = {1: 0, 2: 1, 3: 2, 4: 3}
_ZERO48 = bytes(48)


@dataclass(frozen=True, slots=True)
class CcelTable:
    """The ACPI CCEL table (ACPI 6.5, 5.2.34)."""

    length: int
    revision: int
    checksum_ok: bool
    oem_id: bytes
    oem_table_id: bytes
    oem_revision: int
    creator_id: bytes
    creator_revision: int
    cc_type: int
    cc_subtype: int
    laml: int
    lasa: int


def parse_ccel_table(data: bytes) -> CcelTable:
    if len(data) < 56:
        raise EvidenceError("tdx.ccel_table_truncated", f"the CCEL table needs 56 bytes, got {len(data)}",
                            field="CCEL", offset=0)
    if data[:4] != b"CCEL":
        raise EvidenceError("tdx.ccel_table_signature", f"ACPI table signature is {data[:4]!r}, not 'CCEL'",
                            field="CCEL.Signature", offset=0)
    (length, revision, _cs, oem_id, oem_table_id, oem_rev, creator_id, creator_rev, cc_type, cc_subtype,
     _res, laml, lasa) = struct.unpack_from("<IBB6s8sI4sIBBHQQ", data, 4)
    if length < 56 or length > len(data):
        raise EvidenceError("tdx.ccel_table_length", f"the CCEL table declares {length} bytes",
                            field="CCEL.Length", offset=4)
    return CcelTable(length, revision, sum(data[:length]) % 256 == 0, oem_id, oem_table_id, oem_rev, creator_id,
                     creator_rev, cc_type, cc_subtype, laml, lasa)


@dataclass(frozen=True, slots=True)
class CcelLog:
    """A parsed CCEL: the event log (``log.events[i].pcr`` is the MR index) and where it ends."""

    log: eventlog.EventLog
    length: int
    padding: int

    @property
    def events(self) -> list[eventlog.Event]:
        return self.log.events

    def rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        return replay_rtmrs(self)


def parse_ccel(data: bytes) -> CcelLog:
    """Parse a CCEL log area (padding after the log allowed); raises only EvidenceError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EvidenceError("tdx.ccel_type", f"expected bytes, got {type(data).__name__}", field="CCEL")
    log = eventlog.parse(bytes(data))  # the CCEL area's 0xFF/0x00 fill after the log is EventLog.padding
    return CcelLog(log, len(data) - log.padding, log.padding)


def replay_rtmrs(ccel: CcelLog) -> tuple[bytes, bytes, bytes, bytes]:
    """RTMR0..3 as the log extends them (SHA-384, from zero, logged digests; EV_NO_ACTION skipped)."""
    banks = ccel.log.replay()
    values = banks.get("sha384", {})
    out = [_ZERO48] * 4
    for mr, rtmr in MR_INDEX_TO_RTMR.items():
        if mr in values:
            out[rtmr] = values[mr]
    return tuple(out)  # type: ignore[return-value]


def verify_rtmrs(ccel: CcelLog, rtmrs: tuple[bytes, ...] | list[bytes], *, which: tuple[int, ...] = (0, 1, 2, 3)
                 ) -> tuple[bytes, bytes, bytes, bytes]:
    """Check that the replay equals the quoted RTMRs; ``tdx.rtmr_mismatch`` names the first difference
    and reports both values. Returns the replayed RTMRs."""
    replayed = replay_rtmrs(ccel)
    for i in which:
        if replayed[i] != rtmrs[i]:
            raise VerificationError(
                "tdx.rtmr_mismatch",
                f"RTMR{i} replayed from the CCEL is {replayed[i].hex()}, the quote has {bytes(rtmrs[i]).hex()}",
                field=f"RTMR{i}",
                details={"rtmr": i, "replayed": replayed[i].hex(), "quoted": bytes(rtmrs[i]).hex()},
            )
    return replayed
