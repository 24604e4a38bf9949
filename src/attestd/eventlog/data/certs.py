"""X.509 certificates found in event data (signature databases, Secure Boot authorities).

Certificates are read with ``cryptography``. One that ``cryptography`` refuses (odd encodings in
old firmware certificates, negative serials, unknown critical extensions) is kept as DER with a
``warning`` instead of failing the event: its SHA-256 fingerprint still identifies it.
"""

from __future__ import annotations

import functools
import hashlib
import warnings as _warnings
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

__all__ = ["Certificate", "der_length"]


@dataclass(frozen=True, slots=True)
class Certificate:
    """One DER X.509 certificate: subject, issuer, serial and SHA-256 fingerprint."""

    der: bytes = field(repr=False)
    #: RFC 4514 text of the subject/issuer; None when ``cryptography`` could not parse the DER.
    subject: str | None
    issuer: str | None
    #: serial number in lower-case hex (``-`` prefixed when negative); None when unparsed.
    serial: str | None
    #: SHA-256 of the DER, lower-case hex.
    sha256: str
    subject_cn: str | None = None
    issuer_cn: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    warning: str | None = None

    @classmethod
    def from_der(cls, der: bytes) -> "Certificate":
        """Decode ``der``. A fleet's logs carry the same few PK/KEK/db/authority certificates over
        and over, and a ``Certificate`` is immutable, so decoded certificates are shared through a
        bounded cache keyed by the exact DER bytes (X.509 parsing was the largest cost of decoding a
        whole log)."""
        if cls is Certificate:
            return _decode_cached(bytes(der))
        return cls._decode(bytes(der))

    @classmethod
    def _decode(cls, der: bytes) -> "Certificate":
        fingerprint = hashlib.sha256(der).hexdigest()
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")  # e.g. negative-serial deprecation warnings
                cert = x509.load_der_x509_certificate(der)
                subject = cert.subject
                issuer = cert.issuer
                serial = cert.serial_number
                nb = cert.not_valid_before_utc.isoformat()
                na = cert.not_valid_after_utc.isoformat()
                subject_text = subject.rfc4514_string()
                issuer_text = issuer.rfc4514_string()
                subject_cn = _cn(subject)
                issuer_cn = _cn(issuer)
        except Exception as exc:  # cryptography raises ValueError and friends on odd DER
            return cls(
                der=der,
                subject=None,
                issuer=None,
                serial=None,
                sha256=fingerprint,
                warning=f"certificate not parsed by cryptography: {exc}",
            )
        serial_text = format(serial, "x") if serial >= 0 else "-" + format(-serial, "x")
        return cls(
            der=der,
            subject=subject_text,
            issuer=issuer_text,
            serial=serial_text,
            sha256=fingerprint,
            subject_cn=subject_cn,
            issuer_cn=issuer_cn,
            not_before=nb,
            not_after=na,
        )

    @property
    def name(self) -> str:
        """Short display name: subject CN, else the subject, else the fingerprint."""
        return self.subject_cn or self.subject or f"sha256:{self.sha256[:16]}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "sha256": self.sha256,
        }
        if self.not_before is not None:
            out["not_before"] = self.not_before
            out["not_after"] = self.not_after
        if self.warning is not None:
            out["warning"] = self.warning
            out["der"] = self.der.hex()
        return out


@functools.lru_cache(maxsize=1024)
def _decode_cached(der: bytes) -> Certificate:
    return Certificate._decode(der)


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def der_length(data: bytes, start: int = 0) -> int | None:
    """Total length of the DER SEQUENCE starting at ``data[start]``, or None if it is not one.

    Only the outer tag and length are read (X.690 8.1.2-8.1.3, definite form). Used to tell a bare
    certificate from other data and to find where it ends.
    """
    n = len(data)
    if start + 2 > n or data[start] != 0x30:
        return None
    first = data[start + 1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or start + 2 + count > n:
        return None
    length = int.from_bytes(data[start + 2 : start + 2 + count], "big")
    return 2 + count + length
