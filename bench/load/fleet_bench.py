"""Fleet scale: how many hosts attesting every 5 minutes one 2-core box holds (SQLite).

    .venv/bin/python bench/load/fleet_bench.py [--hosts 8] [--requests 1500] [--concurrency 4] [--workers 2]
                                               [--signing-alg RS256|PS256|ES256] [--profile [--profile-out F]]

Each simulated host is a real swtpm holding the PCRs of the project's QEMU boot, enrolled through
the real protocol (EK, AK, ActivateCredential); every attestation is what the agent sends: a quote
over a fresh single-use nonce, the 15 KB event log, and an identity key certified by the AK over the
nonce - so the server verifies, evaluates the default policy (linux-secure-boot with aikValidated
from enrollment), updates the host, and issues a new identity certificate each time. Evidence is
made before the timed phase (round-robin over the hosts; a quote needs its nonce first); 100 cycles
warm the server up (on new connections, so every worker gets some), then the measured ones are sent
from ``--concurrency`` keep-alive connections, each attestation after a challenge request of its
own, as the agent asks for a nonce each interval: the server does a host's whole cycle, and a
latency is the pair's.

The server runs as ``attestd serve --workers N`` with ``ATTESTD_LOG_LEVEL=warning`` (no access log;
see docs/fleet.md, "Scale").

Reported: attestations/s (with ``--rate``: the arrivals the run offered, all of which were
answered), p50/p99, and the fleet size that rate sustains at a 5-minute interval (rate x 300) - if
p99 stays under 100 ms and every answer is 200; the share of CPU the hypervisor took from this VM
meanwhile, the load generator's own CPU per cycle (it runs on the same cores as the server), and
what the records took in the database (bytes a record with its indexes, the blobs they share). ``--profile`` then sends the same load to a one-worker
server under py-spy and prints where a host attestation's time goes (``--profile-out`` keeps the
raw samples).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from load_bench import (
    LOG,
    STAGES,
    Server,
    Steal,
    _pct,
    print_profile,
    run,
    sample_server,
    send_all,
    send_at_rate,
)

from attestd.agent.client import Agent, AgentConfig
from attestd.agent.tpm import AgentTPM
from attestd.testing.bootreplay import replay_into_swtpm
from attestd.testing.swtpm import SwTPM

SELECTION = "sha256:0,1,2,3,4,5,6,7,8,9,14"


class SimHost:
    def __init__(self, server: Server, state_dir: Path, index: int) -> None:
        self.swtpm = SwTPM()
        self.swtpm.__enter__()
        replay_into_swtpm(self.swtpm, LOG.read_bytes())
        self.tpm = AgentTPM(self.swtpm.tcti)
        token = server.admin["Authorization"].split()[1]
        self.agent = Agent(AgentConfig(server=server.url, tenant="default", token=token, state_dir=state_dir,
                                       eventlog=str(LOG), ima=None, name=f"sim-{index}"), self.tpm)
        self.host = self.agent.enroll()
        self.ak = self.tpm.ak("ecc")
        self.identity = self.tpm.identity_key("ecc")
        self.pcrs = self.tpm.read_pcrs(SELECTION)
        self.log = base64.b64encode(LOG.read_bytes()).decode()

    def body(self, nonce: str) -> tuple[str, dict]:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        quote, sig = self.tpm.quote(self.ak, raw, SELECTION)
        certify, csig = self.tpm.certify(self.identity, self.ak, raw)
        b = lambda d: base64.b64encode(d).decode()
        return self.host, {"ak": b(self.ak.public), "quote": b(quote), "signature": b(sig), "nonce": nonce,
                           "pcrs": {k: {str(i): v.hex() for i, v in vals.items()} for k, vals in self.pcrs.items()},
                           "eventLog": self.log,
                           "identity": {"public": b(self.identity.public), "certifyInfo": b(certify),
                                        "signature": b(csig)}}

    def close(self) -> None:
        self.tpm.close()
        self.swtpm.__exit__(None, None, None)


async def arrive_hosts(url: str, items: list[tuple[str, dict]], rate: float):
    """Each (host, evidence) once, host cycles arriving at ``rate`` a second (load_bench.send_at_rate)."""
    return await send_at_rate(url, [(f"/tenants/default/hosts/{host}/attest", json.dumps(doc).encode())
                                    for host, doc in items], rate, challenge="/tenants/default/challenge")


async def blast_hosts(url: str, items: list[tuple[str, dict]], concurrency: int):
    """Send every (host, evidence) once, in generation order (load_bench's client), each after a
    challenge request: the two requests an agent makes each interval."""
    return await send_all(url, [(f"/tenants/default/hosts/{host}/attest", json.dumps(doc).encode())
                                for host, doc in items], concurrency, challenge="/tenants/default/challenge")


#: a host attestation's stages: the plain attestation's, then the fleet's own
FLEET_STAGES = STAGES[:-1] + [
    ("host read (host and its secrets)", "FleetStore.host_and_secrets"),
    ("identity proof (TPM2_Certify by the AK over the nonce)", "FleetService._identity_key"),
    ("identity certificate (X.509 build + ECDSA P-256 signature)", "FleetService._issue_certificate"),
    ("host attestation handler, all of it (the stages above included)", "FleetService.attest"),
]


#: host cycles sent before the measured ones, on new connections so that every worker gets some:
#: a server's first requests pay for loading keys, compiling the policy and SQL, and filling caches
WARM = 100


def warm(server: Server, items: list[tuple[str, dict]]) -> None:
    _elapsed, _lat, statuses = run(arrive_hosts(server.url, items, 50))
    if set(statuses) != {200}:
        raise RuntimeError(f"warm-up answered {statuses}")


def make_fleet(server: Server, n_hosts: int, n: int) -> tuple[list[SimHost], list[tuple[str, dict]]]:
    """Enroll ``n_hosts`` simulated hosts and make ``n`` attestations' evidence, round-robin."""
    import tempfile

    state = Path(tempfile.mkdtemp(prefix="attestd-fleet-"))
    hosts: list[SimHost] = []
    try:
        for i in range(n_hosts):
            hosts.append(SimHost(server, state / f"h{i}", i))
        with httpx.Client(base_url=server.url, timeout=30) as c:
            items = []
            for i in range(n):
                nonce = c.post("/tenants/default/challenge").json()["nonce"]
                items.append(hosts[i % len(hosts)].body(nonce))
    except BaseException:
        for h in hosts:
            h.close()
        raise
    return hosts, items


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float,
                    help="open loop: host cycles arrive at this many a second (Poisson), each on a new "
                         "connection, instead of --concurrency connections sending as fast as answered")
    ap.add_argument("--signing-alg", choices=["RS256", "PS256", "ES256"],
                    help="the tenant's token signature (the service's signing_alg; default RS256)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-out", type=Path)
    args = ap.parse_args()
    if args.signing_alg:
        os.environ["ATTESTD_SIGNING_ALG"] = args.signing_alg
    if args.profile or args.profile_out:
        server = Server(1, None)
        hosts: list[SimHost] = []
        try:
            hosts, items = make_fleet(server, args.hosts, args.requests + WARM)
            warm(server, items[:WARM])
            items = items[WARM:]
            result = sample_server(server, lambda: run(blast_hosts(server.url, items, args.concurrency)),
                                   keep=args.profile_out)
        finally:
            for h in hosts:
                h.close()
            server.close()
        if result is not None:
            print_profile(result, args.requests, FLEET_STAGES)
        return
    server = Server(args.workers, None)
    hosts = []
    try:
        hosts, items = make_fleet(server, args.hosts, args.requests + WARM)
        warm(server, items[:WARM])
        items = items[WARM:]
        steal = Steal()
        before = os.times()
        if args.rate:
            elapsed, lat, statuses = run(arrive_hosts(server.url, items, args.rate))
        else:
            elapsed, lat, statuses = run(blast_hosts(server.url, items, args.concurrency))
        stolen = steal.share()
        after = os.times()
        client = (after.user - before.user) + (after.system - before.system)
        stored = storage(Path(server.dir.name) / "attestd.db")
    finally:
        for h in hosts:
            h.close()
        server.close()
    rate = len(lat) / elapsed
    p50, p99 = statistics.median(lat) * 1000, _pct(lat, 0.99) * 1000
    print("| hosts simulated | workers | load | token | attestations/s | p50 | p99 | fleet at a 5-minute interval | "
          "responses | CPU stolen by the hypervisor | load generator's CPU per cycle |")
    print("|---:|---:|---|---|---:|---:|---:|---:|---|---:|---:|")
    # the open loop's rate is the arrivals' (send_at_rate): what a fleet of rate x 300 hosts sends
    fleet = (f"{int(rate * 300):,}" if p99 < 100 and set(statuses) == {200}
             else f"(p99 {p99:.0f} ms > 100 ms)" if p99 >= 100 else "(errors)")
    load = (f"arrivals at {args.rate:g}/s, new connection each" if args.rate
            else f"{args.concurrency} keep-alive connections")
    print(f"| {args.hosts} | {args.workers} | {load} | {os.environ.get('ATTESTD_SIGNING_ALG', 'RS256')} | {rate:.0f} | "
          f"{p50:.1f} ms | {p99:.1f} ms | {fleet} | {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))} | "
          f"{stolen:.0%} | {client / len(lat) * 1000:.2f} ms |")
    if stored:
        print(stored)


def storage(db: Path) -> str | None:
    """What the records took in the server's SQLite database: bytes a record with its indexes, and
    the blobs they refer to (SQLite's ``dbstat``; None where SQLite was built without it)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        pages = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        records = conn.execute("SELECT count(*) FROM attestations").fetchone()[0]
        blobs, blob_bytes = conn.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM attestation_blobs").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    own = sum(size for name, size in pages.items() if "attestations" in name)
    return (f"stored: {records} attestation records, {own / max(records, 1):,.0f} B each with their indexes; "
            f"{blobs} blobs ({blob_bytes / 1024:,.0f} KB) they refer to")


if __name__ == "__main__":
    main()
