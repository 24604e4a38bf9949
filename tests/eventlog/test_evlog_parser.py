"""Parser: both log formats, the Spec ID header, padding, and every malformed-input error path."""

from __future__ import annotations

import os
import struct

import pytest

from attestd.errors import EvidenceError
from attestd.eventlog import LogFormat, parse
from attestd.eventlog.parser import parse_spec_id_event

from evlog_builders import (
    EV_EFI_ACTION,
    EV_NO_ACTION,
    EV_POST_CODE,
    EV_SEPARATOR,
    SHA1,
    SHA256,
    SHA384,
    SHA512,
    SM3,
    H,
    agile_log,
    event2_record,
    measured,
    sha1_record,
    spec_id_data,
    startup_locality,
)


def test_crypto_agile_log_framing():
    rec1 = measured(0, EV_POST_CODE, b"firmware")
    rec2 = measured(7, EV_SEPARATOR, b"\0\0\0\0")
    raw = agile_log(rec1, rec2)
    log = parse(raw)
    assert log.format is LogFormat.CRYPTO_AGILE
    assert log.banks == ("sha1", "sha256")
    assert len(log.events) == len(log) == 3
    spec_event, e1, e2 = log.events
    assert [e.index for e in log.events] == [0, 1, 2]
    assert spec_event.event_type == EV_NO_ACTION and spec_event.data == spec_id_data()
    assert (e1.pcr, e1.event_type, e1.data) == (0, EV_POST_CODE, b"firmware")
    assert e1.digests == {"sha1": H(SHA1, b"firmware"), "sha256": H(SHA256, b"firmware")}
    assert (e2.pcr, e2.type_name) == (7, "EV_SEPARATOR")
    # offsets locate each whole record and its data in the input
    assert raw[e1.offset:e1.offset + e1.size] == rec1
    assert raw[e2.offset:e2.offset + e2.size] == rec2
    assert raw[e2.data_offset:e2.data_offset + len(e2.data)] == e2.data
    assert e2.offset + e2.size == len(raw) and log.padding == 0
    spec = log.spec_id
    assert spec is not None and spec.spec_version_major == 2 and spec.uintn_size == 2
    assert [(a.algorithm_id, a.digest_size, a.bank) for a in spec.digest_sizes] == [(4, 20, "sha1"),
                                                                                   (11, 32, "sha256")]


def test_sha1_format_log():
    d1, d2 = os.urandom(20), os.urandom(20)
    raw = sha1_record(0, 8, d1, b"v1.0") + sha1_record(4, EV_SEPARATOR, d2, b"\0" * 4)
    log = parse(raw)
    assert log.format is LogFormat.SHA1 and log.spec_id is None and log.banks == ("sha1",)
    assert [(e.index, e.pcr, e.event_type, e.digests["sha1"], e.data) for e in log.events] == [
        (0, 0, 8, d1, b"v1.0"), (1, 4, EV_SEPARATOR, d2, b"\0" * 4)]


def test_short_first_no_action_event_means_sha1_format():
    # A bare StartupLocality EV_NO_ACTION is shorter than a Spec ID header: a TCG 1.2 log.
    raw = sha1_record(0, EV_NO_ACTION, b"\0" * 20, startup_locality(3)) + sha1_record(0, 1, b"\1" * 20, b"x")
    log = parse(raw)
    assert log.format is LogFormat.SHA1 and len(log.events) == 2


def test_tcg12_spec_id_event00_is_sha1_format():
    data = b"Spec ID Event00\0" + bytes(20)
    log = parse(sha1_record(0, EV_NO_ACTION, b"\0" * 20, data) + sha1_record(2, 1, b"\2" * 20, b""))
    assert log.format is LogFormat.SHA1 and log.events[1].pcr == 2


def test_all_banks_sm3_and_unknown_algorithm_with_declared_size():
    algs = ((SHA1, 20), (SHA256, 32), (SHA384, 48), (SHA512, 64), (SM3, 32), (0x7777, 24))
    digests = [(a, H(a, b"x")) for a, _ in algs[:-1]] + [(0x7777, b"\xab" * 24)]
    raw = agile_log(event2_record(3, EV_POST_CODE, digests, b"x"), measured(3, EV_POST_CODE, b"y", (SHA256,)),
                    algs=algs)
    log = parse(raw)
    assert log.banks == ("sha1", "sha256", "sha384", "sha512", "sm3_256", "alg_0x7777")
    assert log.events[1].digests["alg_0x7777"] == b"\xab" * 24
    assert log.events[1].digests["sm3_256"] == H(SM3, b"x")
    assert log.events[2].data == b"y" and list(log.events[2].digests) == ["sha256"]


def test_vendor_info():
    log = parse(agile_log(vendor=b"\xde\xad\xbe\xef"))
    assert log.spec_id.vendor_info == b"\xde\xad\xbe\xef"
    assert log.parse_warnings == ()


def test_vendor_info_past_event_data_size_is_read_like_tpm2_tools():
    good = spec_id_data(vendor=b"\x01\x02\x03")
    # eventDataSize excludes the 3 vendorInfo bytes, which follow in the log
    raw = sha1_record(0, EV_NO_ACTION, b"\0" * 20, good, size=len(good) - 3) + measured(1, 1, b"a")
    log = parse(raw)
    assert log.spec_id.vendor_info == b"\x01\x02\x03"
    assert [e.pcr for e in log.events] == [0, 1]
    assert [w.code for w in log.parse_warnings] == ["eventlog.spec_id_vendor_overrun"]


def test_declared_banks_missing_from_events():
    algs = ((SHA1, 20), (SHA256, 32), (SHA384, 48), (SHA512, 64))
    log = parse(agile_log(measured(7, EV_SEPARATOR, b"\0" * 4), algs=algs))
    assert log.banks == ("sha1", "sha256", "sha384", "sha512")
    assert set(log.events[1].digests) == {"sha1", "sha256"}
    assert set(log.replay()) == {"sha1", "sha256"}


@pytest.mark.parametrize("pad", [1, 7, 11, 12, 31, 32, 33, 4096])
def test_trailing_erased_fill_ends_the_log(pad):
    """A log read from its reserved area (ACPI log area, TDX CCEL) ends in 0xFF fill."""
    body = agile_log(measured(0, 1, b"a"), measured(1, 1, b"\xff\xff"))
    log = parse(body + b"\xff" * pad)
    assert len(log.events) == 3 and log.padding == pad
    assert log.events[-1].data == b"\xff\xff"  # data ending in 0xFF is not mistaken for fill
    assert log.replay() == parse(body).replay()
    with pytest.raises(EvidenceError) as exc:  # fill that is not a single byte value is garbage
        parse(body + b"\xff" * pad + b"\x00")
    assert exc.value.offset is not None and exc.value.offset >= len(body)


@pytest.mark.parametrize("pad", [1, 7, 11, 12, 31, 32, 33, 4096])
def test_trailing_zero_padding_ends_the_log(pad):
    body = agile_log(measured(0, 1, b"a"), measured(1, 1, b"b"))
    log = parse(body + b"\0" * pad)
    assert len(log.events) == 3 and log.padding == pad
    assert log.replay() == parse(body).replay()
    legacy = sha1_record(0, 1, b"\1" * 20, b"x")
    assert parse(legacy + b"\0" * pad).padding == pad


def test_garbage_after_the_last_event_is_an_error_with_offset():
    body = agile_log(measured(0, 1, b"a"))
    with pytest.raises(EvidenceError) as exc:
        parse(body + b"\x00\x00\x01")
    assert exc.value.offset is not None and exc.value.offset >= len(body)
    # a plausible header whose data runs past the end
    with pytest.raises(EvidenceError) as exc:
        parse(body + struct.pack("<III", 0, 1, 0) + struct.pack("<I", 9) + b"abc")
    assert exc.value.code == "eventlog.truncated" and exc.value.offset == len(body) + 12
    assert exc.value.field == "TCG_PCR_EVENT2.event"


def test_absurd_event_size_is_rejected_without_allocating():
    body = agile_log()
    raw = body + event2_record(0, 1, [], b"", size=0xFFFFFFFF)
    with pytest.raises(EvidenceError) as exc:
        parse(raw)
    assert exc.value.code == "eventlog.truncated" and "4294967295" in exc.value.message
    with pytest.raises(EvidenceError) as exc:
        parse(sha1_record(0, 1, b"\0" * 20, b"", size=0xFFFFFFFF))
    assert exc.value.code == "eventlog.truncated" and exc.value.offset == 28


def test_digest_errors():
    body = agile_log()
    with pytest.raises(EvidenceError) as exc:
        parse(body + event2_record(0, 1, [(SHA1, b"\0" * 20)], b"", count=3))
    assert (exc.value.code, exc.value.offset) == ("eventlog.digest_count", len(body) + 8)
    with pytest.raises(EvidenceError) as exc:
        parse(body + event2_record(0, 1, [(SHA384, b"\0" * 48)], b""))
    assert (exc.value.code, exc.value.offset) == ("eventlog.unknown_alg", len(body) + 12)
    with pytest.raises(EvidenceError) as exc:
        parse(body + event2_record(0, 1, [(SHA1, b"\0" * 20), (SHA1, b"\0" * 20)], b""))
    assert (exc.value.code, exc.value.offset) == ("eventlog.duplicate_digest", len(body) + 34)


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (spec_id_data(algs=()), "eventlog.spec_id"),
        (spec_id_data(algs=((SHA1, 20), (SHA1, 20))), "eventlog.spec_id"),
        (spec_id_data(algs=((SHA256, 20),)), "eventlog.spec_id"),
        (spec_id_data() + b"\0", "eventlog.trailing_data"),
        (spec_id_data(count=0x40000000), "eventlog.truncated"),
        (spec_id_data()[:-1], "eventlog.truncated"),
    ],
)
def test_spec_id_errors(spec, code):
    with pytest.raises(EvidenceError) as exc:
        parse(sha1_record(0, EV_NO_ACTION, b"\0" * 20, spec))
    assert exc.value.code == code
    assert exc.value.offset is not None and 32 <= exc.value.offset <= 32 + len(spec)
    assert exc.value.field.startswith("TCG_EfiSpecI")


def test_parse_spec_id_event_standalone():
    spec = parse_spec_id_event(spec_id_data(vendor=b"v"))
    assert spec.vendor_info == b"v" and len(spec.digest_sizes) == 2
    with pytest.raises(EvidenceError):
        parse_spec_id_event(b"Spec ID Event02\0" + bytes(16))


def test_empty_inputs_and_types():
    for raw in (b"", b"\0" * 100):
        with pytest.raises(EvidenceError) as exc:
            parse(raw)
        assert exc.value.code == "eventlog.empty"
    with pytest.raises(EvidenceError) as exc:
        parse(b"\1" * 10)
    assert exc.value.code == "eventlog.truncated" and exc.value.offset == 0
    with pytest.raises(EvidenceError) as exc:
        parse("not bytes")  # type: ignore[arg-type]
    assert exc.value.code == "eventlog.type"
    raw = agile_log(measured(0, EV_EFI_ACTION, b"a"))
    assert parse(bytearray(raw)).replay() == parse(memoryview(raw)).replay() == parse(raw).replay()


def test_every_truncation_of_a_small_log_is_a_located_error():
    raw = agile_log(measured(0, 1, b"abc"), measured(5, EV_EFI_ACTION, b"Exit"), vendor=b"vv")
    boundaries = {len(raw)}
    log = parse(raw)
    boundaries.update(e.offset + e.size for e in log.events)
    for cut in range(1, len(raw)):
        last = max(b for b in boundaries if b <= cut) if any(b <= cut for b in boundaries) else 0
        tail = raw[last:cut]
        if cut in boundaries or (last and (not tail.strip(b"\0") or not tail.strip(b"\xff"))):
            # a record boundary, or a cut whose tail is 0x00 or 0xFF fill (= padding, e.g. PCRIndex 0)
            partial = parse(raw[:cut])
            assert len(partial.events) < len(log.events)
            assert partial.padding == cut - last
            continue
        with pytest.raises(EvidenceError) as exc:
            parse(raw[:cut])
        expected_code = "eventlog.empty" if not raw[:cut].strip(b"\0") else "eventlog.truncated"
        assert exc.value.code == expected_code, cut
        assert 0 <= exc.value.offset <= cut


def test_events_are_immutable_and_decoding_is_lazy():
    log = parse(agile_log(measured(0, 1, b"a")))
    event = log.events[1]
    with pytest.raises(AttributeError):
        event.pcr = 3  # type: ignore[misc]
    assert event._decoded is None  # parse did not decode anything
    assert log.events is log.events  # materialised once
