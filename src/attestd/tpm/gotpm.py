"""go-tpm-tools ``attest.Attestation`` evidence (protobuf), read without a protobuf dependency.

Google's go-tpm-tools agent (and GCE's Confidential Space launcher) sends TPM evidence as the
protobuf message ``attest.Attestation`` (go-tpm-tools ``proto/attest.proto`` and ``proto/tpm.proto``)::

    message Attestation {
      bytes ak_pub = 1;                 // TPMT_PUBLIC
      repeated tpm.Quote quotes = 2;    // one per PCR bank
      bytes event_log = 3;              // TCG event log (SHA-1 or crypto-agile)
      GCEInstanceInfo instance_info = 4;
      bytes canonical_event_log = 5;
      bytes ak_cert = 6;                // DER
      repeated bytes intermediate_certs = 7;
      ...                               // TEE attestations (8, 9) are kept as unknown fields
    }
    message Quote { bytes quote = 1;    // TPMS_ATTEST
                    bytes raw_sig = 2;  // TPMT_SIGNATURE
                    PCRs pcrs = 3; }
    message PCRs  { HashAlgo hash = 1;  // TPM_ALG_ID value (SHA1 = 4, SHA256 = 11, ...)
                    map<uint32, bytes> pcrs = 2; }

:func:`parse_gotpm_attestation` implements just the protobuf wire format (varint, 64-bit,
length-delimited and 32-bit records; https://protobuf.dev/programming-guides/encoding/) with
bounds checks. It is pure and raises only :class:`~attestd.errors.EvidenceError` with codes
``gotpm.truncated``, ``gotpm.varint``, ``gotpm.wire_type`` (a group or unknown wire type, or a known
field with the wrong wire type) and ``gotpm.value`` (a map entry or enum out of range).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from attestd.errors import EvidenceError

__all__ = ["GoTpmAttestation", "GoTpmQuote", "iter_fields", "parse_gotpm_attestation"]

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True, slots=True)
class GoTpmQuote:
    """``tpm.Quote``: the ``TPMS_ATTEST``, its ``TPMT_SIGNATURE`` and the bank's PCR values."""

    quote: bytes
    raw_sig: bytes
    hash: int
    pcrs: dict[int, bytes]


@dataclass(frozen=True, slots=True)
class GoTpmAttestation:
    """``attest.Attestation`` (the members Attestd uses)."""

    ak_pub: bytes
    quotes: tuple[GoTpmQuote, ...]
    event_log: bytes
    canonical_event_log: bytes
    ak_cert: bytes
    intermediate_certs: tuple[bytes, ...]

    def pcrs(self) -> dict[int, dict[int, bytes]]:
        """``{TPM_ALG_ID: {index: value}}`` over all quotes."""
        return {q.hash: dict(q.pcrs) for q in self.quotes}


def _err(code: str, message: str, field: str, offset: int) -> EvidenceError:
    return EvidenceError(f"gotpm.{code}", message, field=field, offset=offset)


def _varint(data: bytes, pos: int, end: int, field: str, base: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 70, 7):
        if pos >= end:
            raise _err("truncated", "varint runs past the end", field, base + pos)
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if result >= 1 << 64:
                raise _err("varint", "varint larger than 64 bits", field, base + pos - 1)
            return result, pos
    raise _err("varint", "varint longer than 10 bytes", field, base + pos)


def iter_fields(data: bytes, *, message: str = "message", base: int = 0) -> Iterator[tuple[int, int, Any, int]]:
    """Yield ``(field number, wire type, value, offset)`` for every record of one message.

    Varint and fixed-width values are ints; length-delimited values are ``(start, end)`` slices
    into ``data`` so nested messages are read in place.
    """
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        key, pos = _varint(data, pos, end, f"{message}.key", base)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _err("value", "field number 0", f"{message}.key", base + start)
        field = f"{message}.{number}"
        if wire == _VARINT:
            value, pos = _varint(data, pos, end, field, base)
        elif wire == _I64 or wire == _I32:
            width = 8 if wire == _I64 else 4
            if pos + width > end:
                raise _err("truncated", f"{width}-byte value runs past the end", field, base + pos)
            value = int.from_bytes(data[pos:pos + width], "little")
            pos += width
        elif wire == _LEN:
            length, pos = _varint(data, pos, end, f"{field}.length", base)
            if length > end - pos:
                raise _err("truncated", f"length {length} runs past the end", field, base + pos)
            value = (pos, pos + length)
            pos += length
        else:
            raise _err("wire_type", f"unsupported wire type {wire}", field, base + start)
        yield number, wire, value, base + start


def _want(wire: int, expected: int, field: str, offset: int) -> None:
    if wire != expected:
        raise _err("wire_type", f"{field} has wire type {wire}, expected {expected}", field, offset)


def _parse_pcrs(data: bytes, base: int) -> tuple[int, dict[int, bytes]]:
    hash_id, pcrs = 0, {}
    for number, wire, value, off in iter_fields(data, message="PCRs", base=base):
        if number == 1:
            _want(wire, _VARINT, "PCRs.hash", off)
            if value > 0xFFFF:
                raise _err("value", f"hash {value} is not a TPM_ALG_ID", "PCRs.hash", off)
            hash_id = value
        elif number == 2:
            _want(wire, _LEN, "PCRs.pcrs", off)
            s, e = value
            key, val = 0, b""
            for n2, w2, v2, off2 in iter_fields(data[s:e], message="PCRs.pcrs", base=base + s):
                if n2 == 1:
                    _want(w2, _VARINT, "PCRs.pcrs.key", off2)
                    if v2 > 0xFFFFFFFF:
                        raise _err("value", "PCR index is not a uint32", "PCRs.pcrs.key", off2)
                    key = v2
                elif n2 == 2:
                    _want(w2, _LEN, "PCRs.pcrs.value", off2)
                    val = data[s:e][v2[0]:v2[1]]
            pcrs[key] = val
    return hash_id, pcrs


def _parse_quote(data: bytes, base: int) -> GoTpmQuote:
    quote, sig, hash_id, pcrs = b"", b"", 0, {}
    for number, wire, value, off in iter_fields(data, message="Quote", base=base):
        if number in (1, 2, 3):
            _want(wire, _LEN, f"Quote.{number}", off)
            s, e = value
            if number == 1:
                quote = data[s:e]
            elif number == 2:
                sig = data[s:e]
            else:
                hash_id, pcrs = _parse_pcrs(data[s:e], base + s)
    return GoTpmQuote(quote, sig, hash_id, pcrs)


def parse_gotpm_attestation(data: bytes) -> GoTpmAttestation:
    """Parse a serialized go-tpm-tools ``attest.Attestation``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EvidenceError("gotpm.type", f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    ak_pub = event_log = cel = ak_cert = b""
    quotes: list[GoTpmQuote] = []
    intermediates: list[bytes] = []
    for number, wire, value, off in iter_fields(data, message="Attestation"):
        if number in (1, 2, 3, 5, 6, 7):
            _want(wire, _LEN, f"Attestation.{number}", off)
            s, e = value
            chunk = data[s:e]
            if number == 1:
                ak_pub = chunk
            elif number == 2:
                quotes.append(_parse_quote(chunk, s))
            elif number == 3:
                event_log = chunk
            elif number == 5:
                cel = chunk
            elif number == 6:
                ak_cert = chunk
            else:
                intermediates.append(chunk)
    return GoTpmAttestation(ak_pub, tuple(quotes), event_log, cel, ak_cert, tuple(intermediates))
