"""Typed errors shared by every part of Attestd.

Every failure that a user can cause (bad input) or that evidence can cause (it does not verify)
is an :class:`AttestdError` with a *stable code* such as ``eventlog.truncated`` or
``quote.nonce_mismatch``. Codes are part of the public contract: the CLI prints them, the API
returns them in RFC 9457 problem details, and logs carry them as a field. Messages may change;
codes do not.

Two families:

* :class:`EvidenceError` - the input is malformed: it cannot be parsed (truncated, wrong length,
  unknown algorithm, garbage encoding). Parsers raise only this.
* :class:`VerificationError` - the input is well formed but is not trustworthy: a signature does
  not verify, a nonce differs, a log does not replay to the quoted PCRs.

Both carry an optional ``field`` (the spec name of the structure member, e.g.
``TPMS_ATTEST.magic``) and ``offset`` (byte offset into the input), so a user can find the
problem in a hex dump.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AttestdError", "EvidenceError", "VerificationError"]


class AttestdError(Exception):
    """Base class: a failure with a stable machine-readable code."""

    #: RFC 9457 "status" a service should answer with.
    http_status: int = 400
    #: short human title for problem details, per family.
    title: str = "Attestation error"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        offset: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.field = field
        self.offset = offset
        self.details = dict(details) if details else {}
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.field is not None:
            where.append(f"field {self.field}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self.code}: {self.describe()}{suffix}"

    def describe(self) -> str:
        """The human message; subclasses that know more (a policy's line and column) extend it.

        Used by ``str()``, the CLI line and the problem-details ``detail``, so all three agree.
        """
        return self.message

    def __reduce__(self):  # keep pickling (multiprocessing, caches) faithful
        return (_rebuild, (type(self), self.code, self.message, self.field, self.offset, self.details))

    def at(self, *, field: str | None = None, offset: int | None = None) -> "AttestdError":
        """Return the same error located inside an enclosing structure.

        Used when a nested parser reports an offset relative to its own slice: the caller adds
        the slice's base offset and, if the inner error named no field, its own field name.
        """
        new_offset = self.offset
        if offset is not None:
            new_offset = offset + (self.offset or 0)
        new_field = self.field if self.field is not None else field
        return type(self)(self.code, self.message, field=new_field, offset=new_offset, details=self.details)

    def to_problem(self, *, instance: str | None = None) -> dict[str, Any]:
        """RFC 9457 problem details for this error."""
        problem: dict[str, Any] = {
            "type": f"urn:attestd:error:{self.code}",
            "title": self.title,
            "status": self.http_status,
            "detail": self.describe(),
            "code": self.code,
        }
        if self.field is not None:
            problem["field"] = self.field
        if self.offset is not None:
            problem["offset"] = self.offset
        if self.details:
            problem["details"] = self.details
        if instance is not None:
            problem["instance"] = instance
        return problem


def _rebuild(cls, code, message, field, offset, details):
    return cls(code, message, field=field, offset=offset, details=details)


class EvidenceError(AttestdError):
    """Input that cannot be parsed: truncated, wrong length, unknown value, bad encoding."""

    http_status = 400
    title = "Malformed evidence"


class VerificationError(AttestdError):
    """Well-formed evidence that does not verify (signature, nonce, digest, replay)."""

    http_status = 422
    title = "Evidence did not verify"
