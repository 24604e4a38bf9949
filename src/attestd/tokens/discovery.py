"""OpenID Connect discovery documents an Attestd issuer serves.

* ``GET {issuer}/.well-known/openid-configuration`` -> :func:`openid_configuration`
* ``GET {issuer}/certs`` (the ``jwks_uri``, as Azure Attestation names it) -> :func:`jwks`

A relying party needs only the issuer URL: it fetches the configuration, checks that its ``issuer`` is
the URL it started from (OpenID Connect Discovery 1.0 section 4.3), then fetches ``jwks_uri``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._jose import DRAFT_CLAIM, SUPPORTED_ALGORITHMS
from .errors import KeyManagementError
from .keyset import KeySet

__all__ = ["JWKS_PATH", "WELL_KNOWN_PATH", "jwks", "jwks_uri", "openid_configuration", "well_known_uri"]

WELL_KNOWN_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/certs"

#: Claims an Attestd token can carry besides policy-issued ones.
STANDARD_CLAIMS: tuple[str, ...] = (
    "iss",
    "iat",
    "nbf",
    "exp",
    "jti",
    "nonce",
    "x-ms-ver",
    "x-ms-attestation-type",
    "x-ms-policy-hash",
    "x-ms-policy-signer",
    "x-ms-runtime",
    "x-ms-inittime",
    DRAFT_CLAIM,
)


def _base(issuer: str) -> str:
    # OIDC Discovery section 4: a terminating "/" is removed before appending the well-known path.
    return issuer.removesuffix("/")


def jwks_uri(issuer: str) -> str:
    return _base(issuer) + JWKS_PATH


def well_known_uri(issuer: str) -> str:
    return _base(issuer) + WELL_KNOWN_PATH


def openid_configuration(issuer: str, *, jwks_url: str | None = None) -> dict[str, Any]:
    """The OpenID Provider Metadata document for ``issuer`` (same shape as Azure Attestation's)."""
    return {
        "issuer": issuer,
        "jwks_uri": jwks_url or jwks_uri(issuer),
        "response_types_supported": ["token", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGORITHMS),
        "claims_supported": list(STANDARD_CLAIMS),
    }


def jwks(keyset: KeySet, now: datetime) -> dict[str, Any]:
    """The JWK Set published at ``now``: every key of :meth:`KeySet.published`, signer first."""
    published = keyset.published(now)
    try:
        signer_kid = keyset.active_signer(now).kid
    except KeyManagementError:  # a set with no active signer still publishes what it has
        signer_kid = None
    ordered = sorted(published, key=lambda k: (k.kid != signer_kid, k.activates_at))
    return {"keys": [k.public_jwk() for k in ordered]}
