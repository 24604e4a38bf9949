#!/usr/bin/env bash
# Install the peers the benchmarks compare against, in their own virtualenv (bench/.venv-peers):
# Keylime 7.x (its measured-boot parser needs tpm2-tools and libefivar) and tpm2-tools itself.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
for p in tpm2-tools libefivar1; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
[ -x .venv-peers/bin/python ] || python3 -m venv .venv-peers
# keylime's wheel declares no dependencies; these are the ones its measured-boot path imports.
.venv-peers/bin/python -m pip install -q --disable-pip-version-check "keylime>=7,<8" pyyaml packaging
