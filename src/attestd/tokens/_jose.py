"""Shared JOSE plumbing: joserfc registries sized for attestation tokens, small encoders, time checks.

Nothing here implements cryptography: signing and verification are joserfc's, keys and certificates are
``cryptography``'s.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

#: The signature algorithms Attestd signs with and accepts.
SUPPORTED_ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256")

#: Protected header parameter marking a token issued under a draft policy (listed in ``crit``).
DRAFT_HEADER = "x-attestd-draft"
#: Claim marking a token issued under a draft policy.
DRAFT_CLAIM = "x-attestd-policy-draft"


def _is_true(value: object) -> None:
    if value is not True:
        raise ValueError("must be true")


class _AttestationJWSRegistry(JWSRegistry):
    # joserfc's defaults (512-byte header, 128 kB payload) are sized for access tokens; an attestation
    # token carries an x5c chain in its header and evidence-derived claims in its payload.
    max_header_length = 64 * 1024
    max_payload_length = 4 * 1024 * 1024
    max_signature_length = 1024


def make_registry(*, strict_header: bool, algorithms: tuple[str, ...] = SUPPORTED_ALGORITHMS) -> JWSRegistry:
    """A registry allowing only :data:`SUPPORTED_ALGORITHMS` and knowing the draft header parameter.

    ``strict_header=False`` lets foreign tokens (e.g. Azure's) carry header parameters we do not know;
    unknown parameters listed in ``crit`` are still rejected (RFC 7515 section 4.1.11).
    """
    return _AttestationJWSRegistry(
        header_registry={DRAFT_HEADER: HeaderParameter("Attestd draft-policy token", _is_true)},
        algorithms=list(algorithms),
        strict_check_header=strict_header,
    )


SIGN_REGISTRY = make_registry(strict_header=True)
VERIFY_REGISTRY = make_registry(strict_header=False)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64std(data: bytes) -> str:
    """Standard base64 with padding, as RFC 7517 section 4.7 requires for ``x5c``."""
    return base64.b64encode(data).decode("ascii")


def utc(value: datetime, name: str = "now") -> datetime:
    """``value`` in UTC; naive datetimes are a programming error (their zone is a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def to_iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return utc(value, "time").isoformat().replace("+00:00", "Z")


def from_iso(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be an ISO 8601 string")
    parsed = datetime.fromisoformat(value)
    return utc(parsed, name)
