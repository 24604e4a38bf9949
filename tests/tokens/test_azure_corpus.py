"""Interop: a real Microsoft Azure Attestation token (RS256, key published as x5c only) verifies."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from attestd.tokens import TokenVerificationError, verify_token

pytestmark = pytest.mark.corpus

MAA_ISSUER = "https://sharedwus.wus.attest.azure.net"
IAT, EXP = 1654037277, 1654066077
INSIDE = datetime.fromtimestamp(IAT + 3600, UTC)


@pytest.fixture(scope="module")
def maa(corpus):
    folder = corpus / "azure-sdk-cpp"
    return (
        (folder / "maa_token.jwt").read_text().strip(),
        json.loads((folder / "maa_jwks.json").read_text()),
        folder,
    )


def test_real_maa_token_verifies_and_claims_are_readable(maa):
    token, maa_jwks, folder = maa
    v = verify_token(token, jwks=maa_jwks, issuer=MAA_ISSUER, now=INSIDE)
    assert v.alg == "RS256"
    assert v.kid == "XxRc2vLh1E5FrsNawnRH3PzuFgqg3q7NvCdnjoJHBGE="
    assert v.header["jku"] == MAA_ISSUER + "/certs"
    assert v.issued_at == datetime.fromtimestamp(IAT, UTC)
    assert v.expires_at == datetime.fromtimestamp(EXP, UTC)
    assert v.attestation_type == "sgx"
    assert v.policy_hash == "bROrN897ZfWmWY2V0FLUlu3uwk5xatGnKYHn3zBbSlw"
    assert v.claims["x-ms-ver"] == "1.0" and not v.is_draft
    assert (
        v.claims["x-ms-sgx-mrenclave"] == "292a1f4b519e46627eb2478a3d9851405653c5b4b0a6925de843834d9216850e"
    )
    assert v.claims["x-ms-sgx-mrsigner"] == "4aea5f9a0ed04b11f889aadfe6a1d376213a29a95a85ce7337ae6f7fece6610c"
    assert v.claims["x-ms-sgx-product-id"] == 1 and v.claims["x-ms-sgx-svn"] == 1
    assert v.claims["x-ms-sgx-is-debuggable"] is True
    quote = (folder / "maa_sgx_quote.bin").read_bytes()
    assert v.claims["x-ms-sgx-collateral"]["quotehash"] == hashlib.sha256(quote).hexdigest()
    ehd = v.claims["x-ms-sgx-ehd"]
    assert (
        base64.urlsafe_b64decode(ehd + "=" * (-len(ehd) % 4))
        == (folder / "maa_runtime_data.bin").read_bytes()
    )
    # the key came from the JWKS entry's x5c: a self-signed certificate whose CN is the issuer
    (cert,) = v.signing_chain
    assert cert.subject.rfc4514_string() == "CN=" + MAA_ISSUER
    verify_token(token, jwks=maa_jwks, issuer=MAA_ISSUER, now=INSIDE, trust_anchors=[cert])


def test_real_maa_token_time_window(maa):
    token, maa_jwks, _ = maa
    kw = {"jwks": maa_jwks, "issuer": MAA_ISSUER}
    verify_token(token, now=datetime.fromtimestamp(IAT, UTC), **kw)
    verify_token(token, now=datetime.fromtimestamp(EXP, UTC) - timedelta(microseconds=1), **kw)
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, now=datetime.fromtimestamp(EXP, UTC), **kw)
    assert err.value.code == "token.expired"
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, now=datetime.fromtimestamp(IAT - 1, UTC), **kw)
    assert err.value.code == "token.not_yet_valid"


def test_real_maa_token_tampered_or_misattributed(maa):
    token, maa_jwks, _ = maa
    h, p, s = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    body["x-ms-sgx-is-debuggable"] = False
    forged = ".".join([h, base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode(), s])
    with pytest.raises(TokenVerificationError) as err:
        verify_token(forged, jwks=maa_jwks, issuer=MAA_ISSUER, now=INSIDE)
    assert err.value.code == "token.signature_invalid"
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks=maa_jwks, issuer="https://sharedeus.eus.attest.azure.net", now=INSIDE)
    assert err.value.code == "token.issuer_mismatch"
    # the other two keys of the same JWKS must not verify it
    others = {"keys": [{**k, "kid": maa_jwks["keys"][0]["kid"]} for k in maa_jwks["keys"][1:2]]}
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token, jwks=others, issuer=MAA_ISSUER, now=INSIDE)
    assert err.value.code == "token.signature_invalid"
