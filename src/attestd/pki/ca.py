"""A tenant's host identity CA: certificates for TPM-resident keys, issued only after attestation.

RFC 5280 profile:

* CA: ECDSA P-256, self-signed, ``CN=<tenant> host identity CA, O=Attestd``, basicConstraints
  cA=TRUE pathLen=0 (critical), keyUsage keyCertSign + cRLSign (critical), subject key identifier.
* host certificate: the TPM key's public key; subject ``CN=<host id>, O=<tenant>``; subjectAltName
  ``URI:urn:attestd:host:<tenant>:<host id>``; keyUsage digitalSignature (critical); extendedKeyUsage
  clientAuth and serverAuth; authority/subject key identifiers; a random 159-bit serial; short
  lifetime (renewed at each attestation).
* CRL v2 with a CRL number, listing revoked serials with their revocation dates.

``openssl verify -CAfile ca.pem host.pem`` accepts what :func:`issue_host_certificate` returns.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["build_crl", "create_ca", "dump_ca_key", "host_uri", "issue_host_certificate", "load_ca_key"]


def host_uri(tenant: str, host_id: str) -> str:
    return f"urn:attestd:host:{tenant}:{host_id}"


def create_ca(tenant: str, *, now: _dt.datetime, years: int = 10) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{tenant} host identity CA"[:64]),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Attestd")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


_LEAF = x509.BasicConstraints(ca=False, path_length=None)
_LEAF_USAGE = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                            encipher_only=False, decipher_only=False)
_LEAF_EKU = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH])


@functools.lru_cache(maxsize=64)
def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())


def issue_host_certificate(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, public_key,
                           *, tenant: str, host_id: str, now: _dt.datetime,
                           lifetime: _dt.timedelta = _dt.timedelta(hours=24)) -> x509.Certificate:
    """A certificate for ``public_key`` (a TPM-resident key's public part)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_id),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, tenant)])
    not_after = min(now + lifetime, ca_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(not_after)
        .add_extension(_LEAF, critical=True)
        .add_extension(_LEAF_USAGE, critical=True)
        .add_extension(_LEAF_EKU, critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(host_uri(tenant, host_id))]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def build_crl(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
              revoked: Iterable[tuple[int, _dt.datetime]], *, now: _dt.datetime, number: int,
              next_update: _dt.timedelta = _dt.timedelta(hours=1)) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(now).next_update(now + next_update)
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    for serial, at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build())
    return builder.sign(ca_key, hashes.SHA256())


def dump_ca_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_ca_key(der: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key
