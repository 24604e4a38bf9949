"""Signed policies: a JWS (RFC 7515, compact) whose payload is ``{"AttestationPolicy": BASE64URL(policy)}``.

As Azure Attestation accepts them (see its "author and sign a policy" documentation):

* ``alg`` is ``RS256``; the signer's key travels in the header as ``x5c`` (certificate chain,
  leaf first, standard base64 DER) or ``jwk``. The key must be the public key of one of the
  caller's *trusted policy signer* certificates (which must be within their validity period);
  the signature is verified with that trusted certificate's key, never with a key taken on trust
  from the header.
* ``alg: none`` (unsigned, empty signature) is refused unless the caller passes
  ``allow_unsigned=True`` - an instance that has no policy signers configured.
* The payload's ``AttestationPolicy`` is base64url of the UTF-8 policy text. Azure's own documented
  signed sample carries the raw text instead; that form is accepted too (a policy always contains
  ``;``, which base64url never does, so the two cannot be confused).

JWS handling is done by ``joserfc`` (a maintained JOSE library); certificates by ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry

from attestd.errors import EvidenceError
from attestd.policy.errors import PolicySignatureError
from attestd.policy.hashing import b64url, b64url_decode, policy_hash

__all__ = ["SignedPolicy", "parse_signed_policy", "sign_policy", "load_certificates", "load_private_key"]

MIN_RSA_BITS = 2048


class _Registry(JWSRegistry):
    # x5c chains are kilobytes; policies can be large. Still bounded.
    max_header_length = 64 * 1024
    max_payload_length = 4 * 1024 * 1024
    max_signature_length = 2048


@dataclass(frozen=True)
class SignedPolicy:
    """A policy taken out of a JWS whose signature (or allowed absence of one) was checked."""

    text: str
    algorithm: str
    #: the trusted signer certificate that verified the signature (None when unsigned).
    signer: x509.Certificate | None
    header: dict[str, Any] = field(repr=False)

    @property
    def policy_hash(self) -> str:
        return policy_hash(self.text)

    def compile(self):
        from attestd.policy.evaluate import compile_policy

        return compile_policy(self.text)


def _malformed(message: str) -> EvidenceError:
    return EvidenceError("policy.jws_malformed", message, field="jws")


def _spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _header_key(header: dict[str, Any]) -> Any:
    """The public key the header names (x5c leaf, else jwk)."""
    if "x5c" in header:
        chain = header["x5c"]
        if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
            raise _malformed("x5c must be a non-empty list of base64 certificates")
        try:
            leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
        except (ValueError, binascii.Error) as exc:
            raise _malformed(f"x5c[0] is not a base64 DER certificate: {exc}") from None
        return leaf.public_key()
    if "jwk" in header:
        try:
            return RSAKey.import_key(header["jwk"]).public_key
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise _malformed(f"jwk header is not an RSA public key: {exc}") from None
    raise PolicySignatureError(
        "policy.signer_missing", "the signed policy names no signer (x5c or jwk header)"
    )


def _payload_policy(payload: bytes) -> str:
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _malformed("payload is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("AttestationPolicy"), str):
        raise _malformed('payload must be a JSON object with a string "AttestationPolicy"')
    value = doc["AttestationPolicy"]
    try:
        raw = b64url_decode(value)
    except ValueError:
        return value  # Azure's documented legacy form: the policy text itself
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("AttestationPolicy does not decode to UTF-8 text") from None


def parse_signed_policy(
    token: str | bytes,
    trusted_signers: Sequence[x509.Certificate],
    allow_unsigned: bool = False,
    *,
    now: _dt.datetime | None = None,
) -> SignedPolicy:
    """Verify a policy JWS and return its text.

    Raises :class:`PolicySignatureError` (``policy.signature_invalid``, ``policy.untrusted_signer``,
    ``policy.unsigned_not_allowed``, ``policy.unsupported_alg``, ``policy.signer_expired``,
    ``policy.signer_missing``, ``policy.weak_key``) or :class:`EvidenceError`
    (``policy.jws_malformed``).
    """
    if isinstance(token, (bytes, bytearray)):
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise _malformed("a JWS is ASCII text") from None
    token = token.strip()
    if token.count(".") != 2:
        raise _malformed("not a compact JWS (expected three dot-separated parts)")
    registry = _Registry(algorithms=["RS256", "none"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = jws.extract_compact(token.encode("ascii"), registry=registry)
    except (JoseError, ValueError, TypeError) as exc:
        raise _malformed(f"cannot decode JWS: {exc}") from None
    header = dict(obj.headers())
    alg = header.get("alg")
    if alg == "none":
        if not allow_unsigned:
            raise PolicySignatureError(
                "policy.unsigned_not_allowed",
                "the policy is unsigned (alg none) and this instance requires signed policies",
            )
        if token.rsplit(".", 1)[1]:
            raise _malformed("an unsigned (alg none) JWS must have an empty signature")
        return SignedPolicy(_payload_policy(obj.payload), "none", None, header)
    if alg != "RS256":
        raise PolicySignatureError("policy.unsupported_alg", f"policy signatures use RS256, not {alg!r}")

    claimed = _header_key(header)
    claimed_spki = _spki(claimed)
    signer = next((c for c in trusted_signers if _spki(c.public_key()) == claimed_spki), None)
    if signer is None:
        raise PolicySignatureError(
            "policy.untrusted_signer",
            "the policy is signed by a key that is not one of the trusted policy signers",
        )
    if "x5c" in header and "jwk" in header and _spki(_header_key({"jwk": header["jwk"]})) != claimed_spki:
        raise _malformed("x5c and jwk headers name different keys")
    public = signer.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise PolicySignatureError("policy.unsupported_alg", "RS256 needs an RSA policy signer certificate")
    if public.key_size < MIN_RSA_BITS:
        raise PolicySignatureError(
            "policy.weak_key",
            f"policy signer key has {public.key_size} bits; at least {MIN_RSA_BITS} are required",
        )
    moment = now or _dt.datetime.now(_dt.timezone.utc)
    if not (signer.not_valid_before_utc <= moment <= signer.not_valid_after_utc):
        raise PolicySignatureError(
            "policy.signer_expired",
            f"policy signer certificate {signer.subject.rfc4514_string()} is not valid at "
            f"{moment.isoformat()} (valid {signer.not_valid_before_utc.isoformat()} to "
            f"{signer.not_valid_after_utc.isoformat()})",
        )
    try:
        verified = jws.deserialize_compact(
            token, RSAKey.import_key(public), registry=_Registry(algorithms=["RS256"])
        )
    except BadSignatureError:
        raise PolicySignatureError(
            "policy.signature_invalid", "the policy signature does not verify"
        ) from None
    except (JoseError, ValueError, TypeError) as exc:
        raise PolicySignatureError(
            "policy.signature_invalid", f"the policy signature does not verify: {exc}"
        ) from None
    return SignedPolicy(_payload_policy(verified.payload), "RS256", signer, header)


def sign_policy(
    text: str,
    key: rsa.RSAPrivateKey | bytes | None,
    cert_chain: Sequence[x509.Certificate] | x509.Certificate | None = None,
    *,
    alg: str = "RS256",
    embed: str = "x5c",
) -> str:
    """Build the policy JWS. ``key`` None with ``alg="none"`` makes an unsigned policy token.

    ``embed`` names how the signer travels: ``"x5c"`` (needs ``cert_chain``, leaf first) or ``"jwk"``.
    """
    payload = json.dumps({"AttestationPolicy": b64url(text.encode("utf-8"))}, separators=(",", ":"))
    if alg == "none":
        if key is not None:
            raise EvidenceError("policy.sign", "alg none takes no key")
        header = b64url(b'{"alg":"none"}')
        return f"{header}.{b64url(payload.encode('utf-8'))}."
    if alg != "RS256":
        raise EvidenceError("policy.sign", f"policies are signed with RS256, not {alg!r}")
    if key is None:
        raise EvidenceError("policy.sign", "RS256 needs a private key")
    if isinstance(key, (bytes, bytearray)):
        key = load_private_key(bytes(key))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EvidenceError("policy.sign", "the policy signing key must be an RSA private key")
    protected: dict[str, Any] = {"alg": "RS256"}
    if embed == "x5c":
        chain = [cert_chain] if isinstance(cert_chain, x509.Certificate) else list(cert_chain or [])
        if not chain:
            raise EvidenceError("policy.sign", "x5c needs the signer certificate")
        if _spki(chain[0].public_key()) != _spki(key.public_key()):
            raise EvidenceError("policy.sign", "the first certificate is not the signing key's certificate")
        protected["x5c"] = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii") for c in chain
        ]
    elif embed == "jwk":
        protected["jwk"] = RSAKey.import_key(key.public_key()).as_dict(private=False)
    else:
        raise EvidenceError("policy.sign", f"embed must be x5c or jwk, not {embed!r}")
    return jws.serialize_compact(
        protected, payload, RSAKey.import_key(key), registry=_Registry(algorithms=["RS256"])
    )


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """PEM (one or more) or DER certificates."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise EvidenceError("policy.certificate", f"not an X.509 certificate: {exc}") from None


def load_private_key(data: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise EvidenceError("policy.key", f"cannot read the private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EvidenceError("policy.key", "the policy signing key must be RSA")
    return key
