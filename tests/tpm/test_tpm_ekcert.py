"""EK certificates as real TPMs store them (keylime/ek in the corpus) and a strict chain check."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attestd.errors import EvidenceError, VerificationError
from attestd.tpm.ekcert import check_ek_matches, load_certificates, load_ek_certificate, verify_ek_chain

pytestmark = pytest.mark.corpus


def _ek(corpus, name):
    return (corpus / "keylime" / "ek" / name).read_bytes()


def _pems(corpus, *names):
    return load_certificates([_ek(corpus, n) for n in names], field="roots")


def test_rsa_ek_with_nv_padding_chains_to_globalsign(corpus):
    raw = _ek(corpus, "st_sha256_with_rsa.der")
    assert len(raw) == 1600 and raw[1169:] == b"\xff" * 431
    cert = load_ek_certificate(raw)
    path = verify_ek_chain(cert, roots=_pems(corpus, "GS_TPM_RT.pem"),
                           intermediates=_pems(corpus, "STM_RSA_05I.pem", "STM_RSA_RT.pem"),
                           at=cert.not_valid_before_utc + dt.timedelta(days=1))
    assert [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in path[1:]] == [
        "STM TPM EK Intermediate CA 05", "STM TPM EK Root CA", "GlobalSign Trusted Platform Module Root CA"]


def test_ecc_ek_chains_to_the_stm_ecc_root(corpus):
    cert = load_ek_certificate(_ek(corpus, "st_ecdsa_sha256.der"))
    at = cert.not_valid_before_utc + dt.timedelta(days=1)
    path = verify_ek_chain(cert, roots=_pems(corpus, "STM_ECC_01RT.pem"),
                           intermediates=_pems(corpus, "STM_ECC_01I.pem"), at=at)
    assert len(path) == 3
    # without the intermediate, or with the wrong root, it does not verify
    with pytest.raises(VerificationError) as info:
        verify_ek_chain(cert, roots=_pems(corpus, "STM_ECC_01RT.pem"), at=at)
    assert info.value.code == "ek.certificate_untrusted"
    with pytest.raises(VerificationError):
        verify_ek_chain(cert, roots=_pems(corpus, "GS_TPM_RT.pem"), intermediates=_pems(corpus, "STM_ECC_01I.pem"),
                        at=at)


def test_tampered_or_expired_certificates_fail(corpus):
    raw = bytearray(_ek(corpus, "st_sha256_with_rsa.der")[:1169])
    raw[300] ^= 0x01  # inside the TBS: the signature no longer covers these bytes
    cert = load_ek_certificate(bytes(raw))
    roots = _pems(corpus, "GS_TPM_RT.pem")
    mids = _pems(corpus, "STM_RSA_05I.pem", "STM_RSA_RT.pem")
    with pytest.raises(VerificationError) as info:
        verify_ek_chain(cert, roots=roots, intermediates=mids, at=cert.not_valid_before_utc + dt.timedelta(days=1))
    assert info.value.code == "ek.certificate_chain"
    good = load_ek_certificate(_ek(corpus, "st_sha256_with_rsa.der"))
    with pytest.raises(VerificationError) as info:
        verify_ek_chain(good, roots=roots, intermediates=mids, at=good.not_valid_after_utc + dt.timedelta(days=1))
    assert info.value.code == "ek.certificate_expired"


def test_padding_must_be_padding(corpus):
    raw = _ek(corpus, "st_sha256_with_rsa.der")[:1169] + b"\x01" * 10
    with pytest.raises(EvidenceError) as info:
        load_ek_certificate(raw)
    assert info.value.code == "ek.certificate_format" and info.value.offset == 1169
    with pytest.raises(EvidenceError):
        load_ek_certificate(b"\x30\x82\x10\x00" + b"\x00" * 10)


def test_a_leaf_cannot_act_as_a_ca(corpus):
    """A non-CA certificate that signs another certificate is refused even if the signature holds."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not a CA")])
    now = dt.datetime.now(dt.timezone.utc)

    def build(subject, issuer, pub, ca):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))

    root = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")]),
                 x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")]), key.public_key(), True)
    leaf_ca = build(name, root.subject, key.public_key(), False)
    ek_key = ec.generate_private_key(ec.SECP256R1())
    ek = build(x509.Name([]), name, ek_key.public_key(), False)
    with pytest.raises(VerificationError) as info:
        verify_ek_chain(ek, roots=[root], intermediates=[leaf_ca], at=now)
    assert info.value.code == "ek.certificate_chain"
    check_ek_matches(ek, ek_key.public_key())
    with pytest.raises(VerificationError):
        check_ek_matches(ek, key.public_key())
