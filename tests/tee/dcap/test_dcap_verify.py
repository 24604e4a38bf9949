"""End-to-end verification with collateral: statuses, advisories, expiry and tampering."""

from __future__ import annotations

import dataclasses
import json

import pytest
from dcap_times import utc

from attestd.errors import AttestdError, EvidenceError, VerificationError
from attestd.tee.dcap import Collateral, CollateralStore, TcbStatus, parse_quote
from attestd.tee.dcap.collateral import load_chain
from attestd.tee.dcap.tcb import evaluate_tcb
from attestd.tee.dcap.tcbinfo import parse_enclave_identity, parse_tcb_info, split_signed_json
from attestd.tee.dcap.verify import verify_p256
from attestd.tee.sgx import verify_sgx_quote
from attestd.tee.tdx import verify_tdx_quote

# inside every dcap-qvl collateral window (2025-06-19 .. 2025-07-19)
DCAP_QVL_AT = utc("2025-07-01T00:00:00")
# go-tdx-guest's verification time
GTG_AT = utc("2023-07-01T01:00:00")


@pytest.fixture(scope="module")
def qvl(read):
    return {
        "sgx": Collateral.from_qvl_json(read("dcap-qvl/sgx_quote_collateral.json")),
        "tdx": Collateral.from_qvl_json(read("dcap-qvl/tdx_quote_collateral.json")),
    }


@pytest.fixture(scope="module")
def gtg_store(corpus):
    return CollateralStore.from_dir(corpus / "go-tdx-guest")


def test_dcap_qvl_sgx_status_and_advisories(read, root_pem, qvl, corpus):
    exp = json.loads((corpus / "dcap-qvl/expected.json").read_text())["sgx_quote + sgx_quote_collateral.json"]
    v = verify_sgx_quote(read("dcap-qvl/sgx_quote"), qvl["sgx"], trusted_root=root_pem, at=DCAP_QVL_AT)
    assert v.tcb is not None
    assert v.tcb.status.value == exp["expected"]["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    assert list(v.tcb.advisory_ids) == exp["expected"]["advisory_ids"]
    assert v.tcb.tcb_date.date().isoformat() == "2024-03-13"
    assert v.tcb.qe_status == TcbStatus.UP_TO_DATE
    assert v.fmspc.hex() == "00a067110000"
    assert v.pck.ca == "processor"
    assert v.pck.extensions.pce_svn == 13
    assert v.pck.extensions.cpu_svn.hex() == "0b0b0202ff0100000000000000000000"
    assert v.body.mr_enclave.hex() == "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
    assert v.body.report_data.rstrip(b"\0") == b"Hello, world!"


def test_dcap_qvl_tdx_up_to_date(read, root_pem, qvl):
    v = verify_tdx_quote(read("dcap-qvl/tdx_quote"), qvl["tdx"], trusted_root=root_pem, at=DCAP_QVL_AT)
    assert v.tcb.status == TcbStatus.UP_TO_DATE
    assert v.tcb.advisory_ids == ()
    assert (v.tcb.tdx_module_id, v.tcb.tdx_module_status) == ("TDX_01", TcbStatus.UP_TO_DATE)
    assert v.tcb.qe_status == TcbStatus.UP_TO_DATE
    assert v.fmspc.hex() == "b0c06f000000"


def test_dcap_qvl_upstream_time_rule(read, root_pem, qvl):
    # dcap-qvl verifies at min(nextUpdate of tcb info, qe identity, CRLs) - 1 s
    import datetime as dt
    c = qvl["sgx"]
    nu = min(c.tcb_info.next_update, c.qe_identity.next_update, c.pck_crl.next_update_utc,
             c.root_ca_crl.next_update_utc)
    v = verify_sgx_quote(read("dcap-qvl/sgx_quote"), c, trusted_root=root_pem, at=nu - dt.timedelta(seconds=1))
    assert v.tcb.status == TcbStatus.CONFIGURATION_AND_SW_HARDENING_NEEDED


@pytest.mark.parametrize("at,code,field", [
    ("2025-07-20T00:00:00", "dcap.collateral_expired", "tcbInfo.nextUpdate"),
    ("2025-06-18T00:00:00", "dcap.collateral_not_yet_valid", "tcbInfo.issueDate"),
])
def test_dcap_qvl_collateral_window(read, root_pem, qvl, at, code, field):
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(read("dcap-qvl/sgx_quote"), qvl["sgx"], trusted_root=root_pem, at=utc(at))
    assert (e.value.code, e.value.field) == (code, field)


def test_spr_e4_no_matching_tcb_level(read, root_pem, gtg_store):
    with pytest.raises(VerificationError) as e:
        verify_tdx_quote(read("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"), gtg_store, trusted_root=root_pem, at=GTG_AT)
    assert e.value.code == "dcap.tcb_no_match"
    assert "no matching TCB level found" in e.value.message


def test_spr_e4_without_collateral_passes(read, root_pem):
    v = verify_tdx_quote(read("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"), None, trusted_root=root_pem, at=GTG_AT)
    assert v.tcb is None and v.pck.extensions.fmspc.hex() == "50806f000000"


def test_spr_e4_collateral_expired_2053(read, root_pem, gtg_store):
    with pytest.raises(VerificationError) as e:
        verify_tdx_quote(read("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"), gtg_store, trusted_root=root_pem,
                         at=utc("2053-07-01T00:00:00"))
    assert e.value.code == "dcap.collateral_expired"
    assert "tcbInfo has expired" in e.value.message


# go-tdx-guest verify_test.go TestNegativeVerification: (offset, value) -> upstream error -> our code
MUTATIONS = [
    (0x00, 3, "quote format not supported", EvidenceError, "dcap.quote_version_unsupported", None),
    (0x278, 0x10, "size of certificate data is 0xf8a. Expected size 0x1045", EvidenceError, "dcap.truncated", None),
    (0x1343, 0x32, "PCK cert chain invalid", VerificationError, "dcap.pck_chain_invalid", "pck_chain"),
    (0x1329, 0x32, "unable to validate root cert", VerificationError, "dcap.pck_chain_invalid", "pck_chain.root"),
    (0xF5F, 0x32, "unable to validate Intermediate CA certificate", VerificationError, "dcap.pck_chain_invalid",
     "pck_chain.intermediate"),
    (0xB77, 0x32, "unable to validate PCK leaf certificate", VerificationError, "dcap.pck_chain_invalid",
     "pck_chain.leaf"),
    (0x1E, 0x32, "unable to verify message digest using quote's signature", VerificationError,
     "tdx.quote_signature_invalid", "Quote Signature"),
    (0x3C, 0x32, "unable to verify message digest using quote's signature", VerificationError,
     "tdx.quote_signature_invalid", "Quote Signature"),
]


@pytest.mark.parametrize("offset,value,upstream,cls,code,field", MUTATIONS,
                         ids=[f"0x{m[0]:x}" for m in MUTATIONS])
@pytest.mark.parametrize("with_collateral", [False, True])
def test_go_tdx_guest_mutations(read, root_pem, gtg_store, offset, value, upstream, cls, code, field,
                                with_collateral):
    data = bytearray(read("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"))
    assert data[offset] != value
    data[offset] = value
    with pytest.raises(AttestdError) as e:
        verify_tdx_quote(bytes(data), gtg_store if with_collateral else None, trusted_root=root_pem, at=GTG_AT)
    assert type(e.value) is cls
    assert e.value.code == code
    if field is not None:
        assert e.value.field == field
    if code == "dcap.truncated":
        assert e.value.field.endswith("Certification Data")


def test_qe_report_signature_and_binding(read, root_pem):
    q = parse_quote(read("dcap-qvl/sgx_quote"))
    # flip a byte inside the QE report (signed by the PCK): offset of the QE report in a v3 quote
    qe_off = 48 + 384 + 4 + 64 + 64
    data = bytearray(read("dcap-qvl/sgx_quote"))
    data[qe_off + 100] ^= 1
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(bytes(data), None, trusted_root=root_pem, at=DCAP_QVL_AT)
    assert e.value.code == "dcap.qe_report_signature_invalid"
    # change the QE authentication data: the signed QE report no longer binds it
    auth_off = qe_off + 384 + 64 + 2
    assert data[auth_off - 2:auth_off] == len(q.signature_data.qe.qe_auth_data).to_bytes(2, "little")
    data = bytearray(read("dcap-qvl/sgx_quote"))
    data[auth_off] ^= 1
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(bytes(data), None, trusted_root=root_pem, at=DCAP_QVL_AT)
    assert e.value.code == "dcap.qe_report_data_mismatch"
    # the SGX quote signature code
    data = bytearray(read("dcap-qvl/sgx_quote"))
    data[48 + 64] ^= 1  # MRENCLAVE
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(bytes(data), None, trusted_root=root_pem, at=DCAP_QVL_AT)
    assert e.value.code == "sgx.quote_signature_invalid"


def test_wrong_tee_type(read, root_pem, qvl):
    with pytest.raises(EvidenceError) as e:
        verify_tdx_quote(read("dcap-qvl/sgx_quote"), None, trusted_root=root_pem, at=DCAP_QVL_AT)
    assert e.value.code == "dcap.quote_version_unsupported"
    with pytest.raises(EvidenceError) as e:
        verify_sgx_quote(read("dcap-qvl/tdx_quote"), None, trusted_root=root_pem, at=DCAP_QVL_AT)
    assert e.value.code == "dcap.quote_version_unsupported"
    # an SGX quote checked against TDX collateral is a collateral mismatch
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(read("dcap-qvl/sgx_quote"), qvl["tdx"], trusted_root=root_pem, at=DCAP_QVL_AT)
    assert e.value.code == "dcap.collateral_mismatch"


def test_untrusted_root(read, corpus):
    other = (corpus / "go-sev-guest/ask_ark_milan_vcek.pem").read_bytes()
    ark = load_chain(other, field="x")[-1]
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(read("dcap-qvl/sgx_quote"), None, trusted_root=ark, at=DCAP_QVL_AT)
    assert (e.value.code, e.value.field) == ("dcap.pck_chain_invalid", "pck_chain.root")


def test_pck_chain_expired(read, root_pem):
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(read("dcap-qvl/sgx_quote"), None, trusted_root=root_pem, at=utc("2031-01-01T00:00:00"))
    assert (e.value.code, e.value.field) == ("dcap.pck_chain_expired", "pck_chain.leaf")


def test_tampered_tcb_info_signature(read, root_pem, qvl):
    c = qvl["sgx"]
    body = c.tcb_info.signed_body.replace(b'"tcbStatus":"OutOfDate"', b'"tcbStatus":"UpToDate"', 1)
    assert body != c.tcb_info.signed_body
    forged = dataclasses.replace(c, tcb_info=parse_tcb_info(body, c.tcb_info.signature.hex()))
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(read("dcap-qvl/sgx_quote"), forged, trusted_root=root_pem, at=DCAP_QVL_AT)
    assert (e.value.code, e.value.field) == ("dcap.collateral_signature_invalid", "tcbInfo.signature")


def test_pck_crl_from_other_ca_rejected(read, root_pem, qvl, gtg_store):
    # Processor-CA quote with a Platform-CA CRL
    c = dataclasses.replace(qvl["sgx"], pck_crl=gtg_store.pck_crls["platform"][0])
    with pytest.raises(VerificationError) as e:
        verify_sgx_quote(read("dcap-qvl/sgx_quote"), c, trusted_root=root_pem, at=DCAP_QVL_AT)
    assert e.value.code == "dcap.collateral_mismatch"


def test_tdx_quote_4_against_go_tdx_guest_collateral(read, root_pem, gtg_store):
    v = verify_tdx_quote(read("trustee/tdx/tdx_quote_4.dat"), gtg_store, trusted_root=root_pem, at=GTG_AT)
    assert v.tcb.status == TcbStatus.UP_TO_DATE
    assert v.qe_report.isv_svn == 4 and v.tcb.qe_status == TcbStatus.UP_TO_DATE


def _v5_tcb_info(read, root_pem):
    """The v5 TCB info, signature-checked with the TCB Signing key (its certificate expired in 2025,
    before this TCB info was issued, so a full time-pinned verification is impossible)."""
    body, sig, _ = split_signed_json(read("go-tdx-guest/sample_tcbinfo_response_v5"), "tcbInfo", field="tcbInfo")
    ti = parse_tcb_info(body, sig)
    signer = load_chain(read("go-tdx-guest/tcbinfo_issuer_chain.pem"), field="chain")[0]
    assert verify_p256(signer.public_key(), ti.signature, ti.signed_body)
    body, sig, _ = split_signed_json(read("go-tdx-guest/sample_qeIdentity_response"), "enclaveIdentity",
                                     field="enclaveIdentity")
    qi = parse_enclave_identity(body, sig)
    assert verify_p256(signer.public_key(), qi.signature, qi.signed_body)
    return ti, qi


def test_v5_sample_tcb_evaluation(read, root_pem):
    ti, qi = _v5_tcb_info(read, root_pem)
    v = verify_tdx_quote(read("go-tdx-guest/quote_v5_sample.dat"), None, trusted_root=root_pem,
                         at=utc("2026-02-03T01:00:00"))
    ev = evaluate_tcb(ti, qi, v.pck.extensions, v.qe_report, v.body)
    assert ev.status == TcbStatus.UP_TO_DATE
    assert ev.tcb_date.date().isoformat() == "2024-11-13"
    assert (ev.tdx_module_id, ev.tdx_module_status) == ("TDX_01", TcbStatus.UP_TO_DATE)
    assert v.qe_report.isv_svn == 7 and ev.qe_status == TcbStatus.UP_TO_DATE
    assert v.pck.extensions.pce_svn == 13 and v.fmspc.hex() == "90c06f000000"


def test_v5_collateral_cannot_verify_at_any_pinned_time(read, root_pem, gtg_store):
    # the 2026 v5 TCB info is signed by a TCB Signing certificate that expired on 2025-05-21 and the
    # only TD_QE identity expired in 2023: strict time checks reject the set, naming the first problem
    c = gtg_store.get("TDX", "90c06f000000", "platform")
    with pytest.raises(VerificationError) as e:
        verify_tdx_quote(read("go-tdx-guest/quote_v5_sample.dat"), c, trusted_root=root_pem,
                         at=utc("2026-02-03T01:00:00"))
    assert (e.value.code, e.value.field) == ("dcap.collateral_expired", "enclaveIdentity.nextUpdate")
    from attestd.tee.dcap.pck import load_trusted_root
    from attestd.tee.dcap.verify import _signing_chain
    with pytest.raises(VerificationError) as e:
        _signing_chain(c.tcb_info_issuer_chain, load_trusted_root(root_pem), utc("2026-02-03T01:00:00"),
                       "tcb_info_issuer_chain")
    assert (e.value.code, e.value.field) == ("dcap.collateral_expired", "tcb_info_issuer_chain.signing")


def test_trustee_tdx_quote_5_no_matching_level(read, root_pem):
    ti, qi = _v5_tcb_info(read, root_pem)
    v = verify_tdx_quote(read("trustee/tdx/tdx_quote_5.dat"), None, trusted_root=root_pem,
                         at=utc("2026-02-03T01:00:00"))
    assert v.quote.version == 5
    with pytest.raises(VerificationError) as e:
        evaluate_tcb(ti, qi, v.pck.extensions, v.qe_report, v.body)
    assert e.value.code == "dcap.tcb_no_match" and "no matching TCB level found" in e.value.message


@pytest.mark.parametrize("rel,at", [
    ("go-tdx-guest/cos-113-tdx-quote.dat", "2025-01-01T00:00:00"),
    ("trustee/sgx/occlum_quote.dat", "2024-01-01T00:00:00"),
    ("trustee/az-tdx-vtpm/td-quote.bin", "2025-01-01T00:00:00"),
    ("azure-sdk-cpp/maa_sgx_quote.bin", "2022-05-31T23:00:00"),
])
def test_signatures_and_chain_without_collateral(read, root_pem, rel, at):
    q = parse_quote(read(rel))
    fn = verify_tdx_quote if q.is_tdx else verify_sgx_quote
    v = fn(read(rel), None, trusted_root=root_pem, at=utc(at))
    assert v.tcb is None
    assert v.quote_hash == __import__("hashlib").sha256(q.raw).digest()


def test_store_reports_missing_pieces(gtg_store):
    with pytest.raises(VerificationError) as e:
        gtg_store.get("SGX", "00a067110000", "processor")
    assert e.value.code == "dcap.collateral_missing"
    assert any("QE identity" in m for m in e.value.details["missing"])


def test_store_from_dir_keys(corpus):
    s = CollateralStore.from_dir(corpus / "dcap-qvl")
    assert s.keys() == [("SGX", "00a067110000"), ("TDX", "b0c06f000000")]
    s2 = CollateralStore.from_dir(corpus / "go-tdx-guest")
    assert s2.keys() == [("TDX", "50806f000000"), ("TDX", "90c06f000000")]
    assert "TD_QE" in s2.qe_identities and "platform" in s2.pck_crls and s2.root_ca_crl is not None
    # the 44 revoked serials of the PCK CRL and the CRL validity INDEX.md gives
    crl = s2.pck_crls["platform"][0]
    assert len(list(crl)) == 44
    assert crl.last_update_utc.date().isoformat() == "2023-06-08"


def test_collateral_from_pcs(read, root_pem):
    c = Collateral.from_pcs(
        tcb_info=read("go-tdx-guest/sample_tcbInfo_response"),
        tcb_info_issuer_chain=read("go-tdx-guest/tcbinfo_issuer_chain.pem"),
        qe_identity=read("go-tdx-guest/sample_qeIdentity_response"),
        qe_identity_issuer_chain=read("go-tdx-guest/qeidentity_issuer_chain.pem"),
        pck_crl=read("go-tdx-guest/pckcrl"),
        root_ca_crl=read("go-tdx-guest/rootcrl.der"),
        pck_crl_issuer_chain=read("go-tdx-guest/pckcrl_issuer_chain.pem"),
    )
    v = verify_tdx_quote(read("trustee/tdx/tdx_quote_4.dat"), c, trusted_root=root_pem, at=GTG_AT)
    assert v.tcb.status == TcbStatus.UP_TO_DATE


def test_malformed_collateral_is_evidence_error(read):
    obj = json.loads(read("dcap-qvl/sgx_quote_collateral.json"))
    obj["tcb_info_signature"] = "zz"
    with pytest.raises(EvidenceError) as e:
        Collateral.from_qvl_json(obj)
    assert e.value.code == "dcap.collateral_malformed"
    with pytest.raises(EvidenceError):
        split_signed_json(b'{"tcbInfo": {}, "signature": "00"} trailing', "tcbInfo", field="t")
