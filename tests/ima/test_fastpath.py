"""The binary parser's ima-ng fast path is invisible: same entries, same errors as the general code.

Every case is parsed twice - normally and with ``_fast=False`` (general code for every entry) - and
must give equal entries or the same EvidenceError (code, field, offset, message).
"""

from __future__ import annotations

import pickle
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestd.errors import EvidenceError
from attestd.ima import ImaEntry, parse
from attestd.ima.binfmt import parse_binary
from attestd.ima.entry import make_entry
from attestd.testing.imagen import generate

FAST = settings(max_examples=int(__import__("os").environ.get("IMA_HYPOTHESIS_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
NG = generate(16, seed=7, violation_rate=0.1, other_pcr_rate=0.1)


def outcome(data: bytes, fast: bool):
    try:
        entries, big = parse_binary(data, _fast=fast)
    except EvidenceError as e:
        return ("error", e.code, e.field, e.offset, e.message)
    for e in entries:
        assert type(e) is ImaEntry and type(e.template_hash) is bytes and type(e.template_data) is bytes
        assert all(type(f) is bytes for f in e.fields)
    return ("ok", tuple(entries), big)


def same(data: bytes):
    fast = outcome(data, True)
    assert fast == outcome(data, False)
    return fast


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def entry(tname: bytes, fields: list[bytes], pcr: int = 10, th: bytes = b"\x11" * 20) -> bytes:
    tdata = b"".join(u32(len(f)) + f for f in fields)
    return struct.pack("<I20sI", pcr, th, len(tname)) + tname + u32(len(tdata)) + tdata


def ng(name: bytes = b"/usr/bin/x\0", digest: bytes = b"sha256:\0" + bytes(32), **kw) -> bytes:
    return entry(b"ima-ng", [digest, name], **kw)


GOOD = ng() * 5


@pytest.mark.parametrize("kw", [
    {},
    {"digest_algo": "sha1"},
    {"digest_algo": "sha512"},
    {"big_endian": True},
    {"templates": ("ima-ngv2",)},
    {"templates": ("ima-ng", "ima-ngv2", "ima-sig", "ima", "ima-buf"), "violation_rate": 0.2},
    {"templates": ("ima-ng", "d-ng|n-ng"), "other_pcr_rate": 0.3},
])
def test_generated_lists(kw):
    g = generate(60, seed=3, **kw)
    result = same(g.binary)
    assert result[0] == "ok" and len(result[1]) == 60
    assert parse(g.binary).replay() == g.expected


def test_entries_are_ordinary_imaentries():
    e = parse(GOOD).entries[3]
    assert e == ImaEntry(e.index, e.offset, e.pcr, e.template_hash, e.template, e.fields, e.template_data)
    assert e == make_entry(e.index, e.offset, e.pcr, e.template_hash, e.template, e.fields, e.template_data)
    assert hash(e) == hash(ImaEntry(e.index, e.offset, e.pcr, e.template_hash, e.template, e.fields,
                                    e.template_data))
    assert pickle.loads(pickle.dumps(e)) == e
    with pytest.raises(AttributeError):
        e.pcr = 11  # type: ignore[misc]


@pytest.mark.parametrize("tail", [
    ng(b"/no/nul"),                                   # name without NUL
    ng(b"/in\0ner\0"),                                # inner NUL
    ng(b""),                                          # empty name
    ng(b"\0"),                                        # name that is only the NUL (valid)
    ng(pcr=64),                                       # PCR out of range
    ng(pcr=63),
    ng(digest=b"sha256\0\0" + bytes(32)),             # same length, invalid prefix
    ng(digest=b"abcdef:\0" + bytes(32)),              # same length, other valid algorithm
    ng(digest=b"sha1:\0" + bytes(20)),                # other digest length
    ng(digest=b"sha256:\0" + bytes(31)),
    ng(digest=b""),                                   # empty digest field
    ng(th=bytes(20)),                                 # violation
    entry(b"ima-ngv2", [b"ima:sha256:\0" + bytes(32), b"/x\0"]),
    entry(b"ima-sig", [b"sha256:\0" + bytes(32), b"/x\0", b""]),
    entry(b"ima-sig", [b"sha256:\0" + bytes(32), b"/x\0"]),
    entry(b"d-ng|n-ng", [b"sha256:\0" + bytes(32), b"/x\0"]),
    entry(b"ima-ng", [b"sha256:\0" + bytes(32), b"/x\0", b""]),   # trailing field
    entry(b"ima-ng", [b"sha256:\0" + bytes(32)]),                 # missing field
    entry(b"ima", [bytes(20), b"/x"]),
    ng()[:-1],                                        # truncated
    ng()[:60],
    ng() + b"\0",
])
def test_after_fast_entries(tail):
    # the tail comes after entries that arm the fast path, and before more of them
    for data in (GOOD + tail, GOOD + tail + GOOD, GOOD + tail + tail):
        same(data)


def test_switching_digests_and_templates():
    sha1 = ng(digest=b"sha1:\0" + bytes(20))
    v2 = entry(b"ima-ngv2", [b"ima:sha256:\0" + bytes(32), b"/x\0"])
    data = (ng() + sha1) * 4 + v2 * 3 + ng() + v2 + sha1 * 3
    result = same(data)
    assert result[0] == "ok" and len(result[1]) == 8 + 3 + 1 + 1 + 3


def test_lengths_that_disagree():
    good = ng()
    # template data length one more / one less than the fields, name length that would overrun
    for i, delta in ((38, 1), (38, -1), (42, 1), (42, -1), (82, 1), (82, -1), (24, 1), (24, -1)):
        bad = bytearray(good)
        (v,) = struct.unpack_from("<I", bad, i)
        struct.pack_into("<I", bad, i, (v + delta) & 0xFFFFFFFF)
        same(GOOD + bytes(bad) + GOOD)
    huge = bytearray(good)
    struct.pack_into("<I", huge, 82, 0xFFFFFFF0)  # name field length
    same(GOOD + bytes(huge))


@FAST
@given(st.data())
def test_bit_flips(data):
    blob = bytearray(NG.binary)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(NG.offsets[1], len(blob) - 1))
        blob[i] ^= 1 << data.draw(st.integers(0, 7))
    same(bytes(blob))


@FAST
@given(st.data())
def test_truncations_and_tails(data):
    cut = data.draw(st.integers(NG.offsets[1], len(NG.binary)))
    same(NG.binary[:cut] + data.draw(st.binary(max_size=120)))
