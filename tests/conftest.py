"""Shared fixtures.

``corpus``: the folder of real public evidence beside the project (``../shared/corpus``). Tests that
use it skip cleanly when it is absent; its files are read in place, never copied here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus_paths import CORPUS


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "INDEX.md").is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS
