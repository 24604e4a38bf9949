"""Typed errors of the policy language.

Every policy failure is an :class:`~attestd.errors.AttestdError` with a stable code:

* :class:`PolicySyntaxError` (``policy.syntax``, ``policy.unknown_function``, ``policy.arity``, ...):
  the policy text does not compile. Always names a line and a column (1-based) and, for the mistakes
  people make most often, carries a hint ("did you mean `==`?").
* :class:`PolicyEvaluationError` (``policy.function_error``, ``policy.read_only_claim``, ...): the
  policy compiled but a rule failed on the claims it was given (a JmesPath query over JSON that is
  not JSON, a fraction given to ``JsonToClaimValue``...). Names the rule's line.
* :class:`PolicySignatureError` (``policy.signature_invalid``, ``policy.untrusted_signer``,
  ``policy.unsigned_not_allowed``, ...): a signed policy (JWS) that is well formed but not trusted.

Line, column and hint live in ``details`` so that pickling and ``at()`` keep them.
"""

from __future__ import annotations

from typing import Any

from attestd.errors import EvidenceError, VerificationError

__all__ = ["PolicyError", "PolicySyntaxError", "PolicyEvaluationError", "PolicySignatureError"]


class PolicyError(EvidenceError):
    """A policy problem located at ``line``/``column`` of the policy text (when known)."""

    title = "Invalid attestation policy"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
        field: str | None = None,
        offset: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details) if details else {}
        if line is not None:
            merged["line"] = line
        if column is not None:
            merged["column"] = column
        if hint is not None:
            merged["hint"] = hint
        super().__init__(code, message, field=field, offset=offset, details=merged)

    @property
    def line(self) -> int | None:
        return self.details.get("line")

    @property
    def column(self) -> int | None:
        return self.details.get("column")

    @property
    def hint(self) -> str | None:
        return self.details.get("hint")

    def located(self) -> str:
        """``line 4, column 17: expected ']' (hint: ...)`` - the message a user reads."""
        where = ""
        if self.line is not None:
            where = (
                f"line {self.line}, column {self.column}: "
                if self.column is not None
                else f"line {self.line}: "
            )
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"

    def describe(self) -> str:
        return self.located()


class PolicySyntaxError(PolicyError):
    """The policy text does not compile (syntax or static check); always has line and column."""


class PolicyEvaluationError(PolicyError):
    """A compiled policy failed while evaluating a rule against a claim set."""

    http_status = 422
    title = "Attestation policy evaluation failed"


class PolicySignatureError(VerificationError):
    """A signed policy whose signature, algorithm or signer is not acceptable."""

    title = "Policy signature not trusted"
