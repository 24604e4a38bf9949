"""IMA claims: the files the kernel measured, from the part of the IMA log the quote covers.

Only the first :attr:`VerifiedTpmEvidence.ima_verified` entries are read (the prefix whose replay
equals the quoted PCR 10); later entries were appended after the quote. Each measurement gives the
file path (``n``/``n-ng`` field), the file digest (``d``/``d-ng``/``d-ngv2``: ``algo:hex``), the
signature (``sig``, an ``EVM_IMA_XATTR_DIGSIG`` blob) when the template carries one, and the
template. Violations (all-zero template hash: a file changed while open) are counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attestd.ima import ImaLog

__all__ = ["ImaClaims", "ImaMeasurement", "ima_claims"]


@dataclass(frozen=True, slots=True)
class ImaMeasurement:
    index: int
    pcr: int
    template: str
    path: str | None
    #: ``algo:hex`` (``ima:``/``verity:`` prefixed for d-ngv2), or None (no digest field)
    digest: str | None
    signature: str | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "pcr": self.pcr, "template": self.template, "path": self.path,
                               "digest": self.digest}
        if self.signature is not None:
            out["signature"] = self.signature
        return out


@dataclass(frozen=True, slots=True)
class ImaClaims:
    measurements: tuple[ImaMeasurement, ...]
    violations: int
    #: entries in the log after the quoted prefix (not believed)
    unverified_entries: int

    @property
    def boot_aggregate(self) -> str | None:
        for m in self.measurements:
            if m.path == "boot_aggregate":
                return m.digest
        return None

    @property
    def signed(self) -> int:
        return sum(1 for m in self.measurements if m.signature is not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "measurements": [m.to_json() for m in self.measurements],
            "violations": self.violations,
            "signedFiles": self.signed,
            "bootAggregate": self.boot_aggregate,
            "unverifiedEntries": self.unverified_entries,
        }


def ima_claims(log: ImaLog, verified: int) -> ImaClaims:
    entries = log.entries[:verified]
    out = []
    violations = 0
    for e in entries:
        if e.is_violation:
            violations += 1
        d = e.digest
        sig = e.signature
        out.append(ImaMeasurement(e.index, e.pcr, e.template_name, e.filename,
                                  str(d) if d is not None else None, sig.hex() if sig else None))
    return ImaClaims(tuple(out), violations, len(log.entries) - len(entries))
