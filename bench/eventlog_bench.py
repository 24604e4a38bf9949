"""Event-log parse + replay: Attestd against Keylime and tpm2_eventlog, measured in the same run.

    bash bench/run.sh                 # everything, results printed as a Markdown table
    .venv/bin/python bench/eventlog_bench.py [--runs N] [LOG ...]

For each log (every binary event log in ../shared/corpus plus the project's QEMU boots):

* attestd: ``attestd.eventlog.parse(data).replay()`` in-process, median of many runs;
  "attestd+decode" also decodes every event's data (what ``eventlog show --json`` does), which is
  closer to the work Keylime's parser does (it enriches every event);
* keylime: ``keylime.mba.mba.bootlog_parse`` (Keylime 7.x, in its own virtualenv, in-process,
  median) — it runs ``tpm2_eventlog`` and parses the YAML;
* tpm2_eventlog: the process itself (wall time, median).

Ratios are peer time / Attestd time. Attestd's replayed PCRs are checked against Keylime's for
every log both can read, so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("ATTESTD_CORPUS", ROOT.parent / "shared" / "corpus"))
PEERS_PY = ROOT / "bench" / ".venv-peers" / "bin" / "python"

sys.path.insert(0, str(ROOT / "src"))
from attestd.eventlog import parse  # noqa: E402


def default_logs() -> list[Path]:
    logs: list[Path] = []
    for sub, pattern in (
        ("go-tpm-tools", "*.bin"),
        ("tpm2-tools", "*.bin"),
        ("keylime", "binary_bios_measurements*"),
        ("go-attestation", "*_eventlog"),
    ):
        logs += sorted((CORPUS / sub).glob(pattern))
    logs += sorted((ROOT / "tests" / "fixtures" / "qemu").glob("*/binary_bios_measurements"))
    # tiny header-only logs say nothing about speed
    return [p for p in logs if p.stat().st_size >= 1024]


def ground_truth() -> dict[str, dict]:
    """PCR values read from the real TPM when each go-tpm-tools log was captured, and the QEMU
    fixtures' PCRs read by the guest kernel: {log path: {bank: {pcr: hex}}}."""
    truth: dict[str, dict] = {}
    exp = CORPUS / "go-tpm-tools" / "expected_eventlogs.json"
    if exp.exists():
        for case in json.loads(exp.read_text()).values():
            if isinstance(case, dict) and case.get("file") and case.get("pcrs"):
                truth[str(CORPUS / "go-tpm-tools" / case["file"])] = case["pcrs"]
    for pcrs in (ROOT / "tests" / "fixtures" / "qemu").glob("*/pcrs.json"):
        truth[str(pcrs.parent / "binary_bios_measurements")] = json.loads(pcrs.read_text())
    return truth


def time_call(fn, min_time: float = 0.2) -> float:
    """Median seconds per call over batches filling ``min_time``."""
    fn()
    n, t = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
        if t >= min_time / 5:
            break
        n *= 2
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def attestd_times(data: bytes) -> tuple[float, float, dict]:
    replay = parse(data).replay()

    def decode_all():
        log = parse(data)
        log.replay()
        for ev in log.events:
            try:
                ev.decoded
            except Exception:  # a decode error is a per-event note, still work done
                pass

    return time_call(lambda: parse(data).replay()), time_call(decode_all), replay


def tpm2_eventlog_time(path: Path, runs: int) -> float | None:
    try:
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(["tpm2_eventlog", str(path)], check=True, capture_output=True)
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)
    except (OSError, subprocess.CalledProcessError):
        return None


def keylime_times(paths: list[Path], runs: int) -> dict[str, dict]:
    if not PEERS_PY.exists():
        print("# keylime: peers venv missing, run bench/setup-peers.sh", file=sys.stderr)
        return {}
    out = subprocess.run(
        [str(PEERS_PY), str(ROOT / "bench" / "peers" / "keylime_bootlog.py"), str(runs), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def geomean(xs: list[float]) -> float:
    xs = [x for x in xs if x]
    return statistics.geometric_mean(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=7, help="runs of each peer per log (median)")
    ap.add_argument("--json", type=Path, help="also write raw results here")
    args = ap.parse_args()
    logs = args.logs or default_logs()
    kl = keylime_times(logs, args.runs)

    truth = ground_truth()
    rows, r_kl, r_t2, disagreements = [], [], [], []
    for path in logs:
        data = path.read_bytes()
        t_att, t_dec, replay = attestd_times(data)
        k = kl.get(str(path), {})
        t_kl = None if k.get("failed", True) else k["seconds"]
        if t_kl is not None:
            for bank, pcrs in k["pcrs"].items():
                ours = {str(i): v.hex() for i, v in replay.get(bank, {}).items()}
                for i in sorted(set(pcrs) | set(ours), key=int):
                    if pcrs.get(i) == ours.get(i):
                        continue
                    tpm = truth.get(str(path), {}).get(bank, {}).get(i)
                    verdict = ("no TPM value recorded" if tpm is None else
                               "Attestd equals the TPM" if tpm == ours.get(i) else
                               "keylime equals the TPM" if tpm == pcrs.get(i) else "neither equals the TPM")
                    disagreements.append((f"{path.name} {bank} PCR{i}", verdict))
        t_t2 = tpm2_eventlog_time(path, args.runs)
        rows.append((path, len(data), len(parse(data).events), t_att, t_dec, t_kl, t_t2))
        if t_kl:
            r_kl.append(t_kl / t_att)
        if t_t2:
            r_t2.append(t_t2 / t_att)

    def ms(x):
        return "n/a" if x is None else f"{x * 1e3:.2f}"

    print("| log | bytes | events | attestd parse+replay (ms) | attestd +decode (ms) | keylime (ms) | × | tpm2_eventlog (ms) | × |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path, size, n, t_att, t_dec, t_kl, t_t2 in rows:
        label = path.relative_to(CORPUS) if CORPUS in path.parents else path.relative_to(ROOT)
        print(
            f"| {label} | {size} | {n} | {ms(t_att)} | {ms(t_dec)} | {ms(t_kl)} | "
            f"{'' if not t_kl else f'{t_kl / t_att:.0f}'} | {ms(t_t2)} | {'' if not t_t2 else f'{t_t2 / t_att:.0f}'} |"
        )
    print()
    print(f"geometric mean speed-up: {geomean(r_kl):.0f}× vs keylime bootlog_parse, "
          f"{geomean(r_t2):.0f}× vs the tpm2_eventlog process")
    for where, verdict in disagreements:
        print(f"PCR differs from keylime: {where}: {verdict}")
    wrong = [w for w, v in disagreements if v in ("keylime equals the TPM", "neither equals the TPM")]
    if args.json:
        args.json.write_text(json.dumps([
            {"log": str(p), "bytes": s, "events": n, "attestd": a, "attestd_decode": d, "keylime": k, "tpm2_eventlog": t}
            for p, s, n, a, d, k, t in rows
        ], indent=1))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
