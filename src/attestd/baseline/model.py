"""The baseline document: what a known-good host measured, per PCR, and what may differ.

JSON (``"format": "attestd-baseline/1"``)::

    {
      "format": "attestd-baseline/1",
      "name": "web-tier",                      # free text
      "createdAt": "2026-11-23T05:00:00+00:00",
      "source": {"eventlogSha256": "..."},     # the log it was learned from
      "pcrs": {                                # PCR -> expected events, in log order
        "7": [{"event": 4, "type": "EV_EFI_VARIABLE_DRIVER_CONFIG",
               "digests": {"sha1": "...", "sha256": "..."}, "meaning": "SecureBoot = 1 (enabled)"}, ...]
      },
      "allowances": {
        "ignorePcrs": [],                      # PCRs not compared at all
        "anyDigest": [                         # events that may carry any digest: matched by PCR,
          {"pcr": 1, "type": "EV_EFI_VARIABLE_BOOT", "meaning": "BootOrder*"}   # type and meaning
        ]                                      # (a glob on the decoded meaning)
      },
      "ima": {"files": {"/usr/bin/bash": ["sha256:..."]},   # optional
              "allowChanged": ["/var/log/*"], "allowNew": false}
    }

Every member is checked by :meth:`Baseline.from_json`; a wrong one raises ``baseline.invalid``
naming its JSON path (``pcrs.7[2].digests``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from attestd.errors import EvidenceError

__all__ = ["DEFAULT_ANY_DIGEST", "FORMAT", "Allowances", "AnyDigest", "Baseline", "ExpectedEvent", "ImaBaseline"]

FORMAT = "attestd-baseline/1"
_HEX = re.compile(r"^[0-9a-f]*$")

#: Allowed by default: the boot option order (a firmware may reorder it, e.g. after a one-time
#: network boot) - the options themselves (Boot####) must still match.
DEFAULT_ANY_DIGEST = ({"pcr": 1, "type": "EV_EFI_VARIABLE_BOOT", "meaning": "BootOrder*"},
                      {"pcr": 1, "type": "EV_EFI_VARIABLE_BOOT2", "meaning": "BootOrder*"})


def _invalid(path: str, message: str) -> EvidenceError:
    return EvidenceError("baseline.invalid", f"{path}: {message}", field=path)


def _expect(value: Any, kind: type | tuple, path: str, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _invalid(path, f"expected {what}, found {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class ExpectedEvent:
    """One event of the known-good log: PCR, number, type, digest per bank, decoded meaning."""

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
        event = _expect(obj.get("event"), int, f"{path}.event", "an integer")
        etype = _expect(obj.get("type"), str, f"{path}.type", "an event type name")
        digests = _expect(obj.get("digests"), dict, f"{path}.digests", "an object of hex digests")
        for bank, value in digests.items():
            if not isinstance(value, str) or not _HEX.match(value) or not value:
                raise _invalid(f"{path}.digests.{bank}", "expected a lower-case hex digest")
        meaning = _expect(obj.get("meaning", ""), str, f"{path}.meaning", "a string")
        return cls(pcr, event, etype, dict(digests), meaning)


@dataclass(frozen=True, slots=True)
class AnyDigest:
    """An allowance: events of ``type`` in ``pcr`` whose meaning matches ``meaning`` (a glob) may
    carry any digest."""

    pcr: int
    type: str
    meaning: str = "*"

    def matches(self, pcr: int, etype: str, meaning: str) -> bool:
        return pcr == self.pcr and etype == self.type and fnmatch.fnmatchcase(meaning, self.meaning)

    def to_json(self) -> dict[str, Any]:
        return {"pcr": self.pcr, "type": self.type, "meaning": self.meaning}


@dataclass(frozen=True, slots=True)
class Allowances:
    ignore_pcrs: tuple[int, ...] = ()
    any_digest: tuple[AnyDigest, ...] = tuple(AnyDigest(**a) for a in DEFAULT_ANY_DIGEST)

    def to_json(self) -> dict[str, Any]:
        return {"ignorePcrs": list(self.ignore_pcrs), "anyDigest": [a.to_json() for a in self.any_digest]}

    @classmethod
    def from_json(cls, obj: Any, path: str = "allowances") -> Allowances:
        _expect(obj, dict, path, "an object")
        ignore = _expect(obj.get("ignorePcrs", []), list, f"{path}.ignorePcrs", "a list of PCR numbers")
        for i, p in enumerate(ignore):
            if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < 32:
                raise _invalid(f"{path}.ignorePcrs[{i}]", "expected a PCR number 0-31")
        rules = _expect(obj.get("anyDigest", []), list, f"{path}.anyDigest", "a list")
        parsed = []
        for i, r in enumerate(rules):
            rp = f"{path}.anyDigest[{i}]"
            _expect(r, dict, rp, "an object")
            pcr = _expect(r.get("pcr"), int, f"{rp}.pcr", "a PCR number")
            etype = _expect(r.get("type"), str, f"{rp}.type", "an event type name")
            meaning = _expect(r.get("meaning", "*"), str, f"{rp}.meaning", "a glob")
            parsed.append(AnyDigest(pcr, etype, meaning))
        return cls(tuple(ignore), tuple(parsed))


@dataclass(frozen=True, slots=True)
class ImaBaseline:
    """The files a known-good host measured (path -> digests seen) and what may differ."""

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
        files = _expect(obj.get("files", {}), dict, f"{path}.files", "an object")
        out: dict[str, tuple[str, ...]] = {}
        for name, digests in files.items():
            _expect(digests, list, f"{path}.files[{name!r}]", "a list of digests")
            if not all(isinstance(d, str) for d in digests):
                raise _invalid(f"{path}.files[{name!r}]", "expected digest strings")
            out[name] = tuple(digests)
        allow = _expect(obj.get("allowChanged", []), list, f"{path}.allowChanged", "a list of globs")
        if not all(isinstance(g, str) for g in allow):
            raise _invalid(f"{path}.allowChanged", "expected glob strings")
        allow_new = _expect(obj.get("allowNew", False), bool, f"{path}.allowNew", "true or false")
        return cls(out, tuple(allow), allow_new)


@dataclass(frozen=True)
class Baseline:
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
        source = _expect(obj.get("source", {}), dict, "source", "an object")
        return cls(pcrs, allowances, ima, name, obj.get("createdAt"), dict(source))
