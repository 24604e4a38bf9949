#!/usr/bin/env bash
# Regenerate the QEMU boot fixtures: scripts/qemu-boot/make-fixtures.sh [OUTDIR] [VARIANT...]
# OUTDIR defaults to tests/fixtures/qemu; variants default to sb sb-second sb-initsh nosb.
# Downloads are cached in $ATTESTD_QEMU_CACHE (default <repo>/var/cache/qemu-boot, git-ignored).
set -euo pipefail
exec python3 "$(dirname "$(readlink -f "$0")")/make_fixtures.py" "$@"
