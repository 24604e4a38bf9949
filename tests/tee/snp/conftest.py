"""Fixtures for the SEV-SNP tests: corpus files (read in place) and trusted ARKs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attestd.tee.snp.certs import load_certificates

# Verification times inside every certificate's validity (INDEX.md: "verify at about 2022-09-24").
AT_GO_SEV_GUEST = datetime(2022, 9, 25, tzinfo=UTC)
AT_TRUSTEE = datetime(2024, 6, 1, tzinfo=UTC)
AT_AZURE_2025 = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def snp_dir(corpus: Path) -> Path:
    return corpus / "go-sev-guest"


@pytest.fixture(scope="session")
def trustee_dir(corpus: Path) -> Path:
    return corpus / "trustee"


@pytest.fixture(scope="session")
def gsg_expected(snp_dir: Path) -> dict:
    return json.loads((snp_dir / "expected.json").read_text())


@pytest.fixture(scope="session")
def milan_chain(snp_dir: Path) -> bytes:
    return (snp_dir / "ask_ark_milan_vcek.pem").read_bytes()


@pytest.fixture(scope="session")
def genoa_chain(snp_dir: Path) -> bytes:
    return (snp_dir / "ask_ark_genoa.pem").read_bytes()


@pytest.fixture(scope="session")
def arks(snp_dir: Path):
    """AMD's Milan, Genoa and Turin ARKs: the second certificate of each KDS cert_chain bundle."""
    out = []
    for name in ("ask_ark_milan_vcek.pem", "ask_ark_genoa.pem", "ask_ark_turin_vcek.pem"):
        _ask, ark = load_certificates((snp_dir / name).read_bytes())
        out.append(ark)
    return out


@pytest.fixture(scope="session")
def milan_ark(arks):
    return arks[0]


@pytest.fixture(scope="session")
def genoa_ark(arks):
    return arks[1]
