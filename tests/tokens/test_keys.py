"""Signing keys: kid = RFC 7638 thumbprint, signing certificates, persistence record."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from token_helpers import ISSUER, T0

from attestd.tokens import KeyManagementError, SigningKey, generate_signing_key


def _b64url_uint(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _rfc7638(key: SigningKey) -> str:
    """RFC 7638 section 3: SHA-256 over the required members, sorted, no whitespace."""
    public = key.private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        nums = public.public_numbers()
        members = {"e": _b64url_uint(nums.e), "kty": "RSA", "n": _b64url_uint(nums.n)}
    else:
        nums = public.public_numbers()
        coord = lambda v: base64.urlsafe_b64encode(v.to_bytes(32, "big")).rstrip(b"=").decode()
        members = {"crv": "P-256", "kty": "EC", "x": coord(nums.x), "y": coord(nums.y)}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_kid_is_rfc7638_thumbprint_and_jwk_is_complete(keys, alg):
    key = keys[alg]
    assert key.kid == _rfc7638(key)
    jwk = key.public_jwk()
    assert jwk["kid"] == key.kid and jwk["use"] == "sig" and jwk["alg"] == alg
    assert set(jwk) >= ({"n", "e"} if alg != "ES256" else {"crv", "x", "y"})
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
    leaf_der = base64.b64decode(jwk["x5c"][0])
    assert leaf_der == key.certificate.public_bytes(serialization.Encoding.DER)
    assert (
        jwk["x5t#S256"] == base64.urlsafe_b64encode(hashlib.sha256(leaf_der).digest()).rstrip(b"=").decode()
    )


def test_self_signed_certificate_names_the_issuer(keys):
    key = keys["RS256"]
    cert = key.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ISSUER
    assert cert.issuer == cert.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [ISSUER]
    cert.verify_directly_issued_by(cert)  # raises if the self-signature is wrong
    assert cert.not_valid_before_utc == T0
    assert cert.not_valid_after_utc == T0 + timedelta(days=5 * 365)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert len(key.chain) == 1


def test_ca_issued_certificate_chain_is_leaf_first(ca_key, operator_ca):
    leaf, ca_cert = ca_key.chain
    assert ca_cert == operator_ca.chain[0]
    assert leaf.issuer == ca_cert.subject
    leaf.verify_directly_issued_by(ca_cert)
    x5c = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in ca_key.public_jwk()["x5c"]]
    assert x5c == [leaf, ca_cert]


def test_rsa_3072():
    key = generate_signing_key(ISSUER, now=T0, alg="RS256", rsa_bits=3072)
    assert key.private_key.key_size == 3072
    assert key.kid == _rfc7638(key)


def test_record_round_trip_through_json(keys, ca_key):
    for key in (*keys.values(), ca_key):
        retired = key.with_schedule(activates_at=T0 + timedelta(days=1), retired_at=T0 + timedelta(days=30))
        record = json.loads(json.dumps(retired.to_dict()))
        assert record["format"] == "attestd.signing-key/1"
        assert record["private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")
        assert record["retired_at"] == "2025-03-31T12:00:00Z"
        back = SigningKey.from_dict(record)
        assert back == retired
        assert back.chain == retired.chain
        assert back.public_jwk() == retired.public_jwk()


def test_record_with_wrong_kid_or_foreign_certificate_is_rejected(keys):
    record = keys["ES256"].to_dict()
    with pytest.raises(KeyManagementError) as err:
        SigningKey.from_dict({**record, "kid": keys["RS256"].kid})
    assert err.value.code == "keys.invalid_record"
    foreign = {**record, "certificate_chain_pem": keys["RS256"].to_dict()["certificate_chain_pem"]}
    with pytest.raises(KeyManagementError) as err:
        SigningKey.from_dict(foreign)
    assert err.value.code == "keys.invalid_record"
    for broken in (
        {**record, "format": "other/1"},
        {**record, "private_key_pem": "nope"},
        {"format": record["format"]},
    ):
        with pytest.raises(KeyManagementError) as err:
            SigningKey.from_dict(broken)
        assert err.value.code == "keys.invalid_record"


def test_algorithm_must_fit_the_key(keys):
    rsa_key = keys["RS256"]
    with pytest.raises(KeyManagementError) as err:
        SigningKey("ES256", rsa_key.private_key, rsa_key.chain, T0, T0)
    assert err.value.code == "keys.invalid_record"
    with pytest.raises(KeyManagementError) as err:
        SigningKey("HS256", rsa_key.private_key, rsa_key.chain, T0, T0)
    assert err.value.code == "keys.unsupported_algorithm"
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(KeyManagementError):
        SigningKey("ES256", p384, keys["ES256"].chain, T0, T0)
    with pytest.raises(KeyManagementError) as err:
        generate_signing_key(ISSUER, now=T0, alg="RS256", rsa_bits=1024)
    assert err.value.code == "keys.unsupported_algorithm"


def test_schedule_must_be_ordered_and_timezone_aware(keys):
    key = keys["ES256"]
    with pytest.raises(KeyManagementError):
        key.with_schedule(activates_at=T0 - timedelta(seconds=1))
    with pytest.raises(KeyManagementError):
        key.with_schedule(retired_at=T0 - timedelta(seconds=1))
    with pytest.raises(ValueError):
        generate_signing_key(ISSUER, now=T0.replace(tzinfo=None), alg="ES256")


def test_issuer_longer_than_a_common_name_is_refused():
    with pytest.raises(KeyManagementError) as err:
        generate_signing_key("https://" + "a" * 60 + ".example", now=T0, alg="ES256")
    assert err.value.code == "keys.issuer_not_encodable"
