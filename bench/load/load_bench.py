"""Load on a running ``attestd serve``: real TPM evidence over loopback, attestations/s and latency.

    .venv/bin/python bench/load/load_bench.py [--requests 2000] [--concurrency 16] [--workers 1 2]
                                              [--database-url postgresql+psycopg://...] [--profile [--profile-out F]]

Evidence is real: a swtpm whose PCRs were replayed from the project's QEMU boot of Debian's signed
shim -> GRUB -> kernel (tests/fixtures/qemu/sb), an ECC P-256 AK, and one TPM2_Quote per
attestation over the service's own single-use nonce (quotes through tpm2-pytss, ~1 ms each, made
before the timed phase: one challenge and one quote per request). Each request carries the 15 KB
firmware event log, so the server parses, verifies, replays, builds claims, evaluates the policy
(linux-secure-boot without its aikValidated rule: the bench AK is not enrolled), signs a token and
records the attestation.

For each database (SQLite in a fresh data dir; PostgreSQL when ``--database-url`` is given) and
each worker count it starts the server, sends ``--requests`` attestations from ``--concurrency``
concurrent keep-alive connections (a minimal asyncio HTTP/1.1 client, on the same 2-core machine), and reports attestations/s
and p50/p99 latency. ``--profile`` then sends 3000 attestations to a one-worker server under
py-spy and prints where a request's time goes (``--profile-out`` keeps the raw samples).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

import httpx

from attestd.policy import builtin
from attestd.testing.bootreplay import replay_into_swtpm
from attestd.testing.swtpm import SwTPM

LOG = ROOT / "tests" / "fixtures" / "qemu" / "sb" / "binary_bios_measurements"
SELECTION = "sha256:0,1,2,3,4,5,6,7,8,9,14"
PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]
AK_HANDLE = 0x81000010
POLICY = "\n".join(line for line in builtin.text("linux-secure-boot").splitlines() if '"aikValidated"' not in line)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Quoter:
    """A swtpm with a real boot's PCRs and a persistent ECC AK, quoting through tpm2-pytss."""

    def __init__(self) -> None:
        from tpm2_pytss import ESAPI, TPML_PCR_SELECTION, TCTILdr

        self.tpm = SwTPM()
        self.tpm.__enter__()
        self.log = LOG.read_bytes()
        replay_into_swtpm(self.tpm, self.log)
        ek = self.tpm.create_ek("ecc")
        self.ak = self.tpm.create_ak(ek, "ecc", hash="sha256")
        self.tpm.run("tpm2_evictcontrol", "-C", "o", "-c", str(self.ak.context), hex(AK_HANDLE))
        self.pcrs = self.tpm.read_pcrs({"sha256": PCRS})
        name, _, conf = self.tpm.tcti.partition(":")
        self.esapi = ESAPI(TCTILdr(name, conf))
        self.handle = self.esapi.tr_from_tpmpublic(AK_HANDLE)
        self.selection = TPML_PCR_SELECTION.parse(SELECTION)

    def quote(self, qualifying: bytes) -> tuple[bytes, bytes]:
        from tpm2_pytss import TPM2_ALG, TPMT_SIG_SCHEME

        quoted, sig = self.esapi.quote(self.handle, self.selection, qualifying, TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
        return quoted.marshal()[2:], sig.marshal()  # TPMS_ATTEST: the TPM2B without its size

    def evidence(self, nonce: str) -> dict:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        attest, sig = self.quote(raw)
        return {"ak": _b64(self.ak.public), "quote": _b64(attest), "signature": _b64(sig),
                "pcrs": {bank: {str(i): v.hex() for i, v in vals.items()} for bank, vals in self.pcrs.items()},
                "eventLog": _b64(self.log), "nonce": nonce}

    def close(self) -> None:
        self.esapi.close()
        self.tpm.__exit__(None, None, None)


def _reset_postgres(url: str) -> None:
    """Every configuration starts on an empty database (the server bootstraps a fresh tenant)."""
    from sqlalchemy import create_engine, text

    from attestd.store.db import normalize_url

    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class Server:
    def __init__(self, workers: int, database_url: str | None) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="attestd-load-")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [str(ROOT / ".venv" / "bin" / "attestd"), "serve", "--data-dir", self.dir.name, "--port",
               str(self.port), "--workers", str(workers)]
        if database_url:
            cmd += ["--database-url", database_url]
            _reset_postgres(database_url)
        env = {**os.environ, "ATTESTD_LOG_LEVEL": "warning"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stderr.read().decode()[-2000:])
            time.sleep(0.2)
        creds = json.loads((Path(self.dir.name) / "initial-credentials.json").read_text())
        self.admin = {"Authorization": f"Bearer {creds['adminToken']}"}

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


def prepare(server: Server, quoter: Quoter, n: int) -> list[dict]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.put("/tenants/default/policies/Tpm", content=POLICY, headers=server.admin)
        r.raise_for_status()
        docs = []
        for _ in range(n):
            nonce = c.post("/tenants/default/challenge").json()["nonce"]
            docs.append(quoter.evidence(nonce))
    return docs


def run(coro):
    """Run the load generator's coroutine on uvloop (a dependency of the service) when present: the
    generator shares the machine's cores with the server, so it should take as little as it can
    (its CPU per request is printed with the results)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str,
                body: bytes) -> int:
    """One HTTP/1.1 POST on an open connection; the response's status (its body is read, not kept)."""
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(head.split(None, 2)[1])


async def send_all(url: str, items: list[tuple[str, bytes]], concurrency: int, *,
                   challenge: str | None = None) -> tuple[float, list[float], dict[int, int]]:
    """POST every ``(path, JSON body)`` once from ``concurrency`` keep-alive connections: a minimal
    HTTP/1.1 client on asyncio streams, so the load generator spends little of the machine's CPU.
    With ``challenge`` (a path), each POST is preceded by an empty POST there, as an agent asks for
    its nonce before each attestation; a latency is then the pair's. Returns (seconds, per-item
    latencies, responses by status of the items' POSTs)."""
    address, port = url.removeprefix("http://").split(":")
    pending = list(reversed(items))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(address, int(port))
        try:
            while pending:
                path, body = pending.pop()
                t = time.perf_counter()
                if challenge is not None and await _post(reader, writer, f"{address}:{port}", challenge, b"") != 200:
                    raise RuntimeError(f"POST {challenge} failed")
                status = await _post(reader, writer, f"{address}:{port}", path, body)
                latencies.append(time.perf_counter() - t)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, statuses


async def send_at_rate(url: str, items: list[tuple[str, bytes]], rate: float, *, challenge: str,
                       seed: int = 1) -> tuple[float, list[float], dict[int, int]]:
    """Open loop, as a fleet behaves: host cycles start at random (Poisson) times, ``rate`` a second
    on average, whatever the server's state; each opens its own connection, asks for a challenge,
    attests, and closes (an agent does not keep a connection for five minutes). A latency runs
    from the cycle's scheduled start, so time spent waiting behind a slow server counts. Returns
    (seconds from the first to the last scheduled start - so that count / seconds is the arrival
    rate the run offered, the one a fleet of rate x interval hosts makes -, latencies, responses by
    status of the attestations)."""
    import random

    address, port = url.removeprefix("http://").split(":")
    rng = random.Random(seed)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def cycle(due: float, path: str, body: bytes) -> None:
        reader, writer = await asyncio.open_connection(address, int(port))
        try:
            if await _post(reader, writer, f"{address}:{port}", challenge, b"") != 200:
                raise RuntimeError(f"POST {challenge} failed")
            status = await _post(reader, writer, f"{address}:{port}", path, body)
        finally:
            writer.close()
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter()
    due = start
    tasks = []
    for path, body in items:
        due += rng.expovariate(rate)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(cycle(due, path, body)))
    await asyncio.gather(*tasks)
    return due - start, latencies, statuses


async def blast(url: str, docs: list[dict], concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    """Every evidence document once to ``/tenants/default/attest/Tpm``."""
    return await send_all(url, [("/tenants/default/attest/Tpm", json.dumps(d).encode()) for d in docs], concurrency)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_config(quoter: Quoter, workers: int, database_url: str | None, n: int, concurrency: int) -> dict:
    server = Server(workers, database_url)
    try:
        warm = prepare(server, quoter, min(100, n))
        run(blast(server.url, warm, concurrency))
        docs = prepare(server, quoter, n)
        elapsed, lat, statuses = run(blast(server.url, docs, concurrency))
    finally:
        server.close()
    return {"db": "postgresql" if database_url else "sqlite", "workers": workers, "requests": n,
            "concurrency": concurrency, "rate": n / elapsed, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": _pct(lat, 0.99) * 1000, "statuses": statuses}


#: the stages of a request, by the function whose stack samples they are (py-spy frame names)
STAGES = [
    ("quote + event log verification (signature, nonce, PCR digest, replay, data-vs-digest check)",
     "verify_tpm_evidence"),
    ("claims", "build_claims"),
    ("policy evaluation", "Policy.evaluate"),
    ("token signing (RS256 JWS; OpenSSL releases the GIL, so most of it is not counted here)", "issue_token"),
    ("audit record + nonce consumption + policy version check (one SQLite transaction)", "Store.record_attestation"),
    ("attestation handler, all of it (the stages above included)", "create_app.<locals>._attest_tpm"),
]


def profile(quoter: Quoter, n: int = 3000, keep: Path | None = None) -> None:
    """Where a request's time goes, on the running server (SQLite, one worker); see ``sample_server``."""
    server = Server(1, None)
    try:
        warm = prepare(server, quoter, 100)
        run(blast(server.url, warm, 4))
        docs = prepare(server, quoter, n)
        result = sample_server(server, lambda: run(blast(server.url, docs, 4)), keep)
    finally:
        server.close()
    if result is not None:
        print_profile(result, n, STAGES)


def sample_server(server: Server, run, keep: Path | None = None) -> tuple[float, float, dict[str, int]] | None:
    """Run ``run()`` (which sends the attestations) while py-spy samples the server process: only the
    thread holding the GIL (``--gil``: CPU work in Python, not waits), 250 times a second. Returns
    (seconds, CPU seconds of the server from /proc, samples per function on the stack with the
    total under ``""``); the raw py-spy output is copied to ``keep`` when given. None without py-spy."""
    import collections
    import shutil

    spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or shutil.which("py-spy")
    if spy is None:
        print("\n--profile needs py-spy (pip install py-spy)")
        return None
    out = Path(server.dir.name) / "profile.txt"
    rec = subprocess.Popen([spy, "record", "-r", "250", "-f", "raw", "-o", str(out), "--pid", str(server.proc.pid),
                            "--nonblocking", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    cpu0 = _cpu_seconds(server.proc.pid)
    elapsed = run()[0]
    cpu = _cpu_seconds(server.proc.pid) - cpu0
    rec.send_signal(2)
    rec.wait(30)
    if keep is not None:
        shutil.copyfile(out, keep)
    samples: collections.Counter[str] = collections.Counter()
    for line in out.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples[""] += int(count)
        for name in {frame.split(" (")[0] for frame in stack.split(";")}:
            samples[name] += int(count)
    return elapsed, cpu, samples


def print_profile(result: tuple[float, float, dict[str, int]], n: int, stages: list[tuple[str, str]]) -> None:
    """A stage's share is the share of GIL-holding samples with its function on the stack; the last
    stage is the whole handler, and what is outside it is the event loop's HTTP and JSON work."""
    elapsed, cpu, samples = result
    total = max(samples[""], 1)
    print(f"\nOn the server (SQLite, 1 worker, {n / elapsed:.0f} attestations/s under the profiler): "
          f"{cpu / n * 1000:.2f} ms of CPU per attestation (/proc, user + system); shares of the samples "
          "taken while Python code held the GIL:")
    print("| stage | share |\n|---|---:|")
    for label, fn in stages:
        print(f"| {label} | {samples.get(fn, 0) / total:.0%} |")
    rest = total - samples.get(stages[-1][1], 0)
    print(f"| HTTP, JSON parsing, request validation, routing, response (the event loop) | {rest / total:.0%} |")


class Steal:
    """The share of this VM's CPU time the hypervisor gave to others (``steal`` in /proc/stat)
    between construction and :meth:`share`: a benchmark on a shared host is only as fast as what
    it was given, so every result reports it."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[7] if len(fields) > 7 else 0, sum(fields)

    def share(self) -> float:
        steal, total = self._read()
        return (steal - self.start[0]) / max(total - self.start[1], 1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--database-url", default=os.environ.get("ATTESTD_BENCH_DATABASE_URL"))
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-out", type=Path, help="keep py-spy's raw samples of --profile here")
    args = ap.parse_args()
    quoter = Quoter()
    try:
        rows = []
        for db in [None] + ([args.database_url] if args.database_url else []):
            for w in args.workers:
                row = run_config(quoter, w, db, args.requests, args.concurrency)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
        print("| database | workers | attestations/s | p50 | p99 | responses |")
        print("|---|---:|---:|---:|---:|---|")
        for r in rows:
            print(f"| {r['db']} | {r['workers']} | {r['rate']:.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
                  f"| {', '.join(f'{k}: {v}' for k, v in sorted(r['statuses'].items()))} |")
        if args.profile:
            profile(quoter, keep=args.profile_out)
    finally:
        quoter.close()


if __name__ == "__main__":
    main()
