"""A minimal, bounds-checked DER reader for the Intel SGX PCK certificate extension.

``cryptography`` hands Intel's private extension (OID 1.2.840.113741.1.13.1) over as raw DER; this
module walks its TLVs (ITU-T X.690, 8.1 "General rules for encoding": identifier, definite length,
contents). Only what the PCK profile uses is supported: SEQUENCE, OBJECT IDENTIFIER, OCTET STRING,
INTEGER, ENUMERATED and BOOLEAN, all with single-byte tags. Every malformation becomes an
:class:`~attestd.errors.EvidenceError` with code ``dcap.pck_extension_invalid``.
"""

from __future__ import annotations

from dataclasses import dataclass

from attestd.errors import EvidenceError

__all__ = ["Tlv", "read_tlvs", "decode_oid", "decode_int", "TAG_SEQUENCE", "TAG_OID", "TAG_OCTET_STRING",
           "TAG_INTEGER", "TAG_ENUMERATED", "TAG_BOOLEAN"]

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_SEQUENCE = 0x30

_CODE = "dcap.pck_extension_invalid"


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes
    offset: int


def _err(message: str, field: str, offset: int) -> EvidenceError:
    return EvidenceError(_CODE, message, field=field, offset=offset)


def read_tlvs(data: bytes, *, field: str, base: int = 0) -> list[Tlv]:
    """All consecutive TLVs in ``data`` (which they must fill exactly)."""
    out: list[Tlv] = []
    pos = 0
    n = len(data)
    while pos < n:
        start = pos
        if n - pos < 2:
            raise _err("truncated DER element", field, base + pos)
        tag = data[pos]
        if tag & 0x1F == 0x1F:
            raise _err(f"multi-byte DER tag 0x{tag:02x} is not used by the PCK profile", field, base + pos)
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or n - pos < count:
                raise _err("bad DER length", field, base + start)
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        if length > n - pos:
            raise _err(f"DER element declares {length} bytes but only {n - pos} remain", field, base + start)
        out.append(Tlv(tag, data[pos:pos + length], base + pos))
        pos += length
    return out


def decode_oid(value: bytes, *, field: str, offset: int = 0) -> str:
    """Dotted form of an OBJECT IDENTIFIER's contents (X.690 8.19)."""
    if not value or value[-1] & 0x80:
        raise _err("malformed OBJECT IDENTIFIER", field, offset)
    arcs: list[int] = []
    acc = 0
    for b in value:
        acc = (acc << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(acc)
            acc = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def decode_int(value: bytes, *, field: str, offset: int = 0) -> int:
    """A non-negative INTEGER or ENUMERATED (X.690 8.3); PCK SVNs are small and unsigned."""
    if not value:
        raise _err("empty INTEGER", field, offset)
    v = int.from_bytes(value, "big", signed=True)
    if v < 0:
        raise _err(f"negative value {v}", field, offset)
    return v
