#!/usr/bin/env bash
# Reproduce the README's performance numbers: sets up Attestd and its peers, then runs every benchmark.
#   bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
bash bench/setup-peers.sh
echo "## Event logs: parse + replay"
.venv/bin/python bench/eventlog_bench.py
echo
echo "## IMA: replay throughput"
.venv/bin/python bench/ima_bench.py
echo
echo "## Claims and policy per attestation"
.venv/bin/python bench/claims_bench.py
echo
echo "## TEE evidence: verifications/s"
.venv/bin/python bench/tee_bench.py
echo
echo "## The service under load (SQLite and PostgreSQL)"
pg=$(mktemp -d /tmp/attestd-pg-XXXX); chmod 755 "$pg"
url=$(bash scripts/postgres.sh start "$pg/data")
.venv/bin/python bench/load/load_bench.py --requests 2000 --concurrency 4 --workers 1 2 --database-url "$url" --profile
bash scripts/postgres.sh stop "$pg/data"
