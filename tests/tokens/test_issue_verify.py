"""Issuing and verifying tokens: every algorithm, tampering, time, keys, issuer, claims, drafts."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.errors import UnsupportedHeaderError
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter
from token_helpers import ISSUER, T0

from attestd.errors import EvidenceError, VerificationError
from attestd.tokens import (
    DRAFT_CLAIM,
    RESERVED_CLAIMS,
    KeySet,
    TokenIssueError,
    TokenVerificationError,
    issue_token,
    jwks,
    policy_hash,
    policy_signer_jwk,
    verify_token,
)

HOUR = timedelta(hours=1)
PHASH = policy_hash("version=1.0; authorizationrules { => permit(); };")


def b64d(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str):
    h, p, s = token.split(".")
    return json.loads(b64d(h)), json.loads(b64d(p)), b64d(s)


def issue(key, claims=None, **kw):
    args = {
        "signer": key,
        "issuer": ISSUER,
        "now": T0,
        "lifetime": HOUR,
        "attestation_type": "sevsnpvm",
        "policy_hash": PHASH,
    }
    args.update(kw)
    return issue_token(claims or {}, **args)


def jwks_of(*signing_keys):
    return {"keys": [k.public_jwk() for k in signing_keys]}


def code_of(exc_info) -> str:
    return exc_info.value.code


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_sign_and_verify_each_algorithm(keys, alg):
    key = keys[alg]
    claims = {"x-ms-sevsnpvm-is-debuggable": False, "secureboot": True, "measurements": [1, 2, 3]}
    token = issue(key, claims, nonce="abc123")
    header, body, _ = parts(token)
    assert header == {"alg": alg, "kid": key.kid, "jku": ISSUER + "/certs", "typ": "JWT", "x5c": key.x5c()}
    iat = int(T0.timestamp())
    assert body["iss"] == ISSUER and body["iat"] == iat and body["nbf"] == iat and body["exp"] == iat + 3600
    assert len(body["jti"]) == 64 and int(body["jti"], 16) >= 0
    assert body["nonce"] == "abc123" and body["x-ms-ver"] == "1.0"
    assert body["x-ms-attestation-type"] == "sevsnpvm" and body["x-ms-policy-hash"] == PHASH
    assert DRAFT_CLAIM not in body and "x-ms-policy-signer" not in body and "x-ms-runtime" not in body
    for name, value in claims.items():
        assert body[name] == value

    keyset = KeySet.create(key, now=T0)
    v = verify_token(token, jwks=jwks(keyset, T0), issuer=ISSUER, now=T0 + timedelta(minutes=30))
    assert (v.alg, v.kid, v.issuer, v.nonce, v.attestation_type, v.policy_hash) == (
        alg, key.kid, ISSUER, "abc123", "sevsnpvm", PHASH,
    )  # fmt: skip
    assert v.issued_at == T0 and v.not_before == T0 and v.expires_at == T0 + HOUR
    assert v.claims == body and not v.is_draft
    assert v.signing_chain == key.chain


def test_jti_is_unique_and_omit_x5c(keys):
    key = keys["ES256"]
    a, b = issue(key), issue(key)
    assert parts(a)[1]["jti"] != parts(b)[1]["jti"]
    bare = issue(key, include_x5c=False, jku="https://keys.example/jwks")
    header = parts(bare)[0]
    assert "x5c" not in header and header["jku"] == "https://keys.example/jwks"
    assert verify_token(bare, jwks=jwks_of(key), issuer=ISSUER, now=T0).kid == key.kid


def test_azure_style_optional_claims(keys, ca_key):
    runtime = {"keys": [{"kid": "TpmEphemeralEncryptionKey", "kty": "RSA", "e": "AQAB", "n": "xyz"}]}
    inittime = {"vm": {"id": 7}}
    signer_jwk = policy_signer_jwk(ca_key.certificate)
    token = issue(keys["RS256"], runtime=runtime, inittime=inittime, policy_signer=signer_jwk)
    v = verify_token(token, jwks=jwks_of(keys["RS256"]), issuer=ISSUER, now=T0)
    assert v.runtime == runtime and v.inittime == inittime
    assert v.policy_signer["kty"] == "EC" and "d" not in v.policy_signer
    cert = x509.load_der_x509_certificate(base64.b64decode(v.policy_signer["x5c"][0]))
    assert cert == ca_key.certificate
    with pytest.raises(TokenIssueError) as err:
        issue(keys["RS256"], policy_signer=keys["ES256"].jose_key.as_dict(private=True))
    assert code_of(err) == "token.policy_signer_invalid"
    with pytest.raises(TokenIssueError) as err:
        issue(keys["RS256"], runtime=b'{"a": 1}')
    assert code_of(err) == "token.claim_not_json"


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_policy_claims_cannot_override_reserved_claims(keys, name):
    with pytest.raises(TokenIssueError) as err:
        issue(keys["ES256"], {name: "evil", "fine": 1})
    assert code_of(err) == "token.reserved_claim"
    assert err.value.details["claims"] == [name]


def test_non_json_claims_and_bad_lifetime_are_refused(keys):
    with pytest.raises(TokenIssueError) as err:
        issue(keys["ES256"], {"when": T0})
    assert code_of(err) == "token.claim_not_json"
    with pytest.raises(TokenIssueError) as err:
        issue(keys["ES256"], {"x": float("nan")})
    assert code_of(err) == "token.claim_not_json"
    with pytest.raises(TokenIssueError) as err:
        issue(keys["ES256"], lifetime=timedelta(0))
    assert code_of(err) == "token.lifetime_invalid"


# -- tampering ------------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tampered_payload_header_and_signature_are_rejected(keys, alg):
    key = keys[alg]
    token = issue(key, {"secureboot": False})
    h, p, s = token.split(".")
    body = json.loads(b64d(p))
    body["secureboot"] = True
    forged_payload = ".".join([h, b64e(json.dumps(body).encode()), s])
    header = json.loads(b64d(h))
    header["typ"] = "JOSE"
    forged_header = ".".join([b64e(json.dumps(header).encode()), p, s])
    sig = bytearray(b64d(s))
    sig[len(sig) // 2] ^= 0x01
    forged_signature = ".".join([h, p, b64e(bytes(sig))])
    for forged in (forged_payload, forged_header, forged_signature):
        with pytest.raises(TokenVerificationError) as err:
            verify_token(forged, jwks=jwks_of(key), issuer=ISSUER, now=T0)
        assert code_of(err) == "token.signature_invalid"
        assert isinstance(err.value, VerificationError)
    assert verify_token(token, jwks=jwks_of(key), issuer=ISSUER, now=T0).claims["secureboot"] is False


def test_algorithm_confusion_is_rejected(keys):
    key = keys["RS256"]
    token = issue(key)
    h, p, _ = token.split(".")
    for alg in ("none", "HS256", "ES256"):
        header = {**json.loads(b64d(h)), "alg": alg}
        forged = ".".join([b64e(json.dumps(header).encode()), p, "" if alg == "none" else b64e(b"x" * 64)])
        with pytest.raises(TokenVerificationError) as err:
            verify_token(forged, jwks=jwks_of(key), issuer=ISSUER, now=T0)
        assert code_of(err) == ("token.key_invalid" if alg == "ES256" else "token.alg_not_allowed")
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks=jwks_of(key), issuer=ISSUER, now=T0, algorithms=["ES256"])
    assert code_of(err) == "token.alg_not_allowed"


@pytest.mark.parametrize(
    "garbage", ["", "abc", "a.b", "a.b.c.d", "!!!.???.***", "eyJhbGciOiJSUzI1NiJ9.bm90anNvbg.c2ln"]
)
def test_malformed_tokens(keys, garbage):
    with pytest.raises(EvidenceError) as err:
        verify_token(garbage, jwks=jwks_of(keys["RS256"]), issuer=ISSUER, now=T0)
    assert code_of(err) == "token.malformed"
    assert err.value.to_problem()["code"] == "token.malformed"


# -- time -----------------------------------------------------------------------------------------
def test_expiry_and_not_before_boundaries(keys):
    key = keys["ES256"]
    token = issue(key)
    us = timedelta(microseconds=1)
    kw = {"jwks": jwks_of(key), "issuer": ISSUER}
    verify_token(token, now=T0, **kw)
    verify_token(token, now=T0 + HOUR - us, **kw)
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, now=T0 + HOUR, **kw)
    assert code_of(err) == "token.expired"
    verify_token(token, now=T0 + HOUR + timedelta(seconds=59), leeway=timedelta(seconds=60), **kw)
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, now=T0 - us, **kw)
    assert code_of(err) == "token.not_yet_valid"
    verify_token(token, now=T0 - timedelta(seconds=60), leeway=timedelta(seconds=60), **kw)
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, now=T0 - timedelta(seconds=61), leeway=timedelta(seconds=60), **kw)
    assert code_of(err) == "token.not_yet_valid"


# -- keys and issuer ------------------------------------------------------------------------------
def test_unknown_kid_and_missing_kid(keys):
    token = issue(keys["ES256"])
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks=jwks_of(keys["RS256"], keys["PS256"]), issuer=ISSUER, now=T0)
    assert code_of(err) == "token.unknown_kid"
    assert err.value.details["kid"] == keys["ES256"].kid
    no_kid = jws.serialize_compact({"alg": "ES256"}, b'{"iss":"x"}', keys["ES256"].jose_key)
    with pytest.raises(TokenVerificationError) as err:
        verify_token(no_kid, jwks=jwks_of(keys["ES256"]), issuer=ISSUER, now=T0)
    assert code_of(err) == "token.kid_missing"


def test_key_with_same_kid_but_other_material_fails_signature(keys):
    # a JWKS entry that claims the signer's kid but holds another key: the signature must not verify
    impostor = {**keys["PS256"].public_jwk(), "kid": keys["RS256"].kid, "alg": "RS256"}
    del impostor["x5c"]
    with pytest.raises(TokenVerificationError) as err:
        verify_token(issue(keys["RS256"]), jwks={"keys": [impostor]}, issuer=ISSUER, now=T0)
    assert code_of(err) == "token.signature_invalid"


def test_wrong_issuer(keys):
    token = issue(keys["RS256"])
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks=jwks_of(keys["RS256"]), issuer=ISSUER + "/", now=T0)
    assert code_of(err) == "token.issuer_mismatch"
    other = issue(keys["RS256"], issuer="https://evil.test")
    with pytest.raises(TokenVerificationError) as err:
        verify_token(other, jwks=jwks_of(keys["RS256"]), issuer=ISSUER, now=T0)
    assert code_of(err) == "token.issuer_mismatch"


def test_key_from_x5c_only_jwk_and_inconsistent_x5c(keys):
    key = keys["RS256"]
    token = issue(key)
    x5c_only = {"kty": "RSA", "kid": key.kid, "x5c": key.x5c()}  # how Azure publishes its keys
    assert verify_token(token, jwks={"keys": [x5c_only]}, issuer=ISSUER, now=T0).kid == key.kid
    mixed = {**key.public_jwk(), "x5c": keys["PS256"].x5c()}
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks={"keys": [mixed]}, issuer=ISSUER, now=T0)
    assert code_of(err) == "token.key_invalid"
    wrong_use = {**key.public_jwk(), "use": "enc"}
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks={"keys": [wrong_use]}, issuer=ISSUER, now=T0)
    assert code_of(err) == "token.key_invalid"


def test_header_x5c_must_match_the_jwks_key(keys):
    key = keys["ES256"]
    header = {"alg": "ES256", "kid": key.kid, "typ": "JWT", "x5c": keys["RS256"].x5c()}
    body = {"iss": ISSUER, "iat": int(T0.timestamp()), "exp": int((T0 + HOUR).timestamp())}
    registry = JWSRegistry(algorithms=["ES256"])
    registry.max_header_length = 10_000
    token = jws.serialize_compact(header, json.dumps(body).encode(), key.jose_key, registry=registry)
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks=jwks_of(key), issuer=ISSUER, now=T0)
    assert code_of(err) == "token.x5c_mismatch"
    bare = {k: v for k, v in key.public_jwk().items() if k not in ("x5c", "x5t#S256")}
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks={"keys": [bare]}, issuer=ISSUER, now=T0)
    assert code_of(err) == "token.x5c_mismatch"


def test_nonce_check(keys):
    token = issue(keys["ES256"], nonce="n-1")
    kw = {"jwks": jwks_of(keys["ES256"]), "issuer": ISSUER, "now": T0}
    assert verify_token(token, expected_nonce="n-1", **kw).nonce == "n-1"
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, expected_nonce="n-2", **kw)
    assert code_of(err) == "token.nonce_mismatch"


# -- draft policy tokens --------------------------------------------------------------------------
def test_draft_tokens_are_marked_and_refused_by_default(keys):
    key = keys["ES256"]
    token = issue(key, draft=True, include_x5c=False)
    header, body, _ = parts(token)
    assert body[DRAFT_CLAIM] is True
    assert header["crit"] == ["x-attestd-draft"] and header["x-attestd-draft"] is True
    kw = {"jwks": jwks_of(key), "issuer": ISSUER, "now": T0}
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, **kw)
    assert code_of(err) == "token.draft_policy"
    v = verify_token(token, accept_draft=True, **kw)
    assert v.is_draft and v.claims[DRAFT_CLAIM] is True
    # an RFC 7515 verifier that does not know the extension must refuse it (section 4.1.11): joserfc does
    with pytest.raises(UnsupportedHeaderError):
        jws.deserialize_compact(token, ECKey.import_key(key.public_jwk()), algorithms=["ES256"])
    # while the same key's normal tokens pass that generic verifier
    jws.deserialize_compact(
        issue(key, include_x5c=False), ECKey.import_key(key.public_jwk()), algorithms=["ES256"]
    )


def test_unknown_critical_header_is_refused(keys):
    key = keys["ES256"]
    header = {"alg": "ES256", "kid": key.kid, "crit": ["x-future"], "x-future": 1}
    body = {"iss": ISSUER, "exp": int((T0 + HOUR).timestamp())}
    registry = JWSRegistry(algorithms=["ES256"], strict_check_header=False)
    registry.header_registry["x-future"] = HeaderParameter("test", "int")
    token = jws.serialize_compact(header, json.dumps(body).encode(), key.jose_key, registry=registry)
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks=jwks_of(key), issuer=ISSUER, now=T0)
    assert code_of(err) == "token.unsupported_critical_header"


def test_missing_and_mistyped_time_claims(keys):
    key = keys["ES256"]
    for body, code in (
        ({"iss": ISSUER}, "token.claim_missing"),
        ({"iss": ISSUER, "exp": "tomorrow"}, "token.claim_invalid"),
        ({"iss": ISSUER, "exp": True}, "token.claim_invalid"),
        ({"iss": ISSUER, "exp": 2e9, "nbf": [1]}, "token.claim_invalid"),
    ):
        token = jws.serialize_compact(
            {"alg": "ES256", "kid": key.kid}, json.dumps(body).encode(), key.jose_key
        )
        with pytest.raises(TokenVerificationError) as err:
            verify_token(token, jwks=jwks_of(key), issuer=ISSUER, now=T0)
        assert code_of(err) == code, body


def test_errors_render_as_problem_details(keys):
    token = issue(keys["ES256"])
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks=jwks_of(keys["ES256"]), issuer=ISSUER, now=T0 + 2 * HOUR)
    problem = err.value.to_problem()
    assert problem["type"] == "urn:attestd:error:token.expired" and problem["status"] == 401


def test_leaf_certificate_in_x5c_is_the_signing_certificate(keys):
    token = issue(keys["PS256"])
    leaf = x509.load_der_x509_certificate(base64.b64decode(parts(token)[0]["x5c"][0]))
    assert leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == keys["PS256"].private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
