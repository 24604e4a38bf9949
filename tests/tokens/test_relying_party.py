"""Relying parties that know only the issuer URL, against a real HTTP server on 127.0.0.1.

The server serves :func:`openid_configuration` and :func:`jwks` exactly as the service will. Two
relying parties: :func:`fetch_and_verify` (httpx) and PyJWT (urllib via ``jwt.PyJWKClient``).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography import x509
from token_helpers import make_ca

from attestd.tokens import (
    DRAFT_CLAIM,
    DiscoveryError,
    KeySet,
    RotationPolicy,
    TokenVerificationError,
    fetch_and_verify,
    generate_signing_key,
    issue_token,
    jwks,
    openid_configuration,
)


class _Server:
    """A tiny JSON server: ``routes`` maps a path to a JSON document (mutable while running)."""

    def __init__(self) -> None:
        routes: dict[str, object] = {}
        self.routes = routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                doc = routes.get(self.path)
                body = json.dumps(doc).encode() if doc is not None else b'{"error":"not found"}'
                self.send_response(200 if doc is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, keyset: KeySet, now: datetime) -> None:
        self.routes["/.well-known/openid-configuration"] = openid_configuration(self.issuer)
        self.routes["/certs"] = jwks(keyset, now)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def world():
    """Server + a key set whose RS256 key signs now and whose ES256 key was just published."""
    server = _Server()
    now = datetime.now(UTC)  # PyJWT checks exp/nbf against the real clock
    ca = make_ca("RP Test CA", now - timedelta(days=1))
    rs = generate_signing_key(server.issuer, now=now - timedelta(days=1), alg="RS256", ca=ca)
    es = generate_signing_key(server.issuer, now=now - timedelta(hours=1), alg="ES256")
    policy = RotationPolicy(pre_publication=timedelta(days=1), max_token_lifetime=timedelta(hours=8))
    keyset = KeySet.create(rs, now=now - timedelta(days=1), policy=policy).rotate(
        now - timedelta(hours=1), es
    )
    server.publish(keyset, now)
    yield server, keyset, now, ca
    server.close()


def _issue(server, keyset, now, **kw):
    return issue_token(
        {"secureboot": True},
        signer=keyset.active_signer(now),
        issuer=server.issuer,
        now=now,
        lifetime=timedelta(minutes=10),
        attestation_type="tpm",
        policy_hash="cG9saWN5",
        nonce="rp-nonce",
        **kw,
    )


def test_fetch_and_verify_with_discovery(world):
    server, keyset, now, _ = world
    token = _issue(server, keyset, now)
    with httpx.Client(timeout=5) as client:
        v = fetch_and_verify(token, server.issuer, client, now=now, expected_nonce="rp-nonce")
    assert v.kid == keyset.active_signer(now).kid and v.alg == "RS256"
    assert v.claims["secureboot"] is True and v.issuer == server.issuer


def test_fetch_and_verify_validates_chain_to_operator_ca(world):
    server, keyset, now, ca = world
    token = _issue(server, keyset, now)
    with httpx.Client(timeout=5) as client:
        v = fetch_and_verify(token, server.issuer, client, now=now, trust_anchors=[ca.chain[0]])
        assert len(v.signing_chain) == 2
        with pytest.raises(TokenVerificationError) as err:
            fetch_and_verify(
                token, server.issuer, client, now=now, trust_anchors=[make_ca("x", now).chain[0]]
            )
        assert err.value.code == "token.chain_invalid"


def test_discovery_failures(world):
    server, keyset, now, _ = world
    token = _issue(server, keyset, now)
    with httpx.Client(timeout=5) as client:
        # the configuration must name the issuer we asked for (OIDC Discovery 4.3)
        with pytest.raises(DiscoveryError) as err:
            fetch_and_verify(token, server.issuer + "/", client, now=now)
        assert err.value.code == "discovery.issuer_mismatch"
        with pytest.raises(DiscoveryError) as err:
            fetch_and_verify(token, server.issuer + "/tenant", client, now=now)
        assert err.value.code == "discovery.fetch_failed" and err.value.details["status"] == 404
        with pytest.raises(DiscoveryError) as err:
            fetch_and_verify(token, "http://127.0.0.1:9", client, now=now)  # nothing listens on port 9
        assert err.value.code == "discovery.fetch_failed"
        # a JWKS without the signer: unknown kid
        saved = server.routes["/certs"]
        server.routes["/certs"] = {"keys": []}
        try:
            with pytest.raises(TokenVerificationError) as err:
                fetch_and_verify(token, server.issuer, client, now=now)
            assert err.value.code == "token.unknown_kid"
        finally:
            server.routes["/certs"] = saved


def _pyjwt_relying_party(token: str, issuer: str) -> dict:
    """What a third-party relying party does, knowing only ``issuer``: discovery, JWKS, PyJWT."""
    with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=5) as response:
        config = json.load(response)
    assert config["issuer"] == issuer
    signing_key = jwt.PyJWKClient(config["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=config["id_token_signing_alg_values_supported"],
        issuer=issuer,
        options={"require": ["exp", "iat", "nbf", "iss"]},
    )
    return claims


def test_pyjwt_relying_party_knowing_only_the_issuer(world):
    server, keyset, now, _ = world
    token = _issue(server, keyset, now)
    claims = _pyjwt_relying_party(token, server.issuer)
    assert claims["x-ms-attestation-type"] == "tpm" and claims["nonce"] == "rp-nonce"
    assert claims["secureboot"] is True
    # tampering is caught by PyJWT too
    h, p, s = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    body["secureboot"] = False
    forged = ".".join([h, base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode(), s])
    with pytest.raises(jwt.InvalidSignatureError):
        _pyjwt_relying_party(forged, server.issuer)


def test_pyjwt_verifies_with_the_x5c_key_after_validating_the_chain(world):
    server, keyset, now, ca = world
    token = _issue(server, keyset, now)
    header = jwt.get_unverified_header(token)
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
    # the relying party trusts the operator CA: leaf issued by it, CN is the issuer
    chain[0].verify_directly_issued_by(ca.chain[0])
    assert chain[1] == ca.chain[0]
    assert chain[0].subject.rfc4514_string() == "CN=" + server.issuer
    claims = jwt.decode(token, chain[0].public_key(), algorithms=[header["alg"]], issuer=server.issuer)
    assert claims["iss"] == server.issuer


def test_pyjwt_sees_the_successor_after_rotation(world):
    """After the switch, tokens signed by the pre-published ES256 key verify through the same JWKS."""
    server, keyset, now, _ = world
    later = now + timedelta(days=1)
    successor = keyset.active_signer(later)
    assert successor.alg == "ES256"
    # the JWKS already served at `now` (before the switch) contains the successor
    assert successor.kid in {k["kid"] for k in server.routes["/certs"]["keys"]}
    token = issue_token(
        {}, signer=successor, issuer=server.issuer, now=later, lifetime=timedelta(minutes=5),
        attestation_type="tpm", policy_hash="cG9saWN5",
    )  # fmt: skip
    signing_key = jwt.PyJWKClient(server.issuer + "/certs", cache_keys=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],
        issuer=server.issuer,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims["iss"] == server.issuer


def test_draft_tokens_are_told_apart_by_a_relying_party(world):
    server, keyset, now, _ = world
    token = _issue(server, keyset, now, draft=True)
    with httpx.Client(timeout=5) as client:
        with pytest.raises(TokenVerificationError) as err:
            fetch_and_verify(token, server.issuer, client, now=now)
        assert err.value.code == "token.draft_policy"
        assert fetch_and_verify(token, server.issuer, client, now=now, accept_draft=True).is_draft
    # PyJWT enforces RFC 7515 "crit": a relying party that knows nothing about drafts refuses them
    with pytest.raises(jwt.InvalidTokenError, match="x-attestd-draft"):
        _pyjwt_relying_party(token, server.issuer)
    # one that wants to look tells them apart by the protected header or the claim
    header_seg, payload_seg, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_seg + "=" * (-len(header_seg) % 4)))
    assert header["crit"] == ["x-attestd-draft"] and header["x-attestd-draft"] is True
    assert (
        json.loads(base64.urlsafe_b64decode(payload_seg + "=" * (-len(payload_seg) % 4)))[DRAFT_CLAIM] is True
    )
