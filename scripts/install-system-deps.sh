#!/usr/bin/env bash
# Install the Debian packages Attestd's tests and fixture scripts need.
# Idempotent and silent when everything is already present.
#
# PostgreSQL (the replica tests start a throwaway server with scripts/postgres.sh): the server
# counts as present when initdb, pg_ctl and postgres are in /usr/lib/postgresql/*/bin or on PATH,
# however they were installed. Otherwise Debian's "postgresql" is installed without its default
# cluster (no server left running on port 5432: the tests start their own).
set -euo pipefail
PKGS=(python3 python3-venv python3-pip swtpm swtpm-tools tpm2-tools libtss2-dev pkg-config
      qemu-system-x86 ovmf cpio mtools dosfstools busybox-static xz-utils zstd openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

have_postgres_server() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && return 0
  done
  command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v postgres >/dev/null
}
need_postgres=0
have_postgres_server || need_postgres=1

if [ ${#missing[@]} -eq 0 ] && [ $need_postgres -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-system-deps.sh: not a Debian system; install by hand: ${missing[*]}" \
       "$([ $need_postgres -eq 1 ] && echo 'a PostgreSQL server (initdb, pg_ctl, postgres)')" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ $need_postgres -eq 1 ]; then
  # postgresql-common first, told not to create (and start) a "main" cluster, then the server
  $SUDO apt-get install -y -qq --no-install-recommends postgresql-common
  conf=/etc/postgresql-common/createcluster.conf
  if [ -f "$conf" ] && ! grep -q '^create_main_cluster *= *false' "$conf"; then
    $SUDO sed -i 's/^#\? *create_main_cluster *=.*/create_main_cluster = false/' "$conf"
    grep -q '^create_main_cluster' "$conf" || echo "create_main_cluster = false" | $SUDO tee -a "$conf" >/dev/null
  fi
  $SUDO apt-get install -y -qq --no-install-recommends postgresql
fi
