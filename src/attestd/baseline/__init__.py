"""Baselines: learn what a known-good host measured, compare another boot with it, explain.

API::

    from attestd.baseline import Baseline, compare, learn

    baseline = learn(attestd.eventlog.parse(good_log), ima=attestd.ima.parse(good_ima), name="web")
    doc = baseline.to_json()                    # {"format": "attestd-baseline/1", ...}; edit allowances
    baseline = Baseline.from_json(doc)          # EvidenceError baseline.invalid, field = JSON path
    result = compare(baseline, attestd.eventlog.parse(log), ima=attestd.ima.parse(ima_log))
    result.matches                              # bool
    for d in result.differences:                # Difference: kind changed/missing/extra/ima-*,
        print(d.message)                        #   pcr, expected_* / found_* index, type, summary
    result.to_json()                            # the same as data

* :func:`learn` records every extended event per PCR (type, digests, decoded meaning) and, given
  an IMA list, every measured file with its digest. Allowances default to none: two boots of one
  image measure identical logs. :data:`PRESETS` are the ones commonly added (boot order, boot
  options, GPT, handoff tables).
* :func:`compare` aligns expected and found events per PCR (difflib on (type, digest)) and names
  each difference with the decoded content on both sides. It is pure and trusts its inputs: the
  caller verifies the log against a quote first (the service compares only verified evidence;
  see ``attestd.service.attest``).

The document format is in :mod:`attestd.baseline.model`, the comparison in
:mod:`attestd.baseline.compare`, the wording in :mod:`attestd.baseline.explain`, and the user
guide in docs/baseline.md.
"""

from attestd.baseline.compare import BaselineComparison, Difference, compare
from attestd.baseline.learn import learn
from attestd.baseline.model import (
    FORMAT,
    PRESETS,
    Allowances,
    AnyDigest,
    Baseline,
    ExpectedEvent,
    ImaBaseline,
)

__all__ = [
    "FORMAT",
    "PRESETS",
    "Allowances",
    "AnyDigest",
    "Baseline",
    "BaselineComparison",
    "Difference",
    "ExpectedEvent",
    "ImaBaseline",
    "compare",
    "learn",
]
