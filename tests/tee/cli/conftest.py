"""Fixtures for the TEE front, Azure CVM, collateral-fetcher and ``attestd tee`` CLI tests.

Corpus files are read in place (never copied); verification times sit inside the validity windows
INDEX.md gives for each file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from attestd.tee.evidence import TrustAnchors


@pytest.fixture(scope="session")
def anchors(corpus: Path) -> TrustAnchors:
    """AMD Milan + Genoa KDS chains (ASK + ARK) and the Intel SGX Root CA."""
    return TrustAnchors.load(
        amd=[corpus / "go-sev-guest" / "ask_ark_milan_vcek.pem", corpus / "go-sev-guest" / "ask_ark_genoa.pem"],
        intel_root=corpus / "go-tdx-guest" / "intel_sgx_root_ca.pem",
    )


@pytest.fixture(scope="session")
def az_snp(corpus: Path) -> Path:
    return corpus / "trustee" / "az-snp-vtpm"


@pytest.fixture(scope="session")
def az_tdx(corpus: Path) -> Path:
    return corpus / "trustee" / "az-tdx-vtpm"

