#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks.
#   scripts/postgres.sh start DIR [PORT]   initdb DIR (once), start it on 127.0.0.1:PORT, print the URL
#   scripts/postgres.sh stop DIR
# Runs the server as an unprivileged user when started as root (initdb refuses root).
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?data directory}; port=${3:-55432}
bin=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bin="$d"; done
if [ -z "$bin" ] && command -v initdb >/dev/null; then bin=$(dirname "$(command -v initdb)"); fi
if [ -z "$bin" ]; then echo "postgres.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 3; fi
as=()
if [ "$(id -u)" -eq 0 ]; then as=(runuser -u nobody --); fi
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown -R nobody:nogroup "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      "${as[@]}" "$bin/initdb" -D "$dir" -U attestd --auth=trust -E UTF8 >/dev/null
    fi
    "${as[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
    "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U attestd attestd 2>/dev/null || true
    echo "postgresql://attestd@127.0.0.1:$port/attestd"
    ;;
  stop)
    "${as[@]}" "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  *) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
