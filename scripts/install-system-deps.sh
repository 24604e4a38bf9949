#!/usr/bin/env bash
# Install the Debian packages Attestd's tests and fixture scripts need.
# Idempotent: does nothing when everything is already present.
set -euo pipefail
PKGS=(python3 python3-venv python3-pip swtpm swtpm-tools tpm2-tools libtss2-dev pkg-config
      qemu-system-x86 ovmf cpio mtools dosfstools busybox-static xz-utils zstd postgresql openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
