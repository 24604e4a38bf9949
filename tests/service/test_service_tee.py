"""The Azure-shaped TEE routes with real corpus evidence: SEV-SNP (Azure request), SGX (MAA's quote
and OpenEnclave report), TDX (dcap-qvl quote with collateral)."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime

import jwt
import pytest
from fastapi.testclient import TestClient
from service_helpers import Clock, bearer, credentials

from attestd.service import create_app, load_settings

pytestmark = pytest.mark.corpus

AT_MAA = datetime(2022, 5, 31, 22, 47, 57, tzinfo=UTC)
AT_QVL = datetime(2025, 7, 1, tzinfo=UTC)
AT_AZ_SNP = datetime(2024, 6, 1, tzinfo=UTC)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(params=[False])
def tee_service(tmp_path, corpus, request):
    """The service with the corpus's AMD and Intel roots; with ``request.param`` also the dcap-qvl
    Intel collateral (then a platform without collateral is refused: dcap.collateral_missing)."""
    clock = Clock(AT_MAA)
    settings = load_settings(env={}, data_dir=tmp_path / "data", public_url="http://testserver",
                             tee_amd_roots=os.pathsep.join([str(corpus / "go-sev-guest" / "ask_ark_milan_vcek.pem"),
                                                            str(corpus / "go-sev-guest" / "ask_ark_genoa.pem")]),
                             tee_intel_root=str(corpus / "go-tdx-guest" / "intel_sgx_root_ca.pem"),
                             tee_collateral_dir=str(corpus / "dcap-qvl") if request.param else None)
    app = create_app(settings, clock=clock, announce=lambda m: None)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.clock = clock
        client.admin = bearer(credentials(tmp_path / "data")["adminToken"])
        yield client


def _policy(c, route, text):
    r = c.put(f"/tenants/default/policies/{route}", content=text, headers=c.admin)
    assert r.status_code == 200, r.text


def _claims(c, token):
    jwks = c.get("/tenants/default/certs").json()
    key = jwt.PyJWKSet.from_dict(jwks).keys[0].key
    return jwt.decode(token, key, algorithms=["RS256"], options={"verify_exp": False, "verify_nbf": False,
                                                                  "verify_iat": False})


SGX_POLICY = """version=1.0;
authorizationrules { [type=="x-ms-sgx-product-id", value==1] => permit(); };
issuancerules { c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value); };"""


def test_sgx_enclave_and_open_enclave(tee_service, corpus):
    c = tee_service
    d = corpus / "azure-sdk-cpp"
    quote, oe, rt = (d / "maa_sgx_quote.bin").read_bytes(), (d / "maa_oe_report.bin").read_bytes(), \
        (d / "maa_runtime_data.bin").read_bytes()
    # no policy yet: refused, never permit-all
    r = c.post("/tenants/default/attest/SgxEnclave", json={"quote": b64u(quote)})
    assert r.status_code == 404 and r.json()["code"] == "policy.not_set"
    _policy(c, "SgxEnclave", SGX_POLICY)
    r = c.post("/tenants/default/attest/SgxEnclave",
               json={"quote": b64u(quote), "runtimeData": {"data": b64u(rt), "dataType": "Binary"}, "nonce": "n1"})
    assert r.status_code == 200, r.text
    claims = _claims(c, r.json()["token"])
    assert claims["x-ms-attestation-type"] == "sgx" and claims["nonce"] == "n1"
    assert claims["x-ms-sgx-is-debuggable"] is True and claims["x-ms-sgx-product-id"] == 1
    assert claims["signer"] == claims["x-ms-sgx-mrsigner"]
    assert claims["x-ms-sgx-ehd"] == b64u(rt)
    _policy(c, "OpenEnclave", SGX_POLICY.replace("value==1", "value==2"))
    r = c.post("/tenants/default/attest/OpenEnclave",
               json={"report": b64u(oe), "runtimeData": {"data": b64u(rt), "dataType": "Binary"}})
    assert r.status_code == 403 and r.json()["code"] == "attestation.denied"
    assert r.json()["error"]["code"] == "attestation.denied"  # Azure's shape as well
    # runtime data that does not match REPORT_DATA
    r = c.post("/tenants/default/attest/SgxEnclave",
               json={"quote": b64u(quote), "runtimeData": {"data": b64u(rt + b"x"), "dataType": "Binary"}})
    assert r.status_code == 422 and r.json()["code"] == "sgx.runtime_data_mismatch"


@pytest.mark.parametrize("tee_service", [True], indirect=True)
def test_tdx_with_collateral(tee_service, corpus):
    c = tee_service
    c.clock.now = AT_QVL
    _policy(c, "TdxVm", 'version=1.0;\nauthorizationrules { => permit(); };')
    r = c.post("/tenants/default/attest/TdxVm", json={"quote": b64u((corpus / "dcap-qvl" / "tdx_quote").read_bytes())})
    assert r.status_code == 200, r.text
    claims = _claims(c, r.json()["token"])
    assert claims["x-ms-attestation-type"] == "tdxvm"
    # with collateral configured, a platform it does not cover is refused, not half-verified
    _policy(c, "SgxEnclave", SGX_POLICY)
    maa = (corpus / "azure-sdk-cpp" / "maa_sgx_quote.bin").read_bytes()
    r = c.post("/tenants/default/attest/SgxEnclave", json={"quote": b64u(maa)})
    assert r.status_code == 422 and r.json()["code"] == "dcap.collateral_missing"


def test_sev_snp_azure_request(tee_service, corpus):
    from attestd.tee.azure_hcl import parse_hcl_report
    from attestd.tee.snp.certs import load_certificates
    from cryptography.hazmat.primitives.serialization import Encoding

    c = tee_service
    c.clock.now = AT_AZ_SNP
    az = corpus / "trustee" / "az-snp-vtpm"
    hcl = parse_hcl_report((az / "hcl-report.bin").read_bytes())
    vcek = load_certificates((az / "vcek.pem").read_bytes())[0]
    inner = json.dumps({"SnpReport": b64u(hcl.snp_report()), "VcekCertChain": b64u(vcek.public_bytes(Encoding.PEM))})
    body = {"report": b64u(inner.encode()), "runtimeData": {"data": b64u(hcl.variable_data), "dataType": "JSON"}}
    _policy(c, "SevSnpVm", 'version=1.0;\nauthorizationrules { [type=="x-ms-sevsnpvm-is-debuggable", value==false] '
                           '=> permit(); };')
    r = c.post("/tenants/default/attest/SevSnpVm", json=body)
    assert r.status_code == 200, r.text
    claims = _claims(c, r.json()["token"])
    assert claims["x-ms-attestation-type"] == "sevsnpvm" and "x-ms-runtime" in claims
    assert len(claims["x-ms-sevsnpvm-launchmeasurement"]) == 96


@pytest.mark.parametrize("body,field", [
    ({"quote": "!!!not base64"}, "quote"),
    ({}, "quote"),
    ({"quote": b64u(b"\x03\x00" + bytes(10))}, None),
    ({"quote": "AAAA", "extra": 1}, "extra"),
])
def test_malformed_requests_are_400s(tee_service, body, field):
    c = tee_service
    _policy(c, "SgxEnclave", SGX_POLICY)
    r = c.post("/tenants/default/attest/SgxEnclave", json=body)
    assert r.status_code in (400, 422), r.text
    assert r.json()["code"] and r.json()["error"]["code"] == r.json()["code"]
