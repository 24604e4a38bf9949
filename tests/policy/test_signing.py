"""Policy hash and signed policies (JWS)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import OctKey, RSAKey

from attestd.errors import EvidenceError
from attestd.policy import PolicySignatureError, compile_policy, parse_signed_policy, policy_hash, sign_policy

DATA = Path(__file__).parent / "data"
POLICY = 'version=1.0;\nauthorizationrules {\n  [type=="secureBootEnabled", value==true] => permit();\n};\n'
NOW = dt.datetime.now(dt.timezone.utc)


def make_signer(name="policy signer", bits=2048, days=30, start=None, key=None):
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = start or NOW - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def signer():
    return make_signer()


@pytest.fixture(scope="module")
def other():
    return make_signer("someone else")


# ----------------------------------------------------------------------------------------- hash


def test_policy_hash_formula_independently():
    # BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy))))), written out with the standard library
    inner = base64.b64encode(POLICY.encode("utf-8")).decode().replace("+", "-").replace("/", "_").rstrip("=")
    digest = hashlib.sha256(inner.encode("utf-8")).digest()
    expected = base64.b64encode(digest).decode().replace("+", "-").replace("/", "_").rstrip("=")
    assert policy_hash(POLICY) == expected and len(expected) == 43
    assert compile_policy(POLICY).hash == expected
    assert policy_hash(POLICY + " ") != expected
    # non-ASCII text is hashed as UTF-8
    assert policy_hash("é") == base64.urlsafe_b64encode(hashlib.sha256(b"w6k").digest()).decode().rstrip("=")


@pytest.mark.skipif(
    not (shutil.which("openssl") and shutil.which("base64")), reason="openssl/base64 not installed"
)
def test_policy_hash_matches_a_shell_pipeline(tmp_path):
    f = tmp_path / "p.policy"
    f.write_text(POLICY, encoding="utf-8")
    cmd = (
        f"base64 -w0 < {f} | tr '+/' '-_' | tr -d '=' | tr -d '\\n' | openssl dgst -sha256 -binary | "
        "base64 -w0 | tr '+/' '-_' | tr -d '='"
    )
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout.strip()
    assert policy_hash(POLICY) == out


# ----------------------------------------------------------------------------------------- Azure's samples


def doc_signed():
    token = (DATA / "azure_doc_signed_sgx.jws").read_text().strip()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    cert = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    return token, cert


def test_azure_documented_signed_policy_verifies():
    token, cert = doc_signed()
    assert cert.subject.rfc4514_string() == "CN=MaaTestCert1"
    signed = parse_signed_policy(token, [cert])
    assert signed.algorithm == "RS256" and signed.signer == cert
    assert signed.text.startswith('version= 1.0;authorizationrules{c:[type=="$is-debuggable"] => permit();};')
    p = signed.compile()
    d = p.evaluate({"$is-debuggable": False, "$tee-future": "x"})
    assert d.permitted and dict(d.issued_claims) == {"is-debuggable": False, "tee-future": "x"}


def test_azure_documented_signed_policy_tampered_or_untrusted(signer):
    token, cert = doc_signed()
    head, payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["AttestationPolicy"] = body["AttestationPolicy"].replace("permit()", "deny()")
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(f"{head}.{forged}.{sig}", [cert])
    assert e.value.code == "policy.signature_invalid"
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(token, [signer[1]])
    assert e.value.code == "policy.untrusted_signer"


def test_azure_documented_unsigned_policy_needs_allow_unsigned():
    token = (DATA / "azure_doc_unsigned_sgx.jws").read_text().strip()
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(token, [doc_signed()[1]])
    assert e.value.code == "policy.unsigned_not_allowed"
    signed = parse_signed_policy(token, [], allow_unsigned=True)
    assert signed.algorithm == "none" and signed.signer is None
    assert signed.policy_hash == policy_hash(signed.text)


# ----------------------------------------------------------------------------------------- round trips


def test_sign_and_parse_round_trip_x5c(signer, other):
    key, cert = signer
    token = sign_policy(POLICY, key, [cert])
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "RS256" and len(header["x5c"]) == 1
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert base64.urlsafe_b64decode(payload["AttestationPolicy"] + "==").decode() == POLICY
    signed = parse_signed_policy(token, [other[1], cert])
    assert signed.text == POLICY and signed.signer == cert
    assert signed.policy_hash == policy_hash(POLICY)


def test_sign_with_jwk_header(signer):
    key, cert = signer
    token = sign_policy(POLICY, key, embed="jwk")
    assert parse_signed_policy(token, [cert]).text == POLICY


def test_pem_key_bytes(signer):
    key, cert = signer
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert parse_signed_policy(sign_policy(POLICY, pem, cert), [cert]).text == POLICY


def test_tampering_is_rejected(signer):
    key, cert = signer
    head, payload, sig = sign_policy(POLICY, key, [cert]).split(".")
    other_payload = (
        base64.urlsafe_b64encode(
            json.dumps(
                {
                    "AttestationPolicy": base64.urlsafe_b64encode(
                        POLICY.replace("true", "false").encode()
                    ).decode()
                }
            ).encode()
        )
        .decode()
        .rstrip("=")
    )
    flipped_sig = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    for token in (f"{head}.{other_payload}.{sig}", f"{head}.{payload}.{flipped_sig}"):
        with pytest.raises(PolicySignatureError) as e:
            parse_signed_policy(token, [cert])
        assert e.value.code == "policy.signature_invalid"


def test_header_naming_a_trusted_cert_but_signed_by_another_key(signer, other):
    key, cert = signer
    okey, ocert = other
    # signed with the other key, but the header claims the trusted certificate
    token = jws.serialize_compact(
        {"alg": "RS256", "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]},
        json.dumps({"AttestationPolicy": "dmVy"}),
        RSAKey.import_key(okey),
    )
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(token, [cert])
    assert e.value.code == "policy.signature_invalid"


def test_untrusted_signer(signer, other):
    key, cert = signer
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(sign_policy(POLICY, key, [cert]), [other[1]])
    assert e.value.code == "policy.untrusted_signer"
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(sign_policy(POLICY, key, [cert]), [])
    assert e.value.code == "policy.untrusted_signer"


def test_alg_none_only_when_allowed(signer):
    token = sign_policy(POLICY, None, alg="none")
    assert token.endswith(".") and json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")) == {
        "alg": "none"
    }
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(token, [signer[1]])
    assert e.value.code == "policy.unsigned_not_allowed"
    assert parse_signed_policy(token, [], allow_unsigned=True).text == POLICY
    with pytest.raises(EvidenceError) as e:
        parse_signed_policy(token + "c2ln", [], allow_unsigned=True)
    assert e.value.code == "policy.jws_malformed"


def test_other_algorithms_rejected(signer):
    token = jws.serialize_compact(
        {"alg": "HS256"}, json.dumps({"AttestationPolicy": "dmVy"}), OctKey.import_key(b"k" * 32)
    )
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(token, [signer[1]])
    assert e.value.code == "policy.unsupported_alg"


def test_signer_validity_and_key_size():
    key, cert = make_signer(start=NOW - dt.timedelta(days=60), days=30)
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(sign_policy(POLICY, key, cert), [cert])
    assert e.value.code == "policy.signer_expired"
    assert (
        parse_signed_policy(sign_policy(POLICY, key, cert), [cert], now=NOW - dt.timedelta(days=45)).text
        == POLICY
    )
    small_key, small = make_signer(bits=1024)
    with pytest.warns(Warning, match="2048"):  # joserfc itself warns when signing with it
        weak = sign_policy(POLICY, small_key, small)
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(weak, [small])
    assert e.value.code == "policy.weak_key"


def test_malformed_tokens(signer):
    key, cert = signer
    for bad in ("", "a.b", "not.a.jws", "....", "eyJhbGciOiJSUzI1NiJ9.e30.", "\u00e9.a.b"):
        with pytest.raises((EvidenceError, PolicySignatureError)):
            parse_signed_policy(bad, [cert], allow_unsigned=True)
    no_key = jws.serialize_compact(
        {"alg": "RS256"}, json.dumps({"AttestationPolicy": "dmVy"}), RSAKey.import_key(key)
    )
    with pytest.raises(PolicySignatureError) as e:
        parse_signed_policy(no_key, [cert])
    assert e.value.code == "policy.signer_missing"
    for payload in (b"[]", b'{"AttestationPolicy": 5}', b"not json"):
        token = sign_policy(POLICY, None, alg="none")
        head = token.split(".")[0]
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        with pytest.raises(EvidenceError) as e:
            parse_signed_policy(f"{head}.{body}.", [], allow_unsigned=True)
        assert e.value.code == "policy.jws_malformed"


def test_sign_refuses_mismatched_material(signer, other):
    key, cert = signer
    with pytest.raises(EvidenceError):
        sign_policy(POLICY, key, [other[1]])  # certificate is not the key's
    with pytest.raises(EvidenceError):
        sign_policy(POLICY, key, [])
    with pytest.raises(EvidenceError):
        sign_policy(POLICY, ec.generate_private_key(ec.SECP256R1()), [cert])
    with pytest.raises(EvidenceError):
        sign_policy(POLICY, None)
