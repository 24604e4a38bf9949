"""verify_tee_evidence: one front for sevsnp, sgx, tdx and azure-cvm evidence (corpus read in place)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from teecli_times import AT_AZ_SNP, AT_AZ_SNP_2024, AT_AZ_TDX, AT_GSG, AT_GTG, AT_MAA, AT_QVL

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.azure_hcl import parse_hcl_report
from attestd.tee.dcap import Collateral, CollateralStore
from attestd.tee.evidence import EvidenceType, TrustAnchors, VerifiedTee, verify_tee_evidence

pytestmark = pytest.mark.corpus


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def gsg(corpus):
    d = corpus / "go-sev-guest"
    return (d / "attestation.bin").read_bytes(), (d / "vcek.testcer.der").read_bytes()


def test_sevsnp_raw_report(anchors, gsg, corpus):
    report, vcek = gsg
    r = verify_tee_evidence("sevsnp", report, anchors=anchors, at=AT_GSG, vcek=vcek)
    expected = json.loads((corpus / "go-sev-guest" / "expected.json").read_text())
    assert isinstance(r, VerifiedTee) and r.type is EvidenceType.SEVSNP and r.input_format == "raw-report"
    assert r.claims["x-ms-sevsnpvm-reportdata"] == "0102030405" + "00" * 59
    assert r.claims["x-ms-sevsnpvm-launchmeasurement"] == (
        "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b"
        "6bdf8a9ece31a5a608eb0cf2e4872b01")
    assert expected  # the file exists and parses; the measurement above is its UPSTREAM value
    assert r.tcb_status is None and r.notes == ()
    # nonce = expected REPORT_DATA (zero-padded)
    verify_tee_evidence("sevsnp", report, anchors=anchors, at=AT_GSG, vcek=vcek, nonce=bytes.fromhex("0102030405"))
    with pytest.raises(VerificationError) as e:
        verify_tee_evidence("sevsnp", report, anchors=anchors, at=AT_GSG, vcek=vcek, nonce=b"\x01\x02\x03\x04\x06")
    assert e.value.code == "snp.report_data_mismatch"
    # runtime data binding: REPORT_DATA is not SHA-256 of anything here
    with pytest.raises(VerificationError) as e:
        verify_tee_evidence("sevsnp", report, anchors=anchors, at=AT_GSG, vcek=vcek, runtime_data=b"x")
    assert e.value.code == "azure.runtime_data_mismatch"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("sevsnp", report, anchors=anchors, at=AT_GSG)
    assert e.value.code == "input.vcek_missing"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("sevsnp", report, anchors=TrustAnchors(), at=AT_GSG, vcek=vcek)
    assert e.value.code == "input.trust_anchor_missing"


def test_sevsnp_azure_request(anchors, az_snp):
    """An AttestSevSnpVm request built from the HCL report's SNP report; the VCEK chain lacks the ASK,
    which the trust anchors' intermediates complete."""
    hcl = parse_hcl_report((az_snp / "hcl-report.bin").read_bytes())
    from attestd.tee.snp.certs import load_certificates

    vcek_only = load_certificates((az_snp / "vcek.pem").read_bytes())[0]
    from cryptography.hazmat.primitives.serialization import Encoding

    inner = json.dumps({"SnpReport": b64u(hcl.snp_report()),
                        "VcekCertChain": b64u(vcek_only.public_bytes(Encoding.PEM))})
    body = json.dumps({"report": b64u(inner.encode()),
                       "runtimeData": {"data": b64u(hcl.variable_data), "dataType": "JSON"},
                       "nonce": "n-1"})
    r = verify_tee_evidence("sevsnp", body, anchors=anchors, at=AT_AZ_SNP_2024)
    assert r.input_format == "azure-sevsnpvm-request"
    assert r.claims["x-ms-runtime"]["keys"][0]["kid"] == "HCLAkPub" and r.claims["nonce"] == "n-1"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("sevsnp", body, anchors=anchors, at=AT_AZ_SNP_2024, runtime_data=b"other")
    assert e.value.code == "input.runtime_data_conflict"
    no_ask = TrustAnchors(amd_arks=anchors.amd_arks)
    with pytest.raises(VerificationError) as e:
        verify_tee_evidence("sevsnp", body, anchors=no_ask, at=AT_AZ_SNP_2024)
    assert e.value.code == "snp.chain_invalid"


def test_sgx_with_collateral(anchors, corpus):
    quote = (corpus / "dcap-qvl" / "sgx_quote").read_bytes()
    coll = Collateral.from_qvl_json((corpus / "dcap-qvl" / "sgx_quote_collateral.json").read_bytes())
    r = verify_tee_evidence("sgx", quote, anchors=anchors, at=AT_QVL, collateral=coll,
                            nonce=b"Hello, world!")
    assert r.tcb_status == "ConfigurationAndSWHardeningNeeded"
    assert r.claims["attester_advisory_ids"] == ["INTEL-SA-00289", "INTEL-SA-00615"]
    assert r.claims["x-ms-sgx-mrenclave"] == "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
    assert r.notes == ()
    with pytest.raises(VerificationError) as e:
        verify_tee_evidence("sgx", quote, anchors=anchors, at=AT_QVL, collateral=coll, nonce=b"Hello, world?")
    assert e.value.code == "tee.nonce_mismatch"
    # without collateral: signatures only, and the result says so
    r = verify_tee_evidence("sgx", quote, anchors=anchors, at=AT_QVL)
    assert r.tcb_status is None and "no collateral" in r.notes[0]


def test_sgx_maa_shapes(anchors, corpus):
    d = corpus / "azure-sdk-cpp"
    quote, oe, rt = (d / "maa_sgx_quote.bin").read_bytes(), (d / "maa_oe_report.bin").read_bytes(), (
        d / "maa_runtime_data.bin").read_bytes()
    r1 = verify_tee_evidence("sgx", oe, anchors=anchors, at=AT_MAA, runtime_data=rt)
    assert r1.input_format == "openenclave-report"
    assert r1.claims["x-ms-sgx-ehd"] == b64u(rt)
    assert r1.claims["x-ms-sgx-collateral"]["quotehash"] == (
        "4f9aa62ee2ca513a31f8a427b16723b3b918c927b8d02e9e215da2bdbc98d8b1")
    body = {"quote": b64u(quote), "runtimeData": {"data": b64u(rt), "dataType": "Binary"}, "nonce": "x"}
    r2 = verify_tee_evidence("sgx", json.dumps(body), anchors=anchors, at=AT_MAA)
    assert r2.input_format == "azure-sgx-request" and r2.claims["nonce"] == "x"
    assert r2.claims["x-ms-sgx-mrenclave"] == r1.claims["x-ms-sgx-mrenclave"]
    body_oe = {"report": b64u(oe), "runtimeData": {"data": b64u(rt[:-1]), "dataType": "Binary"}}
    with pytest.raises(VerificationError) as e:
        verify_tee_evidence("sgx", body_oe, anchors=anchors, at=AT_MAA)
    assert e.value.code == "sgx.runtime_data_mismatch"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("sgx", {**body, "initTimeData": {"data": "AA"}}, anchors=anchors, at=AT_MAA)
    assert e.value.code == "tee.unsupported_field"


def test_tdx(anchors, corpus):
    quote = (corpus / "dcap-qvl" / "tdx_quote").read_bytes()
    coll = Collateral.from_qvl_json((corpus / "dcap-qvl" / "tdx_quote_collateral.json").read_bytes())
    assert verify_tee_evidence("tdx", quote, anchors=anchors, at=AT_QVL, collateral=coll).tcb_status == "UpToDate"
    body = {"quote": b64u(quote), "nonce": "abc"}
    r = verify_tee_evidence("tdx", body, anchors=anchors, at=AT_QVL, collateral=coll)
    assert r.input_format == "azure-tdx-request" and r.claims["nonce"] == "abc"
    # go-tdx-guest: UPSTREAM failure with the sample collateral
    store = CollateralStore.from_dir(corpus / "go-tdx-guest")
    spr = (corpus / "go-tdx-guest" / "tdx_prod_quote_SPR_E4.dat").read_bytes()
    with pytest.raises(VerificationError) as e:
        verify_tee_evidence("tdx", spr, anchors=anchors, at=AT_GTG, collateral=store)
    assert e.value.code == "dcap.tcb_no_match"
    # CCEL replay against RTMRs
    cos = (corpus / "go-tdx-guest" / "cos-113-tdx-quote.dat").read_bytes()
    ccel = (corpus / "go-tdx-guest" / "ccel_data.dat").read_bytes()
    r = verify_tee_evidence("tdx", cos, anchors=anchors, at=AT_AZ_TDX, ccel=ccel, nonce=bytes(64))
    assert r.claims["x-attestd-tdx-ccel-replayed"] is True
    assert r.claims["tdx_rtmr0"].startswith("3fa2f61f395b7f5f")
    from attestd.tee.tdx import parse_ccel

    event = parse_ccel(ccel).events[3]  # an RTMR0 event: flip a byte of its SHA-384 digest
    at = ccel.find(event.digests["sha384"], event.offset)
    assert at > 0
    wrong = bytearray(ccel)
    wrong[at] ^= 1
    with pytest.raises(VerificationError) as e:
        verify_tee_evidence("tdx", cos, anchors=anchors, at=AT_AZ_TDX, ccel=bytes(wrong))
    assert e.value.code == "tdx.rtmr_mismatch"
    # an SGX quote is not TDX evidence
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("tdx", (corpus / "dcap-qvl" / "sgx_quote").read_bytes(), anchors=anchors, at=AT_QVL)
    assert e.value.code == "dcap.quote_version_unsupported"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("sgx", quote, anchors=anchors, at=AT_QVL, ccel=ccel)
    assert e.value.code == "input.ccel_unsupported"


def test_azure_cvm_through_front(anchors, az_snp, az_tdx):
    r = verify_tee_evidence("azure-cvm", (az_snp / "evidence-v0.json").read_bytes(), anchors=anchors,
                            at=AT_AZ_SNP, nonce=b"challenge")
    assert r.type is EvidenceType.AZURE_CVM and r.input_format == "trustee-v0" and r.notes == ()
    assert r.claims["x-attestd-azurevm-pcrs"]["sha256"]["0"].startswith("e15c4479")
    r = verify_tee_evidence("azure-cvm", (az_tdx / "evidence-v1.json").read_bytes(), anchors=anchors,
                            at=AT_AZ_TDX)
    assert any("no collateral" in n for n in r.notes) and any("no nonce" in n for n in r.notes)
    doc = r.to_json()
    assert json.loads(json.dumps(doc))["claims"]["x-attestd-azurevm-tee"] == "tdxvm"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("azure-cvm", (az_tdx / "evidence-v1.json").read_bytes(),
                            anchors=TrustAnchors(amd_arks=anchors.amd_arks), at=AT_AZ_TDX)
    assert e.value.code == "input.trust_anchor_missing"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("azure-cvm", b"{}", anchors=anchors, at=AT_AZ_TDX, runtime_data=b"x")
    assert e.value.code == "input.runtime_data_unsupported"


def test_input_errors(anchors, gsg):
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("sev", gsg[0], anchors=anchors, at=AT_GSG)
    assert e.value.code == "input.evidence_type"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("sgx", b"{not json", anchors=anchors, at=AT_GSG)
    assert e.value.code == "tee.bad_json"
    with pytest.raises(EvidenceError) as e:
        verify_tee_evidence("sevsnp", gsg[0][:100], anchors=anchors, at=AT_GSG, vcek=gsg[1])
    assert e.value.code.startswith("snp.")
    with pytest.raises(ValueError):
        verify_tee_evidence("sevsnp", gsg[0], anchors=anchors, at=AT_GSG.replace(tzinfo=None), vcek=gsg[1])


def test_claims_are_from_the_evidence(anchors, az_snp):
    """Two different VMs give different claims (nothing is hard-coded)."""
    a = verify_tee_evidence("azure-cvm", (az_snp / "evidence-v1.json").read_bytes(), anchors=anchors, at=AT_AZ_SNP)
    b = verify_tee_evidence("azure-cvm", (az_snp / "evidence-genoa.json").read_bytes(), anchors=anchors,
                            at=AT_AZ_SNP)
    ta, tb = a.claims["x-ms-isolation-tee"], b.claims["x-ms-isolation-tee"]
    assert ta["x-ms-sevsnpvm-launchmeasurement"] != tb["x-ms-sevsnpvm-launchmeasurement"]
    assert tb["x-attestd-sevsnpvm-product"] == "Genoa" and ta["x-attestd-sevsnpvm-product"] == "Milan"
    assert hashlib.sha256(json.dumps(ta["x-ms-runtime"]).encode()).digest() != hashlib.sha256(
        json.dumps(tb["x-ms-runtime"]).encode()).digest()
