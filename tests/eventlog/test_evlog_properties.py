"""Property tests: on any input the parser returns a log or raises EvidenceError, quickly.

Mutations of real corpus logs (truncations, bit flips, overwritten length fields) and random bytes
must never raise IndexError/struct.error/UnicodeDecodeError, hang, or allocate more than the input.
"""

from __future__ import annotations

import struct
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestd.errors import EvidenceError
from attestd.eventlog import parse
from corpus_paths import CORPUS

from evlog_builders import SHA1, SHA256, agile_log, event2_record, measured

SEEDS = [
    ("go-tpm-tools", "cos-85-amd-sev.bin"),
    ("go-tpm-tools", "debian-10.bin"),
    ("go-tpm-tools", "glinux-alex.bin"),
    ("tpm2-tools", "event-uefivar.bin"),
    ("tpm2-tools", "specid-vendordata.bin"),
    ("go-attestation", "short_no_action_eventlog"),
]


def _seeds() -> list[bytes]:
    out = [agile_log(measured(0, 1, b"abc"), measured(7, 4, b"\0" * 4), vendor=b"v"),
           agile_log(event2_record(0, 1, [(SHA1, b"\1" * 20), (SHA256, b"\2" * 32)], b"x" * 40))]
    for parts in SEEDS:
        path = CORPUS.joinpath(*parts)
        if path.is_file():
            out.append(path.read_bytes())
    return out


SEED_LOGS = _seeds()
MAX_SECONDS = 0.5


def _check(data: bytes) -> None:
    """parse() either succeeds (and replays) or raises EvidenceError, in bounded time."""
    start = time.perf_counter()
    try:
        log = parse(data)
    except EvidenceError as err:
        assert err.code.startswith("eventlog.")
        assert err.offset is None or 0 <= err.offset <= len(data)
    else:
        assert log.events and log.size == len(data)
        for e in log.events:
            assert 0 <= e.offset < len(data) and e.offset + e.size <= len(data)
        log.replay()
        log.replay_warnings()
    assert time.perf_counter() - start < MAX_SECONDS


settings_fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_fast
@given(st.data())
def test_truncations_of_real_logs(data):
    seed = data.draw(st.sampled_from(SEED_LOGS))
    cut = data.draw(st.integers(0, len(seed)))
    _check(seed[:cut])


@settings_fast
@given(st.data())
def test_bit_flips_of_real_logs(data):
    seed = bytearray(data.draw(st.sampled_from(SEED_LOGS)))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(seed) - 1))
        seed[pos] ^= 1 << data.draw(st.integers(0, 7))
    _check(bytes(seed))


@settings_fast
@given(st.data())
def test_absurd_length_fields(data):
    """Overwrite any aligned u32 (sizes, counts, PCR indexes) with an extreme value."""
    seed = bytearray(data.draw(st.sampled_from(SEED_LOGS)))
    if len(seed) < 4:
        return
    pos = data.draw(st.integers(0, len(seed) - 4))
    value = data.draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000]))
    struct.pack_into("<I", seed, pos, value)
    _check(bytes(seed))


@settings_fast
@given(st.binary(max_size=2048))
def test_random_bytes(blob):
    _check(blob)


@settings_fast
@given(st.binary(max_size=512))
def test_random_bytes_after_a_valid_header(blob):
    _check(agile_log() + blob)


def test_absurd_sizes_do_not_allocate():
    """A 4 GiB event size or a billion digests must fail without allocating (tracemalloc peak)."""
    cases = [
        agile_log() + event2_record(0, 1, [], b"", size=0xFFFFFFFF),
        agile_log() + struct.pack("<III", 0, 1, 0xFFFFFFFF),
        struct.pack("<II", 0, 3) + b"\0" * 20 + struct.pack("<I", 0xFFFFFFFF),
    ]
    for raw in cases:
        tracemalloc.start()
        try:
            with pytest.raises(EvidenceError):
                parse(raw)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1_000_000


def test_many_empty_records_parse_in_linear_time():
    """PCR0/type-0 records look like padding until a non-zero byte follows: checked once, not per record."""
    empty = struct.pack("<IIII", 0, 0, 0, 0)  # TCG_PCR_EVENT2 with no digests and no data
    raw = agile_log(empty * 50_000, measured(4, 1, b"end"))
    start = time.perf_counter()
    log = parse(raw)
    assert time.perf_counter() - start < 2.0
    assert len(log) == 50_002 and log.padding == 0 and log.records[-1][0] == 4
