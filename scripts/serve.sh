#!/usr/bin/env bash
# Set up Attestd on a fresh Debian machine and start the service on its embedded default:
# SQLite (WAL) in ./var/attestd, listening on 127.0.0.1:8080. The first start creates the
# tenant 'default' and prints its admin token once (also saved, mode 0600, in the data dir).
#   bash scripts/serve.sh [attestd serve options, e.g. --host 0.0.0.0 --port 8443]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/attestd serve "$@"
