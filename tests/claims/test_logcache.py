"""The cache of verified event logs: a repeated log costs one hash, and nothing else changes.

Real evidence: a swtpm whose PCRs were replayed from the project's QEMU boot, quoting them.
"""

from __future__ import annotations

import hashlib

import pytest
from corpus_paths import FIXTURES

from attestd.claims import build_claims, verify_tpm_evidence
from attestd.claims.logcache import LogCache, log_key
from attestd.errors import VerificationError
from attestd.testing.bootreplay import replay_into_swtpm
from attestd.testing.swtpm import SwTPM

SB = (FIXTURES / "qemu" / "sb" / "binary_bios_measurements").read_bytes()
OTHER = (FIXTURES / "qemu" / "sb-initsh" / "binary_bios_measurements").read_bytes()  # another GRUB command line
SELECTION = {"sha256": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]}


@pytest.fixture(scope="module")
def tpm():
    with SwTPM() as t:
        replay_into_swtpm(t, SB)
        ek = t.create_ek("ecc")
        t.ak = t.create_ak(ek, "ecc", hash="sha256")
        yield t


def _verify(tpm, cache, *, nonce: bytes = b"n" * 32, log: bytes = SB):
    q = tpm.quote(tpm.ak, SELECTION, nonce=nonce)
    return verify_tpm_evidence(ak=q.ak_public, quote=q.attest, signature=q.signature, nonce=nonce, pcrs=q.pcrs,
                               eventlog=log, ak_enrolled=True, log_cache=cache)


def test_key_covers_the_log_and_every_quoted_value():
    pcrs = {"sha256": {0: b"\x00" * 32, 7: b"\x07" * 32}}
    base = log_key(SB, pcrs)
    assert log_key(SB, {"sha256": dict(pcrs["sha256"])}) == base
    assert log_key(OTHER, pcrs) != base
    assert log_key(SB, {"sha256": {0: b"\x00" * 32, 7: b"\x08" * 32}}) != base
    assert log_key(SB, {"sha256": {0: b"\x00" * 32}}) != base  # one PCR fewer
    assert log_key(SB, {"sha1": pcrs["sha256"]}) != base  # another bank
    # length framing: moving bytes between the log and the values makes another key
    assert log_key(SB + b"\x00", {"sha256": {}}) != log_key(SB, {"sha256": {0: b""}})


def test_lru_bound_and_zero_entries():
    cache: LogCache[str] = LogCache(2)
    cache.put(b"a", "A")
    cache.put(b"b", "B")
    assert cache.get(b"a") == "A"  # a is now the most recent
    cache.put(b"c", "C")
    assert cache.get(b"b") is None and cache.get(b"a") == "A" and cache.get(b"c") == "C"
    assert len(cache) == 2 and cache.hits == 3 and cache.misses == 1
    off: LogCache[str] = LogCache(0)
    off.put(b"a", "A")
    assert off.get(b"a") is None and len(off) == 0
    with pytest.raises(ValueError):
        LogCache(-1)


def test_a_repeated_log_is_verified_once_and_claims_are_the_same(tpm):
    cache = LogCache(8)
    first = _verify(tpm, cache)
    claims_first = build_claims(first).flat()
    second = _verify(tpm, cache, nonce=b"m" * 32)  # a new quote, over a new nonce, of the same PCRs
    assert cache.hits == 1 and len(cache) == 1
    assert second.log_proof is first.log_proof  # the log was not parsed nor replayed again
    assert second.quotes[0].attest.extra_data == b"m" * 32  # the quote is this attestation's own
    claims_second = build_claims(second).flat()
    assert claims_second == claims_first == build_claims(_verify(tpm, None)).flat()
    # what one attestation does with its claims does not reach the next
    claims_second["bootApplications"].append("tampered")
    assert build_claims(_verify(tpm, cache)).flat() == claims_first


def test_the_quote_is_verified_before_the_cache_is_read(tpm):
    cache = LogCache(8)
    _verify(tpm, cache)
    q = tpm.quote(tpm.ak, SELECTION, nonce=b"n" * 32)
    with pytest.raises(VerificationError) as exc:
        verify_tpm_evidence(ak=q.ak_public, quote=q.attest, signature=q.signature, nonce=b"x" * 32, pcrs=q.pcrs,
                            eventlog=SB, log_cache=cache)
    assert exc.value.code == "quote.nonce_mismatch"


def test_new_pcr_values_are_a_new_verification(tpm):
    cache = LogCache(8)
    _verify(tpm, cache)
    with SwTPM() as other:  # the same boot, then one more measurement into PCR 14
        replay_into_swtpm(other, SB)
        other.extend(14, {"sha256": hashlib.sha256(b"after boot").digest()})
        other.ak = other.create_ak(other.create_ek("ecc"), "ecc", hash="sha256")
        with pytest.raises(VerificationError) as exc:
            _verify(other, cache)
    assert exc.value.code == "eventlog.replay_mismatch"
    assert len(cache) == 1  # a log that did not verify is not kept


def test_a_log_that_does_not_replay_is_refused_every_time(tpm):
    cache = LogCache(8)
    for _ in range(2):
        with pytest.raises(VerificationError) as exc:
            _verify(tpm, cache, log=OTHER)
        assert exc.value.code == "eventlog.replay_mismatch"
    assert len(cache) == 0
