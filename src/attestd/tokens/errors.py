"""Typed errors of :mod:`attestd.tokens`.

Codes are the public contract (messages may change):

* :class:`TokenFormatError` (an :class:`~attestd.errors.EvidenceError`): the token cannot be parsed:
  ``token.malformed``.
* :class:`TokenVerificationError` (a :class:`~attestd.errors.VerificationError`): the token parses but
  must not be trusted: ``token.signature_invalid``, ``token.unknown_kid``, ``token.kid_missing``,
  ``token.alg_not_allowed``, ``token.key_invalid``, ``token.expired``, ``token.not_yet_valid``,
  ``token.issuer_mismatch``, ``token.claim_missing``, ``token.claim_invalid``, ``token.nonce_mismatch``,
  ``token.draft_policy``, ``token.unsupported_critical_header``, ``token.x5c_mismatch``,
  ``token.chain_invalid``.
* :class:`DiscoveryError` (a :class:`~attestd.errors.VerificationError`): OpenID discovery failed:
  ``discovery.fetch_failed``, ``discovery.invalid_document``, ``discovery.issuer_mismatch``.
* :class:`TokenIssueError`: the service asked for a token it must not issue:
  ``token.reserved_claim``, ``token.claim_not_json``, ``token.lifetime_invalid``,
  ``token.policy_signer_invalid``.
* :class:`KeyManagementError`: signing keys and rotation: ``keys.invalid_record``,
  ``keys.unsupported_algorithm``, ``keys.issuer_not_encodable``, ``keys.ca_invalid``,
  ``keys.no_active_signer``, ``keys.not_active``, ``keys.retired``, ``keys.rotation_pending``,
  ``keys.duplicate_kid``, ``keys.not_yet_created``.
"""

from __future__ import annotations

from attestd.errors import AttestdError, EvidenceError, VerificationError

__all__ = [
    "DiscoveryError",
    "KeyManagementError",
    "TokenFormatError",
    "TokenIssueError",
    "TokenVerificationError",
]


class TokenFormatError(EvidenceError):
    """The token is not a well-formed JWS compact serialization of a JSON claims object."""

    title = "Malformed attestation token"


class TokenVerificationError(VerificationError):
    """A well-formed token that must not be trusted (signature, key, time, issuer, draft)."""

    http_status = 401
    title = "Attestation token did not verify"


class DiscoveryError(VerificationError):
    """OpenID Connect discovery of the issuer's keys failed."""

    http_status = 502
    title = "Issuer discovery failed"


class TokenIssueError(AttestdError):
    """The caller asked for a token the service must not issue (a bug or a policy mistake)."""

    http_status = 500
    title = "Cannot issue attestation token"


class KeyManagementError(AttestdError):
    """Signing keys or key rotation used incorrectly, or a stored key record is invalid."""

    http_status = 500
    title = "Signing key error"
