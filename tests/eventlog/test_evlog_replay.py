"""Replay rules, digest checks, comparison with expected PCRs, and quirks (synthetic logs)."""

from __future__ import annotations

import os

import pytest

from attestd.errors import EvidenceError, VerificationError
from attestd.eventlog import QUIRKS, parse
from attestd.eventlog.replay import normalize_pcrs

from evlog_builders import (
    EV_EFI_ACTION,
    EV_EFI_BOOT_SERVICES_APPLICATION,
    EV_EFI_GPT_EVENT,
    EV_EFI_HCRTM_EVENT,
    EV_EFI_VARIABLE_AUTHORITY,
    EV_EFI_VARIABLE_BOOT,
    EV_EFI_VARIABLE_DRIVER_CONFIG,
    EV_IPL,
    EV_NO_ACTION,
    EV_POST_CODE,
    EV_S_CRTM_VERSION,
    EV_SEPARATOR,
    SHA1,
    SHA256,
    SM3,
    H,
    agile_log,
    event2_record,
    independent_replay,
    measured,
    sha1_record,
    startup_locality,
    uefi_variable_data,
)

BANKS = (SHA1, SHA256)


def _random_events(n: int, pcrs=(0, 1, 2, 4, 5, 7)):
    out = []
    for i in range(n):
        pcr = pcrs[i % len(pcrs)]
        digests = {a: os.urandom(len(H(a, b""))) for a in BANKS}
        out.append((pcr, EV_POST_CODE, digests))
    return out


def _records(events, data=b"blob"):
    return [event2_record(p, t, list(d.items()), data) for p, t, d in events]


def test_replay_matches_an_independent_replay():
    events = _random_events(40)
    log = parse(agile_log(*_records(events)))
    assert log.replay() == independent_replay(events)
    assert set(log.replay()["sha1"]) == {0, 1, 2, 4, 5, 7}


def test_replay_extends_the_logged_digest_not_the_data():
    events = _random_events(3)
    log = parse(agile_log(*_records(events, data=b"unrelated")))
    assert log.replay() == independent_replay(events)


def test_sha1_format_replay():
    d = [os.urandom(20) for _ in range(4)]
    raw = b"".join(sha1_record(p, EV_POST_CODE, x, b"") for p, x in zip((0, 0, 4, 7), d))
    expected = independent_replay([(p, 1, {SHA1: x}) for p, x in zip((0, 0, 4, 7), d)])
    assert parse(raw).replay() == expected


def test_sm3_bank_replays():
    events = [(0, EV_POST_CODE, {SM3: H(SM3, b"a")}), (0, EV_POST_CODE, {SM3: H(SM3, b"b")})]
    log = parse(agile_log(*_records(events), algs=((SM3, 32),)))
    assert log.replay() == independent_replay(events)


def test_no_action_events_are_never_extended():
    events = _random_events(6)
    noise = event2_record(4, EV_NO_ACTION, [(SHA1, b"\x11" * 20), (SHA256, b"\x22" * 32)], b"info")
    recs = _records(events)
    log = parse(agile_log(recs[0], noise, *recs[1:], noise))
    assert log.replay() == independent_replay(events)


@pytest.mark.parametrize("locality", [0, 3, 4])
def test_startup_locality_sets_pcr0_initial_value(locality):
    events = _random_events(5, pcrs=(0, 1))
    loc = event2_record(0, EV_NO_ACTION, [(SHA1, b"\0" * 20), (SHA256, b"\0" * 32)], startup_locality(locality))
    log = parse(agile_log(loc, *_records(events)))
    assert log.replay() == independent_replay(events, locality=locality)
    if locality:
        assert log.replay()["sha256"][0] != independent_replay(events)["sha256"][0]
    assert log.replay_warnings() == []


def test_startup_locality_in_a_sha1_format_log():
    d = os.urandom(20)
    raw = sha1_record(0, EV_NO_ACTION, b"\0" * 20, startup_locality(3)) + sha1_record(0, 1, d, b"")
    assert parse(raw).replay() == independent_replay([(0, 1, {SHA1: d})], locality=3)


def test_startup_locality_after_pcr0_measurement_is_ignored_with_warning():
    events = _random_events(2, pcrs=(0,))
    loc = event2_record(0, EV_NO_ACTION, [(SHA1, b"\0" * 20), (SHA256, b"\0" * 32)], startup_locality(3))
    recs = _records(events)
    log = parse(agile_log(recs[0], loc, recs[1]))
    assert log.replay() == independent_replay(events)
    assert [w.code for w in log.replay_warnings()] == ["eventlog.locality_ignored"]


def test_hcrtm_event_starts_pcr0_at_locality_4():
    hcrtm = (0, EV_EFI_HCRTM_EVENT, {SHA1: os.urandom(20), SHA256: os.urandom(32)})
    events = [hcrtm] + _random_events(3, pcrs=(0,))
    log = parse(agile_log(*_records([hcrtm], data=b"HCRTM"), *_records(events[1:])))
    assert log.replay() == independent_replay(events, locality=4)
    # H-CRTM wins over a StartupLocality event, as in tpm2_eventlog
    loc = event2_record(0, EV_NO_ACTION, [(SHA1, b"\0" * 20), (SHA256, b"\0" * 32)], startup_locality(3))
    log = parse(agile_log(loc, *_records([hcrtm], data=b"HCRTM"), *_records(events[1:])))
    assert log.replay() == independent_replay(events, locality=4)


def test_late_hcrtm_event_is_extended_with_a_warning():
    events = _random_events(1, pcrs=(0,)) + [(0, EV_EFI_HCRTM_EVENT, {SHA1: os.urandom(20), SHA256: os.urandom(32)})]
    log = parse(agile_log(*_records(events)))
    assert log.replay() == independent_replay(events)
    assert [w.code for w in log.replay_warnings()] == ["eventlog.hcrtm_late"]


def test_bank_missing_on_some_events_is_left_out_with_a_warning():
    full = _random_events(4, pcrs=(4,))
    partial = (4, EV_POST_CODE, {SHA256: os.urandom(32)})
    other = (7, EV_POST_CODE, {SHA1: os.urandom(20), SHA256: os.urandom(32)})
    log = parse(agile_log(*_records(full + [partial, other])))
    values = log.replay()
    assert 4 not in values["sha1"] and values["sha1"][7] == independent_replay([other])["sha1"][7]
    assert values["sha256"][4] == independent_replay(full + [partial])["sha256"][4]
    warnings = log.replay_warnings()
    assert [(w.code, w.bank, w.pcr) for w in warnings] == [("eventlog.bank_incomplete", "sha1", 4)]
    report = log.compare({"sha1": {4: b"\0" * 20}})
    assert report.checks[0].status == "unverifiable" and not report.ok


def test_unknown_algorithm_bank_is_not_replayed():
    algs = ((SHA256, 32), (0x7777, 24))
    log = parse(agile_log(event2_record(1, 1, [(SHA256, b"\1" * 32), (0x7777, b"\2" * 24)], b""), algs=algs))
    assert set(log.replay()) == {"sha256"}
    assert [w.code for w in log.replay_warnings()] == ["eventlog.unsupported_bank"]


# -- digest checks -------------------------------------------------------------------------------

def _codes(log):
    return [(w.code, w.event, w.bank) for w in log.replay_warnings()]


@pytest.mark.parametrize("etype,data", [
    (EV_SEPARATOR, b"\0\0\0\0"),
    (EV_EFI_ACTION, b"Calling EFI Application from Boot Option"),
    (EV_S_CRTM_VERSION, "GCE Virtual Firmware v1\0".encode("utf-16-le")),
    (EV_EFI_GPT_EVENT, os.urandom(92)),
    (EV_EFI_VARIABLE_DRIVER_CONFIG, uefi_variable_data("SecureBoot", b"\1")),
])
def test_hash_of_data_types_are_checked(etype, data):
    good = parse(agile_log(measured(7, etype, data)))
    assert _codes(good) == []
    bad = parse(agile_log(measured(7, etype, data, digest_of=data + b"!")))
    assert _codes(bad) == [("eventlog.digest_not_data_hash", 1, "sha1"), ("eventlog.digest_not_data_hash", 1, "sha256")]
    assert bad.replay() == independent_replay([(7, etype, {a: H(a, data + b"!") for a in BANKS})])


def test_variable_boot_accepts_variable_data_or_whole_structure():
    var = uefi_variable_data("Boot0001", b"\x01\x00\x00\x00load option")
    payload = b"\x01\x00\x00\x00load option"
    assert _codes(parse(agile_log(measured(1, EV_EFI_VARIABLE_BOOT, var, digest_of=payload)))) == []
    assert _codes(parse(agile_log(measured(1, EV_EFI_VARIABLE_BOOT, var)))) == []
    assert _codes(parse(agile_log(measured(1, EV_EFI_VARIABLE_BOOT, var, digest_of=b"x"))))[0][0] == \
        "eventlog.digest_not_data_hash"


def test_authority_with_unmeasured_trailing_bytes_is_explained():
    var = uefi_variable_data("Shim", b"0\x82 cert", guid="605dab50-e046-4300-abb6-3dd810dd8b23")
    log = parse(agile_log(measured(7, EV_EFI_VARIABLE_AUTHORITY, var + b"\0" * 6, digest_of=var + b"\0" * 5)))
    assert [c for c, _, _ in _codes(log)] == ["eventlog.digest_data_trailing_bytes"] * 2
    assert "last 1 byte" in log.replay_warnings()[0].message


def test_grub_strings_in_pcr8():
    cmd = b"grub_cmd: linux /vmlinuz root=/dev/sda1\0"
    for digest_of in (cmd[10:-1], cmd[10:]):
        assert _codes(parse(agile_log(measured(8, EV_IPL, cmd, digest_of=digest_of)))) == []
    assert _codes(parse(agile_log(measured(8, EV_IPL, cmd, digest_of=b"other"))))[0][0] == \
        "eventlog.digest_not_data_hash"
    # kernels in PCR9 and unknown formats are never checked
    assert _codes(parse(agile_log(measured(9, EV_IPL, b"/vmlinuz\0", digest_of=b"kernel image")))) == []
    assert _codes(parse(agile_log(measured(8, EV_IPL, b"no-prefix", digest_of=b"x")))) == []


def test_types_whose_digest_covers_unlogged_data_are_not_checked():
    for etype in (EV_POST_CODE, EV_EFI_BOOT_SERVICES_APPLICATION, EV_EFI_HCRTM_EVENT):
        assert _codes(parse(agile_log(measured(2, etype, b"pointer", digest_of=b"image")))) == []


# -- compare / verify ----------------------------------------------------------------------------

def _boot_log(*, ebs_logged: bool = False, extra_pcr5: bytes = b""):
    recs = [
        measured(0, EV_S_CRTM_VERSION, b"v\0"),
        measured(4, EV_EFI_ACTION, b"Calling EFI Application from Boot Option"),
        measured(4, EV_SEPARATOR, b"\0\0\0\0"),
        measured(5, EV_SEPARATOR, b"\0\0\0\0"),
        measured(5, EV_EFI_GPT_EVENT, b"gpt" * 10),
    ]
    if ebs_logged:
        recs.append(measured(5, EV_EFI_ACTION, b"Exit Boot Services Invocation"))
    return parse(agile_log(*recs))


def _extend(bank_alg, value, *datas):
    for d in datas:
        value = H(bank_alg, value + H(bank_alg, d))
    return value


def test_compare_statuses_and_verify():
    log = _boot_log()
    values = log.replay()
    expected = {"sha1": dict(values["sha1"]), "sha256": dict(values["sha256"])}
    expected["sha1"][10] = os.urandom(20)  # IMA: no events in this log
    report = log.verify(expected)
    assert report.ok and report.quirks_applied == ()
    statuses = {(c.bank, c.pcr): c.status for c in report.checks}
    assert statuses[("sha1", 10)] == "not_logged"
    assert all(s == "match" for k, s in statuses.items() if k != ("sha1", 10))
    # a bank the log has no digests for cannot vouch for PCRs that have events
    report = log.compare({"sha384": {0: b"\0" * 48, 10: b"\0" * 48}})
    assert [(c.pcr, c.status) for c in report.checks] == [(0, "unverifiable"), (10, "not_logged")]
    with pytest.raises(VerificationError) as exc:
        report.raise_for_mismatch()
    assert exc.value.code == "eventlog.replay_mismatch"


def test_mismatch_error_names_bank_pcr_and_both_values():
    log = _boot_log()
    values = log.replay()
    wrong4, wrong0 = os.urandom(32), os.urandom(20)
    expected = {"sha256": {**values["sha256"], 4: wrong4}, "sha1": {**values["sha1"], 0: wrong0}}
    report = log.compare(expected)
    assert not report.ok and [(c.bank, c.pcr) for c in report.mismatches] == [("sha1", 0), ("sha256", 4)]
    with pytest.raises(VerificationError) as exc:
        log.verify(expected)
    err = exc.value
    assert err.code == "eventlog.replay_mismatch"
    assert "bank sha1 PCR 0" in err.message and wrong0.hex() in err.message and values["sha1"][0].hex() in err.message
    assert "1 more" in err.message
    mism = err.details["mismatches"]
    assert [(m["bank"], m["pcr"], m["expected"], m["replayed"]) for m in mism] == [
        ("sha1", 0, wrong0.hex(), values["sha1"][0].hex()), ("sha256", 4, wrong4.hex(), values["sha256"][4].hex())]


def test_mismatch_explanations():
    log = _boot_log()
    first_only = H(SHA256, b"\0" * 32 + H(SHA256, b"Calling EFI Application from Boot Option"))
    report = log.compare({"sha256": {4: first_only, 5: b"\0" * 32}})
    by_pcr = {c.pcr: c for c in report.mismatches}
    assert "first 1 of 2 measurements" in by_pcr[4].explanation
    assert "initial value" in by_pcr[5].explanation
    report = log.compare({"sha256": {4: os.urandom(32)}})
    assert "no prefix" in report.mismatches[0].explanation


def test_ebs_quirk_applies_only_when_it_explains_pcr5():
    log = _boot_log()
    values = log.replay()
    with_ebs = {
        "sha1": {**values["sha1"], 5: _extend(SHA1, values["sha1"][5], b"Exit Boot Services Invocation",
                                              b"Exit Boot Services Returned with Success")},
        "sha256": {**values["sha256"], 5: _extend(SHA256, values["sha256"][5], b"Exit Boot Services Invocation",
                                                  b"Exit Boot Services Returned with Success")},
    }
    report = log.verify(with_ebs)
    assert [(q.name, q.bank, q.pcr) for q in report.quirks_applied] == [("ebs-not-logged", "sha1", 5),
                                                                        ("ebs-not-logged", "sha256", 5)]
    assert "eventlog.quirk_applied" in {w.code for w in report.warnings}
    assert {c.pcr: c.quirk for c in report.checks}[5] == "ebs-not-logged"
    # never silently: without quirks the same comparison fails
    assert not log.compare(with_ebs, quirks=False).ok
    # the failure + success variant
    retry = {"sha256": {5: _extend(SHA256, values["sha256"][5], b"Exit Boot Services Invocation",
                                   b"Exit Boot Services Returned with Failure",
                                   b"Exit Boot Services Returned with Success")}}
    assert log.verify(retry).quirks_applied[0].name == "ebs-failure-retry-not-logged"
    # only the PCR the quirk names: the same extra events in PCR4 are a mismatch
    pcr4 = {"sha256": {4: _extend(SHA256, values["sha256"][4], b"Exit Boot Services Invocation",
                                  b"Exit Boot Services Returned with Success")}}
    assert not log.compare(pcr4).ok
    # only when it matches: a different PCR5 value is still a mismatch, and the explanation says so
    report = log.compare({"sha256": {5: os.urandom(32)}})
    assert not report.ok and "ebs-not-logged" in report.mismatches[0].explanation


def test_ebs_quirk_precondition_blocks_it_when_ebs_is_logged():
    log = _boot_log(ebs_logged=True)
    values = log.replay()
    expected = {"sha256": {5: _extend(SHA256, values["sha256"][5], b"Exit Boot Services Returned with Success")}}
    # appending Invocation+Success would not match anyway; build the value the quirk *would* produce
    quirk_value = {"sha256": {5: _extend(SHA256, values["sha256"][5], b"Exit Boot Services Invocation",
                                         b"Exit Boot Services Returned with Success")}}
    assert not log.compare(expected).ok
    report = log.compare(quirk_value)
    assert not report.ok and report.quirks_applied == ()
    assert not any(q.precondition(log) for q in QUIRKS)


def test_quirk_registry_is_documented():
    names = [q.name for q in QUIRKS]
    assert len(names) == len(set(names))
    for q in QUIRKS:
        assert q.title and q.affects and q.reference and q.precondition_text
        assert 0 <= q.pcr < 24 and q.appended


def test_normalize_pcrs():
    assert normalize_pcrs({"SHA256": {"7": "0x" + "ab" * 32}, "sha-1": {0: b"\0" * 20}}) == {
        "sha256": {7: b"\xab" * 32}, "sha1": {0: b"\0" * 20}}
    for bad in ({"sha256": {"x": "00" * 32}}, {"sha256": {"1": "zz"}}, {"sha256": {"1": "00"}},
                {"md5": {"1": "00" * 16}}, {"sha256": ["00" * 32]}, {"sha256": {"-1": "00" * 32}},
                {"sha256": {"1": 5}}, ["sha256"]):
        with pytest.raises(EvidenceError):
            normalize_pcrs(bad)  # type: ignore[arg-type]


def test_report_json_shape():
    log = _boot_log()
    report = log.compare({"sha1": {0: b"\0" * 20}})
    doc = report.to_json()
    assert doc["ok"] is False and doc["checks"][0]["status"] == "mismatch"
    assert doc["checks"][0]["expected"] == "00" * 20 and doc["checks"][0]["replayed"] == log.replay()["sha1"][0].hex()
