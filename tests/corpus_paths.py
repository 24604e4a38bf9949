"""Where tests find their inputs. Import from here (``from corpus_paths import CORPUS``), never from
``conftest``: test folders are not packages, so several modules are named ``conftest``."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("ATTESTD_CORPUS", ROOT.parent / "shared" / "corpus"))
FIXTURES = ROOT / "tests" / "fixtures"
