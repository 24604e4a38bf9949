"""Property tests: any input gives a log or an EvidenceError - never another exception."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestd.errors import EvidenceError, VerificationError
from attestd.ima import Keyring, parse, parse_signature, verify_signatures
from attestd.testing.imagen import generate

TEMPLATES = ("ima-ng", "ima-sig", "ima-buf", "ima-modsig", "ima", "ima-sigv2", "d-ng|n-ng|iuid|igid|imode")
SAMPLE = generate(12, seed=99, templates=TEMPLATES, violation_rate=0.2, other_pcr_rate=0.2)
FAST = settings(max_examples=int(__import__("os").environ.get("IMA_HYPOTHESIS_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_evidence_error(data: bytes):
    try:
        log = parse(data)
    except EvidenceError as e:
        assert e.code.startswith("ima.") and (e.offset is None or 0 <= e.offset <= len(data))
        return None
    # every accessor works on whatever parsed
    for e in log.entries:
        _ = (e.digest, e.filename, e.signature, e.buf, e.modsig, e.modsig_digest, e.template_hash_ok)
    try:
        log.replay()
    except VerificationError as e:
        assert e.code == "ima.template_hash_mismatch"
    verify_signatures(log, Keyring())
    return log


@FAST
@given(st.binary(max_size=400))
def test_random_bytes(data):
    parse_or_evidence_error(data)


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_after_valid_prefix(tail):
    parse_or_evidence_error(SAMPLE.binary[: SAMPLE.offsets[3]] + tail)
    parse_or_evidence_error(SAMPLE.ascii[: SAMPLE.line_offsets[3]] + tail)


@FAST
@given(st.sampled_from(("binary", "ascii")), st.data())
def test_truncations(form, data):
    blob = getattr(SAMPLE, form)
    cut = data.draw(st.integers(0, len(blob)))
    log = parse_or_evidence_error(blob[:cut])
    starts = SAMPLE.offsets if form == "binary" else SAMPLE.line_offsets
    if cut in starts or cut == len(blob):
        # cut at an entry boundary: a valid (shorter) list that replays like the generator says
        assert log is not None and len(log) == sum(1 for s in starts if s < cut)


@FAST
@given(st.sampled_from(("binary", "ascii")), st.data())
def test_bit_flips(form, data):
    blob = bytearray(getattr(SAMPLE, form))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= 1 << data.draw(st.integers(0, 7))
    parse_or_evidence_error(bytes(blob))


@FAST
@given(st.lists(st.binary(max_size=12), max_size=6), st.sampled_from(TEMPLATES))
def test_random_fields_in_a_real_header(fields, tname):
    tdata = b"".join(struct.pack("<I", len(f)) + f for f in fields)
    tn = tname.encode()
    data = struct.pack("<I20sI", 10, bytes(range(20)), len(tn)) + tn + struct.pack("<I", len(tdata)) + tdata
    parse_or_evidence_error(data)


@FAST
@given(st.lists(st.text(alphabet="0123456789abcdef: |-_/.aimngsd\t", max_size=30), min_size=1, max_size=8))
def test_random_ascii_lines(tokens):
    parse_or_evidence_error(("10 " + "ab" * 20 + " " + " ".join(tokens) + "\n").encode())


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_absurd_lengths(name_len, data_len):
    data = struct.pack("<I20sI", 10, bytes(20), name_len) + b"ima-ng" + struct.pack("<I", data_len) + b"\0" * 8
    # empty template data fields and huge lengths can never make a valid entry here
    assert parse_or_evidence_error(data) is None


@FAST
@given(st.binary(max_size=80))
def test_signature_decoder(blob):
    try:
        s = parse_signature(blob)
    except EvidenceError as e:
        assert e.code.startswith("ima.signature.")
    else:
        assert len(blob) == 9 + len(s.signature)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 40), st.floats(0, 0.5), st.floats(0, 0.5))
def test_generated_roundtrip(seed, count, vrate, prate):
    g = generate(count, seed=seed, templates=TEMPLATES, violation_rate=vrate, other_pcr_rate=prate)
    assert parse(g.binary).replay() == parse(g.ascii).replay() == g.expected
