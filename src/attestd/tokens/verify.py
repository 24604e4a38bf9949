"""Verifying attestation tokens: for relying parties, tests and ``attestd audit``.

:func:`verify_token` checks, in order: the JWS parses; ``alg`` is allowed (never ``none`` or HMAC);
``kid`` names a key of the given JWKS; that key (from ``n``/``e``, ``crv``/``x``/``y`` or its ``x5c``
leaf; if both, they must agree) fits ``alg``; the signature (joserfc); ``iss``; ``exp``/``nbf`` against
``now`` +- ``leeway``; the draft marker; the nonce (if expected); the header ``x5c`` agrees with the
JWKS key; optionally the chain validates to ``trust_anchors``.

Keys come only from the caller's JWKS (or from discovery on the issuer URL in
:func:`fetch_and_verify`), never from the token's own ``jku`` / ``x5c``, which an attacker controls.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification as x509v
from joserfc import jws
from joserfc.errors import (
    BadSignatureError,
    JoseError,
    MissingCritHeaderError,
    UnsupportedAlgorithmError,
    UnsupportedHeaderError,
)
from joserfc.jwk import ECKey, RSAKey

from ._jose import DRAFT_CLAIM, DRAFT_HEADER, SUPPORTED_ALGORITHMS, VERIFY_REGISTRY, make_registry, utc
from .discovery import well_known_uri
from .errors import DiscoveryError, TokenFormatError, TokenVerificationError

__all__ = ["VerifiedToken", "fetch_and_verify", "is_draft_token", "verify_token"]


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature, issuer and validity period were checked. ``claims`` is the full body."""

    header: dict[str, Any]
    claims: dict[str, Any]
    kid: str
    alg: str
    issuer: str
    issued_at: datetime | None
    not_before: datetime | None
    expires_at: datetime
    jti: str | None
    nonce: str | None
    attestation_type: str | None
    policy_hash: str | None
    is_draft: bool
    signing_chain: tuple[x509.Certificate, ...]

    @property
    def runtime(self) -> Any:
        return self.claims.get("x-ms-runtime")

    @property
    def inittime(self) -> Any:
        return self.claims.get("x-ms-inittime")

    @property
    def policy_signer(self) -> Any:
        return self.claims.get("x-ms-policy-signer")


def is_draft_token(header: Mapping[str, Any], claims: Mapping[str, Any]) -> bool:
    """True if a draft marker is present: header ``x-attestd-draft`` or claim ``x-attestd-policy-draft``."""
    crit = header.get("crit") or []
    return bool(
        header.get(DRAFT_HEADER) is True
        or (isinstance(crit, list) and DRAFT_HEADER in crit)
        or claims.get(DRAFT_CLAIM) is True
    )


def _fail(code: str, message: str, **details: Any) -> TokenVerificationError:
    return TokenVerificationError(code, message, details=details or None)


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _parse_x5c(values: Any, where: str) -> tuple[x509.Certificate, ...]:
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise _fail("token.key_invalid", f"{where} x5c must be a non-empty list of base64 strings")
    try:
        return tuple(x509.load_der_x509_certificate(base64.b64decode(v, validate=True)) for v in values)
    except (ValueError, binascii.Error) as exc:
        raise _fail("token.key_invalid", f"{where} x5c does not hold DER certificates: {exc}") from exc


def _find_jwk(jwks: Mapping[str, Any], kid: str) -> Mapping[str, Any]:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise _fail("token.key_invalid", "the JWKS has no 'keys' list")
    matches = [k for k in keys if isinstance(k, Mapping) and k.get("kid") == kid]
    if not matches:
        raise _fail("token.unknown_kid", f"no key with kid {kid!r} in the issuer's JWKS", kid=kid)
    if len(matches) > 1:
        raise _fail("token.key_invalid", f"the JWKS has {len(matches)} keys with kid {kid!r}", kid=kid)
    return matches[0]


def _public_key(jwk: Mapping[str, Any], alg: str) -> tuple[Any, tuple[x509.Certificate, ...]]:
    """The joserfc public key for ``jwk`` and its certificate chain (may be empty); cached by content."""
    try:
        cache_key = json.dumps(jwk, sort_keys=True, separators=(",", ":")) + "|" + alg
    except (TypeError, ValueError) as exc:
        raise _fail("token.key_invalid", f"the JWK is not JSON: {exc}") from exc
    return _public_key_cached(cache_key)


@functools.lru_cache(maxsize=256)
def _public_key_cached(cache_key: str) -> tuple[Any, tuple[x509.Certificate, ...]]:
    # a TokenVerificationError is not cached (lru_cache caches only returns): bad JWKs re-fail each time
    jwk_json, alg = cache_key.rsplit("|", 1)
    return _import_public_key(json.loads(jwk_json), alg)


def _import_public_key(jwk: Mapping[str, Any], alg: str) -> tuple[Any, tuple[x509.Certificate, ...]]:
    if jwk.get("use") not in (None, "sig"):
        raise _fail("token.key_invalid", f"key use is {jwk.get('use')!r}, not 'sig'")
    if jwk.get("alg") not in (None, alg):
        raise _fail("token.key_invalid", f"key is for {jwk.get('alg')!r}, token uses {alg!r}")
    kty = jwk.get("kty")
    chain = _parse_x5c(jwk["x5c"], "JWK") if "x5c" in jwk else ()
    try:
        if kty == "RSA" and alg in ("RS256", "PS256"):
            if "n" in jwk:
                key: Any = RSAKey.import_key({"kty": "RSA", "n": jwk["n"], "e": jwk.get("e")})
            elif chain:
                key = RSAKey.import_key(chain[0].public_key())
            else:
                raise _fail("token.key_invalid", "RSA JWK has neither n/e nor x5c")
            if not isinstance(key.raw_value, rsa.RSAPublicKey) or key.raw_value.key_size < 2048:
                raise _fail("token.key_invalid", "RSA verification keys must have at least 2048 bits")
        elif kty == "EC" and alg == "ES256":
            if "x" in jwk:
                key = ECKey.import_key({"kty": "EC", "crv": jwk.get("crv"), "x": jwk["x"], "y": jwk.get("y")})
            elif chain:
                key = ECKey.import_key(chain[0].public_key())
            else:
                raise _fail("token.key_invalid", "EC JWK has neither crv/x/y nor x5c")
            if (
                not isinstance(key.raw_value, ec.EllipticCurvePublicKey)
                or key.raw_value.curve.name != "secp256r1"
            ):
                raise _fail("token.key_invalid", "ES256 needs a P-256 key")
        else:
            raise _fail("token.key_invalid", f"a {kty!r} key cannot verify {alg}")
    except (JoseError, ValueError, TypeError) as exc:
        raise _fail("token.key_invalid", f"cannot import the JWK: {exc}") from exc
    if chain and _spki(chain[0].public_key()) != _spki(key.raw_value):
        raise _fail("token.key_invalid", "the JWK's x5c leaf does not hold the JWK's key")
    return key, chain


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail("token.claim_invalid", f"{name!r} must be a NumericDate", claim=name)
    return float(value)


def _as_dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _opt_dt(value: float | None) -> datetime | None:
    return None if value is None else _as_dt(value)


def _validate_chain(
    chain: tuple[x509.Certificate, ...], anchors: Sequence[x509.Certificate], issuer: str, now: datetime
) -> None:
    if not chain:
        raise _fail("token.chain_invalid", "trust anchors were given but the signing key has no x5c chain")
    leaf = chain[0]
    common_names = [a.value for a in leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    if common_names != [issuer]:
        raise _fail(
            "token.chain_invalid", f"signing certificate CN {common_names} is not the issuer {issuer!r}"
        )
    if any(leaf == anchor for anchor in anchors):  # a pinned (e.g. self-signed) signing certificate
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise _fail("token.chain_invalid", "the pinned signing certificate is not valid at this time")
        return
    verifier = (
        x509v.PolicyBuilder()
        .store(x509v.Store(list(anchors)))
        .time(now)
        .extension_policies(
            ca_policy=x509v.ExtensionPolicy.webpki_defaults_ca(), ee_policy=x509v.ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, list(chain[1:]))
    except x509v.VerificationError as exc:
        raise _fail(
            "token.chain_invalid", f"the signing chain does not validate to a trust anchor: {exc}"
        ) from exc


def verify_token(
    token: str | bytes,
    *,
    jwks: Mapping[str, Any],
    issuer: str,
    now: datetime,
    leeway: timedelta = timedelta(0),
    accept_draft: bool = False,
    expected_nonce: str | None = None,
    algorithms: Iterable[str] = SUPPORTED_ALGORITHMS,
    trust_anchors: Sequence[x509.Certificate] | None = None,
) -> VerifiedToken:
    """Verify ``token`` with a key of ``jwks`` (a JWK Set document) at ``now``.

    Raises :class:`TokenFormatError` (``token.malformed``) or :class:`TokenVerificationError`.
    Draft-policy tokens are refused (``token.draft_policy``) unless ``accept_draft``.
    """
    now = utc(now)
    allowed = tuple(algorithms)
    if not set(allowed) <= set(SUPPORTED_ALGORITHMS):
        raise ValueError(f"algorithms must be a subset of {SUPPORTED_ALGORITHMS}")
    registry = (
        VERIFY_REGISTRY
        if allowed == SUPPORTED_ALGORITHMS
        else make_registry(strict_header=False, algorithms=allowed)
    )
    raw = token.encode("ascii", "replace") if isinstance(token, str) else token
    try:
        obj = jws.extract_compact(raw.strip(), registry=registry)
        header = obj.headers()
        claims = json.loads(obj.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenFormatError("token.malformed", f"not a JWS compact token: {exc}") from exc
    if not isinstance(claims, dict):
        raise TokenFormatError("token.malformed", "the token payload is not a JSON object")

    alg = header.get("alg")
    if alg not in allowed:
        raise _fail(
            "token.alg_not_allowed", f"algorithm {alg!r} is not allowed (allowed: {', '.join(allowed)})"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _fail("token.kid_missing", "the token header has no kid")
    jwk = _find_jwk(jwks, kid)
    key, chain = _public_key(jwk, alg)

    try:
        if not jws.validate_compact(obj, key, registry=registry):
            raise BadSignatureError()
    except BadSignatureError as exc:
        raise _fail("token.signature_invalid", "the token signature does not verify", kid=kid) from exc
    except (UnsupportedHeaderError, MissingCritHeaderError) as exc:
        raise _fail("token.unsupported_critical_header", f"unsupported critical header: {exc}") from exc
    except UnsupportedAlgorithmError as exc:
        raise _fail("token.alg_not_allowed", str(exc)) from exc
    except JoseError as exc:
        raise TokenFormatError("token.malformed", f"invalid JWS: {exc}") from exc

    iss = claims.get("iss")
    if iss != issuer:
        raise _fail(
            "token.issuer_mismatch", f"token issuer {iss!r} is not {issuer!r}", expected=issuer, actual=iss
        )
    t = now.timestamp()
    slack = leeway.total_seconds()
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is None:
        raise _fail("token.claim_missing", "the token has no 'exp' claim", claim="exp")
    if t >= exp + slack:
        raise _fail("token.expired", f"the token expired at {_as_dt(exp).isoformat()}", exp=exp)
    if nbf is not None and t + slack < nbf:
        raise _fail(
            "token.not_yet_valid", f"the token is not valid before {_as_dt(nbf).isoformat()}", nbf=nbf
        )

    draft = is_draft_token(header, claims)
    if draft and not accept_draft:
        raise _fail("token.draft_policy", "the token was issued under a draft policy and is not trusted")
    nonce = claims.get("nonce")
    if expected_nonce is not None and nonce != expected_nonce:
        raise _fail("token.nonce_mismatch", "the token nonce is not the expected one")

    if "x5c" in header:
        if chain:  # compare bytes: cheaper than parsing a certificate per token
            leaf = header["x5c"][0] if isinstance(header["x5c"], list) and header["x5c"] else None
            try:
                leaf_der = base64.b64decode(leaf, validate=True) if isinstance(leaf, str) else b""
            except (ValueError, binascii.Error):
                leaf_der = b""
            if leaf_der != chain[0].public_bytes(serialization.Encoding.DER):
                raise _fail("token.x5c_mismatch", "the header x5c leaf is not the JWKS key's certificate")
        else:
            header_chain = _parse_x5c(header["x5c"], "header")
            if _spki(header_chain[0].public_key()) != _spki(key.raw_value):
                raise _fail("token.x5c_mismatch", "the header x5c leaf does not hold the JWKS key")
            chain = header_chain
    if trust_anchors is not None:
        _validate_chain(chain, trust_anchors, issuer, now)

    def _str(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) else None

    return VerifiedToken(
        header=dict(header),
        claims=claims,
        kid=kid,
        alg=alg,
        issuer=issuer,
        issued_at=_opt_dt(iat),
        not_before=_opt_dt(nbf),
        expires_at=_as_dt(exp),
        jti=_str("jti"),
        nonce=_str("nonce"),
        attestation_type=_str("x-ms-attestation-type"),
        policy_hash=_str("x-ms-policy-hash"),
        is_draft=draft,
        signing_chain=chain,
    )


def _get_json(http_client: Any, url: str) -> Any:
    import httpx  # only relying parties that fetch need it

    try:
        response = http_client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise DiscoveryError(
            "discovery.fetch_failed", f"GET {url} failed: {exc}", details={"url": url}
        ) from exc
    if response.status_code != 200:
        raise DiscoveryError(
            "discovery.fetch_failed",
            f"GET {url} answered HTTP {response.status_code}",
            details={"url": url, "status": response.status_code},
        )
    try:
        return response.json()
    except ValueError as exc:
        raise DiscoveryError(
            "discovery.invalid_document", f"{url} did not return JSON", details={"url": url}
        ) from exc


def fetch_and_verify(
    token: str | bytes,
    issuer_url: str,
    http_client: Any,
    *,
    now: datetime,
    leeway: timedelta = timedelta(0),
    accept_draft: bool = False,
    expected_nonce: str | None = None,
    trust_anchors: Sequence[x509.Certificate] | None = None,
) -> VerifiedToken:
    """Verify ``token`` knowing only ``issuer_url``: OpenID discovery, then :func:`verify_token`.

    ``http_client`` is an ``httpx.Client`` (its TLS settings are the caller's: use HTTPS in production).
    The configuration's ``issuer`` must equal ``issuer_url`` exactly (``discovery.issuer_mismatch``).
    """
    config = _get_json(http_client, well_known_uri(issuer_url))
    if not isinstance(config, dict):
        raise DiscoveryError("discovery.invalid_document", "the OpenID configuration is not a JSON object")
    if config.get("issuer") != issuer_url:
        raise DiscoveryError(
            "discovery.issuer_mismatch",
            f"the OpenID configuration names issuer {config.get('issuer')!r}, not {issuer_url!r}",
        )
    jwks_url = config.get("jwks_uri")
    if not isinstance(jwks_url, str) or not jwks_url.startswith(("https://", "http://")):
        raise DiscoveryError("discovery.invalid_document", "the OpenID configuration has no usable jwks_uri")
    keys = _get_json(http_client, jwks_url)
    if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
        raise DiscoveryError("discovery.invalid_document", f"{jwks_url} is not a JWK Set")
    return verify_token(
        token,
        jwks=keys,
        issuer=issuer_url,
        now=now,
        leeway=leeway,
        accept_draft=accept_draft,
        expected_nonce=expected_nonce,
        trust_anchors=trust_anchors,
    )
