"""Replay a parsed event log into PCR values, check event digests, compare with expected PCRs.

Replay (TPM 2.0 Library Part 1, 17.2 "PCR extend"; for PCR0's initial value the PFP 1.05 Startup
Locality Event (``TCG_EfiStartupLocalityEvent``, 10.4.5) and TPM 2.0 Part 1, 34.3 "H-CRTM"):

* every bank is replayed from the digests *in the log* (never from the event data);
* EV_NO_ACTION events are never extended;
* a ``StartupLocality`` EV_NO_ACTION event (``TCG_EfiStartupLocalityEvent``: signature
  ``"StartupLocality\\0"`` then one locality byte) before PCR0's first measurement makes PCR0 start
  at ``0…0 || locality`` (locality 3 for a TXT/D-CRTM start-up);
* an EV_EFI_HCRTM_EVENT as PCR0's first measurement means an H-CRTM sequence (``_TPM_Hash_Start``
  at locality 4): PCR0 starts at ``0…0 || 04`` and the event's digest is extended into it;
* a bank/PCR pair is replayed only when every extending event of that PCR carries a digest in that
  bank; otherwise it is left out and reported with a warning.

Digest checks (warnings only, never errors): for event types whose digest the PFP defines as the
hash of the event data (section 10.4.1, Table 9, and the UEFI event descriptions of 10.4.4) the
digest is recomputed and a difference is recorded as a per-event warning. The check is deliberately
conservative; see :data:`HASHED_DATA_TYPES`.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from attestd.errors import EvidenceError, VerificationError
from attestd.eventlog.constants import EventType
from attestd.eventlog.model import Event, EventLog, LogWarning, PcrValues
from attestd.eventlog.quirks import QUIRKS, Quirk
from attestd.tpm.alg import hash_alg_by_name

__all__ = [
    "ReplayWarning",
    "PcrCheck",
    "AppliedQuirk",
    "ReplayReport",
    "replay_values",
    "collect_warnings",
    "check_event_digests",
    "compare",
    "normalize_pcrs",
    "HASHED_DATA_TYPES",
]

_EV_NO_ACTION = int(EventType.EV_NO_ACTION)
_EV_HCRTM = int(EventType.EV_EFI_HCRTM_EVENT)
_STARTUP_LOCALITY = b"StartupLocality\x00"
_HCRTM_LOCALITY = 4
#: display / report order of banks
HASH_ALGS_ORDER = {"sha1": 0, "sha256": 1, "sha384": 2, "sha512": 3, "sm3_256": 4}

#: hashlib constructors for the common banks (the replay hot loop calls them directly)
_HASHERS: dict[str, Callable[[bytes], Any]] = {
    "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512,
}


def _digest_fn(bank: str) -> Callable[[bytes], bytes] | None:
    """``data -> digest`` for a bank, or None for an algorithm Attestd cannot compute."""
    ctor = _HASHERS.get(bank)
    if ctor is not None:
        return lambda data, _c=ctor: _c(data).digest()
    try:
        alg = hash_alg_by_name(bank)
    except EvidenceError:
        return None
    return alg.digest


_DIGEST_FNS: dict[str, Callable[[bytes], bytes] | None] = {}


def digest_fn(bank: str) -> Callable[[bytes], bytes] | None:
    fn = _DIGEST_FNS.get(bank, _DIGEST_FNS)
    if fn is _DIGEST_FNS:
        fn = _DIGEST_FNS[bank] = _digest_fn(bank)
    return fn  # type: ignore[return-value]


# -- results -------------------------------------------------------------------------------------


#: Warnings of replay and digest checks are :class:`~attestd.eventlog.model.LogWarning`.
ReplayWarning = LogWarning


@dataclass(frozen=True, slots=True)
class AppliedQuirk:
    """A quirk that explained a bank/PCR mismatch (see :mod:`attestd.eventlog.quirks`)."""

    name: str
    title: str
    bank: str
    pcr: int
    reference: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "bank": self.bank, "pcr": self.pcr,
                "reference": self.reference}


#: PcrCheck.status values
MATCH = "match"
MISMATCH = "mismatch"
UNVERIFIABLE = "unverifiable"
NOT_LOGGED = "not_logged"


@dataclass(frozen=True, slots=True)
class PcrCheck:
    """The comparison of one expected bank/PCR value with the replay.

    ``status``: ``match`` (possibly thanks to ``quirk``), ``mismatch``, ``unverifiable`` (the PCR has
    events but the log cannot be replayed in this bank) or ``not_logged`` (the log has no event for
    this PCR, so it says nothing about it: not a failure).
    """

    bank: str
    pcr: int
    status: str
    expected: bytes
    replayed: bytes | None
    events: int
    quirk: str | None = None
    explanation: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in (MISMATCH, UNVERIFIABLE)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bank": self.bank,
            "pcr": self.pcr,
            "status": self.status,
            "expected": self.expected.hex(),
            "replayed": self.replayed.hex() if self.replayed is not None else None,
            "events": self.events,
        }
        if self.quirk is not None:
            out["quirk"] = self.quirk
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out

    def describe(self) -> str:
        replayed = self.replayed.hex() if self.replayed is not None else "(none)"
        text = f"bank {self.bank} PCR {self.pcr}: replayed {replayed} but expected {self.expected.hex()}"
        if self.explanation:
            text += f" - {self.explanation}"
        return text


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Result of :meth:`EventLog.compare`: every check, the replayed values, warnings, quirks used."""

    pcrs: PcrValues
    checks: tuple[PcrCheck, ...]
    warnings: tuple[ReplayWarning, ...]
    quirks_applied: tuple[AppliedQuirk, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def mismatches(self) -> list[PcrCheck]:
        return [c for c in self.checks if c.failed]

    def raise_for_mismatch(self) -> None:
        bad = self.mismatches
        if not bad:
            return
        first = bad[0]
        more = f" (and {len(bad) - 1} more bank/PCR mismatches)" if len(bad) > 1 else ""
        raise VerificationError(
            "eventlog.replay_mismatch",
            f"event log does not replay to the expected PCRs: {first.describe()}{more}",
            field=f"pcrs.{first.bank}.{first.pcr}",
            details={"mismatches": [c.to_json() for c in bad]},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
            "quirks_applied": [q.to_json() for q in self.quirks_applied],
            "warnings": [w.to_json() for w in self.warnings],
        }


# -- replay --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _ReplayState:
    values: PcrValues
    #: (bank, pcr) pairs left out because some extending event lacks that bank's digest
    incomplete: set[tuple[str, int]]
    #: number of extending (non EV_NO_ACTION) events per PCR
    extends: dict[int, int]
    #: PCR0's initial last byte (StartupLocality / H-CRTM), 0 if none
    pcr0_locality: int
    warnings: list[ReplayWarning]


def _initial(size: int, pcr: int, locality: int) -> bytes:
    if pcr == 0 and locality:
        return b"\x00" * (size - 1) + bytes((locality,))
    return b"\x00" * size


def _replay(log: EventLog) -> _ReplayState:
    """One pass over the compact records (no Event objects, no event-data copies)."""
    data = log.raw
    values: PcrValues = {}
    #: bank -> (hash constructor, {pcr: value})
    banks: dict[str, tuple[Any, dict[int, bytes]]] = {}
    extends: dict[int, int] = {}
    warnings: list[ReplayWarning] = []
    unsupported: set[str] = set()
    #: (bank, pcr) with at least one extending event lacking that bank's digest
    missing: set[tuple[str, int]] = set()
    declared = tuple(b for b in log.banks)
    n_declared = len(declared)
    locality = 0
    pcr0_started = False
    index = -1
    for pcr, etype, digests, _offset, start, end in log.records:
        index += 1
        if etype == _EV_NO_ACTION:
            if pcr == 0 and end - start >= 17 and data.startswith(_STARTUP_LOCALITY, start):
                if pcr0_started:
                    warnings.append(ReplayWarning(
                        "eventlog.locality_ignored",
                        "StartupLocality event after PCR0's first measurement is ignored", index, 0))
                elif locality != _HCRTM_LOCALITY:
                    locality = data[start + 16]
            continue
        if pcr == 0:
            if not pcr0_started:
                pcr0_started = True
                if etype == _EV_HCRTM:
                    locality = _HCRTM_LOCALITY
            elif etype == _EV_HCRTM:
                warnings.append(ReplayWarning(
                    "eventlog.hcrtm_late", "EV_EFI_HCRTM_EVENT is not PCR0's first measurement; extended as is",
                    index, 0))
        extends[pcr] = extends.get(pcr, 0) + 1
        if len(digests) != n_declared:
            for bank in declared:
                if bank not in digests:
                    missing.add((bank, pcr))
        for bank, digest in digests.items():
            state = banks.get(bank)
            if state is None:
                if bank in unsupported:
                    continue
                ctor = _HASHERS.get(bank)
                if ctor is None:
                    fn = digest_fn(bank)
                    if fn is None:
                        unsupported.add(bank)
                        warnings.append(ReplayWarning(
                            "eventlog.unsupported_bank", f"cannot replay bank {bank}: unknown hash algorithm",
                            bank=bank))
                        continue
                    ctor = _FnHasher(fn)
                state = banks[bank] = (ctor, {})
                values[bank] = state[1]
            ctor, bank_values = state
            current = bank_values.get(pcr)
            if current is None:
                current = _initial(len(digest), pcr, locality)
            bank_values[pcr] = ctor(current + digest).digest()
    incomplete: set[tuple[str, int]] = set()
    for bank, pcr in sorted(missing, key=lambda bp: (bp[1], bp[0])):
        bank_values = values.get(bank)
        if bank_values is None or pcr not in bank_values:
            continue  # the bank carries no digest for this PCR at all: nothing replayed, nothing claimed
        incomplete.add((bank, pcr))
        del bank_values[pcr]
        warnings.append(ReplayWarning(
            "eventlog.bank_incomplete",
            f"some of the {extends[pcr]} events for PCR {pcr} carry no {bank} digest; "
            f"{bank} PCR {pcr} cannot be replayed", pcr=pcr, bank=bank))
    for bank in list(values):
        if not values[bank]:
            del values[bank]
    return _ReplayState(values, incomplete, extends, locality, warnings)


class _FnHasher:
    """Makes a ``data -> digest`` function look like a hashlib constructor (``ctor(data).digest()``)."""

    __slots__ = ("_fn", "_d")

    def __init__(self, fn: Callable[[bytes], bytes]) -> None:
        self._fn = fn
        self._d = b""

    def __call__(self, data: bytes) -> "_FnHasher":
        done = _FnHasher(self._fn)
        done._d = self._fn(data)
        return done

    def digest(self) -> bytes:
        return self._d


def replay_values(log: EventLog) -> tuple[PcrValues, list[ReplayWarning]]:
    """``({bank: {pcr: value}}, replay warnings)`` for every bank/PCR that can be replayed."""
    state = _replay(log)
    return state.values, state.warnings


# -- digest checks -------------------------------------------------------------------------------

def _whole(ev: Event) -> list[bytes]:
    return [ev.data]


def _variable_data(data: bytes) -> bytes | None:
    """``UEFI_VARIABLE_DATA.VariableData`` (PFP 10.4.4 / Table 17), or None if the data is malformed."""
    if len(data) < 32:
        return None
    name_len, data_len = struct.unpack_from("<QQ", data, 16)
    start = 32 + 2 * name_len
    end = start + data_len
    if end != len(data):
        return None
    return data[start:end]


def _variable_boot(ev: Event) -> list[bytes]:
    # PFP 10.4.4: the digest of EV_EFI_VARIABLE_BOOT is over VariableData only; some firmware
    # (e.g. EDK2 builds before 2019 and several OEM BIOSes) hash the whole UEFI_VARIABLE_DATA.
    out = [ev.data]
    var = _variable_data(ev.data)
    if var is not None:
        out.insert(0, var)
    return out


def _authority(ev: Event) -> list[bytes]:
    # PFP 10.4.4: the UEFI_VARIABLE_DATA (with the EFI_SIGNATURE_DATA that authorised an image).
    # shim's older "Shim"/MokList authority measurements hash only the variable data.
    out = [ev.data]
    var = _variable_data(ev.data)
    if var is not None:
        out.append(var)
    return out


def _grub_string(ev: Event) -> list[bytes]:
    """GRUB (PCR8) measures the command / command line after a ``word: `` prefix, with or without NUL."""
    data = ev.data
    if not data.endswith(b"\x00"):
        return []
    space = data.find(b" ")
    if space <= 0 or space + 1 >= len(data):
        return []
    if not _GRUB_PREFIX.fullmatch(data[:space]):
        return []
    text = data[space + 1:]
    return [text[:-1], text]


_GRUB_PREFIX = re.compile(rb"[A-Za-z_]+:?")


def _ipl(ev: Event) -> list[bytes]:
    if ev.pcr == 8:
        return _grub_string(ev)
    return []


#: event type -> candidate byte strings, one of whose hash must equal each digest.
#: Only types whose digest the PFP defines as a hash of exactly the logged data (PFP 10.4.1 Table 9
#: and 10.4.4), plus GRUB's PCR8 EV_IPL strings. Types whose digest covers data not in the log
#: (code images, firmware blobs, handoff tables, POST code, kernels in PCR9, MokList in PCR14, ...)
#: are never checked.
HASHED_DATA_TYPES: dict[int, Callable[[Event], list[bytes]]] = {
    int(EventType.EV_SEPARATOR): _whole,
    int(EventType.EV_ACTION): _whole,
    int(EventType.EV_EFI_ACTION): _whole,
    int(EventType.EV_S_CRTM_VERSION): _whole,
    int(EventType.EV_EFI_GPT_EVENT): _whole,
    int(EventType.EV_EFI_VARIABLE_DRIVER_CONFIG): _whole,
    int(EventType.EV_EFI_VARIABLE_BOOT2): _whole,
    int(EventType.EV_EFI_VARIABLE_BOOT): _variable_boot,
    int(EventType.EV_EFI_VARIABLE_AUTHORITY): _authority,
    int(EventType.EV_IPL): _ipl,
}


def _hashed_prefix(fn: Callable[[bytes], bytes], data: bytes, digest: bytes, limit: int = 8) -> int:
    """k (1..limit) if ``digest`` is the hash of ``data`` without its last k bytes, else 0."""
    for k in range(1, min(limit, len(data)) + 1):
        if fn(data[:-k]) == digest:
            return k
    return 0


def check_event_digests(log: EventLog) -> list[ReplayWarning]:
    """Warnings for events whose digest is not the hash of their data, where the PFP says it is."""
    out: list[ReplayWarning] = []
    for ev in log.events:
        candidates_fn = HASHED_DATA_TYPES.get(ev.event_type)
        if candidates_fn is None:
            if ev.event_type == _EV_NO_ACTION and ev.index > 0 and any(any(d) for d in ev.digests.values()):
                out.append(ReplayWarning("eventlog.no_action_digest",
                                         "EV_NO_ACTION event has a non-zero digest (it is not extended)",
                                         ev.index, ev.pcr))
            continue
        candidates = candidates_fn(ev)
        if not candidates:
            continue
        for bank, digest in ev.digests.items():
            fn = digest_fn(bank)
            if fn is None:
                continue
            if any(fn(c) == digest for c in candidates):
                continue
            extra = _hashed_prefix(fn, ev.data, digest)
            if extra:
                # e.g. shim's EV_EFI_VARIABLE_AUTHORITY "Shim"/"MokList" events: the logged data has
                # bytes after the measured structure (struct padding in shim's EFI_VARIABLE_DATA_TREE).
                out.append(ReplayWarning(
                    "eventlog.digest_data_trailing_bytes",
                    f"{ev.type_name} {bank} digest is the hash of the event data without its last {extra} "
                    "byte(s): the logged data has bytes that were not measured",
                    ev.index, ev.pcr, bank))
                continue
            out.append(ReplayWarning(
                "eventlog.digest_not_data_hash",
                f"{ev.type_name} {bank} digest {digest.hex()} is not the hash of its event data "
                f"({fn(candidates[0]).hex()})",
                ev.index, ev.pcr, bank))
    return out


def collect_warnings(log: EventLog) -> list[ReplayWarning]:
    """Replay warnings followed by digest-check warnings."""
    return list(log.parse_warnings) + _replay(log).warnings + check_event_digests(log)


# -- comparison ----------------------------------------------------------------------------------


def normalize_pcrs(pcrs: Mapping[str, Mapping[Any, Any]]) -> dict[str, dict[int, bytes]]:
    """Canonical ``{bank: {pcr: bytes}}`` from user input: bank names in any case, PCR keys as int or
    str, values as bytes or hex strings (optionally ``0x``-prefixed)."""
    out: dict[str, dict[int, bytes]] = {}
    if not isinstance(pcrs, Mapping):
        raise EvidenceError("eventlog.expected_invalid", "expected PCRs must map bank names to PCR maps",
                            field="pcrs")
    for bank_name, values in pcrs.items():
        if not isinstance(bank_name, str):
            raise EvidenceError("eventlog.expected_invalid", f"bank name {bank_name!r} is not a string",
                                field="pcrs")
        alg = hash_alg_by_name(bank_name)
        if not isinstance(values, Mapping):
            raise EvidenceError("eventlog.expected_invalid", f"{bank_name} must map PCR indexes to values",
                                field=f"pcrs.{bank_name}")
        bank = out.setdefault(alg.name, {})
        for key, value in values.items():
            try:
                pcr = int(key)
            except (TypeError, ValueError):
                raise EvidenceError("eventlog.expected_invalid", f"PCR index {key!r} is not an integer",
                                    field=f"pcrs.{alg.name}") from None
            if pcr < 0:
                raise EvidenceError("eventlog.expected_invalid", f"PCR index {pcr} is negative",
                                    field=f"pcrs.{alg.name}")
            if isinstance(value, str):
                text = value.strip()
                if text[:2].lower() == "0x":
                    text = text[2:]
                try:
                    raw = bytes.fromhex(text)
                except ValueError:
                    raise EvidenceError("eventlog.expected_invalid", f"{alg.name} PCR {pcr} is not hex",
                                        field=f"pcrs.{alg.name}.{pcr}") from None
            elif isinstance(value, (bytes, bytearray, memoryview)):
                raw = bytes(value)
            else:
                raise EvidenceError("eventlog.expected_invalid", f"{alg.name} PCR {pcr} is not bytes or hex",
                                    field=f"pcrs.{alg.name}.{pcr}")
            if len(raw) != alg.digest_size:
                raise EvidenceError(
                    "eventlog.expected_invalid",
                    f"{alg.name} PCR {pcr} has {len(raw)} bytes, expected {alg.digest_size}",
                    field=f"pcrs.{alg.name}.{pcr}")
            bank[pcr] = raw
    return out


def _events_for(log: EventLog, pcr: int) -> list[Event]:
    return [e for e in log.events if e.pcr == pcr and e.event_type != _EV_NO_ACTION]


def _explain(log: EventLog, state: _ReplayState, bank: str, pcr: int, expected: bytes,
             tried: list[Quirk]) -> str:
    """Why ``bank``/``pcr`` does not match: prefix of the log, reset value, quirks tried."""
    fn = digest_fn(bank)
    events = _events_for(log, pcr)
    parts: list[str] = []
    if fn is not None and events:
        value = _initial(len(expected), pcr, state.pcr0_locality if pcr == 0 else 0)
        if value == expected:
            parts.append(f"the TPM value is the PCR's initial value, but the log has {len(events)} "
                         "measurements for it (log from another boot, or the wrong PCR selection)")
        else:
            for k, ev in enumerate(events, start=1):
                value = fn(value + ev.digests[bank])
                if value == expected and k < len(events):
                    parts.append(f"the TPM value equals the replay of only the first {k} of {len(events)} "
                                 f"measurements (up to event {ev.index}); the log has measurements the TPM "
                                 "did not see")
                    break
            else:
                parts.append(f"no prefix of the {len(events)} logged measurements replays to the TPM value: "
                             "an event was altered or removed, or the TPM saw measurements that are not logged")
    for q in tried:
        parts.append(f"quirk {q.name} ({q.title}) was tried and does not explain it")
    return "; ".join(parts)


def compare(log: EventLog, expected: Mapping[str, Mapping[Any, Any]], *, use_quirks: bool = True,
            quirks: Iterable[Quirk] = QUIRKS) -> ReplayReport:
    """Compare every expected bank/PCR with the replay (see :class:`PcrCheck` for statuses).

    Quirks are tried only for a bank/PCR that does not match, only if the quirk names that PCR and
    its precondition holds for this log, and they are used only if the replay with them matches.
    """
    want = normalize_pcrs(expected)
    state = _replay(log)
    warnings = list(log.parse_warnings) + state.warnings + check_event_digests(log)
    checks: list[PcrCheck] = []
    applied: list[AppliedQuirk] = []
    quirk_list = list(quirks) if use_quirks else []
    preconditions: dict[str, bool] = {}
    for bank in sorted(want, key=lambda b: (HASH_ALGS_ORDER.get(b, 99), b)):
        replayed = state.values.get(bank, {})
        for pcr in sorted(want[bank]):
            exp = want[bank][pcr]
            n_events = state.extends.get(pcr, 0)
            got = replayed.get(pcr)
            if n_events == 0:
                checks.append(PcrCheck(bank, pcr, NOT_LOGGED, exp, None, 0))
                continue
            if got is None:
                reason = ("some events for this PCR lack a digest in this bank"
                          if (bank, pcr) in state.incomplete
                          else f"the log carries no {bank} digests" if digest_fn(bank) is not None
                          else f"Attestd cannot compute {bank}")
                checks.append(PcrCheck(bank, pcr, UNVERIFIABLE, exp, None, n_events, explanation=reason))
                continue
            if got == exp:
                checks.append(PcrCheck(bank, pcr, MATCH, exp, got, n_events))
                continue
            fn = digest_fn(bank)
            tried: list[Quirk] = []
            matched: Quirk | None = None
            for q in quirk_list:
                if q.pcr != pcr or fn is None:
                    continue
                ok = preconditions.get(q.name)
                if ok is None:
                    ok = preconditions[q.name] = bool(q.precondition(log))
                if not ok:
                    continue
                tried.append(q)
                value = got
                for _etype, data in q.appended:
                    value = fn(value + fn(data))
                if value == exp:
                    matched = q
                    break
            if matched is not None:
                checks.append(PcrCheck(bank, pcr, MATCH, exp, got, n_events, quirk=matched.name,
                                       explanation=f"matches with quirk {matched.name}: {matched.title}"))
                applied.append(AppliedQuirk(matched.name, matched.title, bank, pcr, matched.reference))
                warnings.append(ReplayWarning(
                    "eventlog.quirk_applied",
                    f"{bank} PCR {pcr} matches only with quirk {matched.name} ({matched.title}; "
                    f"{matched.affects})", pcr=pcr, bank=bank))
                continue
            checks.append(PcrCheck(bank, pcr, MISMATCH, exp, got, n_events,
                                   explanation=_explain(log, state, bank, pcr, exp, tried)))
    return ReplayReport(state.values, tuple(checks), tuple(warnings), tuple(applied))

