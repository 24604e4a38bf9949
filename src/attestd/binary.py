"""Bounds-checked reading of untrusted binary structures.

Every parser in Attestd reads through :class:`Reader`, so truncation and absurd length fields
always become an :class:`~attestd.errors.EvidenceError` that names the structure member and the
absolute byte offset, never ``IndexError`` or ``struct.error``.

A reader is created for one format family (``code_prefix`` such as ``"tpm"`` or ``"eventlog"``)
and byte order (TPM 2.0 structures are big-endian, TCG event logs and UEFI structures are
little-endian). Error codes are ``<prefix>.truncated`` for input that ends early and
``<prefix>.length`` for a length field larger than ``max_length``.
"""

from __future__ import annotations

import struct

from attestd.errors import EvidenceError

__all__ = ["Reader"]

_U16 = {"<": struct.Struct("<H"), ">": struct.Struct(">H")}
_U32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_U64 = {"<": struct.Struct("<Q"), ">": struct.Struct(">Q")}


class Reader:
    """Sequential reader over ``data[start:end]`` reporting absolute offsets.

    ``base`` is added to every reported offset, so a reader over a slice of a larger input (an
    event's data inside a log) reports offsets into the whole input.
    """

    __slots__ = ("data", "pos", "end", "base", "prefix", "_u16", "_u32", "_u64")

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        *,
        prefix: str,
        big_endian: bool = False,
        start: int = 0,
        end: int | None = None,
        base: int = 0,
    ) -> None:
        self.data = bytes(data) if not isinstance(data, bytes) else data
        self.pos = start
        self.end = len(self.data) if end is None else min(end, len(self.data))
        self.base = base
        self.prefix = prefix
        order = ">" if big_endian else "<"
        self._u16 = _U16[order]
        self._u32 = _U32[order]
        self._u64 = _U64[order]

    # -- position -------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return self.end - self.pos

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte to be read."""
        return self.base + self.pos

    def at_end(self) -> bool:
        return self.pos >= self.end

    def error(self, suffix: str, message: str, field: str | None = None, *, offset: int | None = None):
        """Build (not raise) an EvidenceError with this reader's prefix and current offset."""
        return EvidenceError(
            f"{self.prefix}.{suffix}", message, field=field, offset=self.offset if offset is None else offset
        )

    def _need(self, n: int, field: str) -> None:
        if n < 0 or self.pos + n > self.end:
            raise EvidenceError(
                f"{self.prefix}.truncated",
                f"needs {n} bytes for {field} but only {max(self.end - self.pos, 0)} remain",
                field=field,
                offset=self.offset,
            )

    # -- scalars --------------------------------------------------------------------------
    def u8(self, field: str) -> int:
        self._need(1, field)
        v = self.data[self.pos]
        self.pos += 1
        return v

    def u16(self, field: str) -> int:
        self._need(2, field)
        (v,) = self._u16.unpack_from(self.data, self.pos)
        self.pos += 2
        return v

    def u32(self, field: str) -> int:
        self._need(4, field)
        (v,) = self._u32.unpack_from(self.data, self.pos)
        self.pos += 4
        return v

    def u64(self, field: str) -> int:
        self._need(8, field)
        (v,) = self._u64.unpack_from(self.data, self.pos)
        self.pos += 8
        return v

    # -- byte strings ---------------------------------------------------------------------
    def bytes(self, n: int, field: str) -> bytes:
        self._need(n, field)
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def skip(self, n: int, field: str) -> None:
        self._need(n, field)
        self.pos += n

    def rest(self) -> bytes:
        v = self.data[self.pos : self.end]
        self.pos = self.end
        return v

    def sized(self, length_width: int, field: str, *, max_length: int | None = None) -> bytes:
        """A byte string preceded by its length (``length_width`` = 1, 2 or 4 bytes).

        This is the shape of every TPM2B_* structure (TPM 2.0 Part 2, 10.4) with width 2.
        """
        length_offset = self.offset
        n = {1: self.u8, 2: self.u16, 4: self.u32}[length_width](f"{field}.size")
        if max_length is not None and n > max_length:
            raise EvidenceError(
                f"{self.prefix}.length",
                f"{field} declares {n} bytes, more than the {max_length} allowed",
                field=f"{field}.size",
                offset=length_offset,
            )
        return self.bytes(n, field)

    def sub(self, n: int, field: str, *, prefix: str | None = None) -> "Reader":
        """A reader over the next ``n`` bytes (which are consumed here)."""
        self._need(n, field)
        r = Reader.__new__(Reader)
        r.data = self.data
        r.pos = self.pos
        r.end = self.pos + n
        r.base = self.base
        r.prefix = prefix or self.prefix
        r._u16, r._u32, r._u64 = self._u16, self._u32, self._u64
        self.pos += n
        return r

    def expect_end(self, structure: str) -> None:
        """Fail on trailing bytes after a structure that must fill its buffer exactly."""
        if self.pos != self.end:
            raise EvidenceError(
                f"{self.prefix}.trailing_data",
                f"{self.end - self.pos} unexpected bytes after {structure}",
                field=structure,
                offset=self.offset,
            )
