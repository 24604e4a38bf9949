"""Comparing a host's event log (and IMA log) with a baseline, and saying what differs.

Per PCR, the expected and found events are aligned as sequences of (event type, digest) - the
longest matching blocks first (difflib), so one inserted event does not make every later one
differ. What does not align is a difference:

* ``changed``: an event in the place of an expected one, with another digest. The message shows
  the decoded content expected and found; for a GRUB command or kernel command line also the
  words added and removed (``init=/bin/sh``);
* ``missing``: an expected event the host did not measure;
* ``extra``: an event the baseline does not have.

Digests are compared in the strongest bank both have (SHA-256 before SHA-384, SHA-512, SHA-1).
Allowances (``ignorePcrs``, ``anyDigest``) come from the baseline document. The comparison is pure;
in the service it runs on a log that already replayed to a quote.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from attestd.baseline.learn import NOT_MEASURED, meaning
from attestd.baseline.model import Baseline, ExpectedEvent
from attestd.eventlog import Event, EventLog
from attestd.ima import ImaLog

__all__ = ["BaselineComparison", "Difference", "compare"]

_BANK_ORDER = ("sha256", "sha384", "sha512", "sha1", "sm3_256")
_GRUB_LABELS = {"grub_cmd": "GRUB command", "kernel_cmdline": "kernel command line",
                "grub_kernel_cmdline": "kernel command line", "module_cmdline": "module command line"}
_MAX_TEXT = 240


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference: where (PCR, event), what kind, and the decoded content on each side."""

    kind: str  # "changed", "missing", "extra", "ima-changed", "ima-new"
    pcr: int
    event: int | None
    event_type: str | None
    expected: str | None
    found: str | None
    expected_digest: str | None = None
    found_digest: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "pcr": self.pcr, "event": self.event, "type": self.event_type,
                               "expected": self.expected, "found": self.found,
                               "expectedDigest": self.expected_digest, "foundDigest": self.found_digest,
                               "message": self.message}
        if self.added or self.removed:
            out["added"] = list(self.added)
            out["removed"] = list(self.removed)
        return out

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class BaselineComparison:
    differences: tuple[Difference, ...]
    compared_pcrs: tuple[int, ...]
    bank: dict[int, str] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"matches": self.matches, "comparedPcrs": list(self.compared_pcrs),
                "differences": [d.to_json() for d in self.differences]}


def _bank(expected: tuple[ExpectedEvent, ...], found: list[Event]) -> str | None:
    for bank in _BANK_ORDER:
        if all(bank in e.digests for e in expected) and all(bank in f.digests for f in found):
            return bank
    return None


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= _MAX_TEXT:
        return text
    return text[: _MAX_TEXT - 1] + "…"


def _split_grub(text: str) -> tuple[str | None, str]:
    for prefix in _GRUB_LABELS:
        if text.startswith(prefix + ": "):
            return prefix, text[len(prefix) + 2:]
    return None, text


def _word_diff(old: str, new: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    a, b = old.split(), new.split()
    added = tuple(w for w in b if w not in a)
    removed = tuple(w for w in a if w not in b)
    return added, removed


def _where(pcr: int, event: int | None, etype: str | None, baseline_side: bool = False) -> str:
    num = f"event {event}" + (" of the baseline" if baseline_side else "") if event is not None else "event ?"
    return f"PCR {pcr}, {num}, {etype}"


def _changed(pcr: int, exp: ExpectedEvent, found: Event, found_meaning: str, bank: str) -> Difference:
    exp_digest = exp.digests.get(bank)
    found_digest = found.digests[bank].hex() if bank in found.digests else None
    where = _where(pcr, found.index, found.type_name)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    p_old, old = _split_grub(exp.meaning)
    p_new, new = _split_grub(found_meaning)
    if p_old is not None and p_old == p_new and old != new:
        added, removed = _word_diff(old, new)
        words = "; ".join(filter(None, [f"added {' '.join(added)}" if added else "",
                                        f"removed {' '.join(removed)}" if removed else ""]))
        what = f'{_GRUB_LABELS[p_old]} changed: expected "{_short(old)}" found "{_short(new)}"'
        message = f"{where}: {what}" + (f" ({words})" if words else "")
    elif exp.meaning != found_meaning or exp.type != found.type_name:
        etype = exp.type if exp.type == found.type_name else f"{exp.type} -> {found.type_name}"
        where = _where(pcr, found.index, etype)
        message = f'{where}: changed: expected "{_short(exp.meaning)}" found "{_short(found_meaning)}"'
    else:
        message = (f'{where}: "{_short(found_meaning)}" has other content '
                   f"({bank} {(exp_digest or '?')[:16]}… expected, {(found_digest or '?')[:16]}… found)")
    return Difference("changed", pcr, found.index, found.type_name, exp.meaning, found_meaning, exp_digest,
                      found_digest, added, removed, message)


def _missing(pcr: int, exp: ExpectedEvent, bank: str) -> Difference:
    message = f'{_where(pcr, exp.event, exp.type, True)}: missing: expected "{_short(exp.meaning)}"'
    return Difference("missing", pcr, exp.event, exp.type, exp.meaning, None, exp.digests.get(bank), None,
                      message=message)


def _extra(pcr: int, found: Event, found_meaning: str, bank: str) -> Difference:
    message = f'{_where(pcr, found.index, found.type_name)}: not in the baseline: "{_short(found_meaning)}"'
    return Difference("extra", pcr, found.index, found.type_name, None, found_meaning, None,
                      found.digests[bank].hex() if bank in found.digests else None, message=message)


def _compare_pcr(baseline: Baseline, pcr: int, expected: tuple[ExpectedEvent, ...], found: list[Event],
                 out: list[Difference]) -> str | None:
    bank = _bank(expected, found)
    if bank is None:
        out.append(Difference("changed", pcr, None, None, None, None,
                              message=f"PCR {pcr}: the log has no digest bank in common with the baseline"))
        return None
    rules = [a for a in baseline.allowances.any_digest if a.pcr == pcr]
    meanings: dict[int, str] = {}

    def found_meaning(i: int) -> str:
        if i not in meanings:
            meanings[i] = meaning(found[i])
        return meanings[i]

    def allowed(etype: str, text: str) -> bool:
        return any(r.matches(pcr, etype, text) for r in rules)

    a_keys = [(e.type, "*" if rules and allowed(e.type, e.meaning) else e.digests[bank]) for e in expected]
    b_keys = []
    for i, f in enumerate(found):
        etype = f.type_name
        free = bool(rules) and any(r.type == etype for r in rules) and allowed(etype, found_meaning(i))
        b_keys.append((etype, "*" if free else f.digests[bank].hex()))
    matcher = difflib.SequenceMatcher(None, a_keys, b_keys, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        # within a replaced block, an expected event pairs with the next found event of the same
        # type and subject (variable, GRUB prefix, image path); the rest are missing or extra
        unpaired = list(range(b0, b1))
        block: list[tuple[int, Difference]] = []
        for k in range(a0, a1):
            exp = expected[k]
            match = next((j for j in unpaired if found[j].type_name == exp.type
                          and _subject(found_meaning(j)) == _subject(exp.meaning)), None)
            if match is None:
                block.append((found[unpaired[0]].index if unpaired else 1 << 30, _missing(pcr, exp, bank)))
                continue
            unpaired.remove(match)
            block.append((found[match].index, _changed(pcr, exp, found[match], found_meaning(match), bank)))
        block.extend((found[j].index, _extra(pcr, found[j], found_meaning(j), bank)) for j in unpaired)
        out.extend(d for _, d in sorted(block, key=lambda t: t[0]))
    return bank


def _subject(text: str) -> str:
    """What an event is about, without its value: ``SecureBoot``, ``grub_cmd``, an image path."""
    for sep in (": ", " = ", " ["):
        head, found, _ = text.partition(sep)
        if found:
            return head
    return text


def _compare_ima(baseline: Baseline, ima: ImaLog, out: list[Difference]) -> None:
    base = baseline.ima
    if base is None:
        return
    for entry in ima.entries:
        path = entry.filename
        if path is None or entry.is_violation:
            continue
        digest = entry.digest
        value = str(digest) if digest is not None else entry.template_hash.hex()
        known = base.files.get(path)
        if known is None:
            if not base.allow_new and not base.changed_allowed(path):
                out.append(Difference("ima-new", entry.pcr, entry.index, entry.template_name, None, value,
                                      message=f"IMA entry {entry.index}: {path} is not in the baseline ({value})"))
        elif value not in known and not base.changed_allowed(path):
            out.append(Difference("ima-changed", entry.pcr, entry.index, entry.template_name, known[0], value,
                                  message=f"IMA entry {entry.index}: {path} changed: expected {known[0]} "
                                          f"found {value}"))


def compare(baseline: Baseline, log: EventLog, *, ima: ImaLog | None = None) -> BaselineComparison:
    """Compare ``log`` (and ``ima``) with ``baseline``; see the module docstring."""
    ignore = set(baseline.allowances.ignore_pcrs)
    found: dict[int, list[Event]] = {}
    for e in log.events:
        if e.event_type != NOT_MEASURED and e.pcr not in ignore:
            found.setdefault(e.pcr, []).append(e)
    differences: list[Difference] = []
    banks: dict[int, str] = {}
    pcrs = sorted((set(baseline.pcrs) | set(found)) - ignore)
    for pcr in pcrs:
        bank = _compare_pcr(baseline, pcr, baseline.pcrs.get(pcr, ()), found.get(pcr, []), differences)
        if bank is not None:
            banks[pcr] = bank
    if ima is not None:
        _compare_ima(baseline, ima, differences)
    return BaselineComparison(tuple(differences), tuple(pcrs), banks)
