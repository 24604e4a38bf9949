#!/usr/bin/env bash
# The fleet loop with a software TPM, from a fresh checkout:
#   enroll -> trusted with an identity certificate -> break the boot state -> quarantined with an
#   incident that says why -> remediate -> trusted again.
#   bash scripts/fleet-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
A=.venv/bin/attestd
work=$(mktemp -d /tmp/attestd-demo-XXXX)
port=18${RANDOM:0:3}; tpm_port=23${RANDOM:0:2}1
cleanup() { kill "$serve_pid" "$swtpm_pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the service (SQLite in $work/data, port $port)"
$A serve --data-dir "$work/data" --port "$port" 2>"$work/serve.log" & serve_pid=$!
for _ in $(seq 60); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.5; done
export ATTESTD_SERVER="http://127.0.0.1:$port"
export ATTESTD_TOKEN=$(.venv/bin/python -c "import json,sys;print(json.load(open(sys.argv[1]))['adminToken'])" "$work/data/initial-credentials.json")

start_tpm() {
  swtpm socket --tpm2 --tpmstate dir="$work/tpm" --server type=tcp,port=$tpm_port \
    --ctrl type=tcp,port=$((tpm_port + 1)) --flags startup-clear & swtpm_pid=$!
  sleep 1
  # the measurements of a real boot (the project's QEMU boot of Debian's signed shim, GRUB, kernel)
  .venv/bin/python - "$TCTI" <<'PY'
import sys, subprocess
from attestd.eventlog import parse
log = parse(open("tests/fixtures/qemu/sb/binary_bios_measurements", "rb").read())
specs = [f"{e.pcr}:sha256={e.digests['sha256'].hex()}" for e in log.events if e.event_type != 3]
for i in range(0, len(specs), 16):
    subprocess.run(["tpm2_pcrextend", *specs[i:i + 16]], check=True, env={"TPM2TOOLS_TCTI": sys.argv[1], "PATH": "/usr/bin:/bin"})
PY
}
mkdir -p "$work/tpm"
TCTI="swtpm:host=127.0.0.1,port=$tpm_port"
start_tpm
LOG=tests/fixtures/qemu/sb/binary_bios_measurements
AGENT=(--tcti "$TCTI" --state-dir "$work/agent")

step "enroll the host (EK, AK, credential activation)"
$A agent enroll "${AGENT[@]}" --name demo-host
HOST=$(.venv/bin/python -c "import json,sys;print(json.load(open(sys.argv[1]))['hostId'])" "$work/agent/agent.json")

step "attest: trusted, with an identity certificate for a key inside the TPM"
$A agent attest --once "${AGENT[@]}" --eventlog $LOG --ima ''
curl -sf "$ATTESTD_SERVER/tenants/default/ca.pem" > "$work/ca.pem"
openssl verify -CAfile "$work/ca.pem" "$work/agent/identity.pem"
$A hosts list

step "break the boot state: extend PCR 8 (the GRUB commands) behind the log's back"
TPM2TOOLS_TCTI=$TCTI tpm2_pcrextend 8:sha256=$(printf '42%.0s' $(seq 32))
$A agent attest --once "${AGENT[@]}" --eventlog $LOG --ima '' || true
$A hosts show "$HOST"
$A incidents list --open

step "remediate (power-cycle the TPM and boot again), then attest: trusted again"
$A hosts remediate "$HOST"
kill "$swtpm_pid"; wait "$swtpm_pid" 2>/dev/null || true
start_tpm
$A agent attest --once "${AGENT[@]}" --eventlog $LOG --ima ''
$A hosts show "$HOST"
