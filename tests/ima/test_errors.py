"""Malformed lists: exact error codes, fields and offsets."""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from attestd.errors import EvidenceError
from attestd.ima import lookup_template, parse
from attestd.testing.imagen import generate


def entry(tname: bytes, tdata: bytes, pcr: int = 10, th: bytes = b"\x11" * 20) -> bytes:
    return struct.pack("<I20sI", pcr, th, len(tname)) + tname + struct.pack("<I", len(tdata)) + tdata


def field(b: bytes) -> bytes:
    return struct.pack("<I", len(b)) + b


GOOD_NG = field(b"sha256:\0" + bytes(32)) + field(b"/bin/sh\0")


def err(data: bytes) -> EvidenceError:
    with pytest.raises(EvidenceError) as exc:
        parse(data)
    return exc.value


def test_empty_input_is_an_empty_list():
    assert len(parse(b"")) == 0 and len(parse(b"\n\n")) == 0


def test_truncated_entry_header():
    g = generate(3)
    e = err(g.binary + b"\x0a\x00\x00\x00" + b"\x00" * 10)
    assert (e.code, e.field, e.offset) == ("ima.truncated", "ima_template_entry.digest", len(g.binary))


def test_truncated_template_data():
    data = entry(b"ima-ng", GOOD_NG)
    e = err(data[:-3])
    assert e.code == "ima.truncated" and e.field == "template_data" and e.offset == 4 + 20 + 4 + 6 + 4


def test_absurd_lengths_do_not_allocate():
    huge = struct.pack("<I20sI", 10, bytes(20), 6) + b"ima-ng" + struct.pack("<I", 0xFFFFFFF0) + b"x" * 16
    tracemalloc.start()
    e = err(huge)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert e.code == "ima.truncated" and peak < 1 << 20
    e = err(struct.pack("<I20sI", 10, bytes(20), 0x7FFFFFFF) + b"ima-ng")
    assert (e.code, e.field, e.offset) == ("ima.length", "template_name_len", 24)
    e = err(entry(b"ima-ng", struct.pack("<I", 0xFFFFFFFF) + b"abc"))
    assert (e.code, e.field) == ("ima.field_length", "template_data.d-ng.len")


def test_field_count_and_trailing_data():
    e = err(entry(b"ima-sig", GOOD_NG))
    assert (e.code, e.field) == ("ima.field_count", "template_data.sig")
    e = err(entry(b"ima-ng", GOOD_NG + b"\0"))
    assert e.code == "ima.trailing_data"


def test_bad_fields():
    e = err(entry(b"ima-ng", field(b"sha256" + bytes(32)) + field(b"/x\0")))
    assert (e.code, e.field, e.offset) == ("ima.bad_field", "template_data.d-ng", 38 + 4)
    e = err(entry(b"ima-ng", field(b"sha256:\0" + bytes(32)) + field(b"/x")))
    assert (e.code, e.field) == ("ima.bad_field", "template_data.n-ng")
    e = err(entry(b"ima-ng", field(b"sha256:\0") + field(b"/a\0b\0")))
    assert e.code == "ima.bad_field"


def test_unknown_template():
    e = err(entry(b"ima-foo", GOOD_NG))
    assert (e.code, e.field, e.offset) == ("ima.unknown_template", "template_name", 28)
    assert "ima-foo" in e.message
    e = err(entry(b"d-ng|n-ng|frob", GOOD_NG))
    assert e.code == "ima.unknown_template" and "frob" in e.message
    # a template format string made of known fields is understood (kernel: custom template)
    log = parse(entry(b"d-ng|n-ng", GOOD_NG))
    assert log.entries[0].template.field_ids == ("d-ng", "n-ng")
    assert lookup_template(b"d-ng|n-ng|sig") == lookup_template(b"ima-sig")


def test_pcr_index_and_garbage():
    e = err(b"\xff\xff\xff\xff" + bytes(40))
    assert e.code == "ima.pcr_index" and e.offset == 0
    e = err(parse_two := entry(b"ima-ng", GOOD_NG) + entry(b"ima-ng", GOOD_NG, pcr=64))
    assert e.code == "ima.pcr_index" and e.offset == len(parse_two) // 2


def test_ascii_errors():
    good = generate(3, templates=("ima-sig",)).ascii
    lines = good.splitlines(keepends=True)
    bad = lines[0] + lines[1].replace(b"ima-sig", b"ima-zzz") + lines[2]
    e = err(bad)
    assert (e.code, e.offset, e.details["line"]) == ("ima.unknown_template", len(lines[0]), 2)
    e = err(lines[0] + b"10 " + b"g" * 40 + b" ima-ng sha256:00 /x\n")
    assert e.code == "ima.ascii.syntax" and e.details["line"] == 2
    e = err(lines[0] + b"10 " + b"0" * 40 + b" ima-ng sha256:0g /x\n")
    assert (e.code, e.field) == ("ima.bad_field", "template_data.d-ng")
    e = err(lines[0] + b"10 " + b"0" * 40 + b" ima-ng 00ff /x\n")
    assert (e.code, e.field) == ("ima.bad_field", "template_data.d-ng")
    e = err(lines[0] + b"99 " + b"0" * 40 + b" ima-ng sha256:00 /x\n")
    assert e.code == "ima.pcr_index"
    e = err(lines[0] + b"10 " + b"0" * 40 + b"\n")
    assert e.code == "ima.ascii.syntax"


def test_ascii_tolerances():
    g = generate(5, templates=("ima-sig",), seed=3)
    # CRLF, blank lines, trailing spaces stripped, single-digit PCR written "%2d"
    crlf = b"\n".join(l.rstrip(b" ") for l in g.ascii.split(b"\n")).replace(b"\n", b"\r\n\r\n")
    assert parse(crlf).replay() == g.expected
    one = parse(b" 9 " + g.ascii.split(b" ", 1)[1].split(b"\n")[0] + b"\n")
    assert one.entries[0].pcr == 9
    # old kernels did not replace spaces in names: the extra tokens are the name
    line = g.ascii.split(b"\n")[1]
    pcr, th, tname, d, name, sig = line.split(b" ")
    spaced = b" ".join((pcr, th, tname, d, name + b" (deleted)", sig))
    assert parse(spaced).entries[0].filename == name.decode() + " (deleted)"
