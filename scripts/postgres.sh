#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, benchmarks and trying replicas (fsync off: never for data
# you want to keep).
#   scripts/postgres.sh start DIR [PORT]   initdb DIR (once), start it on 127.0.0.1:PORT (default: a
#                                          free port, then the same one on every restart) and on a
#                                          unix socket in DIR; print the URL of database "attestd"
#   scripts/postgres.sh url DIR            print that URL again
#   scripts/postgres.sh stop DIR           stop it (nothing to do when it is not running)
# Server binaries are looked up in /usr/lib/postgresql/*/bin (Debian's packages, newest first), then
# on PATH. initdb refuses to run as root: as root the cluster belongs to the user "postgres" (created
# by Debian's packages) or else "nobody", and DIR's parents must be searchable by that user.
# Exit status 3: no server binaries (scripts/install-system-deps.sh installs them).
set -euo pipefail
cmd=${1:-}; dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then echo "usage: $0 start DIR [PORT] | url DIR | stop DIR" >&2; exit 2; fi
dir=$(realpath -m "$dir")

bin=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then bin=$d; break; fi
done
if [ -z "$bin" ] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
  bin=$(dirname "$(command -v pg_ctl)")
fi
if [ -z "$bin" ]; then
  echo "postgres.sh: no PostgreSQL server binaries (initdb, pg_ctl, postgres) in /usr/lib/postgresql/*/bin or on PATH;" \
       "scripts/install-system-deps.sh installs them (apt-get install postgresql)" >&2
  exit 3
fi

user=""
if [ "$(id -u)" -eq 0 ]; then
  if id postgres >/dev/null 2>&1; then user=postgres; else user=nobody; fi
fi
as() {  # run "$@" as the cluster's owner
  if [ -z "$user" ]; then "$@"
  elif command -v runuser >/dev/null; then runuser -u "$user" -- "$@"
  else su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"
  fi
}
running() { [ -f "$dir/postmaster.pid" ] && as "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; }
url() { echo "postgresql://attestd@127.0.0.1:$(cat "$dir/attestd.port")/attestd"; }

case "$cmd" in
  start)
    if running; then url; exit 0; fi
    mkdir -p "$dir"
    if [ -n "$user" ]; then
      chown "$user:" "$dir"
      chmod 0700 "$dir"
      if ! as test -w "$dir"; then
        echo "postgres.sh: $dir is not reachable by user $user (its parent directories must be searchable)" >&2
        exit 2
      fi
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      log=$(mktemp)
      as "$bin/initdb" -D "$dir" -U attestd --auth=trust -E UTF8 --locale=C --no-sync >"$log" 2>&1 \
        || { cat "$log" >&2; rm -f "$log"; exit 1; }
      rm -f "$log"
      # the database "attestd", created in single-user mode: no client programs needed
      echo "CREATE DATABASE attestd" | as "$bin/postgres" --single -D "$dir" -c fsync=off postgres >/dev/null 2>&1
    fi
    port=${3:-}
    [ -n "$port" ] || port=$(cat "$dir/attestd.port" 2>/dev/null || true)
    [ -n "$port" ] || port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" | as tee "$dir/attestd.port" >/dev/null
    as "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $port -k $dir \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null \
      || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    url
    ;;
  url)
    [ -f "$dir/attestd.port" ] || { echo "postgres.sh: no server in $dir (start it first)" >&2; exit 1; }
    url
    ;;
  stop)
    if running; then as "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null; fi
    ;;
  *) echo "usage: $0 start DIR [PORT] | url DIR | stop DIR" >&2; exit 2 ;;
esac
