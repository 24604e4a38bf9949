"""TDX CCEL: table, log end detection, RTMR replay against quotes and upstream values."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from dcap_times import utc

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.tdx import parse_ccel, parse_ccel_table, replay_rtmrs, verify_rtmrs, verify_tdx_quote
from attestd.tee.tdx.verify import VerifiedTdQuote

TRUSTEE_CCELS = ["ccel/CCEL_data_ovmf", "ccel/CCEL_data_grub", "ccel/CCEL_data_gcp", "ccel/CCEL_data_grub_gke"]


@pytest.mark.parametrize("name", TRUSTEE_CCELS)
def test_trustee_ccel_rtmrs(read, corpus, name):
    exp = json.loads((corpus / "trustee/expected.json").read_text())["ccel/"][name.split("/")[1]]
    rtmrs_exp = exp["expected_rtmrs (upstream test_rtmr_integrity; independent replay agrees)"]
    log = parse_ccel(read(f"trustee/{name}"))
    assert [r.hex() for r in replay_rtmrs(log)] == [rtmrs_exp[f"rtmr{i}"] for i in range(4)]
    assert len(log.events) - 1 == exp["events_after_specid"]
    assert log.length + log.padding == exp["file_size"]


@pytest.mark.parametrize("name", ["tdx/CCEL_data", "ccel/CCEL_data_ovmf", "ccel/CCEL_data_grub",
                                  "ccel/CCEL_data_grub_gke"])
def test_trustee_parse_json_framing(read, name):
    """Every event of trustee's exact parse JSON: MR index, type name, SHA-384 digest, event data."""
    out = json.loads(read(f"trustee/{name}_out.json"))["uefi_event_logs"]
    log = parse_ccel(read(f"trustee/{name}"))
    events = log.events[1:]  # after the Spec ID event
    assert len(events) == len(out)
    for ev, want in zip(events, out):
        assert ev.pcr == want["index"]
        assert ev.type_name == want["type_name"]
        assert [{"alg": "SHA-384", "digest": ev.digests["sha384"].hex()}] == want["digests"]
        assert ev.data == base64.b64decode(want["event"])


def test_td_shim_digests_do_not_match_data(read):
    out = json.loads(read("trustee/tdx/CCEL_data_out.json"))["uefi_event_logs"]
    log = parse_ccel(read("trustee/tdx/CCEL_data"))
    matches = [hashlib.sha384(ev.data).digest() == ev.digests["sha384"] for ev in log.events[1:]]
    assert matches == [e["digest_matches_event"] for e in out]
    assert not all(matches)
    rtmrs = replay_rtmrs(log)
    assert rtmrs[0].hex().startswith("2dc712306a96") and rtmrs[1].hex().startswith("0fa3be56af61")
    assert rtmrs[2] == rtmrs[3] == bytes(48)


def test_wrong_rtmr_reports_actual(read):
    log = parse_ccel(read("trustee/tdx/CCEL_data"))
    good = list(replay_rtmrs(log))
    bad = list(good)
    bad[1] = bytes.fromhex("2fa3") + good[1][2:]
    with pytest.raises(VerificationError) as e:
        verify_rtmrs(log, bad)
    assert e.value.code == "tdx.rtmr_mismatch" and e.value.field == "RTMR1"
    assert e.value.details["replayed"].startswith("0fa3be56af61")
    log = parse_ccel(read("trustee/ccel/CCEL_data_gcp"))
    good = list(replay_rtmrs(log))
    bad = [good[0][:-1] + b"\x4d"] + good[1:]
    with pytest.raises(VerificationError) as e:
        verify_rtmrs(log, bad)
    assert e.value.details["replayed"].endswith("304f") and e.value.details["quoted"].endswith("304d")


def test_cos113_quote_with_ccel(read, root_pem):
    r = verify_tdx_quote(read("go-tdx-guest/cos-113-tdx-quote.dat"), None, trusted_root=root_pem,
                         at=utc("2025-01-01T00:00:00"), ccel=read("go-tdx-guest/ccel_data.dat"))
    assert isinstance(r, VerifiedTdQuote)
    assert r.body.rtmr[0].hex().startswith("3fa2f61f395b") and r.body.rtmr[3] == bytes(48)
    assert r.ccel.length == 18101 and len(r.ccel.events) - 1 == 43
    assert r.body.mr_td.hex().startswith("dae67181d3d65e07")


def test_ccel_of_another_boot_fails(read, root_pem):
    with pytest.raises(VerificationError) as e:
        verify_tdx_quote(read("trustee/tdx/tdx_quote_4.dat"), None, trusted_root=root_pem,
                         at=utc("2023-07-01T01:00:00"), ccel=read("trustee/tdx/CCEL_data"))
    assert e.value.code == "tdx.rtmr_mismatch" and e.value.field == "RTMR0"


def test_ccel_table(read):
    t = parse_ccel_table(read("go-tdx-guest/ccel_table.dat"))
    assert (t.cc_type, t.laml, t.checksum_ok) == (2, 262144, True)
    assert t.laml == len(read("go-tdx-guest/ccel_data.dat"))
    with pytest.raises(EvidenceError):
        parse_ccel_table(b"CCEL" + bytes(10))


@pytest.mark.parametrize("cut", [0, 10, 40, 100, 3000])
def test_truncated_ccel(read, cut):
    data = read("go-tdx-guest/ccel_data.dat")[:18101]
    try:
        log = parse_ccel(data[:cut])
    except EvidenceError:
        return
    assert log.length <= cut
