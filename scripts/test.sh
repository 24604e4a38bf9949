#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
#   bash scripts/test.sh            # whole suite
#   bash scripts/test.sh -k quote   # extra arguments go to pytest
# The suite includes one real QEMU boot of Debian's signed chain (~1 min, downloads ~72 MB of
# Debian packages once into var/cache); ATTESTD_SLOW_TESTS=0 skips it for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
export ATTESTD_SLOW_TESTS="${ATTESTD_SLOW_TESTS:-1}"
exec .venv/bin/python -m pytest "$@"
