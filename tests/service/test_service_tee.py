"""The Azure-shaped TEE routes (``/attest/SgxEnclave|OpenEnclave|SevSnpVm|TdxVm``) end to end.

* every corpus TEE evidence file INDEX.md says verifies gives 200 and a token whose claims, checked
  with the tenant's JWKS, are the file's values (the MAA quote's against MAA's own token); the
  cases INDEX.md says fail give its error code (4xx);
* freshness: a challenge nonce bound into REPORT_DATA (alone, or SHA-256(nonce || runtimeData)),
  single use, with evidence signed by a private AMD-shaped PKI (``service_tee_pki``);
* the default policies (never permit-all), malformed and hostile requests (400 naming the member),
  Azure's error shape, audit reverification.

Corpus files are read in place from ``../shared/corpus``; the tests skip when it is absent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from service_helpers import Clock, bearer, credentials
from service_tee_pki import AT as PKI_AT
from service_tee_pki import SnpSigner, b64u

from attestd.service import create_app, load_settings

pytestmark = pytest.mark.corpus

AT_MAA = datetime(2022, 5, 31, 23, 0, tzinfo=UTC)  # the MAA recording (token iat 2022-05-31T22:47:57Z)
AT_QVL = datetime(2025, 7, 1, tzinfo=UTC)  # dcap-qvl collateral: 2025-06-19 .. 2025-07-19
AT_GTG = datetime(2023, 7, 1, 1, tzinfo=UTC)  # go-tdx-guest: upstream verifies at 2023-07-01T01:00Z
AT_V5 = datetime(2026, 2, 3, 1, tzinfo=UTC)  # quote_v5_sample: passes with no collateral then
AT_GSG = datetime(2022, 9, 25, tzinfo=UTC)  # go-sev-guest VCEK: 2022-09-24 ..
AT_TRUSTEE = datetime(2024, 6, 1, tzinfo=UTC)  # trustee test-vcek (2023-01-24 ..), az-snp-vtpm/vcek.pem (2023-05-02 ..)
AT_AZ_2025 = datetime(2025, 6, 1, tzinfo=UTC)  # the VCEKs in evidence-v0/v1/v2/genoa (2025-01-24/28 ..)
AT_2024 = datetime(2024, 1, 1, tzinfo=UTC)
AT_2025 = datetime(2025, 1, 1, tzinfo=UTC)

PERMIT_ALL = 'version=1.0;\nauthorizationrules { => permit(); };\n'
#: Azure's documented default SGX policy (version 1.0 form): permits every verified enclave
AZURE_SGX_DEFAULT = """version=1.0;
authorizationrules { => permit(); };
issuancerules {
    c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);
    c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);
    c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);
    c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);
    c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);
    c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
};
"""


class Tee:
    """One service (its own SQLite) with TEE trust configured, and what the tests do with it."""

    def __init__(self, client: TestClient, data_dir: Path, clock: Clock) -> None:
        self.client, self.clock = client, clock
        self.admin = bearer(credentials(data_dir)["adminToken"])
        self.operator = bearer(credentials(data_dir)["operatorToken"])

    @property
    def state(self):
        return self.client.app.state.attestd

    def post(self, route: str, body, *, tenant: str = "default", **kw):
        return self.client.post(f"/tenants/{tenant}/attest/{route}", json=body, **kw)

    def set_policy(self, route: str, text: str | None) -> None:
        """``text``, or the type's default (reset) when None."""
        if text is None:
            r = self.client.post(f"/tenants/default/policies/{route}:reset", headers=self.admin)
        else:
            r = self.client.put(f"/tenants/default/policies/{route}", content=text, headers=self.admin)
        assert r.status_code == 200, r.text

    def challenge(self, tenant: str = "default") -> str:
        return self.client.post(f"/tenants/{tenant}/challenge").json()["nonce"]

    def claims(self, token: str, tenant: str = "default") -> dict:
        """The token verified with the tenant's JWKS (at the service's clock) and its issuer."""
        keys = jwt.PyJWKSet.from_dict(self.client.get(f"/tenants/{tenant}/certs").json())
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(k for k in keys.keys if k.key_id == kid)
        claims = jwt.decode(token, key.key, algorithms=["RS256", "PS256", "ES256"],
                            issuer=f"http://testserver/tenants/{tenant}",
                            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
        assert claims["iat"] == int(self.clock.now.timestamp()) and claims["exp"] > claims["iat"]
        return claims


def _service(stack: ExitStack, data_dir: Path, **settings) -> Tee:
    clock = Clock(AT_MAA)
    app = create_app(load_settings(env={}, data_dir=data_dir, public_url="http://testserver", **settings),
                     clock=clock, announce=lambda m: None)
    client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
    return Tee(client, data_dir, clock)


@pytest.fixture(scope="module")
def services(corpus, tmp_path_factory):
    """Services by Intel collateral directory (None, "dcap-qvl", "go-tdx-guest"); AMD Milan and
    Genoa KDS chains and the Intel SGX Root CA from the corpus; nonces optional (corpus evidence
    cannot carry this service's nonce)."""
    made: dict = {}
    with ExitStack() as stack:
        def get(collateral: str | None) -> Tee:
            if collateral not in made:
                made[collateral] = _service(
                    stack, tmp_path_factory.mktemp("tee"), tee_nonce="optional",
                    tee_amd_roots=os.pathsep.join([str(corpus / "go-sev-guest" / "ask_ark_milan_vcek.pem"),
                                                   str(corpus / "go-sev-guest" / "ask_ark_genoa.pem")]),
                    tee_intel_root=str(corpus / "go-tdx-guest" / "intel_sgx_root_ca.pem"),
                    tee_collateral_dir=str(corpus / collateral) if collateral else None)
            return made[collateral]
        yield get


# -- corpus evidence as Azure requests -----------------------------------------------------------------
def _pem_certs(data: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    from attestd.tee.snp.certs import load_certificates

    return b"".join(c.public_bytes(Encoding.PEM) for c in load_certificates(data))


def snp_request(report: bytes, vcek: bytes, **extra) -> dict:
    inner = {"SnpReport": b64u(report), "VcekCertChain": b64u(_pem_certs(vcek))}
    return {"report": b64u(json.dumps(inner).encode()), **extra}


def hcl_request(hcl: bytes, vcek: bytes) -> dict:
    """An Azure CVM's HCL report as AttestSevSnpVm: its SNP report, with the HCL variable data
    (the vTPM AK) as JSON runtime data - REPORT_DATA is SHA-256 of it."""
    from attestd.tee.azure_hcl import parse_hcl_report

    parsed = parse_hcl_report(hcl)
    return snp_request(parsed.snp_report(), vcek, runtimeData={"data": b64u(parsed.variable_data), "dataType": "JSON"})


def _trustee_evidence(path: Path) -> tuple[bytes, bytes]:
    """(HCL report, VCEK) of a Trustee az-snp-vtpm evidence file (v0: int lists + PEM; v1/v2: base64)."""
    ev = json.loads(path.read_text())
    if "report" in ev:
        return bytes(ev["report"]), ev["vcek"].encode()
    from attestd.tee.snp.azure import decode_base64_any  # either alphabet, padded or not

    return decode_base64_any(ev["hcl_report"], "hcl_report"), decode_base64_any(ev["vcek"], "vcek")


def _mutated(data: bytes, offset: int, *, add: int | None = None, value: int | None = None) -> bytes:
    out = bytearray(data)
    out[offset] = value if value is not None else (out[offset] + add) % 256
    return bytes(out)


MAA_TOKEN_CLAIMS = ("x-ms-attestation-type", "x-ms-sgx-is-debuggable", "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner",
                    "x-ms-sgx-product-id", "x-ms-sgx-svn", "x-ms-sgx-report-data", "x-ms-sgx-ehd", "is-debuggable",
                    "sgx-mrsigner", "sgx-mrenclave", "product-id", "svn", "tee")


def _maa_token(corpus: Path) -> dict:
    payload = (corpus / "azure-sdk-cpp" / "maa_token.jwt").read_text().strip().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("route,field,name", [("SgxEnclave", "quote", "maa_sgx_quote.bin"),
                                              ("OpenEnclave", "report", "maa_oe_report.bin")])
def test_maa_quote_gives_maas_claims(services, corpus, route, field, name):
    """INDEX.md section 6: the quote MAA attested, with its runtime data, under Azure's default SGX
    policy: the token's claims are the ones MAA's own token carries (quotehash = SHA-256 of the SGX
    quote, also for the OpenEnclave report). Our default policy refuses it: it is debuggable."""
    c = services(None)
    c.clock.now = AT_MAA
    d = corpus / "azure-sdk-cpp"
    rt = (d / "maa_runtime_data.bin").read_bytes()
    body = {field: b64u((d / name).read_bytes()), "runtimeData": {"data": b64u(rt), "dataType": "Binary"}}
    c.set_policy(route, None)
    r = c.post(route, body)
    assert r.status_code == 403 and r.json()["code"] == "attestation.denied", r.text
    assert r.json()["field"] == "x-ms-sgx-is-debuggable"
    assert r.json()["details"]["rule"]["section"] == "authorizationrules" and r.json()["details"]["rule"]["rule"] == 1

    c.set_policy(route, AZURE_SGX_DEFAULT)
    r = c.post(route, body)
    assert r.status_code == 200, r.text
    claims = c.claims(r.json()["token"])
    maa = _maa_token(corpus)
    for name_ in MAA_TOKEN_CLAIMS:
        assert claims[name_] == maa[name_], name_
    assert claims["x-ms-sgx-collateral"]["quotehash"] == maa["x-ms-sgx-collateral"]["quotehash"]
    assert claims["x-ms-policy-hash"] != maa["x-ms-policy-hash"]  # theirs is over their policy text
    assert claims["x-attestd-nonce-verified"] is False and "nonce" not in claims
    assert any("no collateral" in n for n in claims["x-attestd-verifier-notes"])
    # the same runtime data with one byte more does not match REPORT_DATA
    body["runtimeData"]["data"] = b64u(rt + b"x")
    r = c.post(route, body)
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "sgx.runtime_data_mismatch", "runtimeData")
    c.set_policy(route, None)


# (id, route, evidence builder(corpus) -> body, collateral dir, time, policy, status, code, claim checks)
def _q(rel: str, field: str = "quote"):
    return lambda corpus: {field: b64u((corpus / rel).read_bytes())}


def _snp(rel_report: str, rel_vcek: str, **mutation):
    def build(corpus):
        report = (corpus / rel_report).read_bytes()
        if mutation:
            report = _mutated(report, **mutation)
        return snp_request(report, (corpus / rel_vcek).read_bytes())
    return build


def _hcl(rel: str, rel_vcek: str | None = None, **mutation):
    def build(corpus):
        if rel.endswith(".json"):
            hcl, vcek = _trustee_evidence(corpus / rel)
        else:
            hcl, vcek = (corpus / rel).read_bytes(), (corpus / rel_vcek).read_bytes()
        if mutation:
            hcl = _mutated(hcl, **mutation)
        return hcl_request(hcl, vcek)
    return build


GTG_MEASUREMENT = ("b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b"
                   "6bdf8a9ece31a5a608eb0cf2e4872b01")
TRUSTEE_MEASUREMENT = ("a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c"
                       "23500644e0e692e6be917f9050d3d38c")

CORPUS_CASES = [
    # -- SGX ----------------------------------------------------------------------------------------------
    ("dcap-qvl-sgx", "SgxEnclave", _q("dcap-qvl/sgx_quote"), "dcap-qvl", AT_QVL, None, 200, None,
     {"attester_tcb_status": "ConfigurationAndSWHardeningNeeded",
      "attester_advisory_ids": ["INTEL-SA-00289", "INTEL-SA-00615"],
      "x-ms-sgx-mrenclave": "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
      "x-ms-sgx-mrsigner": "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
      "x-ms-sgx-is-debuggable": False, "is-debuggable": False, "tee": "sgx"}),
    ("occlum-default", "SgxEnclave", _q("trustee/sgx/occlum_quote.dat"), None, AT_2024, None, 403,
     "attestation.denied", {"field": "x-ms-sgx-is-debuggable"}),
    ("occlum", "SgxEnclave", _q("trustee/sgx/occlum_quote.dat"), None, AT_2024, PERMIT_ALL, 200, None,
     {"x-ms-sgx-mrenclave": "8f173e4613ff05c52aaf04162d234edae8c9977eae47eb2299ae16a553011c68",
      "x-ms-sgx-mrsigner": "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e",
      "x-ms-sgx-product-id": 0, "x-ms-sgx-svn": 0, "x-ms-sgx-report-data": b"test".hex() + "00" * 60}),
    ("maa-collateral-missing", "SgxEnclave", _q("azure-sdk-cpp/maa_sgx_quote.bin"), "dcap-qvl", AT_QVL,
     PERMIT_ALL, 422, "dcap.collateral_missing", {}),
    # -- TDX ----------------------------------------------------------------------------------------------
    ("dcap-qvl-tdx", "TdxVm", _q("dcap-qvl/tdx_quote"), "dcap-qvl", AT_QVL, None, 200, None,
     {"attester_tcb_status": "UpToDate", "attester_advisory_ids": [], "tdx_td_attributes_debug": False,
      "x-ms-attestation-type": "tdxvm", "attester_tdx_module_id": "TDX_01"}),
    ("spr-e4-no-collateral-default", "TdxVm", _q("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"), None, AT_GTG, None,
     403, "attestation.denied", {"field": "attester_tcb_status"}),
    ("spr-e4-no-collateral", "TdxVm", _q("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"), None, AT_GTG, PERMIT_ALL, 200,
     None, {"tdx_mrtd": "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f"
                        "22fc00b8dcd404bc10d5e119d7215cbb",
            "tdx_mrseam": "2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9"
                          "a89b4869a9fab60fbe9d0c5a5363c656",
            "tdx_rtmr3": "00" * 48, "tdx_td_attributes": "0000004000000000"}),
    ("spr-e4-collateral", "TdxVm", _q("go-tdx-guest/tdx_prod_quote_SPR_E4.dat"), "go-tdx-guest", AT_GTG,
     PERMIT_ALL, 422, "dcap.tcb_no_match", {}),
    ("quote-v5", "TdxVm", _q("go-tdx-guest/quote_v5_sample.dat"), None, AT_V5, PERMIT_ALL, 200, None,
     {"tdx_mrtd": lambda v: v.startswith("7348651a") and v.endswith("f876"), "tdx_mrservicetd": lambda v: len(v) == 96}),
    ("cos-113", "TdxVm", _q("go-tdx-guest/cos-113-tdx-quote.dat"), None, AT_2025, PERMIT_ALL, 200, None,
     {"tdx_mrtd": "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a",
      "tdx_report_data": "00" * 64}),
    ("az-tdx-td-quote", "TdxVm", _q("trustee/az-tdx-vtpm/td-quote.bin"), None, AT_2025, PERMIT_ALL, 200, None,
     {"tdx_mrtd": "024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b",
      "tdx_rtmr0": "00" * 48, "tdx_rtmr3": "00" * 48}),
    ("trustee-quote-4-default", "TdxVm", _q("trustee/tdx/tdx_quote_4.dat"), "go-tdx-guest", AT_GTG, None, 403,
     "attestation.denied", {"field": "tdx_td_attributes_debug"}),
    ("trustee-quote-4", "TdxVm", _q("trustee/tdx/tdx_quote_4.dat"), "go-tdx-guest", AT_GTG, PERMIT_ALL, 200, None,
     {"attester_tcb_status": "UpToDate", "tdx_td_attributes_debug": True, "dbgstat": "enabled"}),
    ("trustee-quote-5", "TdxVm", _q("trustee/tdx/tdx_quote_5.dat"), None, AT_V5, PERMIT_ALL, 200, None, {}),
    # -- SEV-SNP ------------------------------------------------------------------------------------------
    ("go-sev-guest-default", "SevSnpVm", _snp("go-sev-guest/attestation.bin", "go-sev-guest/vcek.testcer.der"),
     None, AT_GSG, None, 403, "attestation.denied", {"field": "x-ms-sevsnpvm-is-debuggable"}),
    ("go-sev-guest", "SevSnpVm", _snp("go-sev-guest/attestation.bin", "go-sev-guest/vcek.testcer.der"), None, AT_GSG,
     PERMIT_ALL, 200, None,
     {"x-ms-sevsnpvm-launchmeasurement": GTG_MEASUREMENT, "x-ms-sevsnpvm-reportdata": "0102030405" + "00" * 59,
      "x-ms-sevsnpvm-is-debuggable": True, "x-ms-sevsnpvm-vmpl": 0, "x-ms-sevsnpvm-guestsvn": 0,
      "x-ms-sevsnpvm-bootloader-svn": 2, "x-ms-sevsnpvm-snpfw-svn": 5, "x-ms-sevsnpvm-microcode-svn": 68,
      "x-ms-sevsnpvm-reportid": "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a"}),
    ("trustee-snp", "SevSnpVm", _snp("trustee/snp/test-report.bin", "trustee/snp/test-vcek.der"), None, AT_TRUSTEE,
     None, 200, None, {"x-ms-sevsnpvm-launchmeasurement": TRUSTEE_MEASUREMENT, "x-ms-sevsnpvm-guestsvn": 4,
                       "x-ms-sevsnpvm-is-debuggable": False, "x-ms-sevsnpvm-bootloader-svn": 3,
                       "x-ms-sevsnpvm-microcode-svn": 115, "tee": "sevsnpvm"}),
    ("trustee-snp-byte42", "SevSnpVm", _snp("trustee/snp/test-report.bin", "trustee/snp/test-vcek.der", offset=42,
                                            add=1), None, AT_TRUSTEE, PERMIT_ALL, 422, "snp.signature_invalid", {}),
    ("trustee-snp-byte384", "SevSnpVm", _snp("trustee/snp/test-report.bin", "trustee/snp/test-vcek.der", offset=384,
                                             add=1), None, AT_TRUSTEE, PERMIT_ALL, 422, "snp.tcb_mismatch", {}),
    ("az-snp-hcl", "SevSnpVm", _hcl("trustee/az-snp-vtpm/hcl-report.bin", "trustee/az-snp-vtpm/vcek.pem"), None,
     AT_TRUSTEE, None, 200, None,
     {"x-ms-sevsnpvm-reportdata": lambda v: v.startswith(
         "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac") and v.endswith("00" * 32),
      "x-ms-runtime": lambda v: v["keys"][0]["kid"] == "HCLAkPub", "x-ms-sevsnpvm-vmpl": 0}),
    ("az-snp-hcl-variable-data", "SevSnpVm", _hcl("trustee/az-snp-vtpm/hcl-report.bin", "trustee/az-snp-vtpm/vcek.pem",
                                                  offset=0x06E0, add=1), None, AT_TRUSTEE, PERMIT_ALL, 422,
     "azure.runtime_data_mismatch", {"field": "runtimeData"}),
    ("az-snp-hcl-reported-tcb", "SevSnpVm", _hcl("trustee/az-snp-vtpm/hcl-report.bin", "trustee/az-snp-vtpm/vcek.pem",
                                                 offset=0x01A6, value=0), None, AT_TRUSTEE, PERMIT_ALL, 422,
     "snp.tcb_mismatch", {}),
    ("az-snp-v0", "SevSnpVm", _hcl("trustee/az-snp-vtpm/evidence-v0.json"), None, AT_AZ_2025, None, 200, None,
     {"x-ms-sevsnpvm-bootloader-svn": 4, "x-ms-sevsnpvm-snpfw-svn": 24, "x-ms-sevsnpvm-microcode-svn": 219,
      "x-attestd-sevsnpvm-product": "Milan"}),
    ("az-snp-v1", "SevSnpVm", _hcl("trustee/az-snp-vtpm/evidence-v1.json"), None, AT_AZ_2025, None, 200, None,
     {"x-attestd-sevsnpvm-product": "Milan"}),
    ("az-snp-v2", "SevSnpVm", _hcl("trustee/az-snp-vtpm/evidence-v2.json"), None, AT_AZ_2025, None, 200, None,
     {"x-ms-runtime": lambda v: v["user-data"].lower().startswith(
         "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef")}),
    ("az-snp-genoa", "SevSnpVm", _hcl("trustee/az-snp-vtpm/evidence-genoa.json"), None, AT_AZ_2025, None, 200, None,
     {"x-attestd-sevsnpvm-product": "Genoa", "x-ms-sevsnpvm-bootloader-svn": 10, "x-ms-sevsnpvm-snpfw-svn": 23,
      "x-ms-sevsnpvm-microcode-svn": 84}),
]


@pytest.mark.parametrize("case", CORPUS_CASES, ids=[c[0] for c in CORPUS_CASES])
def test_corpus_evidence(services, corpus, case):
    _id, route, build, collateral, at, policy, status, code, expect = case
    c = services(collateral)
    c.clock.now = at
    c.set_policy(route, policy)
    r = c.post(route, build(corpus))
    assert r.status_code == status, r.text
    if status != 200:
        problem = r.json()
        assert problem["code"] == code and problem["error"]["code"] == code
        if "field" in expect:
            assert problem["field"] == expect["field"]
        return
    assert r.headers["x-attestd-attestation-id"]
    claims = c.claims(r.json()["token"])
    assert claims["x-ms-attestation-type"] == {"SgxEnclave": "sgx", "TdxVm": "tdxvm", "SevSnpVm": "sevsnpvm"}[route]
    assert claims["x-ms-policy-hash"]
    for name, want in expect.items():
        assert (want(claims[name]) if callable(want) else claims[name] == want), (name, claims.get(name))


#: INDEX.md section 5 (go-tdx-guest/expected.json): byte mutations of tdx_prod_quote_SPR_E4.dat
MUTATIONS = [(0x00, 3, 400, "dcap.quote_version_unsupported"), (0x278, 0x10, 400, "dcap.truncated"),
             (0x1343, 0x32, 422, "dcap.pck_chain_invalid"), (0x1329, 0x32, 422, "dcap.pck_chain_invalid"),
             (0xF5F, 0x32, 422, "dcap.pck_chain_invalid"), (0xB77, 0x32, 422, "dcap.pck_chain_invalid"),
             (0x1E, 0x32, 422, "tdx.quote_signature_invalid"), (0x3C, 0x32, 422, "tdx.quote_signature_invalid")]


@pytest.mark.parametrize("offset,value,status,code", MUTATIONS, ids=[f"0x{m[0]:x}" for m in MUTATIONS])
def test_tdx_mutations(services, corpus, offset, value, status, code):
    c = services(None)
    c.clock.now = AT_GTG + timedelta(minutes=1, seconds=offset)  # a time of its own, to find its record
    c.set_policy("TdxVm", PERMIT_ALL)
    quote = _mutated((corpus / "go-tdx-guest" / "tdx_prod_quote_SPR_E4.dat").read_bytes(), offset, value=value)
    r = c.post("TdxVm", {"quote": b64u(quote)})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (status, code, "quote"), r.text
    # the structure member at fault stays in the details; the record says what failed
    assert r.json()["details"].get("structureField") or r.json().get("offset") is not None
    rows = c.client.get("/tenants/default/attestations?limit=500", headers=c.admin).json()["attestations"]
    mine = [a for a in rows if a["createdAt"] == c.clock.now.isoformat()]
    assert [(a["attestationType"], a["outcome"], a["errorCode"]) for a in mine] == [("TdxVm", "error", code)]


def test_cli_and_service_agree(services, corpus, tmp_path):
    """The same corpus evidence through ``attestd tee verify`` and the route: same verdict, same code."""
    from typer.testing import CliRunner

    from attestd.cli.main import app as cli

    c = services("go-tdx-guest")
    c.clock.now = AT_GTG
    c.set_policy("TdxVm", PERMIT_ALL)
    root = str(corpus / "go-tdx-guest" / "intel_sgx_root_ca.pem")
    for rel, status, code in [("trustee/tdx/tdx_quote_4.dat", 200, None),
                              ("go-tdx-guest/tdx_prod_quote_SPR_E4.dat", 422, "dcap.tcb_no_match")]:
        out = CliRunner().invoke(cli, ["tee", "verify", "-t", "tdx", str(corpus / rel), "--root", root,
                                       "--collateral", str(corpus / "go-tdx-guest"), "--at", AT_GTG.isoformat(),
                                       "--json"])
        r = c.post("TdxVm", {"quote": b64u((corpus / rel).read_bytes())})
        assert r.status_code == status
        doc = json.loads(out.stdout)
        if code is None:
            assert out.exit_code == 0 and doc["verified"]
            claims = c.claims(r.json()["token"])
            assert all(claims[k] == v for k, v in doc["claims"].items() if k != "x-ms-attestation-type")
        else:
            assert out.exit_code == 2 and doc["error"]["code"] == code == r.json()["code"]


@pytest.fixture
def pcs(corpus):
    """Intel PCS v4 on 127.0.0.1 (a thread here), serving go-tdx-guest's TDX collateral for FMSPC
    50806f000000 with the issuer chains in URL-encoded headers. Nothing contacts the internet."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import quote

    g = corpus / "go-tdx-guest"
    routes = {
        "/tdx/certification/v4/tcb?fmspc=50806f000000": (
            {"TCB-Info-Issuer-Chain": quote((g / "tcbinfo_issuer_chain.pem").read_text())}, "sample_tcbInfo_response"),
        "/tdx/certification/v4/qe/identity": (
            {"SGX-Enclave-Identity-Issuer-Chain": quote((g / "qeidentity_issuer_chain.pem").read_text())},
            "sample_qeIdentity_response"),
        "/sgx/certification/v4/pckcrl?ca=platform&encoding=der": (
            {"SGX-PCK-CRL-Issuer-Chain": quote((g / "pckcrl_issuer_chain.pem").read_text())}, "pckcrl"),
        "/IntelSGXRootCA.der": ({}, "rootcrl.der"),
    }
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            hits.append(self.path)
            headers, name = routes.get(self.path, ({}, None))
            body = (g / name).read_bytes() if name else b"not found"
            self.send_response(200 if name else 404)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.hits = hits
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def test_collateral_directory_then_fetch(corpus, pcs, tmp_path):
    """Offline by default: a platform the configured directory does not cover is refused. With
    ``tee_fetch`` the missing collateral comes from PCS (cached under ``tee_cache_dir``) and the
    evidence is judged exactly as with that collateral given directly (INDEX.md section 5)."""
    trust = {"tee_nonce": "optional", "tee_intel_root": str(corpus / "go-tdx-guest" / "intel_sgx_root_ca.pem"),
             "tee_collateral_dir": str(corpus / "dcap-qvl")}
    quote4 = {"quote": b64u((corpus / "trustee" / "tdx" / "tdx_quote_4.dat").read_bytes())}
    spr = {"quote": b64u((corpus / "go-tdx-guest" / "tdx_prod_quote_SPR_E4.dat").read_bytes())}
    with ExitStack() as stack:
        offline = _service(stack, tmp_path / "offline", **trust)
        offline.clock.now = AT_GTG
        offline.set_policy("TdxVm", PERMIT_ALL)
        r = offline.post("TdxVm", quote4)
        assert (r.status_code, r.json()["code"]) == (422, "dcap.collateral_missing")
        online = _service(stack, tmp_path / "online", tee_fetch=True, tee_pcs_url=pcs.url,
                          tee_intel_root_crl_url=pcs.url + "/IntelSGXRootCA.der",
                          tee_cache_dir=str(tmp_path / "cache"), **trust)
        online.clock.now = AT_GTG
        online.set_policy("TdxVm", PERMIT_ALL)
        r = online.post("TdxVm", quote4)
        assert r.status_code == 200, r.text
        claims = online.claims(r.json()["token"])
        assert claims["attester_tcb_status"] == "UpToDate"
        assert any("fetched" in n for n in claims["x-attestd-verifier-notes"])
        r = online.post("TdxVm", spr)
        assert (r.status_code, r.json()["code"]) == (422, "dcap.tcb_no_match")
        assert any(p.startswith("/tdx/certification/v4/tcb") for p in pcs.hits)
        assert list((tmp_path / "cache").iterdir())
        # the directory's own platforms are not fetched
        online.clock.now = AT_QVL
        before = len(pcs.hits)
        r = online.post("TdxVm", {"quote": b64u((corpus / "dcap-qvl" / "tdx_quote").read_bytes())})
        assert r.status_code == 200 and len(pcs.hits) == before


# -- freshness: nonces bound into REPORT_DATA (private AMD-shaped PKI) ---------------------------------------
@pytest.fixture(scope="module")
def fresh(corpus, tmp_path_factory):
    """A service with the default nonce rule (required) trusting a private ARK, and the signer."""
    signer = SnpSigner.for_report((corpus / "trustee" / "snp" / "test-report.bin").read_bytes())
    d = tmp_path_factory.mktemp("fresh")
    with ExitStack() as stack:
        c = _service(stack, d / "data", tee_amd_roots=str(signer.write_roots(d / "private-ark.pem")),
                     tee_intel_root=str(corpus / "go-tdx-guest" / "intel_sgx_root_ca.pem"))
        c.clock.now = PKI_AT
        c.signer = signer
        yield c


def test_nonce_bound_and_single_use(fresh):
    c, s = fresh, fresh.signer
    # Azure-style requests without a challenge are refused: the default needs freshness
    r = c.post("SevSnpVm", s.request(None))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (400, "nonce.missing", "nonce")
    nonce = c.challenge()
    body = s.request(nonce)
    r = c.post("SevSnpVm", body)
    assert r.status_code == 200, r.text
    r_id = r.headers["x-attestd-attestation-id"]
    claims = c.claims(r.json()["token"])
    assert claims["nonce"] == nonce and claims["x-attestd-nonce-verified"] is True
    assert claims["x-ms-sevsnpvm-reportdata"] == base64.urlsafe_b64decode(nonce + "=").hex() + "00" * 32
    assert claims["tee"] == "sevsnpvm"  # issued by the default policy
    # single use, also for the same evidence
    r = c.post("SevSnpVm", body)
    assert (r.status_code, r.json()["code"]) == (409, "nonce.replayed")
    record = c.client.get(f"/tenants/default/attestations/{r_id}", headers=c.admin).json()
    assert record["outcome"] == "permit" and record["nonceId"] and record["claims"]["x-attestd-nonce-verified"]


def test_runtime_data_binding_with_nonce(fresh):
    """With runtimeData, REPORT_DATA starts with SHA-256(nonce || runtimeData), as the TPM route's
    extraData; x-ms-runtime is the runtimeData. Azure's SHA-256(runtimeData) alone is not fresh."""
    c, s = fresh, fresh.signer
    runtime = json.dumps({"jwk": {"kty": "EC", "crv": "P-256"}, "purpose": "test"}).encode()
    nonce = c.challenge()
    stale = s.request(nonce, runtime=runtime, bind=hashlib.sha256(runtime).digest())
    r = c.post("SevSnpVm", stale)
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "azure.runtime_data_mismatch", "runtimeData")
    # a failed verification does not consume the nonce
    r = c.post("SevSnpVm", s.request(nonce, runtime=runtime))
    assert r.status_code == 200, r.text
    claims = c.claims(r.json()["token"])
    assert claims["x-ms-runtime"] == json.loads(runtime) and claims["nonce"] == nonce
    # binary runtime data: bound the same way, not issued as x-ms-runtime
    nonce = c.challenge()
    r = c.post("SevSnpVm", s.request(nonce, runtime=b"\x00\x01binary", runtime_type="Binary"))
    assert r.status_code == 200 and "x-ms-runtime" not in c.claims(r.json()["token"])


def test_nonce_errors(fresh):
    c, s = fresh, fresh.signer
    # a report over another value
    nonce = c.challenge()
    r = c.post("SevSnpVm", s.request(nonce, bind=b"something else"))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "tee.nonce_mismatch", "nonce")
    # another tenant's nonce, a forged one, an expired one, a malformed one
    other = c.client.post("/tenants", json={"name": "other", "mode": "token"}, headers=c.operator)
    assert other.status_code == 201
    foreign = c.challenge("other")
    r = c.post("SevSnpVm", s.request(foreign))
    assert (r.status_code, r.json()["code"]) == (400, "nonce.invalid")
    forged = bytearray(base64.urlsafe_b64decode(nonce + "="))
    forged[-1] ^= 1
    r = c.post("SevSnpVm", s.request(b64u(bytes(forged))))
    assert (r.status_code, r.json()["code"]) == (400, "nonce.invalid")
    old = c.challenge()
    c.clock.advance(seconds=c.state.settings.nonce_ttl_seconds + 1)
    try:
        r = c.post("SevSnpVm", s.request(old))
        assert (r.status_code, r.json()["code"]) == (400, "nonce.expired")
    finally:
        c.clock.now = PKI_AT
    for bad in ("short", "!" * 43):
        r = c.post("SevSnpVm", {**s.request(None), "nonce": bad})
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (400, "nonce.malformed", "nonce")
    # the other tenant's evidence with its own nonce is fine: tenants are separate
    r = c.post("SevSnpVm", s.request(foreign), tenant="other")
    assert r.status_code == 200, r.text
    assert c.claims(r.json()["token"], tenant="other")["nonce"] == foreign


def test_denial_consumes_the_nonce_and_names_the_rule(fresh):
    c, s = fresh, fresh.signer
    nonce = c.challenge()
    r = c.post("SevSnpVm", s.request(nonce, debug=True))
    problem = r.json()
    assert (r.status_code, problem["code"]) == (403, "attestation.denied")
    assert problem["field"] == problem["details"]["claim"] == "x-ms-sevsnpvm-is-debuggable"
    assert problem["details"]["rule"] == {"section": "authorizationrules", "rule": 1, "line": 4,
                                          "source": '![type=="x-ms-sevsnpvm-is-debuggable", '
                                                    'issuer=="AttestationService", value==false] => deny();'}
    record = c.client.get(f"/tenants/default/attestations/{problem['details']['attestationId']}",
                          headers=c.admin).json()
    assert record["outcome"] == "deny" and record["trace"]
    r = c.post("SevSnpVm", s.request(nonce))
    assert (r.status_code, r.json()["code"]) == (409, "nonce.replayed")
    # a tenant policy that allows debugging
    c.set_policy("SevSnpVm", 'version=1.0;\nauthorizationrules {\n  [type=="x-ms-sevsnpvm-vmpl", value==0] => '
                             'permit();\n};\nissuancerules {\n  c:[type=="x-ms-sevsnpvm-launchmeasurement"] => '
                             'issue(type="measurement", value=c.value);\n};\n')
    try:
        r = c.post("SevSnpVm", s.request(c.challenge(), debug=True))
        assert r.status_code == 200, r.text
        claims = c.claims(r.json()["token"])
        assert claims["measurement"] == claims["x-ms-sevsnpvm-launchmeasurement"] == TRUSTEE_MEASUREMENT
    finally:
        c.set_policy("SevSnpVm", None)


def test_init_time_data(fresh):
    c, s = fresh, fresh.signer
    init = json.dumps({"containers": ["sha256:abc"]}).encode()
    r = c.post("SevSnpVm", s.request(c.challenge(), init=init))
    assert r.status_code == 200, r.text
    claims = c.claims(r.json()["token"])
    assert claims["x-ms-inittime"] == json.loads(init)
    assert claims["x-ms-sevsnpvm-hostdata"] == hashlib.sha256(init).hexdigest()
    body = s.request(c.challenge(), init=init)
    body["initTimeData"]["data"] = b64u(b'{"containers": []}')
    r = c.post("SevSnpVm", body)
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "azure.init_time_data_mismatch",
                                                                    "initTimeData")
    # SGX and TDX evidence carry no init-time data this service can check
    r = c.post("SgxEnclave", {"quote": b64u(b"\x03" * 64), "nonce": c.challenge(),
                              "initTimeData": {"data": b64u(b"x" * 8)}})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (400, "tee.unsupported_field", "initTimeData")


def test_draft_policy(fresh):
    c, s = fresh, fresh.signer
    body = s.request(c.challenge(), draftPolicyForAttestation=PERMIT_ALL)
    r = c.post("SevSnpVm", body)
    assert r.status_code == 401 and r.json()["code"].startswith("auth.")
    r = c.post("SevSnpVm", body, headers=c.admin)
    assert r.status_code == 200, r.text
    segment = r.json()["token"].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert "x-attestd-draft" in header["crit"]  # every JWT library refuses it
    with pytest.raises(jwt.InvalidTokenError):
        c.claims(r.json()["token"])
    record = c.client.get(f"/tenants/default/attestations/{r.headers['x-attestd-attestation-id']}",
                          headers=c.admin).json()
    assert record["draft"] is True and record["policyVersionId"] is None


def test_azure_error_shape(fresh):
    c = fresh
    r = c.post("SevSnpVm", {"report": "!!"}, headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert r.json() == {"error": {"code": "request.invalid", "message": r.json()["error"]["message"]}}
    assert r.headers["x-ms-error-code"] == "request.invalid" and "report" in r.json()["error"]["message"]
    # RFC 9457 by default (and for */*, and when problem+json is preferred), with Azure's member too
    for accept in (None, "*/*", "application/problem+json, application/json;q=0.5"):
        r = c.post("SevSnpVm", {"report": "!!"}, headers={"Accept": accept} if accept else {})
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == r.json()["error"]["code"] == r.headers["x-ms-error-code"] == "request.invalid"
    # other routes stay RFC 9457 whatever the client accepts
    r = c.client.get("/tenants/default/policies/SevSnpVm", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert "x-ms-error-code" not in r.headers


def test_reverify_tee_record(fresh):
    from attestd.service.audit import reverify

    c, s = fresh, fresh.signer
    r = c.post("SevSnpVm", s.request(c.challenge(), runtime=b'{"k": 1}'))
    assert r.status_code == 200
    report = reverify(c.state, r.headers["x-attestd-attestation-id"])
    assert report["same"] is True, report
    assert report["checks"]["nonceMac"] and report["checks"]["nonceConsumed"] and report["checks"]["claims"]
    r = c.post("SevSnpVm", s.request(c.challenge(), debug=True))
    assert r.status_code == 403
    assert reverify(c.state, r.json()["details"]["attestationId"])["same"] is True


def test_metrics(fresh):
    c, s = fresh, fresh.signer
    assert c.post("SevSnpVm", s.request(c.challenge())).status_code == 200
    text = c.client.get("/metrics").text
    assert 'attestd_attestations_total{outcome="permit",reason="ok",type="sevsnpvm"}' in text
    assert 'attestd_attestation_duration_seconds_count{type="sevsnpvm"}' in text


# -- policies ---------------------------------------------------------------------------------------------
def test_default_policies(fresh):
    c = fresh
    for route, name in [("SgxEnclave", "attestd-sgx-default"), ("OpenEnclave", "attestd-sgx-default"),
                        ("SevSnpVm", "attestd-sevsnpvm-default"), ("TdxVm", "attestd-tdxvm-default")]:
        doc = c.client.get(f"/tenants/default/policies/{route}", headers=c.admin).json()
        assert doc["builtin"] == name, doc
        assert "=> permit();" in doc["policy"] and "deny();" in doc["policy"]  # not permit-everything
    history = c.client.get("/tenants/default/policies/SgxEnclave/history", headers=c.admin).json()["versions"]
    assert history[-1]["action"] == "default"


def test_tenant_created_before_tee_defaults(fresh):
    """A tenant whose database rows predate the TEE defaults gets them (unsaved version 0)."""
    from sqlalchemy import delete

    from attestd.store.models import PolicyVersion

    c, s = fresh, fresh.signer
    assert c.client.post("/tenants", json={"name": "legacy", "mode": "token"}, headers=c.operator).status_code == 201
    with c.state.store.engine.begin() as conn:
        conn.execute(delete(PolicyVersion.__table__).where(PolicyVersion.tenant_name == "legacy",
                                                           PolicyVersion.attestation_type == "SevSnpVm"))
    doc = c.client.get("/tenants/legacy/policies/SevSnpVm", headers=c.operator).json()
    assert (doc["version"], doc["builtin"], doc["action"]) == (0, "attestd-sevsnpvm-default", "default")
    r = c.post("SevSnpVm", s.request(c.challenge("legacy"), debug=True), tenant="legacy")
    assert (r.status_code, r.json()["code"]) == (403, "attestation.denied")
    r = c.post("SevSnpVm", s.request(c.challenge("legacy")), tenant="legacy")
    assert r.status_code == 200
    from attestd.service.audit import reverify

    assert reverify(c.state, r.headers["x-attestd-attestation-id"])["same"] is True


# -- malformed and hostile requests: 400 naming the member, never a 500 ----------------------------------------
MALFORMED = [
    ("SgxEnclave", {"quote": "!!!not base64"}, "quote"),
    ("SgxEnclave", {"quote": "QUJD" * 2 + "A"}, "quote"),  # impossible base64 length
    ("SgxEnclave", {}, "quote"),
    ("SgxEnclave", {"report": "AAAA"}, "quote"),  # SgxEnclave takes quote; report is OpenEnclave's
    ("OpenEnclave", {"quote": "AAAA"}, "report"),
    ("TdxVm", {"quote": "AAAA", "extra": 1}, "extra"),
    ("TdxVm", {"quote": 12}, "quote"),
    ("TdxVm", {"quote": "AAAA", "runtimeData": {"data": "%%%"}}, "runtimeData.data"),
    ("TdxVm", {"quote": "AAAA", "runtimeData": {"data": "AAAA", "dataType": "XML"}}, "runtimeData.dataType"),
    ("TdxVm", {"quote": "AAAA", "runtimeData": {"data": b64u(b"[1, 2]"), "dataType": "JSON"}}, "runtimeData"),
    ("TdxVm", {"quote": "AAAA", "runtimeData": {"data": b64u(b"{\"a\":"), "dataType": "JSON"}}, "runtimeData"),
    ("TdxVm", {"quote": "AAAA", "runtimeData": "AAAA"}, "runtimeData"),
    ("TdxVm", {"quote": "AAAA", "nonce": 5}, "nonce"),
    ("TdxVm", {"quote": "AAAA", "nonce": ""}, "nonce"),
    ("SevSnpVm", {"report": "A" * (256 * 1024 + 4)}, "report"),
    ("SevSnpVm", {"report": "AAAA", "draftPolicyForAttestation": 7}, "draftPolicyForAttestation"),
    # past the model: the verifier's own parse errors, located on the request member
    ("SgxEnclave", {"quote": b64u(bytes(10))}, "quote"),
    ("TdxVm", {"quote": b64u(b"\x04\x00\x02\x00\x81" + bytes(1000))}, "quote"),
    ("OpenEnclave", {"report": b64u(b"\x01\x00\x00\x00\x02\x00\x00\x00" + bytes(40))}, "report"),
    ("SevSnpVm", {"report": b64u(b"not json")}, "report"),
    ("SevSnpVm", {"report": b64u(b"[1]")}, "report"),
    ("SevSnpVm", {"report": b64u(json.dumps({"SnpReport": "AAAA"}).encode())}, "report.VcekCertChain"),
    ("SevSnpVm", {"report": b64u(json.dumps({"SnpReport": "!!", "VcekCertChain": "AAAA"}).encode())},
     "report.SnpReport"),
    ("SevSnpVm", {"report": b64u(json.dumps({"SnpReport": b64u(bytes(100)), "VcekCertChain": "AAAA"}).encode())},
     "report"),
]


@pytest.mark.parametrize("route,body,field", MALFORMED, ids=[f"{m[0]}-{i}" for i, m in enumerate(MALFORMED)])
def test_malformed_requests_are_400_naming_the_member(services, route, body, field):
    c = services(None)
    c.clock.now = AT_TRUSTEE
    r = c.post(route, body)
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["field"] == field, problem
    assert problem["code"] == problem["error"]["code"] and problem["status"] == 400
    assert r.headers["content-type"] == "application/problem+json"


HOSTILE = [
    b'{"quote":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"quote":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    b"[1, 2]", b"null", b'"quote"', b"", b"quote=AAAA", b'{"quote": "AA\xff\xfeAA"}', b'{"quote": "\\ud800AAA"}',
    b'{"quote": "AAAA", "nonce": 1' + b"0" * 5000 + b"}", b'{"quote": "AAAA", "nonce": NaN}',
    b'{"quote": "AAAA", "runtimeData": {"data": "' + b64u(b"{" * 10_000).encode() + b'", "dataType": "JSON"}}',
    b'{"quote": "AAAA", "quote": "%%%%"}', b'{"quote": "AAAA"',
]


@pytest.mark.parametrize("route", ["SgxEnclave", "OpenEnclave", "SevSnpVm", "TdxVm"])
@pytest.mark.parametrize("raw", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_json_is_400(services, route, raw):
    c = services(None)
    r = c.client.post(f"/tenants/default/attest/{route}", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"].startswith("request.") and r.json()["field"]


def test_body_limit_and_unknown_tenant(services):
    c = services(None)
    r = c.client.post("/tenants/default/attest/TdxVm", content=b"{" + b" " * (33 * 1024 * 1024) + b"}",
                      headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = c.post("TdxVm", {"quote": "AAAA"}, tenant="nobody")
    assert (r.status_code, r.json()["code"]) == (404, "tenant.not_found")


def test_not_configured_is_503(tmp_path):
    """No trust anchors configured: refused as a service condition, never verified against nothing."""
    with ExitStack() as stack:
        c = _service(stack, tmp_path / "data", tee_nonce="optional")
        for route, field in [("SevSnpVm", "report"), ("SgxEnclave", "quote"), ("TdxVm", "quote")]:
            r = c.post(route, {field: "AAAAAAAA"})
            assert (r.status_code, r.json()["code"]) == (503, "tee.not_configured"), r.text


def test_bad_trust_configuration_fails_at_start(tmp_path):
    from attestd.service.config import ConfigError

    with pytest.raises(ConfigError) as e:
        create_app(load_settings(env={}, data_dir=tmp_path, tee_amd_roots=str(tmp_path / "missing.pem")),
                   announce=lambda m: None)
    assert e.value.code == "config.tee_anchor"
    with pytest.raises(ConfigError):
        load_settings(env={}, data_dir=tmp_path, tee_nonce="sometimes")


def test_request_schema_file_is_the_models():
    """docs/tee-request.schema.json is what the request models generate."""
    from service_helpers import ROOT

    from attestd.service.tee_routes import json_schema

    assert json.loads((ROOT / "docs" / "tee-request.schema.json").read_text()) == json_schema()


def test_token_lifetime_follows_policy(fresh):
    c, s = fresh, fresh.signer
    c.set_policy("SevSnpVm", 'version=1.1;\nconfigurationrules {\n  => issueproperty(type="report_validity_in_minutes", '
                             'value=5);\n};\nauthorizationrules { => permit(); };\n')
    try:
        r = c.post("SevSnpVm", s.request(c.challenge()))
        claims = c.claims(r.json()["token"])
        assert claims["exp"] - claims["iat"] == int(timedelta(minutes=5).total_seconds())
    finally:
        c.set_policy("SevSnpVm", None)
