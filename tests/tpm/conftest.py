"""Fixtures for the TPM tests: one swtpm per session with EKs and AKs of every kind used.

Skips (not fails) the swtpm tests when swtpm or tpm2-tools are missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from attestd.testing.swtpm import SwTPM, TPMKey, swtpm_available
from tpm_support import AK_KINDS



@dataclass
class Keys:
    tpm: SwTPM
    eks: dict[str, TPMKey]
    aks: dict[str, TPMKey]


@pytest.fixture(scope="session")
def tpm():
    if not swtpm_available():
        pytest.skip("swtpm / tpm2-tools not installed")
    with SwTPM() as t:
        yield t


@pytest.fixture(scope="session")
def keys(tpm) -> Keys:
    eks = {alg: tpm.create_ek(alg) for alg in ("rsa", "ecc")}
    aks = {name: tpm.create_ak(eks[ek], alg, hash=h, scheme=s) for name, (ek, alg, h, s) in AK_KINDS.items()}
    return Keys(tpm, eks, aks)
