"""Endorsement Key certificates: read them as TPMs store them, check their chain to manufacturer roots.

TCG EK Credential Profile 2.5 (section 2.2.1.5): the EK certificate lives in NV at 0x01C00002 (RSA
2048) or 0x01C0000A (ECC P-256), DER encoded. Real TPMs are untidy, and both habits are in the
corpus (keylime/ek):

* the NV index is larger than the certificate and the rest is padding (STMicro: 431 bytes of 0xFF
  after a 1169-byte certificate). :func:`load_ek_certificate` reads the outer DER length and
  ignores trailing 0x00/0xFF padding - nothing else;
* issuer and subject names whose SET OF attributes is not in DER order, which strict name
  comparison by re-encoded bytes would refuse. Issuers are matched by name *value* (RDN sets
  compared as sets), and each signature is checked over the certificate's **raw** TBS bytes with
  the issuer's key - the bytes the manufacturer signed, never a re-encoding.

The chain check is otherwise strict (:func:`verify_ek_chain`): every signature, every validity
period at the given time, CA basic constraints on every issuer, a path ending at a configured root,
at most 6 certificates. Codes: ``ek.certificate_format``, ``ek.certificate_chain``,
``ek.certificate_expired``, ``ek.certificate_untrusted``, ``ek.certificate_key_mismatch``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from attestd.errors import EvidenceError, VerificationError

__all__ = [
    "EK_CERT_NV_ECC",
    "EK_CERT_NV_RSA",
    "check_ek_matches",
    "load_certificates",
    "load_ek_certificate",
    "verify_ek_chain",
]

#: TCG EK Credential Profile 2.5, 2.2.1.5.1: NV indices of the RSA 2048 and ECC NIST P-256 EK certificates
EK_CERT_NV_RSA = 0x01C00002
EK_CERT_NV_ECC = 0x01C0000A
_MAX_PATH = 6


def _der_length(data: bytes) -> int | None:
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if not 1 <= count <= 4 or len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2:2 + count], "big")


def load_ek_certificate(data: bytes | str, *, field: str = "ekCertificate") -> x509.Certificate:
    """An EK certificate from PEM, DER, or DER as read from NV (with trailing padding)."""
    if isinstance(data, str):
        data = data.encode()
    raw = bytes(data)
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            return x509.load_pem_x509_certificate(raw)
        except ValueError as exc:
            raise EvidenceError("ek.certificate_format", f"not a PEM certificate: {exc}", field=field) from None
    n = _der_length(raw)
    if n is None or n > len(raw):
        raise EvidenceError("ek.certificate_format", "not a DER certificate (no complete outer SEQUENCE)",
                            field=field, offset=0)
    padding_bytes = raw[n:]
    if padding_bytes.strip(b"\xff") and padding_bytes.strip(b"\x00"):
        raise EvidenceError("ek.certificate_format",
                            f"{len(padding_bytes)} bytes after the certificate are not NV padding (0x00/0xFF)",
                            field=field, offset=n)
    try:
        return x509.load_der_x509_certificate(raw[:n])
    except ValueError as exc:
        raise EvidenceError("ek.certificate_format", f"not a DER certificate: {exc}", field=field) from None


def load_certificates(items: Iterable[Any], *, field: str) -> list[x509.Certificate]:
    """Certificates from x509 objects, PEM bundles or DER blobs."""
    out: list[x509.Certificate] = []
    for i, item in enumerate(items):
        if isinstance(item, x509.Certificate):
            out.append(item)
            continue
        data = item.encode() if isinstance(item, str) else bytes(item)
        if b"-----BEGIN" in data:
            try:
                out.extend(x509.load_pem_x509_certificates(data))
            except ValueError as exc:
                raise EvidenceError("ek.certificate_format", f"{field}[{i}]: {exc}", field=f"{field}[{i}]") from None
        else:
            out.append(load_ek_certificate(data, field=f"{field}[{i}]"))
    return out


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The signature of ``cert`` over its raw TBS bytes verifies with ``issuer``'s key."""
    key = issuer.public_key()
    try:
        params = cert.signature_algorithm_parameters
        hash_alg = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, (padding.PKCS1v15, padding.PSS)) and hash_alg:
            key.verify(cert.signature, cert.tbs_certificate_bytes, params, hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        # X.509 v1 roots carry no extensions; a configured root is trusted as configured
        return cert.version == x509.Version.v1
    return bool(bc.ca)


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a.fingerprint(_SHA256) == b.fingerprint(_SHA256)


_SHA256 = hashes.SHA256()


def _check_time(cert: x509.Certificate, at: _dt.datetime, index: int) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise VerificationError(
            "ek.certificate_expired",
            f"certificate {index} ({cert.subject.rfc4514_string() or cert.issuer.rfc4514_string()}) is valid "
            f"{cert.not_valid_before_utc.date()}..{cert.not_valid_after_utc.date()}, not at {at.isoformat()}",
            field=f"chain[{index}]")


def verify_ek_chain(cert: x509.Certificate, *, roots: Sequence[x509.Certificate],
                    intermediates: Sequence[x509.Certificate] = (), at: _dt.datetime | None = None
                    ) -> list[x509.Certificate]:
    """The path from ``cert`` to one of ``roots`` (leaf first); raises VerificationError otherwise."""
    now = at or _dt.datetime.now(_dt.UTC)
    if not roots:
        raise VerificationError("ek.certificate_untrusted", "no EK root certificates are configured",
                                field="ekCertificate")
    path = [cert]
    _check_time(cert, now, 0)
    current = cert
    pool = list(intermediates) + list(roots)
    while True:
        if any(_same(current, r) for r in roots):
            return path
        issuer = next((c for c in pool if c.subject == current.issuer and not _same(c, current)
                       and _signed_by(current, c)), None)
        if issuer is None:
            candidates = [c for c in pool if c.subject == current.issuer]
            why = ("its signature does not verify with the issuer named " + current.issuer.rfc4514_string()
                   if candidates else f"no configured certificate is its issuer {current.issuer.rfc4514_string()}")
            raise VerificationError("ek.certificate_untrusted" if not candidates else "ek.certificate_chain",
                                    f"certificate {len(path) - 1} does not chain to a trusted root: {why}",
                                    field=f"chain[{len(path) - 1}]")
        if not _is_ca(issuer):
            raise VerificationError("ek.certificate_chain",
                                    f"{issuer.subject.rfc4514_string()} issued certificate {len(path) - 1} "
                                    "but is not a CA", field=f"chain[{len(path)}]")
        _check_time(issuer, now, len(path))
        path.append(issuer)
        if any(_same(issuer, r) for r in roots):
            return path
        if len(path) >= _MAX_PATH:
            raise VerificationError("ek.certificate_chain", f"no root within {_MAX_PATH} certificates",
                                    field="ekCertificate")
        current = issuer


def check_ek_matches(cert: x509.Certificate, ek_public_key: Any) -> None:
    """The certificate certifies exactly this EK (compares SubjectPublicKeyInfo)."""
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*fmt) != ek_public_key.public_bytes(*fmt):
        raise VerificationError("ek.certificate_key_mismatch", "the EK certificate certifies another key",
                                field="ekCertificate")
