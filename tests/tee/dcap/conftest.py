"""Fixtures for the DCAP (SGX / TDX) tests: corpus files are read in place, never copied."""

from __future__ import annotations

from pathlib import Path

import pytest




@pytest.fixture(scope="session")
def root_pem(corpus: Path) -> bytes:
    return (corpus / "go-tdx-guest" / "intel_sgx_root_ca.pem").read_bytes()


@pytest.fixture(scope="session")
def read(corpus: Path):
    def _read(rel: str) -> bytes:
        return (corpus / rel).read_bytes()

    return _read
