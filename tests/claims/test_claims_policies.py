"""Policies over claims from real logs: Azure's documented version 1.2 TPM recipe and the built-ins."""

from __future__ import annotations

import base64
import json

import pytest
from corpus_paths import FIXTURES, ROOT

from attestd.claims import build_claims, verify_eventlog, verify_tpm_evidence
from attestd.policy import builtin, compile_policy

QEMU = FIXTURES / "qemu"
RECIPE = compile_policy((ROOT / "tests" / "policy" / "data" / "tpm_v12_sample.policy").read_text())


def _claims(variant: str):
    doc = json.loads((QEMU / variant / "pcrs.json").read_text())
    pcrs = {b: {int(i): bytes.fromhex(v) for i, v in vals.items()} for b, vals in doc.items()}
    return build_claims(verify_eventlog((QEMU / variant / "binary_bios_measurements").read_bytes(), pcrs))


def _evaluate(policy, claims, **override):
    flat = claims.flat(None if policy.reads_all_claims else policy.incoming_claim_types())
    flat.update(override)
    return policy.evaluate(flat)


@pytest.mark.parametrize("variant,enabled", [("sb", True), ("sb-second", True), ("nosb", False)])
def test_azure_secure_boot_recipe_runs_unchanged_on_real_logs(variant, enabled):
    """Azure's sample: JmesPath over `events` for the EFI global SecureBoot variable == 'AQ'."""
    decision = _evaluate(RECIPE, _claims(variant), aikValidated=True)
    assert decision.permitted
    assert decision.issued_claims["SecureBootEnabled"] is enabled
    # a Linux log has no Windows trust boundary: the code integrity claim falls back to false
    assert decision.issued_claims["CodeIntegrityEnabled"] is False


def test_builtin_linux_secure_boot_on_real_boots():
    policy = builtin.load("linux-secure-boot")
    assert _evaluate(policy, _claims("sb"), aikValidated=True).permitted
    denied = _evaluate(policy, _claims("nosb"), aikValidated=True)
    assert not denied.permitted and "secureBootEnabled" in denied.explanation
    # without a validated AK nothing is permitted, whatever the log says
    assert "aikValidated" in _evaluate(policy, _claims("sb")).explanation


def test_builtin_windows_host_refuses_a_linux_host():
    decision = _evaluate(builtin.load("windows-host"), _claims("sb"), aikValidated=True)
    assert not decision.permitted


def test_a_policy_can_deny_a_kernel_parameter():
    policy = compile_policy('''version=1.2;
authorizationrules {
    [type=="kernelParameters", issuer=="AttestationService", value=="init=/bin/sh"] => deny();
    [type=="secureBootEnabled", issuer=="AttestationService", value==true] => permit();
};''')
    assert _evaluate(policy, _claims("sb")).permitted
    decision = _evaluate(policy, _claims("sb-initsh"))
    assert not decision.permitted and "init=/bin/sh" in decision.explanation


@pytest.mark.corpus
def test_azure_recipe_on_the_windows_wbcl(corpus):
    doc = json.loads((corpus / "go-attestation" / "windows_gcp_shielded_vm.json").read_text())
    b64 = base64.b64decode
    ev = verify_tpm_evidence(ak=b64(doc["AK"]["Public"]), quote=b64(doc["Quote"]["Quote"]),
                             signature=b64(doc["Quote"]["Signature"]), nonce=b"",
                             pcrs={"sha1": {p["Index"]: b64(p["Digest"]) for p in doc["Log"]["PCRs"]}},
                             eventlog=b64(doc["Log"]["Raw"]))
    decision = _evaluate(RECIPE, build_claims(ev), aikValidated=True)
    issued = decision.issued_claims
    # INDEX.md: Secure Boot on, code integrity on, BitLocker unlocks [0, 0] (no non-zero value)
    assert issued["SecureBootEnabled"] is True
    assert issued["CodeIntegrityEnabled"] is True
    assert issued["BitlockerStatus"] is False
