"""Claims: Azure names and values, computed only from verified quotes."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from dcap_times import utc

from attestd.errors import VerificationError
from attestd.tee.dcap import Collateral, CollateralStore
from attestd.tee.dcap.pck import parse_pck_chain
from attestd.tee.sgx import sgx_claims, verify_sgx_quote
from attestd.tee.tdx import tdx_claims, verify_tdx_quote


def _jwt_payload(token: str) -> dict:
    part = token.strip().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_maa_sgx_claims_equal_the_token(read, root_pem):
    quote = read("azure-sdk-cpp/maa_sgx_quote.bin")
    runtime = read("azure-sdk-cpp/maa_runtime_data.bin")
    payload = _jwt_payload(read("azure-sdk-cpp/maa_token.jwt").decode())
    v = verify_sgx_quote(quote, None, trusted_root=root_pem, at=utc("2022-05-31T22:47:57"))
    claims = sgx_claims(v, runtime_data=runtime)
    for name in ("x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-sgx-product-id", "x-ms-sgx-svn",
                 "x-ms-sgx-ehd", "x-ms-sgx-is-debuggable", "x-ms-sgx-report-data", "x-ms-attestation-type"):
        assert claims[name] == payload[name], name
    assert claims["x-ms-sgx-collateral"]["quotehash"] == payload["x-ms-sgx-collateral"]["quotehash"]
    # the OE report wraps the same quote; the hash is over the quote only
    assert hashlib.sha256(read("azure-sdk-cpp/maa_oe_report.bin")[16:]).hexdigest() == claims[
        "x-ms-sgx-collateral"]["quotehash"]
    # no collateral: no TCB claims
    assert "attester_tcb_status" not in claims


def test_runtime_data_must_bind(read, root_pem):
    v = verify_sgx_quote(read("azure-sdk-cpp/maa_sgx_quote.bin"), None, trusted_root=root_pem,
                         at=utc("2022-05-31T22:47:57"))
    with pytest.raises(VerificationError) as e:
        sgx_claims(v, runtime_data=read("azure-sdk-cpp/maa_runtime_data.bin")[:-1])
    assert e.value.code == "sgx.runtime_data_mismatch"


def test_sgx_claims_with_collateral(read, root_pem):
    c = Collateral.from_qvl_json(read("dcap-qvl/sgx_quote_collateral.json"))
    v = verify_sgx_quote(read("dcap-qvl/sgx_quote"), c, trusted_root=root_pem, at=utc("2025-07-01T00:00:00"))
    claims = sgx_claims(v)
    assert claims["attester_tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    assert claims["attester_advisory_ids"] == ["INTEL-SA-00289", "INTEL-SA-00615"]
    assert claims["attester_fmspc"] == "00a067110000"
    coll = claims["x-ms-sgx-collateral"]
    assert set(coll) == {"qeidcertshash", "qeidcrlhash", "qeidhash", "quotehash", "tcbinfocertshash",
                         "tcbinfocrlhash", "tcbinfohash"}
    assert coll["tcbinfohash"] == hashlib.sha256(c.tcb_info.signed_body).hexdigest()
    assert claims["x-ms-sgx-is-debuggable"] is False
    json.dumps(claims)  # JSON-serialisable


def test_occlum_claims(read, root_pem, corpus):
    exp = json.loads((corpus / "trustee/expected.json").read_text())["sgx/occlum_quote.dat"]
    v = verify_sgx_quote(read("trustee/sgx/occlum_quote.dat"), None, trusted_root=root_pem,
                         at=utc("2024-01-01T00:00:00"))
    claims = sgx_claims(v)
    body = exp["expected_claims (sgx/claims.rs)"]["body"]
    assert claims["x-ms-sgx-mrenclave"] == body["mr_enclave"]
    assert claims["x-ms-sgx-mrsigner"] == body["mr_signer"]
    assert claims["x-ms-sgx-product-id"] == int.from_bytes(bytes.fromhex(body["isv_prod_id"]), "little") == 0
    assert claims["x-ms-sgx-svn"] == 0
    assert claims["x-ms-sgx-report-data"] == body["report_data"]
    assert claims["x-ms-sgx-config-id"] == exp["expected_claims (sgx/claims.rs)"]["init_data (config_id)"]
    # attributes.flags 07: INIT | DEBUG | MODE64BIT
    assert claims["x-ms-sgx-is-debuggable"] is True
    qe = v.qe_report
    assert qe.mr_signer.hex() == "8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff"
    assert (qe.isv_prod_id, qe.isv_svn) == (1, 8)
    # trustee prints platform_instance_id byte-reversed; the PCK certificate holds it in this order
    pii = exp["expected_claims (sgx/claims.rs)"]["platform_instance_id"]
    assert v.pck.extensions.platform_instance_id == bytes.fromhex(pii)[::-1]
    assert v.fmspc.hex() == "00606a000000"


def test_tdx_quote_4_claims_match_trustee(read, root_pem, corpus):
    exp = json.loads((corpus / "trustee/tdx/parse_tdx_claims_expected.json").read_text())
    store = CollateralStore.from_dir(corpus / "go-tdx-guest")
    v = verify_tdx_quote(read("trustee/tdx/tdx_quote_4.dat"), store, trusted_root=root_pem,
                         at=utc("2023-07-01T01:00:00"))
    claims = tdx_claims(v)
    body = exp["quote"]["body"]
    pairs = {"tdx_mrtd": "mr_td", "tdx_mrseam": "mr_seam", "tdx_mrsignerseam": "mrsigner_seam",
             "tdx_mrconfigid": "mr_config_id", "tdx_mrowner": "mr_owner", "tdx_mrownerconfig": "mr_owner_config",
             "tdx_rtmr0": "rtmr_0", "tdx_rtmr1": "rtmr_1", "tdx_rtmr2": "rtmr_2", "tdx_rtmr3": "rtmr_3",
             "tdx_report_data": "report_data", "tdx_seam_attributes": "seam_attributes",
             "tdx_td_attributes": "td_attributes", "tdx_xfam": "xfam", "tdx_tee_tcb_svn": "tcb_svn"}
    for mine, theirs in pairs.items():
        assert claims[mine] == body[theirs], mine
    for flag, value in exp["td_attributes"].items():
        assert claims[f"tdx_td_attributes_{flag}"] is value, flag
    assert claims["dbgstat"] == "enabled"
    assert claims["attester_tcb_status"] == "UpToDate"
    assert claims["tdx_seamsvn"] == 3
    assert v.pck.extensions.platform_instance_id == bytes.fromhex(exp["platform_instance_id"])[::-1]
    json.dumps(claims)


def test_tdx_v5_claims(read, root_pem):
    v = verify_tdx_quote(read("go-tdx-guest/quote_v5_sample.dat"), None, trusted_root=root_pem,
                         at=utc("2026-02-03T01:00:00"))
    claims = tdx_claims(v)
    assert claims["tdx_mrtd"].startswith("7348651a") and claims["tdx_mrtd"].endswith("f876")
    assert claims["tdx_tee_tcb_svn2"] == "0d010400000000000000000000000000"
    assert len(claims["tdx_mrservicetd"]) == 96
    assert claims["tdx_seamsvn"] == 0x010B
    assert "attester_tcb_status" not in claims


def test_tdx_runtime_data_binding(read, root_pem):
    # the COS-113 quote's report data is 64 zero bytes: no runtime data hashes to that
    v = verify_tdx_quote(read("go-tdx-guest/cos-113-tdx-quote.dat"), None, trusted_root=root_pem,
                         at=utc("2025-01-01T00:00:00"))
    assert bytes.fromhex(tdx_claims(v)["tdx_report_data"]) == read("go-tdx-guest/cos-113-nonce.dat")
    with pytest.raises(VerificationError) as e:
        tdx_claims(v, runtime_data=b"{}")
    assert e.value.code == "tdx.runtime_data_mismatch"


def test_claims_reject_wrong_type(read, root_pem):
    v = verify_tdx_quote(read("go-tdx-guest/cos-113-tdx-quote.dat"), None, trusted_root=root_pem,
                         at=utc("2025-01-01T00:00:00"))
    with pytest.raises(TypeError):
        sgx_claims(v)
    assert parse_pck_chain(v.quote.signature_data.qe.certification_data.data).ca == "platform"
