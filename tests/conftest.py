"""Shared fixtures.

``corpus``: the folder of real public evidence beside the project (``../shared/corpus``). Tests that
use it skip cleanly when it is absent; its files are read in place, never copied here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("ATTESTD_CORPUS", ROOT.parent / "shared" / "corpus"))
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "INDEX.md").is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


def corpus_file(*parts: str) -> Path:
    """Path of a corpus file for use in parametrisation; the test skips if the corpus is absent."""
    return CORPUS.joinpath(*parts)


def load_json(path: Path):
    return json.loads(path.read_text())
