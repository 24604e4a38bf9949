"""Comparing a host's event log (and IMA log) with a baseline, and saying what differs.

Per PCR, the expected and found events are aligned as sequences of (event type, digest) keys with
:class:`difflib.SequenceMatcher` (longest matching blocks first), so one inserted event does not
make every later one differ. What does not align is a :class:`Difference`:

* ``changed``: an event in the place of an expected one, with another digest. Inside a block that
  does not align, an expected event pairs with the next found event of the same type and subject
  (:func:`attestd.baseline.explain.subject`: the variable, the GRUB prefix, the image path), then
  with the next one of the same type. The message shows the decoded content expected and found;
  for a GRUB command or kernel command line also the words added and removed (``init=/bin/sh``).
* ``missing``: an expected event the host did not measure (numbered as in the baseline).
* ``extra``: an event the baseline does not have (numbered as in the host's log).
* ``ima-changed`` / ``ima-new``: an IMA-measured file whose digest is not one the baseline saw,
  or a file the baseline never saw.
* ``no-common-bank``: the baseline and the log share no digest bank for a PCR.

Digests are compared in the strongest bank both sides have for every event of the PCR (SHA-256
before SHA-384, SHA-512, SHA-1). EV_NO_ACTION events (TCG PFP 1.05 section 10.4.5) are not
extended and are skipped. Allowances (``ignorePcrs``, ``anyDigest``) come from the baseline.

The comparison is pure and trusts the log it is given: in the service it runs on an event log that
already replayed to the PCRs of a verified quote, and an IMA log whose replay matched PCR 10. A
caller that compares unverified logs learns nothing about the host.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from attestd.baseline import explain
from attestd.baseline.learn import NOT_MEASURED, ima_files
from attestd.baseline.model import AnyDigest, Baseline, ExpectedEvent
from attestd.eventlog import Event, EventLog
from attestd.ima import ImaLog

__all__ = ["BaselineComparison", "Difference", "compare"]

_BANK_ORDER = ("sha256", "sha384", "sha512", "sha1", "sm3_256")
_FREE = "*"


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference. ``expected_*`` describe the baseline's event (None for ``extra``),
    ``found_*`` the host's (None for ``missing``); indexes are event numbers (``EventNum``) in the
    baseline's and the host's log respectively, or IMA entry numbers for ``ima-*`` kinds."""

    kind: str
    pcr: int
    message: str
    expected_index: int | None = None
    expected_type: str | None = None
    expected_summary: str | None = None
    expected_digest: str | None = None
    found_index: int | None = None
    found_type: str | None = None
    found_summary: str | None = None
    found_digest: str | None = None
    #: the bank the digests are in (``sha256``), or ``ima`` for file digests (``algo:hex``)
    bank: str | None = None
    #: words added to / removed from a GRUB command or kernel command line
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: the file, for ``ima-*`` kinds
    path: str | None = None

    @property
    def event(self) -> int | None:
        """The host's event number, or the baseline's for a missing event."""
        return self.found_index if self.found_index is not None else self.expected_index

    def to_json(self) -> dict[str, Any]:
        def side(index, etype, summary, digest):
            if index is None and summary is None:
                return None
            return {"event": index, "type": etype, "summary": summary, "digest": digest}

        out: dict[str, Any] = {
            "kind": self.kind, "pcr": self.pcr, "message": self.message,
            "expected": side(self.expected_index, self.expected_type, self.expected_summary, self.expected_digest),
            "found": side(self.found_index, self.found_type, self.found_summary, self.found_digest),
            "bank": self.bank,
        }
        if self.added or self.removed:
            out["added"] = list(self.added)
            out["removed"] = list(self.removed)
        if self.path is not None:
            out["path"] = self.path
        return out

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class BaselineComparison:
    """The result of :func:`compare`: ``matches`` is true when there is no difference."""

    differences: tuple[Difference, ...]
    #: the PCRs compared (in the baseline or the log, not ignored)
    compared_pcrs: tuple[int, ...]
    #: the bank each PCR was compared in
    banks: dict[int, str]
    ima_compared: bool = False

    @property
    def matches(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"matches": self.matches, "comparedPcrs": list(self.compared_pcrs),
                "banks": {str(p): b for p, b in sorted(self.banks.items())}, "imaCompared": self.ima_compared,
                "differences": [d.to_json() for d in self.differences]}


def _bank(expected: tuple[ExpectedEvent, ...], found: list[Event]) -> str | None:
    for bank in _BANK_ORDER:
        if all(bank in e.digests for e in expected) and all(bank in f.digests for f in found):
            return bank
    return None


class _Pcr:
    """The alignment of one PCR: expected vs found, with their keys and (lazy) meanings."""

    def __init__(self, pcr: int, expected: tuple[ExpectedEvent, ...], found: list[Event],
                 rules: list[AnyDigest]) -> None:
        self.pcr = pcr
        self.rules = rules
        self._meanings: dict[int, str] = {}
        if rules:  # optional events are left out on both sides
            optional = [r for r in rules if r.optional]
            if optional:
                expected = tuple(e for e in expected if not any(r.matches(pcr, e.type, e.meaning) for r in optional))
                found = [f for f in found if not self._optional(f, optional)]
        self.expected = expected
        self.found = found

    def meaning(self, event: Event) -> str:
        text = self._meanings.get(event.index)
        if text is None:
            text = self._meanings[event.index] = explain.meaning(event)
        return text

    def _optional(self, event: Event, optional: list[AnyDigest]) -> bool:
        etype = event.type_name
        return any(r.matches_type(etype) for r in optional) and any(
            r.matches(self.pcr, etype, self.meaning(event)) for r in optional)

    def _free(self, etype: str, text_of) -> bool:
        rules = [r for r in self.rules if r.matches_type(etype)]
        return bool(rules) and any(r.matches(self.pcr, etype, text_of()) for r in rules)

    def compare(self, out: list[Difference]) -> str | None:
        pcr, expected, found = self.pcr, self.expected, self.found
        bank = _bank(expected, found)
        if bank is None:
            out.append(Difference("no-common-bank", pcr,
                                  f"PCR {pcr}: the log has no digest bank in common with the baseline"))
            return None
        if self.rules:
            a_keys = [(e.type, _FREE if self._free(e.type, lambda e=e: e.meaning) else e.digests[bank])
                      for e in expected]
            b_keys = [(f.type_name, _FREE if self._free(f.type_name, lambda f=f: self.meaning(f))
                       else f.digests[bank].hex()) for f in found]
        else:
            a_keys = [(e.type, e.digests[bank]) for e in expected]
            b_keys = [(f.type_name, f.digests[bank].hex()) for f in found]
        if a_keys == b_keys:
            return bank
        matcher = difflib.SequenceMatcher(None, a_keys, b_keys, autojunk=False)
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op != "equal":
                out.extend(self._block(bank, a0, a1, b0, b1))
        return bank

    def _block(self, bank: str, a0: int, a1: int, b0: int, b1: int) -> list[Difference]:
        """Differences of one block that does not align, in the host's log order."""
        expected, found = self.expected, self.found
        pairs: dict[int, int] = {}  # expected position -> found position
        free = list(range(b0, b1))
        subjects: dict[int, str] = {}

        def found_subject(j: int) -> str:
            if j not in subjects:
                subjects[j] = explain.subject(self.meaning(found[j]))
            return subjects[j]

        for same_subject in (True, False):
            for k in range(a0, a1):
                if k in pairs:
                    continue
                exp = expected[k]
                want = explain.subject(exp.meaning) if same_subject else None
                for j in free:
                    if found[j].type_name == exp.type and (want is None or found_subject(j) == want):
                        pairs[k] = j
                        free.remove(j)
                        break
        block: list[tuple[float, Difference]] = []
        last = b0 - 0.5
        for k in range(a0, a1):
            if k in pairs:
                last = pairs[k]
                block.append((last, self._changed(expected[k], found[last], bank)))
            else:
                block.append((last + 0.25, self._missing(expected[k], bank)))
        block.extend((j, self._extra(found[j], bank)) for j in free)
        block.sort(key=lambda t: t[0])
        return [d for _, d in block]

    def _changed(self, exp: ExpectedEvent, found: Event, bank: str) -> Difference:
        text = self.meaning(found)
        exp_digest = exp.digests.get(bank)
        found_digest = found.digests[bank].hex()
        message, added, removed = explain.changed_message(self.pcr, found.index, exp.type, exp.meaning,
                                                          found.type_name, text, bank, exp_digest, found_digest)
        return Difference("changed", self.pcr, message, exp.event, exp.type, exp.meaning, exp_digest,
                          found.index, found.type_name, text, found_digest, bank, added, removed)

    def _missing(self, exp: ExpectedEvent, bank: str) -> Difference:
        return Difference("missing", self.pcr, explain.missing_message(self.pcr, exp.event, exp.type, exp.meaning),
                          exp.event, exp.type, exp.meaning, exp.digests.get(bank), bank=bank)

    def _extra(self, found: Event, bank: str) -> Difference:
        text = self.meaning(found)
        return Difference("extra", self.pcr, explain.extra_message(self.pcr, found.index, found.type_name, text),
                          found_index=found.index, found_type=found.type_name, found_summary=text,
                          found_digest=found.digests[bank].hex(), bank=bank)


def _compare_ima(baseline: Baseline, ima: ImaLog, out: list[Difference]) -> None:
    base = baseline.ima
    if base is None:
        return
    for path, digest, entry in ima_files(ima):
        known = base.files.get(path)
        if known is not None and digest in known:
            continue
        if base.changed_allowed(path):
            continue
        if known is None:
            if base.allow_new:
                continue
            out.append(Difference("ima-new", entry.pcr,
                                  f"IMA entry {entry.index}, {entry.template_name}: {path} is not in the baseline "
                                  f"(found {digest})",
                                  found_index=entry.index, found_type=entry.template_name, found_summary=path,
                                  found_digest=digest, bank="ima", path=path))
        else:
            expected = known[0] if len(known) == 1 else "one of " + ", ".join(known)
            out.append(Difference("ima-changed", entry.pcr,
                                  f"IMA entry {entry.index}, {entry.template_name}: {path} changed: "
                                  f"expected {expected} found {digest}",
                                  expected_summary=path, expected_digest=", ".join(known),
                                  found_index=entry.index, found_type=entry.template_name, found_summary=path,
                                  found_digest=digest, bank="ima", path=path))


def compare(baseline: Baseline, log: EventLog, *, ima: ImaLog | None = None) -> BaselineComparison:
    """Compare a verified ``log`` (and IMA list) with ``baseline``; see the module docstring.

    The IMA list is compared only when the baseline has an ``ima`` section.
    """
    allowances = baseline.allowances
    ignore = set(allowances.ignore_pcrs)
    found: dict[int, list[Event]] = {}
    for e in log.events:
        if e.event_type != NOT_MEASURED and e.pcr not in ignore:
            found.setdefault(e.pcr, []).append(e)
    differences: list[Difference] = []
    banks: dict[int, str] = {}
    pcrs = sorted((set(baseline.pcrs) | set(found)) - ignore)
    for pcr in pcrs:
        rules = [r for r in allowances.any_digest if r.pcr == pcr]
        bank = _Pcr(pcr, baseline.pcrs.get(pcr, ()), found.get(pcr, []), rules).compare(differences)
        if bank is not None:
            banks[pcr] = bank
    ima_compared = ima is not None and baseline.ima is not None
    if ima is not None:
        _compare_ima(baseline, ima, differences)
    return BaselineComparison(tuple(differences), tuple(pcrs), banks, ima_compared)
