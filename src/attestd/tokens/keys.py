"""Token signing keys: generation, signing certificates, JWK view and a storable record.

A :class:`SigningKey` is an RS256 / PS256 (RSA-2048 or larger) or ES256 (P-256) private key with

* a ``kid``: the RFC 7638 JWK thumbprint (SHA-256, base64url) of its public key;
* a certificate chain (leaf first): the leaf's subject CN *and* SAN URI are the issuer URL. The leaf is
  self-signed by default, or issued by an operator's :class:`CertificateAuthority`;
* a schedule: ``created`` (key and certificate generation), ``published_at`` (when it entered the key
  set and the JWKS; defaults to ``created``), ``activates_at`` (when it may start signing) and
  ``retired_at`` (when it stopped signing; ``None`` while it has no successor). :mod:`.keyset` drives
  the schedule.

:meth:`SigningKey.to_dict` / :meth:`SigningKey.from_dict` give a JSON-compatible record for the key
store (format ``attestd.signing-key/1``, see ``docs/tokens.md``). The record holds the private key
**unencrypted** (PKCS#8 PEM): encryption at rest is the store's job.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, RSAKey

from ._jose import SUPPORTED_ALGORITHMS, b64std, b64url, from_iso, to_iso, utc
from .errors import KeyManagementError

__all__ = [
    "KEY_RECORD_FORMAT",
    "CertificateAuthority",
    "SigningKey",
    "generate_signing_key",
]

KEY_RECORD_FORMAT = "attestd.signing-key/1"
_MIN_RSA_BITS = 2048
_CN_MAX = 64  # X.520 ub-common-name

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_alg_and_key(alg: str, key: Any) -> None:
    if alg not in SUPPORTED_ALGORITHMS:
        raise KeyManagementError("keys.unsupported_algorithm", f"unsupported signing algorithm {alg!r}")
    if alg in ("RS256", "PS256"):
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyManagementError("keys.invalid_record", f"{alg} needs an RSA key")
        if key.key_size < _MIN_RSA_BITS:
            raise KeyManagementError("keys.invalid_record", f"RSA key of {key.key_size} bits is too small")
    else:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise KeyManagementError("keys.invalid_record", "ES256 needs a P-256 key")


def _cert_hash(signer_key: Any) -> hashes.HashAlgorithm | None:
    if isinstance(signer_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    if isinstance(signer_key, ec.EllipticCurvePrivateKey):
        return {384: hashes.SHA384(), 521: hashes.SHA512()}.get(signer_key.curve.key_size, hashes.SHA256())
    return hashes.SHA256()


@dataclass(frozen=True)
class CertificateAuthority:
    """An operator's CA that issues the signing certificates: its key and its chain (CA cert first)."""

    private_key: Any
    chain: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "chain", tuple(self.chain))
        if not self.chain:
            raise KeyManagementError("keys.ca_invalid", "CA chain is empty")
        if _spki(self.chain[0].public_key()) != _spki(self.private_key.public_key()):
            raise KeyManagementError("keys.ca_invalid", "CA certificate does not match the CA private key")
        try:
            bc = self.chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise KeyManagementError("keys.ca_invalid", "CA certificate lacks basicConstraints cA=TRUE")

    @classmethod
    def from_pem(
        cls, key_pem: bytes, chain_pem: bytes, password: bytes | None = None
    ) -> CertificateAuthority:
        try:
            key = serialization.load_pem_private_key(key_pem, password)
            chain = tuple(x509.load_pem_x509_certificates(chain_pem))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyManagementError("keys.ca_invalid", f"cannot load CA key or chain: {exc}") from exc
        return cls(key, chain)


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A token signing key with its certificate chain (leaf first) and schedule."""

    alg: str
    private_key: PrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    created: datetime
    activates_at: datetime
    retired_at: datetime | None = None
    published_at: datetime | None = None
    kid: str = field(init=False)
    _jose_key: Any = field(init=False, repr=False)
    _public_jwk: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_alg_and_key(self.alg, self.private_key)
        chain = tuple(self.chain)
        if not chain:
            raise KeyManagementError("keys.invalid_record", "signing key has no certificate")
        if _spki(chain[0].public_key()) != _spki(self.private_key.public_key()):
            raise KeyManagementError("keys.invalid_record", "leaf certificate does not match the private key")
        created = utc(self.created, "created")
        activates_at = utc(self.activates_at, "activates_at")
        retired_at = None if self.retired_at is None else utc(self.retired_at, "retired_at")
        published_at = created if self.published_at is None else utc(self.published_at, "published_at")
        if published_at < created:
            raise KeyManagementError("keys.invalid_record", "published_at is before created")
        if activates_at < created:
            raise KeyManagementError("keys.invalid_record", "activates_at is before created")
        if retired_at is not None and retired_at < activates_at:
            raise KeyManagementError("keys.invalid_record", "retired_at is before activates_at")
        jose_cls = RSAKey if isinstance(self.private_key, rsa.RSAPrivateKey) else ECKey
        jose_key = jose_cls.import_key(self.private_key)
        kid = jose_key.thumbprint()
        leaf_der = chain[0].public_bytes(serialization.Encoding.DER)
        public = jose_key.as_dict(private=False)
        public.update(
            {
                "kid": kid,
                "use": "sig",
                "alg": self.alg,
                "x5c": [b64std(c.public_bytes(serialization.Encoding.DER)) for c in chain],
                "x5t#S256": b64url(hashlib.sha256(leaf_der).digest()),
            }
        )
        for name, value in (
            ("chain", chain),
            ("created", created),
            ("activates_at", activates_at),
            ("retired_at", retired_at),
            ("published_at", published_at),
            ("kid", kid),
            ("_jose_key", jose_key),
            ("_public_jwk", public),
        ):
            object.__setattr__(self, name, value)

    # -- identity: a key is its kid plus its schedule ------------------------------------------
    def _identity(self) -> tuple[Any, ...]:
        return (self.kid, self.alg, self.created, self.published_at, self.activates_at, self.retired_at)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SigningKey) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    # -- views ---------------------------------------------------------------------------------
    @property
    def certificate(self) -> x509.Certificate:
        """The leaf (signing) certificate."""
        return self.chain[0]

    @property
    def jose_key(self) -> Any:
        """The joserfc private key object used to sign."""
        return self._jose_key

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK as published in the JWKS: kty, n/e or crv/x/y, kid, use, alg, x5c, x5t#S256."""
        out = dict(self._public_jwk)
        out["x5c"] = list(out["x5c"])
        return out

    def x5c(self) -> list[str]:
        return list(self._public_jwk["x5c"])

    def can_sign(self, now: datetime) -> bool:
        now = utc(now)
        return self.activates_at <= now and (self.retired_at is None or now < self.retired_at)

    def with_schedule(
        self,
        *,
        published_at: datetime | None = None,
        activates_at: datetime | None = None,
        retired_at: datetime | None = None,
    ) -> SigningKey:
        """A copy with new schedule times (``None`` keeps the current value)."""
        return dataclasses.replace(
            self,
            published_at=self.published_at if published_at is None else published_at,
            activates_at=self.activates_at if activates_at is None else activates_at,
            retired_at=self.retired_at if retired_at is None else retired_at,
        )

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible record (format ``attestd.signing-key/1``) holding the UNENCRYPTED key."""
        return {
            "format": KEY_RECORD_FORMAT,
            "kid": self.kid,
            "alg": self.alg,
            "private_key_pem": self.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii"),
            "certificate_chain_pem": [
                c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in self.chain
            ],
            "created": to_iso(self.created),
            "published_at": to_iso(self.published_at),
            "activates_at": to_iso(self.activates_at),
            "retired_at": to_iso(self.retired_at),
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> SigningKey:
        """Rebuild a key from :meth:`to_dict`'s record; checks the format, the kid and the chain."""
        try:
            if record.get("format") != KEY_RECORD_FORMAT:
                raise ValueError(f"unknown record format {record.get('format')!r}")
            key = serialization.load_pem_private_key(record["private_key_pem"].encode("ascii"), None)
            chain = tuple(
                x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in record["certificate_chain_pem"]
            )
            created = from_iso(record["created"], "created")
            activates_at = from_iso(record["activates_at"], "activates_at")
            retired_at = from_iso(record.get("retired_at"), "retired_at")
            published_at = from_iso(record.get("published_at"), "published_at")
            if created is None or activates_at is None:
                raise ValueError("created and activates_at are required")
            alg = record["alg"]
        except KeyManagementError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, UnsupportedAlgorithm) as exc:
            raise KeyManagementError("keys.invalid_record", f"invalid signing key record: {exc}") from exc
        signing_key = cls(alg, key, chain, created, activates_at, retired_at, published_at)
        if record.get("kid") != signing_key.kid:
            raise KeyManagementError(
                "keys.invalid_record",
                f"record kid {record.get('kid')!r} is not the key's thumbprint {signing_key.kid!r}",
            )
        return signing_key


def _name(issuer: str) -> x509.Name:
    if not 1 <= len(issuer) <= _CN_MAX:
        raise KeyManagementError(
            "keys.issuer_not_encodable",
            f"issuer URL must be 1..{_CN_MAX} characters to be a certificate CN, got {len(issuer)}",
        )
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])


def generate_signing_key(
    issuer: str,
    *,
    now: datetime,
    alg: str = "RS256",
    rsa_bits: int = 2048,
    ca: CertificateAuthority | None = None,
    validity: timedelta = timedelta(days=5 * 365),
    activates_at: datetime | None = None,
) -> SigningKey:
    """Generate a key and its signing certificate (CN and SAN URI = ``issuer``).

    The certificate is valid from ``now`` for ``validity`` (capped at the CA certificate's expiry) and
    self-signed unless ``ca`` is given, in which case the chain is ``[leaf, *ca.chain]``.
    ``activates_at`` defaults to ``now``; :meth:`KeySet.rotate <attestd.tokens.keyset.KeySet.rotate>`
    sets it from the pre-publication period.
    """
    now = utc(now)
    if alg not in SUPPORTED_ALGORITHMS:
        raise KeyManagementError("keys.unsupported_algorithm", f"unsupported signing algorithm {alg!r}")
    if alg == "ES256":
        key: PrivateKey = ec.generate_private_key(ec.SECP256R1())
    else:
        if rsa_bits < _MIN_RSA_BITS:
            raise KeyManagementError(
                "keys.unsupported_algorithm", f"RSA keys must have >= {_MIN_RSA_BITS} bits"
            )
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)

    subject = _name(issuer)
    not_after = now + validity
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    if ca is None:
        issuer_name, signer, aki = (
            subject,
            key,
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
        )
        ca_chain: tuple[x509.Certificate, ...] = ()
    else:
        ca_cert = ca.chain[0]
        issuer_name, signer, ca_chain = ca_cert.subject, ca.private_key, ca.chain
        not_after = min(not_after, ca_cert.not_valid_after_utc)
        try:
            ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
        except x509.ExtensionNotFound:
            ca_public = ca_cert.public_key()
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public)  # type: ignore[arg-type]
    if not_after <= now:
        raise KeyManagementError("keys.ca_invalid", "the CA certificate has expired")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(issuer)]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
        .sign(signer, _cert_hash(signer))
    )
    return SigningKey(alg, key, (cert, *ca_chain), now, now if activates_at is None else activates_at)
