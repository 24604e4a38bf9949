"""Throughput of issue_token / verify_token (not a test; run: python tests/tokens/bench_tokens.py).

Each measurement signs (or verifies) a realistic token: ~20 policy claims, x5c in the header, full
verification (JWKS lookup, key import, signature, iss/exp/nbf, x5c consistency).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from attestd.tokens import KeySet, generate_signing_key, issue_token, jwks, policy_hash, verify_token

ISSUER = "https://attestd.bench"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
CLAIMS = {f"x-ms-claim-{i}": "a" * 64 for i in range(20)}


def rate(fn, seconds: float = 2.0) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        n += 20
    return n / elapsed


def main() -> None:
    for alg, bits in (("RS256", 2048), ("RS256", 3072), ("PS256", 2048), ("ES256", 0)):
        key = generate_signing_key(ISSUER, now=NOW, alg=alg, rsa_bits=bits or 2048)
        keyset = KeySet.create(key, now=NOW)
        doc = jwks(keyset, NOW)
        kw = {"issuer": ISSUER, "now": NOW, "lifetime": timedelta(hours=8), "attestation_type": "sgx",
                  "policy_hash": policy_hash("p"), "nonce": "n"}  # fmt: skip
        token = issue_token(CLAIMS, signer=key, **kw)
        sign = rate(lambda key=key, kw=kw: issue_token(CLAIMS, signer=key, **kw))
        verify = rate(lambda token=token, doc=doc: verify_token(token, jwks=doc, issuer=ISSUER, now=NOW))
        label = f"{alg}{'-' + str(bits) if bits else ''}"
        print(f"{label:11s} sign {sign:8.0f}/s   verify {verify:8.0f}/s   ({len(token)} bytes)")
    print(f"python {sys.version.split()[0]}, single thread")


if __name__ == "__main__":
    main()
