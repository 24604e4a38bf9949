"""The baseline document: what a known-good host measured, per PCR, and what may differ.

JSON (``"format": "attestd-baseline/1"``)::

    {
      "format": "attestd-baseline/1",
      "name": "web-tier",                      # free text (optional)
      "createdAt": "2026-11-23T05:00:00+00:00",
      "source": {"eventlogSha256": "...", "events": 49},   # the log it was learned from
      "pcrs": {                                # PCR -> expected events, in log order
        "7": [{"event": 4, "type": "EV_EFI_VARIABLE_DRIVER_CONFIG",
               "digests": {"sha1": "...", "sha256": "..."}, "meaning": "SecureBoot = 1 (enabled)"}, ...]
      },
      "allowances": {
        "ignorePcrs": [],                      # PCRs not compared at all
        "anyDigest": [                         # events that may carry any digest, matched by
          {"pcr": 1,                           #   PCR,
           "type": "EV_EFI_VARIABLE_BOOT*",    #   event type (a glob),
           "meaning": "BootOrder*",            #   decoded meaning (a glob),
           "optional": false}                  #   true: may also be missing or repeated
        ]
      },
      "ima": {"files": {"/usr/bin/bash": ["sha256:..."]},   # optional
              "allowChanged": ["/var/log/*"], "allowNew": false}
    }

An expected event is one ``TCG_PCR_EVENT2`` record (TCG PC Client PFP 1.05, section 10.2.2) of the
known-good log: its ``PCRIndex``, ``EventType`` (named as in PFP 10.4.1 Table 9), ``Digests`` (one
per bank, hex) and the decoded ``Event`` data on one line (:mod:`attestd.eventlog.data`).
EV_NO_ACTION events (PFP 10.4.5) are never extended into a PCR and are not recorded.

Every member is checked by :meth:`Baseline.from_json`: a wrong or unknown one raises
:class:`~attestd.errors.EvidenceError` ``baseline.invalid`` whose ``field`` is its JSON path
(``pcrs.7[2].digests.sha256``, ``allowances.anyDigest[0].pcr``).

The default allowances are empty. Two boots of the same image (the ``sb`` and ``sb-second`` QEMU
fixtures) measure byte-identical logs, and the one value the firmware logs that could vary
between boots of one host, ``ImageLocationInMemory`` of PFP 10.2.3 ``UEFI_IMAGE_LOAD_EVENT``, is
not hashed, so no allowance is needed for it (events are compared by digest). :data:`PRESETS`
holds the allowances a user commonly adds (``attestd baseline learn --allow boot-order``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from attestd.errors import EvidenceError

__all__ = ["FORMAT", "PRESETS", "Allowances", "AnyDigest", "Baseline", "ExpectedEvent", "ImaBaseline"]

FORMAT = "attestd-baseline/1"
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")
_DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64, "sm3_256": 32}


def _invalid(path: str, message: str) -> EvidenceError:
    return EvidenceError("baseline.invalid", f"{path}: {message}", field=path)


def _expect(value: Any, kind: type | tuple, path: str, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        found = "nothing" if value is None else type(value).__name__
        raise _invalid(path, f"expected {what}, found {found}")
    return value


def _only(obj: dict, allowed: tuple[str, ...], path: str) -> None:
    """Unknown members are errors: a misspelt allowance (``ignorePCRs``) must not silently do nothing."""
    for key in obj:
        if key not in allowed:
            where = f"{path}.{key}" if path != "$" else key
            raise _invalid(where, f"unknown member (expected one of {', '.join(allowed)})")


def _pcr(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 32:
        raise _invalid(path, "expected a PCR number 0-31")
    return value


@dataclass(frozen=True, slots=True)
class ExpectedEvent:
    """One extended event of the known-good log: PCR, event number, type name, hex digest per
    bank, and the decoded data on one line (``meaning``, what a person compares)."""

    pcr: int
    event: int
    type: str
    digests: dict[str, str]
    meaning: str

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "type": self.type, "digests": dict(self.digests), "meaning": self.meaning}

    @classmethod
    def from_json(cls, pcr: int, obj: Any, path: str) -> ExpectedEvent:
        _expect(obj, dict, path, "an object")
        _only(obj, ("event", "type", "digests", "meaning"), path)
        event = _expect(obj.get("event"), int, f"{path}.event", "an event number")
        if event < 0:
            raise _invalid(f"{path}.event", "expected an event number >= 0")
        etype = _expect(obj.get("type"), str, f"{path}.type", "an event type name")
        digests = _expect(obj.get("digests"), dict, f"{path}.digests", "an object of hex digests")
        if not digests:
            raise _invalid(f"{path}.digests", "expected at least one digest")
        for bank, value in digests.items():
            size = _DIGEST_SIZES.get(bank)
            if not isinstance(value, str) or not _HEX.match(value) or (size and len(value) != 2 * size):
                want = f"{size}-byte" if size else "a"
                raise _invalid(f"{path}.digests.{bank}", f"expected {want} lower-case hex digest")
        meaning = _expect(obj.get("meaning", ""), str, f"{path}.meaning", "a string")
        return cls(pcr, event, etype, dict(digests), meaning)


@dataclass(frozen=True, slots=True)
class AnyDigest:
    """An allowance: events in ``pcr`` whose type matches ``type`` and whose decoded meaning
    matches ``meaning`` (both globs, :func:`fnmatch.fnmatchcase`) may carry any digest. With
    ``optional`` they may also be missing or appear more often than in the baseline."""

    pcr: int
    type: str
    meaning: str = "*"
    optional: bool = False

    def matches_type(self, etype: str) -> bool:
        return fnmatch.fnmatchcase(etype, self.type)

    def matches(self, pcr: int, etype: str, meaning: str) -> bool:
        return pcr == self.pcr and fnmatch.fnmatchcase(etype, self.type) and fnmatch.fnmatchcase(meaning, self.meaning)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pcr": self.pcr, "type": self.type, "meaning": self.meaning}
        if self.optional:
            out["optional"] = True
        return out

    @classmethod
    def from_json(cls, obj: Any, path: str) -> AnyDigest:
        _expect(obj, dict, path, "an object")
        _only(obj, ("pcr", "type", "meaning", "optional"), path)
        pcr = _pcr(obj.get("pcr"), f"{path}.pcr")
        etype = _expect(obj.get("type"), str, f"{path}.type", "an event type name or glob")
        meaning = _expect(obj.get("meaning", "*"), str, f"{path}.meaning", "a glob")
        optional = _expect(obj.get("optional", False), bool, f"{path}.optional", "true or false")
        return cls(pcr, etype, meaning, optional)


#: Allowances a user commonly adds (``attestd baseline learn --allow NAME``). None is a default.
PRESETS: dict[str, tuple[AnyDigest, ...]] = {
    # BootOrder (UEFI 2.10 section 3.3): firmware rewrites it, e.g. after a one-time network boot.
    "boot-order": (AnyDigest(1, "EV_EFI_VARIABLE_BOOT*", "BootOrder*"),),
    # ... and the Boot#### load options themselves may be added, removed or changed.
    "boot-options": (AnyDigest(1, "EV_EFI_VARIABLE_BOOT*", "BootOrder*"),
                     AnyDigest(1, "EV_EFI_VARIABLE_BOOT*", "Boot[0-9A-F][0-9A-F][0-9A-F][0-9A-F]*", optional=True)),
    # UEFI_GPT_DATA (PFP 10.2, Table 10; PCR 5): changes when the disk is repartitioned or replaced.
    "gpt": (AnyDigest(5, "EV_EFI_GPT_EVENT*", "*"),),
    # UEFI_HANDOFF_TABLE_POINTERS (PFP 10.2; PCR 1, SMBIOS): serial numbers, addresses.
    "handoff-tables": (AnyDigest(1, "EV_EFI_HANDOFF_TABLES*", "*"),),
}


@dataclass(frozen=True, slots=True)
class Allowances:
    """What may differ from the baseline: whole PCRs, and events with any digest."""

    ignore_pcrs: tuple[int, ...] = ()
    any_digest: tuple[AnyDigest, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"ignorePcrs": list(self.ignore_pcrs), "anyDigest": [a.to_json() for a in self.any_digest]}

    @classmethod
    def from_json(cls, obj: Any, path: str = "allowances") -> Allowances:
        _expect(obj, dict, path, "an object")
        _only(obj, ("ignorePcrs", "anyDigest"), path)
        ignore = _expect(obj.get("ignorePcrs", []), list, f"{path}.ignorePcrs", "a list of PCR numbers")
        pcrs = tuple(_pcr(p, f"{path}.ignorePcrs[{i}]") for i, p in enumerate(ignore))
        rules = _expect(obj.get("anyDigest", []), list, f"{path}.anyDigest", "a list")
        return cls(pcrs, tuple(AnyDigest.from_json(r, f"{path}.anyDigest[{i}]") for i, r in enumerate(rules)))

    @classmethod
    def preset(cls, *names: str, ignore_pcrs: tuple[int, ...] = ()) -> Allowances:
        """Allowances from :data:`PRESETS` names (unknown name: ``baseline.invalid``)."""
        rules: list[AnyDigest] = []
        for name in names:
            if name not in PRESETS:
                raise EvidenceError("baseline.invalid", f"unknown allowance {name!r} (known: {', '.join(PRESETS)})",
                                    field="allow")
            rules.extend(r for r in PRESETS[name] if r not in rules)
        return cls(tuple(sorted(set(ignore_pcrs))), tuple(rules))


@dataclass(frozen=True, slots=True)
class ImaBaseline:
    """The files a known-good host measured (path -> file digests seen, ``algo:hex``) and what may
    differ: path globs whose digest may change, and whether files never seen are accepted."""

    files: dict[str, tuple[str, ...]]
    allow_changed: tuple[str, ...] = ()
    allow_new: bool = False

    def changed_allowed(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, g) for g in self.allow_changed)

    def to_json(self) -> dict[str, Any]:
        return {"files": {p: list(d) for p, d in sorted(self.files.items())},
                "allowChanged": list(self.allow_changed), "allowNew": self.allow_new}

    @classmethod
    def from_json(cls, obj: Any, path: str = "ima") -> ImaBaseline:
        _expect(obj, dict, path, "an object")
        _only(obj, ("files", "allowChanged", "allowNew"), path)
        files = _expect(obj.get("files", {}), dict, f"{path}.files", "an object of path -> digests")
        out: dict[str, tuple[str, ...]] = {}
        for name, digests in files.items():
            where = f"{path}.files[{name!r}]"
            _expect(digests, list, where, "a list of digests")
            for i, d in enumerate(digests):
                _expect(d, str, f"{where}[{i}]", "a digest string (algo:hex)")
            out[name] = tuple(digests)
        allow = _expect(obj.get("allowChanged", []), list, f"{path}.allowChanged", "a list of globs")
        for i, g in enumerate(allow):
            _expect(g, str, f"{path}.allowChanged[{i}]", "a glob")
        allow_new = _expect(obj.get("allowNew", False), bool, f"{path}.allowNew", "true or false")
        return cls(out, tuple(allow), allow_new)


@dataclass(frozen=True)
class Baseline:
    """A learned baseline: expected events per PCR, allowances, optional IMA files."""

    pcrs: dict[int, tuple[ExpectedEvent, ...]]
    allowances: Allowances = field(default_factory=Allowances)
    ima: ImaBaseline | None = None
    name: str | None = None
    created_at: str | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        if self.name is not None:
            out["name"] = self.name
        if self.created_at is not None:
            out["createdAt"] = self.created_at
        if self.source:
            out["source"] = dict(self.source)
        out["pcrs"] = {str(p): [e.to_json() for e in events] for p, events in sorted(self.pcrs.items())}
        out["allowances"] = self.allowances.to_json()
        if self.ima is not None:
            out["ima"] = self.ima.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Baseline:
        """Read a baseline document, checking every member (``baseline.invalid`` names the path)."""
        _expect(obj, dict, "$", "a JSON object")
        _only(obj, ("format", "name", "createdAt", "source", "pcrs", "allowances", "ima"), "$")
        if obj.get("format") != FORMAT:
            raise _invalid("format", f"expected {FORMAT!r}, found {obj.get('format')!r}")
        pcrs_obj = _expect(obj.get("pcrs"), dict, "pcrs", "an object of PCR -> events")
        pcrs: dict[int, tuple[ExpectedEvent, ...]] = {}
        for key, events in pcrs_obj.items():
            if not (isinstance(key, str) and key.isdigit() and int(key) < 32):
                raise _invalid(f"pcrs.{key}", "PCR keys are numbers 0-31")
            _expect(events, list, f"pcrs.{key}", "a list of events")
            pcrs[int(key)] = tuple(ExpectedEvent.from_json(int(key), e, f"pcrs.{key}[{i}]")
                                   for i, e in enumerate(events))
        allowances = Allowances.from_json(obj["allowances"]) if "allowances" in obj else Allowances()
        ima = ImaBaseline.from_json(obj["ima"]) if obj.get("ima") is not None else None
        name = obj.get("name")
        if name is not None:
            _expect(name, str, "name", "a string")
        created = obj.get("createdAt")
        if created is not None:
            _expect(created, str, "createdAt", "an ISO 8601 time string")
        source = _expect(obj.get("source", {}), dict, "source", "an object")
        return cls(pcrs, allowances, ima, name, created, dict(source))
