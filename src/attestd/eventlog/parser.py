"""Parse TCG PC Client firmware event logs (``binary_bios_measurements``).

TCG PC Client Platform Firmware Profile Specification (PFP), Family "2.0", Level 00 Revision 1.05:

* 10.1 "Event Log Format": the log starts with one SHA-1-format record. If that record is an
  EV_NO_ACTION event whose data is a ``TCG_EfiSpecIDEventStruct`` with signature
  ``"Spec ID Event03\\0"`` (10.4.5.1), every later record is a crypto-agile ``TCG_PCR_EVENT2``
  (10.2.2); otherwise the whole log is SHA-1-format ``TCG_PCClientPCREvent`` records (10.2.1).
  A first EV_NO_ACTION event too short to hold a Spec ID header (for instance a bare
  StartupLocality event) therefore means a SHA-1-format log.
* 10.2.2: the digest count and algorithm ids of each ``TCG_PCR_EVENT2`` are read against the digest
  sizes the Spec ID event declares, so algorithms unknown to Attestd parse too. Like
  ``tpm2_eventlog``, an event may carry fewer digests than the header declares; the missing banks
  are simply absent from that event.

Some kernels expose the log with zero padding after the last event, and a log read from its
reserved memory area (the ACPI TPM2/TCPA log area, the TDX CCEL) ends in the area's erased fill,
0xFF: a trailing run of 0x00 or of 0xFF bytes at a record boundary ends the log
(``EventLog.padding`` counts them). Any other bytes that do not form a complete record are an
:class:`~attestd.errors.EvidenceError` naming the structure member and absolute offset.

The record loops use ``struct.unpack_from`` with explicit bounds checks: a 25 KB log parses in well
under a millisecond, and no length field can make the parser allocate more than the input's size.
"""

from __future__ import annotations

import struct

from attestd.binary import Reader
from attestd.errors import EvidenceError
from attestd.eventlog.constants import EventType
from attestd.eventlog.model import AlgorithmSize, EventLog, LogFormat, LogWarning, Record, SpecIdEvent
from attestd.tpm.alg import HASH_ALGS

__all__ = ["parse", "parse_spec_id_event", "SPEC_ID_SIGNATURE", "unknown_bank_name"]

#: ``TCG_EfiSpecIDEventStruct.signature`` of a crypto-agile log (PFP 10.4.5.1).
SPEC_ID_SIGNATURE = b"Spec ID Event03\x00"
#: signature(16) platformClass(4) specVersionMinor/Major/Errata/uintnSize(4) numberOfAlgorithms(4)
_SPEC_ID_FIXED = 28
#: ``TCG_PCClientPCREvent`` header: PCRIndex, eventType, digest[20], eventDataSize (PFP 10.2.1).
_SHA1_HEADER = struct.Struct("<II20sI")
#: ``TCG_PCR_EVENT2`` leading fields: PCRIndex, EventType, TPML_DIGEST_VALUES.count (PFP 10.2.2).
_EVENT2_HEADER = struct.Struct("<III")
_U32 = struct.Struct("<I")

_EV_NO_ACTION = int(EventType.EV_NO_ACTION)


def unknown_bank_name(alg_id: int) -> str:
    """Bank name for an algorithm id Attestd cannot hash (``alg_0x1234``)."""
    return f"alg_0x{alg_id:04x}"


def _truncated(field: str, needed: int, remaining: int, offset: int) -> EvidenceError:
    return EvidenceError(
        "eventlog.truncated",
        f"needs {needed} bytes for {field} but only {max(remaining, 0)} remain",
        field=field,
        offset=offset,
    )


def parse(data: bytes) -> EventLog:
    """Parse a whole event log; raises only :class:`~attestd.errors.EvidenceError`."""
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise EvidenceError("eventlog.type", f"expected bytes, got {type(data).__name__}", field="log")
        data = bytes(data)
    n = len(data)
    if n == 0 or not data.strip(b"\x00"):
        raise EvidenceError("eventlog.empty", "the event log is empty (or only zero padding)", field="log",
                            offset=0)
    if n < _SHA1_HEADER.size:
        raise _truncated("TCG_PCClientPCREvent", _SHA1_HEADER.size, n, 0)

    pcr, etype, digest, size = _SHA1_HEADER.unpack_from(data, 0)
    first_start = _SHA1_HEADER.size
    first_end = first_start + size
    if first_end > n:
        raise _truncated("TCG_PCClientPCREvent.event", size, n - first_start, first_start - 4)
    records: list[Record] = [(pcr, etype, {"sha1": digest}, 0, first_start, first_end)]

    if (
        etype == _EV_NO_ACTION
        and size >= _SPEC_ID_FIXED
        and data.startswith(SPEC_ID_SIGNATURE, first_start)
    ):
        spec, next_pos, overrun = _parse_spec_id(data, first_start, first_end, n)
        notes: tuple[LogWarning, ...] = ()
        if overrun:
            notes = (LogWarning(
                "eventlog.spec_id_vendor_overrun",
                f"vendorInfo runs {overrun} bytes past the Spec ID event's eventDataSize; read as in "
                "tpm2_eventlog, with the next event after vendorInfo", 0, 0),)
        algs = {a.algorithm_id: (a.bank, a.digest_size) for a in spec.digest_sizes}
        padding = _parse_event2_records(data, next_pos, algs, records)
        return EventLog(LogFormat.CRYPTO_AGILE, spec, tuple(a.bank for a in spec.digest_sizes), n, padding,
                        data, tuple(records), notes)

    padding = _parse_sha1_records(data, first_end, records)
    return EventLog(LogFormat.SHA1, None, ("sha1",), n, padding, data, tuple(records))


def parse_spec_id_event(data: bytes, *, base_offset: int = 0) -> SpecIdEvent:
    """Parse ``TCG_EfiSpecIDEventStruct`` (PFP 10.4.5.1, Tables 20 and 21) that fills ``data``.

    Checks the signature, that at least one algorithm is declared, that no algorithm is declared
    twice, that known algorithms have their real digest size, and that ``vendorInfo`` ends the data.
    """
    spec, _next, _overrun = _parse_spec_id(data, 0, len(data), len(data), base_offset)
    return spec


def _parse_spec_id(data: bytes, start: int, end: int, log_end: int, base: int = 0
                   ) -> tuple[SpecIdEvent, int, int]:
    """Spec ID event in ``data[start:end]``; returns it, the offset after it, and the overrun.

    Tolerance (as ``tpm2_eventlog``, which reads the next record right after ``vendorInfo``): when
    ``vendorInfo`` runs past the event's declared ``eventDataSize`` but the bytes are in the log,
    they are taken as ``vendorInfo`` and the overrun (bytes past ``eventDataSize``) is returned so
    the caller can report it. tpm2-tools' ``specid-vendordata.bin`` fixture is such a log.
    """
    r = Reader(data, prefix="eventlog", start=start, end=end, base=base)
    signature = r.bytes(16, "TCG_EfiSpecIDEventStruct.signature")
    if signature != SPEC_ID_SIGNATURE:
        raise EvidenceError(
            "eventlog.spec_id",
            f"Spec ID signature is {signature!r}, expected 'Spec ID Event03'",
            field="TCG_EfiSpecIDEventStruct.signature",
            offset=base + start,
        )
    platform_class = r.u32("TCG_EfiSpecIDEventStruct.platformClass")
    minor = r.u8("TCG_EfiSpecIDEventStruct.specVersionMinor")
    major = r.u8("TCG_EfiSpecIDEventStruct.specVersionMajor")
    errata = r.u8("TCG_EfiSpecIDEventStruct.specErrata")
    uintn = r.u8("TCG_EfiSpecIDEventStruct.uintnSize")
    count_offset = r.offset
    count = r.u32("TCG_EfiSpecIDEventStruct.numberOfAlgorithms")
    if count == 0:
        raise EvidenceError("eventlog.spec_id", "the Spec ID event declares no algorithms",
                            field="TCG_EfiSpecIDEventStruct.numberOfAlgorithms", offset=count_offset)
    if count * 4 > r.remaining:
        raise r.error("truncated", f"needs {count * 4} bytes for {count} digestSizes entries but only "
                      f"{r.remaining} remain", "TCG_EfiSpecIDEventStruct.digestSizes")
    sizes: list[AlgorithmSize] = []
    seen: set[int] = set()
    for _ in range(count):
        entry_offset = r.offset
        alg_id = r.u16("TCG_EfiSpecIdEventAlgorithmSize.algorithmId")
        digest_size = r.u16("TCG_EfiSpecIdEventAlgorithmSize.digestSize")
        if alg_id in seen:
            raise EvidenceError("eventlog.spec_id", f"algorithm 0x{alg_id:04x} is declared twice",
                                field="TCG_EfiSpecIdEventAlgorithmSize.algorithmId", offset=entry_offset)
        seen.add(alg_id)
        known = HASH_ALGS.get(alg_id)
        if known is not None and known.digest_size != digest_size:
            raise EvidenceError(
                "eventlog.spec_id",
                f"{known.name} is declared with digest size {digest_size}, not {known.digest_size}",
                field="TCG_EfiSpecIdEventAlgorithmSize.digestSize",
                offset=entry_offset + 2,
            )
        bank = known.name if known is not None else unknown_bank_name(alg_id)
        sizes.append(AlgorithmSize(alg_id, digest_size, bank))
    vendor_size = r.u8("TCG_EfiSpecIDEventStruct.vendorInfoSize")
    vendor_start = r.pos
    vendor_end = vendor_start + vendor_size
    overrun = 0
    if vendor_end <= end:
        vendor = r.bytes(vendor_size, "TCG_EfiSpecIDEventStruct.vendorInfo")
        r.expect_end("TCG_EfiSpecIDEventStruct")
        next_pos = end
    elif vendor_end <= log_end:
        vendor = data[vendor_start:vendor_end]
        overrun = vendor_end - end
        next_pos = vendor_end
    else:
        raise _truncated("TCG_EfiSpecIDEventStruct.vendorInfo", vendor_size, log_end - vendor_start,
                         base + vendor_start)
    spec = SpecIdEvent(signature, platform_class, minor, major, errata, uintn, tuple(sizes), vendor)
    return spec, next_pos, overrun


def _fill_start(data: bytes) -> int:
    """Offset where the trailing fill (a run of 0x00 or of 0xFF bytes) begins; ``len(data)`` if none.

    Only consulted at record boundaries, so a last event whose data happens to end in 0x00 or 0xFF
    is still parsed whole.
    """
    return min(len(data.rstrip(b"\x00")), len(data.rstrip(b"\xff")))


def _parse_sha1_records(data: bytes, pos: int, records: list[Record]) -> int:
    """``TCG_PCClientPCREvent`` records from ``pos`` to the end; returns the trailing zero padding."""
    n = len(data)
    zero_tail = _fill_start(data)  # from here on the input is fill
    unpack = _SHA1_HEADER.unpack_from
    hsize = _SHA1_HEADER.size
    append = records.append
    while pos < n:
        remaining = n - pos
        if pos >= zero_tail:
            return remaining
        if remaining < hsize:
            raise _truncated("TCG_PCClientPCREvent", hsize, remaining, pos)
        pcr, etype, digest, size = unpack(data, pos)
        start = pos + hsize
        end = start + size
        if end > n:
            raise _truncated("TCG_PCClientPCREvent.event", size, n - start, start - 4)
        append((pcr, etype, {"sha1": digest}, pos, start, end))
        pos = end
    return 0


def _parse_event2_records(data: bytes, pos: int, algs: dict[int, tuple[str, int]], records: list[Record]) -> int:
    """``TCG_PCR_EVENT2`` records from ``pos`` to the end; returns the trailing zero padding.

    Fast path: most records carry one digest per declared algorithm in the declared order, so the
    digests and ``EventSize`` of such a record are read with one precompiled ``struct`` call and
    checked against the expected algorithm ids; any other record takes the general loop.
    """
    n = len(data)
    zero_tail = _fill_start(data)  # from here on the input is fill
    unpack_header = _EVENT2_HEADER.unpack_from
    unpack_u32 = _U32.unpack_from
    append = records.append
    max_digests = len(algs)
    layout = struct.Struct("<" + "".join(f"H{size}s" for _, size in algs.values()) + "I")
    fast_unpack = layout.unpack_from
    fast_size = layout.size
    fast_ids = tuple(algs)
    fast_names = tuple(bank for bank, _ in algs.values())
    while pos < n:
        remaining = n - pos
        if pos >= zero_tail:
            return remaining
        if remaining < 12:
            raise _truncated("TCG_PCR_EVENT2", 12, remaining, pos)
        pcr, etype, count = unpack_header(data, pos)
        if count == max_digests and remaining >= 12 + fast_size:
            values = fast_unpack(data, pos + 12)
            if values[0:-1:2] == fast_ids:
                size = values[-1]
                start = pos + 12 + fast_size
                end = start + size
                if end > n:
                    raise _truncated("TCG_PCR_EVENT2.event", size, n - start, start - 4)
                append((pcr, etype, dict(zip(fast_names, values[1:-1:2])), pos, start, end))
                pos = end
                continue
        if count > max_digests:
            raise EvidenceError(
                "eventlog.digest_count",
                f"event carries {count} digests but the Spec ID event declares only {max_digests} algorithms",
                field="TCG_PCR_EVENT2.digests.count",
                offset=pos + 8,
            )
        p = pos + 12
        digests: dict[str, bytes] = {}
        for _ in range(count):
            if p + 2 > n:
                raise _truncated("TPMT_HA.hashAlg", 2, n - p, p)
            alg_id = data[p] | (data[p + 1] << 8)
            spec = algs.get(alg_id)
            if spec is None:
                raise EvidenceError(
                    "eventlog.unknown_alg",
                    f"digest algorithm 0x{alg_id:04x} is not declared in the Spec ID event",
                    field="TPMT_HA.hashAlg",
                    offset=p,
                )
            bank, dsize = spec
            q = p + 2 + dsize
            if q > n:
                raise _truncated("TPMT_HA.digest", dsize, n - p - 2, p + 2)
            if bank in digests:
                raise EvidenceError("eventlog.duplicate_digest", f"event carries two {bank} digests",
                                    field="TPMT_HA.hashAlg", offset=p)
            digests[bank] = data[p + 2:q]
            p = q
        if p + 4 > n:
            raise _truncated("TCG_PCR_EVENT2.eventSize", 4, n - p, p)
        (size,) = unpack_u32(data, p)
        start = p + 4
        end = start + size
        if end > n:
            raise _truncated("TCG_PCR_EVENT2.event", size, n - start, p)
        append((pcr, etype, digests, pos, start, end))
        pos = end
    return 0
