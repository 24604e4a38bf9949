"""IMA replay throughput against the bare cost of the hashing it must do.

    .venv/bin/python bench/ima_bench.py [N]        (default N = 100000)

Generates an N-entry ima-ng binary list (attestd.testing.imagen, independent expected PCRs) and
times, as CPU time (best of 7):

* bare hashing: per entry, the SHA-1 template-hash check, the SHA-256 template digest and both
  PCR extends, in the tightest loop Python allows — the floor for any Python verifier;
* replay of an already-parsed list (what the service does per quote after incremental parsing);
* parse + replay from bytes (the whole job for a freshly received list).
"""

from __future__ import annotations

import hashlib
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import attestd.ima as ima  # noqa: E402
from attestd.testing.imagen import generate  # noqa: E402


def best(fn, repeat: int = 7) -> float:
    return min(timeit.repeat(fn, number=1, repeat=repeat, timer=time.process_time))


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    g = generate(n, seed=1)
    data = g.binary
    log = ima.parse(data)
    if log.replay() != g.expected:
        print("REPLAY DISAGREES with the generator's independent PCRs")
        return 1
    pairs = [(e.template_data, e.template_hash) for e in log.entries]

    def bare():
        s1, s256 = hashlib.sha1, hashlib.sha256
        p1, p2 = bytes(20), bytes(32)
        for td, th in pairs:
            if s1(td).digest() != th:
                raise ValueError
            p1 = s1(p1 + th).digest()
            p2 = s256(p2 + s256(td).digest()).digest()
        return p1, p2

    t_bare = best(bare)
    t_replay = best(lambda: log.replay())
    t_total = best(lambda: ima.parse(data).replay())
    print(f"{n} ima-ng entries, {len(data)} bytes, banks sha1+sha256 (CPU time, best of 7)")
    print("| step | seconds | entries/s | × bare hashing |")
    print("|---|---:|---:|---:|")
    for label, t in (("bare hashing (floor)", t_bare), ("replay of parsed list", t_replay),
                     ("parse + replay", t_total)):
        print(f"| {label} | {t:.3f} | {n / t:,.0f} | {t / t_bare:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
