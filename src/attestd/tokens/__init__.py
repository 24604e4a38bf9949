"""Signed attestation tokens, their keys, JWKS and OpenID discovery (see ``docs/tokens.md``).

Service side::

    key = generate_signing_key(issuer, now=now, alg="RS256")
    keyset = KeySet.create(key, now=now, policy=RotationPolicy())
    token = issue_token(claims, signer=keyset.active_signer(now), issuer=issuer, now=now,
                        lifetime=timedelta(hours=8), attestation_type="sgx", policy_hash=policy_hash(text),
                        max_lifetime=keyset.policy.max_token_lifetime)
    openid_configuration(issuer); jwks(keyset, now)          # served at /.well-known/... and /certs
    keyset = keyset.rotate(now, generate_signing_key(issuer, now=now)).prune(now)

Relying-party side::

    verified = fetch_and_verify(token, issuer, httpx.Client(), now=now, leeway=timedelta(seconds=60))
"""

from ._jose import DRAFT_CLAIM, DRAFT_HEADER, SUPPORTED_ALGORITHMS
from .discovery import jwks, jwks_uri, openid_configuration, well_known_uri
from .errors import (
    DiscoveryError,
    KeyManagementError,
    TokenFormatError,
    TokenIssueError,
    TokenVerificationError,
)
from .issue import RESERVED_CLAIMS, issue_token, policy_hash, policy_signer_jwk
from .keys import CertificateAuthority, SigningKey, generate_signing_key
from .keyset import KeySet, RotationPolicy
from .verify import VerifiedToken, fetch_and_verify, is_draft_token, verify_token

__all__ = [
    "DRAFT_CLAIM",
    "DRAFT_HEADER",
    "RESERVED_CLAIMS",
    "SUPPORTED_ALGORITHMS",
    "CertificateAuthority",
    "DiscoveryError",
    "KeyManagementError",
    "KeySet",
    "RotationPolicy",
    "SigningKey",
    "TokenFormatError",
    "TokenIssueError",
    "TokenVerificationError",
    "VerifiedToken",
    "fetch_and_verify",
    "generate_signing_key",
    "is_draft_token",
    "issue_token",
    "jwks",
    "jwks_uri",
    "openid_configuration",
    "policy_hash",
    "policy_signer_jwk",
    "verify_token",
    "well_known_uri",
]
