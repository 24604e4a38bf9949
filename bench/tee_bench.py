"""TEE evidence verifications per second, per evidence type, on the corpus's real evidence.

    .venv/bin/python bench/tee_bench.py

Each case goes through ``attestd.tee.verify_tee_evidence`` (parse, certificate chains, signatures,
collateral and TCB evaluation where collateral exists), at a time pinned inside the evidence's
validity window, with the inputs already in memory; the result is checked before timing so a fast
failure cannot pass as a fast verification. Rates are single-threaded, median of 5 batches.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("ATTESTD_CORPUS", ROOT.parent / "shared" / "corpus"))
sys.path.insert(0, str(ROOT / "src"))

from attestd.tee.dcap import Collateral  # noqa: E402
from attestd.tee.evidence import TrustAnchors, verify_tee_evidence  # noqa: E402


def rate(fn, seconds: float = 0.5) -> float:
    fn()
    n = max(1, int(seconds / max(_once(fn), 1e-6) / 5))
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append(n / (time.perf_counter() - t))
    return statistics.median(samples)


def _once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    if not (CORPUS / "INDEX.md").exists():
        print(f"corpus not found at {CORPUS}")
        return 2
    anchors = TrustAnchors.load(
        amd=[CORPUS / "go-sev-guest" / "ask_ark_milan_vcek.pem", CORPUS / "go-sev-guest" / "ask_ark_genoa.pem"],
        intel_root=CORPUS / "go-tdx-guest" / "intel_sgx_root_ca.pem",
    )
    qvl = CORPUS / "dcap-qvl"
    snp_report = (CORPUS / "go-sev-guest" / "attestation.bin").read_bytes()
    vcek = (CORPUS / "go-sev-guest" / "vcek.testcer.der").read_bytes()
    sgx_coll = Collateral.from_qvl_json((qvl / "sgx_quote_collateral.json").read_bytes())
    tdx_coll = Collateral.from_qvl_json((qvl / "tdx_quote_collateral.json").read_bytes())
    at_qvl = datetime(2025, 7, 1, tzinfo=UTC)
    cases = [
        ("SEV-SNP report (go-sev-guest, Milan)", "sevsnp", snp_report,
         dict(at=datetime(2022, 9, 25, tzinfo=UTC), vcek=vcek), None),
        ("SGX quote v3 + collateral (dcap-qvl)", "sgx", (qvl / "sgx_quote").read_bytes(),
         dict(at=at_qvl, collateral=sgx_coll), "ConfigurationAndSWHardeningNeeded"),
        ("TDX quote v4 + collateral (dcap-qvl)", "tdx", (qvl / "tdx_quote").read_bytes(),
         dict(at=at_qvl, collateral=tdx_coll), "UpToDate"),
        ("Azure CVM: HCL + SNP + vTPM quote", "azure-cvm",
         (CORPUS / "trustee" / "az-snp-vtpm" / "evidence-v0.json").read_bytes(),
         dict(at=datetime(2025, 6, 1, tzinfo=UTC), nonce=b"challenge"), None),
        ("Azure CVM: HCL + TDX quote + vTPM quote", "azure-cvm",
         (CORPUS / "trustee" / "az-tdx-vtpm" / "evidence-v1.json").read_bytes(),
         dict(at=datetime(2025, 1, 1, tzinfo=UTC)), None),
    ]
    print("| evidence | verifications/s | ms each | TCB status |")
    print("|---|---:|---:|---|")
    for label, kind, evidence, kwargs, status in cases:
        result = verify_tee_evidence(kind, evidence, anchors=anchors, **kwargs)
        if status is not None and result.tcb_status != status:
            print(f"{label}: expected {status}, got {result.tcb_status}")
            return 1
        r = rate(lambda: verify_tee_evidence(kind, evidence, anchors=anchors, **kwargs))
        print(f"| {label} | {r:,.0f} | {1000 / r:.2f} | {result.tcb_status or 'n/a'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
