"""Baselines: learn what a known-good host measured, compare another boot with it, explain.

    from attestd.baseline import learn, compare, Baseline

    baseline = learn(attestd.eventlog.parse(good_log), ima=attestd.ima.parse(good_ima))
    json.dump(baseline.to_json(), f)                    # edit allowances in the JSON if needed
    result = compare(Baseline.from_json(doc), attestd.eventlog.parse(log))
    result.matches                                      # bool
    for d in result.differences: print(d.message)       # PCR, event, type, expected vs found

``learn`` and ``compare`` are pure: they trust the logs they are given. In the service they run on
logs that already replayed to a quote. The document format is in :mod:`attestd.baseline.model`
and docs/baseline.md.
"""

from attestd.baseline.compare import BaselineComparison, Difference, compare
from attestd.baseline.learn import learn, meaning
from attestd.baseline.model import FORMAT, Allowances, AnyDigest, Baseline, ExpectedEvent, ImaBaseline

__all__ = [
    "FORMAT",
    "Allowances",
    "AnyDigest",
    "Baseline",
    "BaselineComparison",
    "Difference",
    "ExpectedEvent",
    "ImaBaseline",
    "compare",
    "learn",
    "meaning",
]
