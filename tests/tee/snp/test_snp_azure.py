"""Azure: the AttestSevSnpVm request (built here from corpus files) and the HCL report parser."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snp_times import AT_GO_SEV_GUEST, AT_TRUSTEE

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.azure_hcl import HclHashType, HclReportType, parse_hcl_report
from attestd.tee.snp import parse_azure_snp_request, verify_azure_snp_request
from attestd.tee.snp.azure import decode_base64_any


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def request(report: bytes, chain_pem: bytes, **extra) -> str:
    inner = json.dumps({"SnpReport": b64u(report), "VcekCertChain": b64u(chain_pem)}, indent=2)
    return json.dumps({"report": b64u(inner.encode()), **extra})


@pytest.fixture(scope="module")
def hcl_bytes(trustee_dir) -> bytes:
    return (trustee_dir / "az-snp-vtpm" / "hcl-report.bin").read_bytes()


@pytest.fixture(scope="module")
def vcek_pem(trustee_dir) -> bytes:
    return (trustee_dir / "az-snp-vtpm" / "vcek.pem").read_bytes()


def test_runtime_data_binding(hcl_bytes, vcek_pem, arks):
    hcl = parse_hcl_report(hcl_bytes)
    body = request(
        hcl.snp_report(),
        vcek_pem,
        runtimeData={"data": b64u(hcl.variable_data), "dataType": "JSON"},
        nonce="n-123",
    )
    req = parse_azure_snp_request(body)
    assert req.snp_report == hcl.snp_report() and req.vcek_cert_chain == vcek_pem
    result = verify_azure_snp_request(req, trusted_arks=arks, at=AT_TRUSTEE)
    assert result.claims["x-ms-runtime"]["keys"][0]["kid"] == "HCLAkPub"
    assert result.claims["nonce"] == "n-123"
    assert (
        result.claims["x-ms-sevsnpvm-reportdata"] == hashlib.sha256(hcl.variable_data).hexdigest() + "00" * 32
    )
    # One byte more in the runtime data and the binding fails.
    bad = parse_azure_snp_request(
        request(
            hcl.snp_report(),
            vcek_pem,
            runtimeData={"data": b64u(hcl.variable_data + b" "), "dataType": "JSON"},
        )
    )
    with pytest.raises(VerificationError) as info:
        verify_azure_snp_request(bad, trusted_arks=arks, at=AT_TRUSTEE)
    assert info.value.code == "azure.runtime_data_mismatch"


def test_init_time_data_binding(snp_dir, arks, milan_chain):
    report = (snp_dir / "attestation.bin").read_bytes()  # HOST_DATA is all zero
    chain = (snp_dir / "vcek.testcer.der").read_bytes()
    pem = (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(chain)
        + b"-----END CERTIFICATE-----\n"
        + milan_chain
    )
    req = parse_azure_snp_request(
        request(report, pem, initTimeData={"data": b64u(b"policy"), "dataType": "Binary"})
    )
    with pytest.raises(VerificationError) as info:
        verify_azure_snp_request(req, trusted_arks=arks, at=AT_GO_SEV_GUEST)
    assert info.value.code == "azure.init_time_data_mismatch"
    plain = verify_azure_snp_request(
        parse_azure_snp_request(request(report, pem)), trusted_arks=arks, at=AT_GO_SEV_GUEST
    )
    assert "x-ms-inittime" not in plain.claims and plain.claims["x-ms-sevsnpvm-hostdata"] == "00" * 32


def test_base64_variants():
    assert decode_base64_any("AQID", "f") == b"\x01\x02\x03"
    assert decode_base64_any("-_8", "f") == decode_base64_any("+/8=", "f") == b"\xfb\xff"
    assert decode_base64_any(" AQ\nID ", "f") == b"\x01\x02\x03"


@pytest.mark.parametrize(
    "body, code",
    [
        ("not json", "azure.bad_json"),
        ("[]", "azure.bad_field"),
        ("{}", "azure.missing_field"),
        ('{"report": 5}', "azure.bad_field"),
        ('{"report": "***"}', "azure.bad_base64"),
        ('{"report": "A"}', "azure.bad_base64"),
        ('{"report": "QQ=A"}', "azure.bad_base64"),
        (json.dumps({"report": b64u(b"\xff\xfe not json")}), "azure.bad_json"),
        (json.dumps({"report": b64u(b'{"SnpReport": "AA"}')}), "azure.missing_field"),
        (json.dumps({"report": b64u(b'{"SnpReport": "!", "VcekCertChain": ""}')}), "azure.bad_base64"),
        (
            json.dumps({"report": b64u(b'{"SnpReport": "", "VcekCertChain": ""}'), "runtimeData": {}}),
            "azure.missing_field",
        ),
        (
            json.dumps({"report": b64u(b'{"SnpReport": "", "VcekCertChain": ""}'), "nonce": 3}),
            "azure.bad_field",
        ),
    ],
)
def test_garbage_requests(body, code):
    with pytest.raises(EvidenceError) as info:
        parse_azure_snp_request(body)
    assert info.value.code == code


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=64), st.binary(max_size=64).map(lambda b: b.decode("latin-1"))))
def test_request_parser_only_evidence_errors(text):
    for body in (text, json.dumps({"report": text})):
        try:
            parse_azure_snp_request(body)
        except EvidenceError:
            pass


# -- HCL report ----------------------------------------------------------------------------------


def test_hcl_layout(hcl_bytes, trustee_dir):
    hcl = parse_hcl_report(hcl_bytes)
    assert (hcl.version, hcl.report_size, hcl.request_type, hcl.status) == (1, 2346, 2, 0)
    assert hcl.report_type is HclReportType.SNP and hcl.hash_type is HclHashType.SHA256
    assert len(hcl.hw_report) == 1184 and hcl.hw_report == hcl_bytes[0x20:0x4C0]
    assert (
        hcl.variable_data_digest().hex() == "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac"
    )
    assert json.loads(hcl.variable_data)["keys"][0]["kid"] == "HCLAkPub"
    tdx = parse_hcl_report((trustee_dir / "az-tdx-vtpm" / "hcl-report.bin").read_bytes())
    assert tdx.report_type is HclReportType.TDX and len(tdx.hw_report) == 1024
    with pytest.raises(EvidenceError) as info:
        tdx.snp_report()
    assert info.value.code == "hcl.report_type"


def test_hcl_variable_data_mutation_breaks_binding(hcl_bytes):
    raw = bytearray(hcl_bytes)
    raw[0x06E0] += 1  # trustee: "HCL variable data digest doesn't match SNP report data"
    hcl = parse_hcl_report(bytes(raw))
    assert hcl.variable_data_digest() != hcl.hw_report[0x50:0x70]


@pytest.mark.parametrize(
    "offset, value, code",
    [
        (0, b"HCLB", "hcl.bad_signature"),
        (0x4C8, struct.pack("<I", 3), "hcl.report_type"),
        (0x4CC, struct.pack("<I", 9), "hcl.hash_type"),
        (0x4C0, struct.pack("<I", 1131), "hcl.length"),
        (0x08, struct.pack("<I", 2345), "hcl.length"),
        (2599, b"\x01", "hcl.trailing_data"),
        (0x4D0, struct.pack("<I", 5000), "hcl.length"),
    ],
)
def test_hcl_malformed(hcl_bytes, offset, value, code):
    raw = hcl_bytes[:offset] + value + hcl_bytes[offset + len(value) :]
    with pytest.raises(EvidenceError) as info:
        parse_hcl_report(raw)
    assert info.value.code == code


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_hcl_truncations_and_flips(hcl_bytes, data):
    n = data.draw(st.integers(0, 2346 - 1))
    with pytest.raises(EvidenceError):
        parse_hcl_report(hcl_bytes[:n])
    buf = bytearray(hcl_bytes)
    i = data.draw(st.integers(0, len(buf) - 1))
    buf[i] ^= 1 << data.draw(st.integers(0, 7))
    try:
        parse_hcl_report(bytes(buf))
    except EvidenceError:
        pass
