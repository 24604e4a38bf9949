"""Fixtures for attestd.tokens: a few keys generated once per session (RSA generation is slow)."""

from __future__ import annotations

import pytest
from token_helpers import ISSUER, T0, make_ca

from attestd.tokens import CertificateAuthority, SigningKey, generate_signing_key


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    """One self-signed key per algorithm, issuer ISSUER, created at T0."""
    return {alg: generate_signing_key(ISSUER, now=T0, alg=alg) for alg in ("RS256", "PS256", "ES256")}


@pytest.fixture(scope="session")
def operator_ca() -> CertificateAuthority:
    return make_ca("Attestd Test Operator CA", T0)


@pytest.fixture(scope="session")
def other_ca() -> CertificateAuthority:
    return make_ca("Some Other CA", T0)


@pytest.fixture(scope="session")
def ca_key(operator_ca: CertificateAuthority) -> SigningKey:
    """An ES256 key whose certificate the operator CA issued."""
    return generate_signing_key(ISSUER, now=T0, alg="ES256", ca=operator_ca)
