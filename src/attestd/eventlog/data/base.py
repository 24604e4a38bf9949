"""Common ground for decoded event data: the :class:`EventData` base, raw data, error helpers.

Every decoder in :mod:`attestd.eventlog.data` returns a frozen dataclass derived from
:class:`EventData`, with ``summary()`` (one line for a table) and ``to_json()`` (JSON-able dict:
bytes as hex, GUIDs in canonical text form). Malformed data raises
:class:`~attestd.errors.EvidenceError` with a code ``eventlog.data.<what>`` and the absolute offset
(``base_offset`` of the event data in the log + the position inside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attestd.binary import Reader
from attestd.errors import EvidenceError

__all__ = [
    "EventData",
    "RawEventData",
    "PREFIX",
    "reader",
    "fail",
    "short_hex",
]

#: Error-code prefix of every decoder here: codes are ``eventlog.data.<what>``.
PREFIX = "eventlog.data"


class EventData:
    """Base of every decoded event-data type.

    Subclasses are frozen, slotted dataclasses. ``kind`` names the decoded structure in JSON
    (``"uefi_variable"``, ``"image_load"``, ...); ``warnings`` lists non-fatal oddities (a
    zero-length ``SecureBoot`` value, a certificate ``cryptography`` cannot parse) that a caller
    can show without failing the whole log.
    """

    __slots__ = ()
    kind: ClassVar[str] = "event_data"

    def summary(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @property
    def warnings(self) -> tuple[str, ...]:
        return ()

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True, slots=True)
class RawEventData(EventData):
    """Event data Attestd does not interpret (opaque or unknown event types): the bytes as they are.

    ``reason`` says why it is raw (``"opaque"`` for types whose data the PFP leaves
    vendor-defined, ``"unknown event type"``, ``"not text"``...).
    """

    kind: ClassVar[str] = "raw"
    data: bytes
    reason: str = "opaque"

    def summary(self) -> str:
        if not self.data:
            return "(empty)"
        from attestd.eventlog.data.text import detect_text

        found = detect_text(self.data)
        if found is not None and found.text:
            return f"{len(self.data)} bytes: {found.text!r}"
        return f"{len(self.data)} bytes: {short_hex(self.data)}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "size": len(self.data), "data": self.data.hex()}


def reader(data: bytes, base_offset: int, *, start: int = 0, end: int | None = None) -> Reader:
    """A little-endian :class:`~attestd.binary.Reader` reporting ``eventlog.data.*`` codes."""
    return Reader(data, prefix=PREFIX, start=start, end=end, base=base_offset)


def fail(what: str, message: str, *, field: str | None = None, offset: int | None = None) -> EvidenceError:
    """Build (not raise) an ``eventlog.data.<what>`` error."""
    return EvidenceError(f"{PREFIX}.{what}", message, field=field, offset=offset)


def short_hex(data: bytes, limit: int = 32) -> str:
    """Hex of at most ``limit`` bytes, with ``...`` when cut."""
    if len(data) <= limit:
        return data.hex()
    return data[:limit].hex() + "..."
