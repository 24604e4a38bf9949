"""Typed model of a parsed TCG PC Client firmware event log.

Names follow the TCG PC Client Platform Firmware Profile Specification (PFP), Family "2.0", Level 00
Revision 1.05, section 10 "Event Logging":

* :class:`SpecIdEvent` is ``TCG_EfiSpecIDEventStruct`` (PFP 10.4.5.1, Table 20) with its
  ``TCG_EfiSpecIdEventAlgorithmSize`` entries (:class:`AlgorithmSize`, Table 21).
* :class:`Event` is one ``TCG_PCClientPCREvent`` (PFP 10.2.1, SHA-1 format) or ``TCG_PCR_EVENT2``
  (PFP 10.2.2, crypto-agile format) record.
* :class:`EventLog` is the whole log (PFP 10.1 "Event Log Format").

The model is immutable. Decoding the event data into typed structures is lazy
(:meth:`Event.decode`), so parsing and replaying a log costs no more than reading its framing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Mapping

from attestd.eventlog.constants import event_type_name

if TYPE_CHECKING:  # pragma: no cover - typing only
    from attestd.eventlog.replay import ReplayReport

__all__ = ["LogFormat", "AlgorithmSize", "SpecIdEvent", "Event", "EventLog", "PcrValues", "Record", "LogWarning"]

#: ``{bank name: {PCR index: value}}``, e.g. ``{"sha256": {0: b"..."}}``.
PcrValues = dict[str, dict[int, bytes]]


class LogFormat(str, Enum):
    """The two event log formats of PFP 10.1."""

    #: SHA-1 only ``TCG_PCClientPCREvent`` records (the TCG 1.2 format; PFP 10.2.1).
    SHA1 = "sha1"
    #: ``TCG_PCR_EVENT2`` records after a Spec ID Event03 header (PFP 10.2.2).
    CRYPTO_AGILE = "crypto-agile"


@dataclass(frozen=True, slots=True)
class LogWarning:
    """Something worth a human's attention that does not stop parsing or replay."""

    code: str
    message: str
    event: int | None = None
    pcr: int | None = None
    bank: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.event is not None:
            out["event"] = self.event
        if self.pcr is not None:
            out["pcr"] = self.pcr
        if self.bank is not None:
            out["bank"] = self.bank
        return out

    def __str__(self) -> str:
        where = f"event {self.event}: " if self.event is not None else ""
        return f"{self.code}: {where}{self.message}"


@dataclass(frozen=True, slots=True)
class AlgorithmSize:
    """``TCG_EfiSpecIdEventAlgorithmSize`` (PFP 10.4.5.1, Table 21): a bank the log may carry."""

    algorithm_id: int
    digest_size: int
    #: Attestd bank name (``sha256``), or ``alg_0x....`` for an id Attestd cannot hash.
    bank: str


@dataclass(frozen=True, slots=True)
class SpecIdEvent:
    """``TCG_EfiSpecIDEventStruct`` (PFP 10.4.5.1, Table 20), the data of the first event.

    Its signature ``"Spec ID Event03\\0"`` marks a crypto-agile log; ``digest_sizes`` declares the
    digest size of every algorithm the events may use.
    """

    signature: bytes
    platform_class: int
    spec_version_minor: int
    spec_version_major: int
    spec_errata: int
    uintn_size: int
    digest_sizes: tuple[AlgorithmSize, ...]
    vendor_info: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "signature": self.signature.rstrip(b"\0").decode("ascii", "replace"),
            "platformClass": self.platform_class,
            "specVersionMinor": self.spec_version_minor,
            "specVersionMajor": self.spec_version_major,
            "specErrata": self.spec_errata,
            "uintnSize": self.uintn_size,
            "digestSizes": [
                {"algorithmId": a.algorithm_id, "bank": a.bank, "digestSize": a.digest_size}
                for a in self.digest_sizes
            ],
            "vendorInfo": self.vendor_info.hex(),
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One event record (``TCG_PCClientPCREvent`` PFP 10.2.1 or ``TCG_PCR_EVENT2`` PFP 10.2.2).

    ``index`` counts every record from 0, the Spec ID event included, as ``tpm2_eventlog`` numbers
    its ``EventNum``. ``digests`` maps a bank name to the digest the firmware extended (in record
    order). ``offset``/``size`` locate the whole record in the log.
    """

    index: int
    pcr: int
    event_type: int
    digests: Mapping[str, bytes]
    data: bytes
    offset: int
    size: int
    #: offset of the event data (``Event``/``event`` member) in the log.
    data_offset: int
    _decoded: Any = field(default=None, compare=False, repr=False, hash=False)

    @property
    def type_name(self) -> str:
        return event_type_name(self.event_type)

    def decode(self):
        """The decoded event data (``attestd.eventlog.data.decode``), computed once.

        Raises :class:`~attestd.errors.EvidenceError` when the data is malformed for its type.
        """
        cached = self._decoded
        if cached is None:
            cached = _decoder()(self.event_type, self.data, pcr=self.pcr, base_offset=self.data_offset)
            object.__setattr__(self, "_decoded", cached)
        return cached

    @property
    def decoded(self):
        """Same as :meth:`decode`."""
        return self.decode()

    def to_json(self) -> dict[str, Any]:
        """Framing as JSON (hex digests and data); decoded data is added by callers that want it."""
        return {
            "index": self.index,
            "pcr": self.pcr,
            "type": self.event_type,
            "type_name": self.type_name,
            "offset": self.offset,
            "digests": {bank: d.hex() for bank, d in self.digests.items()},
            "data_size": len(self.data),
            "data": self.data.hex(),
        }


def _decoder():
    """``attestd.eventlog.data.decode``, imported on first use: parsing never pays for decoding."""
    global _DECODE
    if _DECODE is None:
        from attestd.eventlog.data import decode

        _DECODE = decode
    return _DECODE


_DECODE = None

#: Compact framing of one record, as the parser produces it and replay consumes it:
#: ``(pcr, event_type, digests, offset, data_start, data_end)``.
Record = tuple[int, int, dict[str, bytes], int, int, int]

_new = object.__new__
_EVENT_SETTERS = tuple(
    Event.__dict__[name].__set__
    for name in ("index", "pcr", "event_type", "digests", "data", "offset", "size", "data_offset", "_decoded")
)


def _make_events(data: bytes, records: tuple[Record, ...]) -> list[Event]:
    """Materialise :class:`Event` objects (setting the frozen slots directly: 2x faster than __init__)."""
    s_index, s_pcr, s_type, s_digests, s_data, s_offset, s_size, s_doff, s_dec = _EVENT_SETTERS
    out = []
    append = out.append
    for index, (pcr, etype, digests, offset, start, end) in enumerate(records):
        e = _new(Event)
        s_index(e, index)
        s_pcr(e, pcr)
        s_type(e, etype)
        s_digests(e, digests)
        s_data(e, data[start:end])
        s_offset(e, offset)
        s_size(e, end - offset)
        s_doff(e, start)
        s_dec(e, None)
        append(e)
    return out


@dataclass(frozen=True, slots=True)
class EventLog:
    """A parsed event log: its format, Spec ID header (crypto-agile only) and every event.

    ``banks`` lists the banks the log declares (the Spec ID ``digestSizes``), or ``("sha1",)`` for
    the SHA-1 format. ``padding`` counts trailing zero bytes after the last event. ``raw`` is the
    input and ``records`` the compact framing of every record; :attr:`events` builds the
    :class:`Event` objects from them on first access.
    """

    format: LogFormat
    spec_id: SpecIdEvent | None
    banks: tuple[str, ...]
    size: int
    padding: int
    raw: bytes = field(repr=False)
    records: tuple[Record, ...] = field(repr=False)
    #: tolerated irregularities found while parsing (reported with the replay warnings)
    parse_warnings: tuple["LogWarning", ...] = ()
    _events: list[Event] | None = field(default=None, repr=False, compare=False, hash=False)

    @property
    def events(self) -> list[Event]:
        """Every record as an :class:`Event`, the Spec ID event (if any) first, index = EventNum."""
        events = self._events
        if events is None:
            events = _make_events(self.raw, self.records)
            object.__setattr__(self, "_events", events)
        return events

    def __len__(self) -> int:
        return len(self.records)

    # -- replay ---------------------------------------------------------------------------
    def replay(self) -> PcrValues:
        """Replay every bank: ``{bank: {pcr: value}}`` for every PCR that has extending events.

        EV_NO_ACTION events are never extended; StartupLocality and H-CRTM set PCR0's initial value.
        A bank/PCR whose events do not all carry a digest in that bank is left out (see
        :meth:`replay_warnings`).
        """
        from attestd.eventlog.replay import replay_values

        return replay_values(self)[0]

    def replay_warnings(self) -> list[LogWarning]:
        """Per-event warnings: replay gaps and digests that differ from the hash of their data."""
        from attestd.eventlog.replay import collect_warnings

        return collect_warnings(self)

    def compare(self, pcrs: Mapping[str, Mapping[int, bytes]], *, quirks: bool = True) -> "ReplayReport":
        """Compare the replay with expected PCR values without raising; see :class:`ReplayReport`."""
        from attestd.eventlog.replay import compare

        return compare(self, pcrs, use_quirks=quirks)

    def verify(self, pcrs: Mapping[str, Mapping[int, bytes]], *, quirks: bool = True) -> "ReplayReport":
        """Like :meth:`compare`, but raise ``VerificationError`` ``eventlog.replay_mismatch`` on mismatch."""
        report = self.compare(pcrs, quirks=quirks)
        report.raise_for_mismatch()
        return report

    # -- queries --------------------------------------------------------------------------
    def events_for(self, pcr: int) -> list[Event]:
        return [e for e in self.events if e.pcr == pcr]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format.value,
            "spec_id": self.spec_id.to_json() if self.spec_id is not None else None,
            "banks": list(self.banks),
            "size": self.size,
            "padding": self.padding,
            "events": [e.to_json() for e in self.events],
        }
