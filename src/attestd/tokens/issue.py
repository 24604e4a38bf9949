"""Issuing attestation tokens (JWS compact, claims shaped like Azure Attestation's).

Header: ``alg``, ``kid`` (RFC 7638 thumbprint), ``jku`` (the issuer's JWKS URL), ``typ: JWT`` and, unless
``include_x5c=False`` (Azure's ``omit_x5c``), ``x5c`` (signing chain, leaf first). Draft-policy tokens
also carry ``crit: ["x-attestd-draft"]`` and ``x-attestd-draft: true``.

Claims: ``iss``, ``iat``, ``nbf``, ``exp``, ``jti``, ``nonce`` (when given), ``x-ms-ver`` ("1.0"),
``x-ms-attestation-type``, ``x-ms-policy-hash``, ``x-ms-policy-signer`` (when the policy was signed),
``x-ms-runtime`` / ``x-ms-inittime`` (when given as JSON), ``x-attestd-policy-draft`` (draft only),
then the policy-issued claims, which may not use any of those names (``token.reserved_claim``).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from attestd.policy.hashing import policy_hash  # x-ms-policy-hash, exactly as Azure computes it

from ._jose import DRAFT_CLAIM, DRAFT_HEADER, SIGN_REGISTRY, b64std, utc
from .discovery import jwks_uri
from .errors import KeyManagementError, TokenIssueError
from .keys import SigningKey

__all__ = ["RESERVED_CLAIMS", "TOKEN_VERSION", "issue_token", "policy_hash", "policy_signer_jwk"]

TOKEN_VERSION = "1.0"

#: Claims the service sets; policy-issued claims may not use these names.
RESERVED_CLAIMS: frozenset[str] = frozenset(
    {
        # RFC 7519 registered claims
        "iss", "sub", "aud", "exp", "nbf", "iat", "jti",
        # Azure Attestation envelope claims
        "nonce", "x-ms-ver", "x-ms-attestation-type", "x-ms-policy-hash", "x-ms-policy-signer",
        "x-ms-runtime", "x-ms-inittime",
        DRAFT_CLAIM,
    }
)  # fmt: skip


def policy_signer_jwk(certificate: x509.Certificate) -> dict[str, Any]:
    """``x-ms-policy-signer`` for a policy signed with ``certificate``: its public JWK plus ``x5c``."""
    public_key = certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        jwk: Any = RSAKey.import_key(public_key)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        try:
            jwk = ECKey.import_key(public_key)
        except JoseError as exc:
            raise TokenIssueError(
                "token.policy_signer_invalid", f"unsupported policy signer curve: {exc}"
            ) from exc
    else:
        raise TokenIssueError("token.policy_signer_invalid", "policy signer key must be RSA or EC")
    out = jwk.as_dict(private=False)
    out["x5c"] = [b64std(certificate.public_bytes(serialization.Encoding.DER))]
    return out


def _check_policy_signer(signer: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(signer, Mapping) or "kty" not in signer:
        raise TokenIssueError("token.policy_signer_invalid", "x-ms-policy-signer must be a JWK object")
    private_members = {"d", "p", "q", "dp", "dq", "qi", "k"} & set(signer)
    if private_members:
        raise TokenIssueError(
            "token.policy_signer_invalid",
            f"x-ms-policy-signer must be a public JWK; it has {sorted(private_members)}",
        )
    return dict(signer)


def _check_json_object(name: str, value: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TokenIssueError("token.claim_not_json", f"{name} must be a JSON object")
    return dict(value)


def issue_token(
    claims: Mapping[str, Any],
    *,
    signer: SigningKey,
    issuer: str,
    now: datetime,
    lifetime: timedelta,
    attestation_type: str,
    policy_hash: str,
    nonce: str | None = None,
    policy_signer: Mapping[str, Any] | None = None,
    runtime: Mapping[str, Any] | None = None,
    inittime: Mapping[str, Any] | None = None,
    draft: bool = False,
    jku: str | None = None,
    include_x5c: bool = True,
    max_lifetime: timedelta | None = None,
) -> str:
    """Sign an attestation token with ``signer`` at ``now``; returns the JWS compact serialization.

    ``claims`` are the policy-issued claims. ``jku`` defaults to ``{issuer}/certs``. ``max_lifetime``
    (pass the key set's ``policy.max_token_lifetime``) bounds ``lifetime``, which keeps the key
    retention guarantee of :mod:`.keyset`. Raises :class:`TokenIssueError` or
    :class:`KeyManagementError` (``keys.not_active``, ``keys.retired``).
    """
    now = utc(now)
    if lifetime <= timedelta(0):
        raise TokenIssueError("token.lifetime_invalid", "token lifetime must be positive")
    if max_lifetime is not None and lifetime > max_lifetime:
        raise TokenIssueError(
            "token.lifetime_invalid", f"lifetime {lifetime} exceeds the maximum {max_lifetime}"
        )
    if now < signer.activates_at:
        raise KeyManagementError(
            "keys.not_active", f"key {signer.kid} signs from {signer.activates_at.isoformat()}"
        )
    if signer.retired_at is not None and now >= signer.retired_at:
        raise KeyManagementError(
            "keys.retired", f"key {signer.kid} retired at {signer.retired_at.isoformat()}"
        )
    if not isinstance(attestation_type, str) or not attestation_type:
        raise TokenIssueError("token.claim_not_json", "attestation_type must be a non-empty string")
    if not isinstance(policy_hash, str) or not policy_hash:
        raise TokenIssueError("token.claim_not_json", "policy_hash must be a non-empty string")
    clash = sorted(RESERVED_CLAIMS & set(claims))
    if clash:
        raise TokenIssueError(
            "token.reserved_claim",
            f"policy-issued claims may not set reserved claims: {', '.join(clash)}",
            details={"claims": clash},
        )

    iat = math.floor(now.timestamp())
    body: dict[str, Any] = {
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": iat + math.ceil(lifetime.total_seconds()),
        "jti": secrets.token_hex(32),
    }
    if nonce is not None:
        body["nonce"] = nonce
    body["x-ms-ver"] = TOKEN_VERSION
    body["x-ms-attestation-type"] = attestation_type
    body["x-ms-policy-hash"] = policy_hash
    if policy_signer is not None:
        body["x-ms-policy-signer"] = _check_policy_signer(policy_signer)
    if runtime is not None:
        body["x-ms-runtime"] = _check_json_object("runtime", runtime)
    if inittime is not None:
        body["x-ms-inittime"] = _check_json_object("inittime", inittime)
    if draft:
        body[DRAFT_CLAIM] = True
    body.update(claims)

    header: dict[str, Any] = {
        "alg": signer.alg,
        "kid": signer.kid,
        "jku": jku or jwks_uri(issuer),
        "typ": "JWT",
    }
    if include_x5c:
        header["x5c"] = signer.x5c()
    if draft:
        header["crit"] = [DRAFT_HEADER]
        header[DRAFT_HEADER] = True

    try:
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TokenIssueError("token.claim_not_json", f"claims are not JSON-serializable: {exc}") from exc
    return jws.serialize_compact(header, payload, signer.jose_key, registry=SIGN_REGISTRY)
