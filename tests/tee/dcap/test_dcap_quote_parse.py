"""Quote parsing: exact field values from the corpus, and only EvidenceError on bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestd.errors import EvidenceError
from attestd.tee.dcap import BodyType, EnclaveReportBody, TdReportBody, parse_quote
from attestd.tee.dcap.pck import parse_pck_chain

QUOTES = {
    "dcap-qvl/sgx_quote": (3, BodyType.SGX_ENCLAVE_REPORT),
    "dcap-qvl/tdx_quote": (4, BodyType.TD_REPORT_10),
    "go-tdx-guest/tdx_prod_quote_SPR_E4.dat": (4, BodyType.TD_REPORT_10),
    "go-tdx-guest/quote_v5_sample.dat": (5, BodyType.TD_REPORT_15),
    "go-tdx-guest/cos-113-tdx-quote.dat": (4, BodyType.TD_REPORT_10),
    "trustee/sgx/occlum_quote.dat": (3, BodyType.SGX_ENCLAVE_REPORT),
    "trustee/tdx/tdx_quote_4.dat": (4, BodyType.TD_REPORT_10),
    "trustee/tdx/tdx_quote_5.dat": (5, BodyType.TD_REPORT_15),
    "azure-sdk-cpp/maa_sgx_quote.bin": (3, BodyType.SGX_ENCLAVE_REPORT),
    "trustee/az-tdx-vtpm/td-quote.bin": (4, BodyType.TD_REPORT_10),
}


@pytest.mark.parametrize("rel", sorted(QUOTES))
def test_versions_and_body_types(read, rel):
    q = parse_quote(read(rel))
    assert (q.version, q.body_type) == QUOTES[rel]
    assert q.signature_data.qe.certification_data.cert_type == 5
    assert len(q.signature_data.qe.qe_auth_data) == 32


def test_spr_e4_exact_values(read, corpus):
    exp = json.loads((corpus / "go-tdx-guest/expected.json").read_text())["tdx_prod_quote_SPR_E4.dat"]["expected"]
    q = parse_quote(read("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"))
    b = q.body
    assert isinstance(b, TdReportBody)
    body = exp["td_quote_body"]
    assert b.tee_tcb_svn.hex() == body["tee_tcb_svn"]
    assert b.mr_seam.hex() == body["mrseam"]
    assert b.td_attributes.hex() == body["td_attributes"]
    assert b.xfam.hex() == body["xfam"]
    assert b.mr_td.hex() == body["mrtd"]
    assert [r.hex() for r in b.rtmr] == [body[f"rtmr{i}"] for i in range(4)]
    assert b.report_data.hex() == body["report_data"]
    qe = q.signature_data.qe.qe_report
    assert qe.mr_signer.hex() == exp["qe_report"]["mrsigner"]
    assert (qe.isv_prod_id, qe.isv_svn) == (exp["qe_report"]["isvprodid"], exp["qe_report"]["isvsvn"])
    # the test file carries text after the quote; it is counted, not parsed
    assert q.trailing == 39
    ext = parse_pck_chain(q.signature_data.qe.certification_data.data)
    pe = exp["pck_extensions"]
    assert ext.extensions.ppid.hex() == pe["PPID"]
    assert ext.extensions.fmspc.hex() == pe["FMSPC"]
    assert ext.extensions.pce_id.hex() == pe["PCEID"]
    assert ext.extensions.pce_svn == pe["PCESVN"]
    assert ext.extensions.cpu_svn.hex() == pe["CPUSVN"]
    assert ext.ca == pe["ca"]


def test_v5_sample_body(read):
    q = parse_quote(read("go-tdx-guest/quote_v5_sample.dat"))
    b = q.body
    assert isinstance(b, TdReportBody)
    assert b.mr_td.hex() == ("7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb0"
                             "01a1ced3ee19747dda8f750c3bc8f876")
    assert b.tee_tcb_svn.hex() == "0b010400000000000000000000000000"
    assert b.tee_tcb_svn2.hex() == "0d010400000000000000000000000000"
    assert b.mr_servicetd is not None and len(b.mr_servicetd) == 48
    # the v5 signed region includes the body type and size
    assert q.signed_data[48:54] == bytes.fromhex("0300") + (648).to_bytes(4, "little")


def test_occlum_header_and_body_match_trustee(read, corpus):
    exp = json.loads((corpus / "trustee/expected.json").read_text())["sgx/occlum_quote.dat"]["expected_claims (sgx/claims.rs)"]
    q = parse_quote(read("trustee/sgx/occlum_quote.dat"))
    h, b = q.header, q.body
    assert isinstance(b, EnclaveReportBody)
    le16 = lambda v: v.to_bytes(2, "little").hex()  # noqa: E731 - trustee prints raw little-endian bytes
    assert le16(h.version) == exp["header"]["version"]
    assert le16(h.att_key_type) == exp["header"]["att_key_type"]
    assert le16(h.qe_svn) == exp["header"]["qe_svn"]
    assert le16(h.pce_svn) == exp["header"]["pce_svn"]
    assert h.qe_vendor_id.hex() == exp["header"]["vendor_id"]
    assert h.user_data.hex() == exp["header"]["user_data"]
    eb = exp["body"]
    assert b.cpu_svn.hex() == eb["cpu_svn"]
    assert b.misc_select.to_bytes(4, "little").hex() == eb["misc_select"]
    assert b.attributes[:8].hex() == eb["attributes.flags"]
    assert b.attributes[8:].hex() == eb["attributes.xfrm"]
    assert b.mr_enclave.hex() == eb["mr_enclave"]
    assert b.mr_signer.hex() == eb["mr_signer"]
    assert le16(b.isv_prod_id) == eb["isv_prod_id"]
    assert le16(b.isv_svn) == eb["isv_svn"]
    assert le16(b.config_svn) == eb["config_svn"]
    assert b.report_data.hex() == eb["report_data"]
    assert b.config_id.hex() == exp["init_data (config_id)"]


def test_tdx_quote_4_matches_trustee_parse(read, corpus):
    exp = json.loads((corpus / "trustee/tdx/parse_tdx_claims_expected.json").read_text())["quote"]
    q = parse_quote(read("trustee/tdx/tdx_quote_4.dat"))
    b, h = q.body, q.header
    assert isinstance(b, TdReportBody)
    assert h.version.to_bytes(2, "little").hex() == exp["header"]["version"]
    assert h.att_key_type.to_bytes(2, "little").hex() == exp["header"]["att_key_type"]
    assert h.tee_type.to_bytes(4, "little").hex() == exp["header"]["tee_type"]
    assert h.qe_vendor_id.hex() == exp["header"]["vendor_id"]
    assert h.user_data.hex() == exp["header"]["user_data"]
    eb = exp["body"]
    mine = {
        "mr_config_id": b.mr_config_id, "mr_owner": b.mr_owner, "mr_owner_config": b.mr_owner_config,
        "mr_seam": b.mr_seam, "mr_td": b.mr_td, "mrsigner_seam": b.mr_signer_seam, "report_data": b.report_data,
        "rtmr_0": b.rtmr[0], "rtmr_1": b.rtmr[1], "rtmr_2": b.rtmr[2], "rtmr_3": b.rtmr[3],
        "seam_attributes": b.seam_attributes, "tcb_svn": b.tee_tcb_svn, "td_attributes": b.td_attributes,
        "xfam": b.xfam,
    }
    assert {k: v.hex() for k, v in mine.items()} == eb


def test_version_3_tdx_rejected_for_tdx_size(read):
    data = bytearray(read("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"))
    data[0] = 7
    with pytest.raises(EvidenceError) as e:
        parse_quote(bytes(data))
    assert e.value.code == "dcap.quote_version_unsupported"
    assert "quote format not supported" in e.value.message
    assert e.value.offset == 0


def test_non_bytes_input():
    with pytest.raises(EvidenceError) as e:
        parse_quote("not bytes")  # type: ignore[arg-type]
    assert e.value.code == "dcap.type"


# -- properties: malformed input only ever raises EvidenceError ----------------------------------

_SAMPLES = ["dcap-qvl/sgx_quote", "dcap-qvl/tdx_quote", "go-tdx-guest/quote_v5_sample.dat"]
_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _only_evidence_errors(data: bytes) -> None:
    try:
        parse_quote(data)
    except EvidenceError:
        pass


@pytest.mark.parametrize("rel", _SAMPLES)
@_FAST
@given(cut=st.integers(min_value=0, max_value=6000))
def test_truncations(read, rel, cut):
    data = read(rel)
    if cut < len(data):
        # every strict prefix that ends inside the structure fails cleanly
        try:
            q = parse_quote(data[:cut])
        except EvidenceError as err:
            assert err.code.startswith("dcap.")
            assert err.offset is None or 0 <= err.offset <= cut
        else:
            assert len(q.raw) <= cut


@pytest.mark.parametrize("rel", _SAMPLES)
@_FAST
@given(flips=st.lists(st.tuples(st.integers(min_value=0, max_value=6000), st.integers(0, 7)), min_size=1,
                      max_size=4))
def test_bit_flips(read, rel, flips):
    data = bytearray(read(rel))
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    _only_evidence_errors(bytes(data))


@_FAST
@given(st.binary(max_size=2048))
def test_random_bytes(blob):
    _only_evidence_errors(blob)


@_FAST
@given(version=st.sampled_from([3, 4, 5]), tee=st.sampled_from([0, 0x81]), body_type=st.integers(0, 4),
       tail=st.binary(max_size=1500))
def test_random_bodies_with_valid_headers(version, tee, body_type, tail):
    head = version.to_bytes(2, "little") + (2).to_bytes(2, "little") + tee.to_bytes(4, "little") + bytes(40)
    if version == 5:
        head += body_type.to_bytes(2, "little") + (648).to_bytes(4, "little")
    _only_evidence_errors(head + tail)
