"""``attestd tee verify`` on corpus cases: verdict and claims, JSON output, one-line errors, exit codes."""

from __future__ import annotations

import base64
import json

import pytest
import typer
from typer.testing import CliRunner

from attestd.cli import tee

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def cli():
    """The tee app mounted as the lead mounts it: ``attestd tee ...``."""
    root = typer.Typer()
    root.add_typer(tee.app, name="tee")

    @root.callback()
    def _root() -> None:
        pass

    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by default
        runner = CliRunner()

    def run(*args: str):
        return runner.invoke(root, ["tee", "verify", *map(str, args)])

    return run


@pytest.fixture(scope="module")
def paths(corpus):
    g = corpus / "go-sev-guest"
    return {
        "milan": g / "ask_ark_milan_vcek.pem",
        "genoa": g / "ask_ark_genoa.pem",
        "root": corpus / "go-tdx-guest" / "intel_sgx_root_ca.pem",
    }


def one_error_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_azure_cvm_snp_pass_rich(cli, az_snp, paths):
    res = cli("--type", "azure-cvm", az_snp / "evidence-v0.json", "--ark", paths["milan"], "--at", "2025-06-01",
              "--nonce-text", "challenge")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("VERIFIED azure-cvm evidence (trustee-v0)")
    assert "x-attestd-azurevm-pcrs.sha256.0" in res.stdout
    assert "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced" in res.stdout
    assert "x-ms-isolation-tee.x-ms-sevsnpvm-vmpl" in res.stdout


@pytest.mark.parametrize("name, ark, nonce", [
    ("evidence-v1.json", "milan", b"challenge".hex()),
    ("evidence-genoa.json", "genoa", ("0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938c"
                                      "a05475f8b46094de6b64270ea35d950f")),
])
def test_azure_cvm_snp_json(cli, az_snp, paths, name, ark, nonce):
    res = cli("-t", "azure-cvm", az_snp / name, "--ark", paths[ark], "--at", "2025-06-01T00:00:00Z",
              "--nonce", nonce, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["verified"] is True and doc["type"] == "azure-cvm"
    assert doc["claims"]["x-attestd-azurevm-vtpm-nonce"] == nonce
    assert doc["claims"]["x-attestd-azurevm-vtpm-nonce-verified"] is True


def test_azure_cvm_tdx(cli, az_tdx, paths):
    res = cli("-t", "azure-cvm", az_tdx / "evidence-v1.json", "--root", paths["root"], "--at", "2025-01-01",
              "--nonce-text", "challenge", "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["claims"]["x-ms-isolation-tee"]["tdx_mrtd"].startswith("024a32b070383331")
    assert doc["tcb_status"] is None and "no collateral" in doc["notes"][0]


def test_wrong_nonce_fails_with_one_line(cli, az_snp, paths):
    res = cli("-t", "azure-cvm", az_snp / "evidence-v0.json", "--ark", paths["milan"], "--at", "2025-06-01",
              "--nonce-text", "challengf")
    assert res.exit_code == 2
    line = one_error_line(res)
    assert "quote.nonce_mismatch" in line and "field TPMS_ATTEST.extraData" in line and "offset" in line
    assert res.stdout == ""


def test_flipped_hcl_byte_fails(cli, az_snp, paths, tmp_path):
    ev = json.loads((az_snp / "evidence-v1.json").read_text())
    s = ev["hcl_report"]
    hcl = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    hcl[0x06E0] ^= 1
    ev["hcl_report"] = base64.urlsafe_b64encode(bytes(hcl)).decode()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(ev))
    res = cli("-t", "azure-cvm", bad, "--ark", paths["milan"], "--at", "2025-06-01", "--nonce-text", "challenge",
              "--json")
    assert res.exit_code == 2
    assert "azure_cvm.runtime_data_mismatch" in one_error_line(res)
    assert "offset 112" in res.stderr  # 0x20 + 0x50: REPORT_DATA inside the HCL report
    doc = json.loads(res.stdout)
    assert doc["verified"] is False and doc["error"]["code"] == "azure_cvm.runtime_data_mismatch"


def test_expired_time_fails(cli, az_snp, paths):
    res = cli("-t", "azure-cvm", az_snp / "evidence-v1.json", "--ark", paths["milan"], "--at", "2024-01-01")
    assert res.exit_code == 2 and "snp.cert_not_yet_valid" in one_error_line(res)


def test_sevsnp_raw(cli, corpus, paths):
    g = corpus / "go-sev-guest"
    res = cli("-t", "sevsnp", g / "attestation.bin", "--vcek", g / "vcek.testcer.der", "--ark", paths["milan"],
              "--at", "2022-09-25", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["claims"]["x-ms-sevsnpvm-reportdata"].startswith("0102030405")
    res = cli("-t", "sevsnp", g / "attestation.bin", "--vcek", g / "vcek.testcer.der", "--ark", paths["genoa"],
              "--at", "2022-09-25")
    assert res.exit_code == 2 and "snp.chain_invalid" in one_error_line(res)  # no Milan ASK trusted


def test_sgx_with_collateral_file(cli, corpus, paths):
    d = corpus / "dcap-qvl"
    res = cli("-t", "sgx", d / "sgx_quote", "--collateral", d / "sgx_quote_collateral.json", "--root",
              paths["root"], "--at", "2025-07-01")
    assert res.exit_code == 0, res.stderr
    assert "TCB status ConfigurationAndSWHardeningNeeded" in res.stdout
    assert "INTEL-SA-00615" in res.stdout
    res = cli("-t", "sgx", d / "sgx_quote", "--collateral", d / "sgx_quote_collateral.json", "--root",
              paths["root"], "--at", "2025-08-01")
    assert res.exit_code == 2 and "dcap.collateral_expired" in one_error_line(res)


def test_sgx_runtime_data(cli, corpus, paths):
    d = corpus / "azure-sdk-cpp"
    res = cli("-t", "sgx", d / "maa_oe_report.bin", "--runtime-data", d / "maa_runtime_data.bin", "--root",
              paths["root"], "--at", "2022-05-31T22:47:57", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["input_format"] == "openenclave-report"
    res = cli("-t", "sgx", d / "maa_oe_report.bin", "--runtime-data", d / "maa_token.jwt", "--root",
              paths["root"], "--at", "2022-05-31T22:47:57")
    assert res.exit_code == 2 and "sgx.runtime_data_mismatch" in one_error_line(res)


def test_tdx_collateral_dir(cli, corpus, paths):
    g = corpus / "go-tdx-guest"
    res = cli("-t", "tdx", g / "tdx_prod_quote_SPR_E4.dat", "--collateral", g, "--root", paths["root"],
              "--at", "2023-07-01T01:00:00Z")
    assert res.exit_code == 2 and "dcap.tcb_no_match" in one_error_line(res)
    res = cli("-t", "tdx", corpus / "trustee" / "tdx" / "tdx_quote_4.dat", "--collateral", g, "--root",
              paths["root"], "--at", "2023-07-01T01:00:00Z")
    assert res.exit_code == 0 and "TCB status UpToDate" in res.stdout


@pytest.mark.parametrize("args, code", [
    (["--at", "yesterday"], "input.time"),
    (["--nonce", "zz"], "input.hex"),
    (["--nonce", "00", "--nonce-text", "a"], "input.nonce"),
    ([], "input.trust_anchor_missing"),
])
def test_input_errors(cli, az_snp, args, code):
    res = cli("-t", "azure-cvm", az_snp / "evidence-v1.json", *args)
    assert res.exit_code == 2 and code in one_error_line(res)


def test_missing_file(cli, tmp_path, paths):
    res = cli("-t", "sevsnp", tmp_path / "nope.bin", "--ark", paths["milan"])
    assert res.exit_code == 2 and "input.not_found" in one_error_line(res)
