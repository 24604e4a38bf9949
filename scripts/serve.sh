#!/usr/bin/env bash
# Set up Attestd on a fresh Debian machine and start it.
# Until the HTTP service lands, this installs the CLI and shows what it can do.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/attestd --help
