"""x5c chains: a CA-issued signing certificate validates to the operator's CA; pinning; failures."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography import x509
from token_helpers import ISSUER, T0

from attestd.tokens import TokenVerificationError, generate_signing_key, issue_token, verify_token


def _issue(key, now=T0):
    return issue_token(
        {},
        signer=key,
        issuer=ISSUER,
        now=now,
        lifetime=timedelta(hours=1),
        attestation_type="tpm",
        policy_hash="h",
    )


def test_ca_issued_chain_in_x5c_validates_to_the_ca(ca_key, operator_ca):
    token = _issue(ca_key)
    header_x5c = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in _header(token)["x5c"]]
    assert header_x5c == list(ca_key.chain)
    v = verify_token(
        token,
        jwks={"keys": [ca_key.public_jwk()]},
        issuer=ISSUER,
        now=T0,
        trust_anchors=[operator_ca.chain[0]],
    )
    assert v.signing_chain == ca_key.chain


def test_chain_to_another_ca_is_refused(ca_key, other_ca):
    with pytest.raises(TokenVerificationError) as err:
        verify_token(
            _issue(ca_key), jwks={"keys": [ca_key.public_jwk()]}, issuer=ISSUER, now=T0,
            trust_anchors=[other_ca.chain[0]],
        )  # fmt: skip
    assert err.value.code == "token.chain_invalid"


def test_chain_must_be_valid_at_now(ca_key, operator_ca):
    token = _issue(ca_key)
    late = T0 + timedelta(days=6 * 365)  # the leaf (5 years) has expired, the CA (10 years) has not
    with pytest.raises(TokenVerificationError) as err:
        verify_token(
            token, jwks={"keys": [ca_key.public_jwk()]}, issuer=ISSUER, now=late, leeway=timedelta(days=9999),
            trust_anchors=[operator_ca.chain[0]],
        )  # fmt: skip
    assert err.value.code == "token.chain_invalid"


def test_self_signed_certificate_can_be_pinned(keys):
    key = keys["RS256"]
    token = _issue(key)
    kw = {"jwks": {"keys": [key.public_jwk()]}, "issuer": ISSUER, "now": T0}
    verify_token(token, trust_anchors=[key.certificate], **kw)
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, trust_anchors=[keys["ES256"].certificate], **kw)
    assert err.value.code == "token.chain_invalid"


def test_certificate_for_another_issuer_is_refused(operator_ca):
    key = generate_signing_key("https://other.test", now=T0, alg="ES256", ca=operator_ca)
    token = _issue(key)  # iss claim says ISSUER, certificate says other.test
    with pytest.raises(TokenVerificationError) as err:
        verify_token(
            token,
            jwks={"keys": [key.public_jwk()]},
            issuer=ISSUER,
            now=T0,
            trust_anchors=[operator_ca.chain[0]],
        )
    assert err.value.code == "token.chain_invalid"


def _header(token: str) -> dict:
    import json

    seg = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
