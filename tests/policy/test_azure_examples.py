"""The policies in Azure Attestation's documentation parse and behave as documented.

Sources (MicrosoftDocs/azure-docs, articles/attestation/): policy-examples.md, policy-version-1-0/1-1/1-2.md,
tpm-attestation-sample-policies.md, claim-rule-functions.md, claim-rule-grammar.md, author-sign-policy.md.
Where a documented sample contains a mistake (``issuer="..."`` in a condition, ``issue()`` in
authorizationrules, a misspelt function) the test checks that we reject it with a hint, then that the
corrected policy behaves as the page says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from attestd.policy import Claim, PolicyEvaluationError, PolicySyntaxError, compile_policy

DATA = Path(__file__).parent / "data"

SGX_DEFAULT_1_1 = """version= 1.1;
configurationrules{
\t=> issueproperty(type="x-ms-sgx-tcbidentifier", value="azuredefault");
};
authorizationrules{
\t=> permit();
};
issuancerules{
\tc:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);
\tc:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);
\tc:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);
\tc:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);
\tc:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);
\tc:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
};"""

SGX_CUSTOM = """version= 1.0;
authorizationrules
{
       [ type=="x-ms-sgx-is-debuggable", value==false ]
        && [ type=="x-ms-sgx-product-id", value==<product-id> ]
        && [ type=="x-ms-sgx-svn", value>= 0 ]
        && [ type=="x-ms-sgx-mrsigner", value=="<mrsigner>"]
    => permit();
};
issuancerules {
c:[type=="x-ms-sgx-mrsigner"] => issue(type="<custom-name>", value=c.value);
};"""

SGX_CLAIMS = {
    "x-ms-sgx-is-debuggable": False,
    "x-ms-sgx-mrsigner": "c0ffee",
    "x-ms-sgx-mrenclave": "beef",
    "x-ms-sgx-product-id": 1,
    "x-ms-sgx-svn": 2,
    "x-ms-attestation-type": "sgx",
}


def test_sgx_default_policy_v1_1():
    p = compile_policy(SGX_DEFAULT_1_1)
    assert p.configuration.sgx_tcb_identifier == "azuredefault"
    d = p.evaluate(SGX_CLAIMS)
    assert d.permitted
    assert dict(d.issued_claims) == {
        "is-debuggable": False,
        "sgx-mrsigner": "c0ffee",
        "sgx-mrenclave": "beef",
        "product-id": 1,
        "svn": 2,
        "tee": "sgx",
    }
    assert d.properties["x-ms-sgx-tcbidentifier"] == "azuredefault"
    # claims absent from the evidence are simply not issued
    assert dict(p.evaluate({"x-ms-sgx-svn": 9}).issued_claims) == {"svn": 9}


def test_sgx_custom_policy_placeholders_then_values():
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy(SGX_CUSTOM)
    assert "placeholder" in info.value.hint and info.value.line == 5
    p = compile_policy(
        SGX_CUSTOM.replace("<product-id>", "1")
        .replace("<mrsigner>", "c0ffee")
        .replace("<custom-name>", "signer")
    )
    d = p.evaluate(SGX_CLAIMS)
    assert d.permitted and dict(d.issued_claims) == {"signer": "c0ffee"}
    assert not p.evaluate({**SGX_CLAIMS, "x-ms-sgx-is-debuggable": True}).permitted
    assert not p.evaluate({**SGX_CLAIMS, "x-ms-sgx-svn": -1}).permitted
    assert not p.evaluate(
        {**SGX_CLAIMS, "x-ms-sgx-product-id": "1"}
    ).permitted  # a string is not the integer 1
    denied = p.evaluate({**SGX_CLAIMS, "x-ms-sgx-mrsigner": "evil"})
    assert not denied.permitted and dict(denied.issued_claims) == {}
    assert (
        '[ type=="x-ms-sgx-mrsigner", value=="c0ffee"]' in denied.explanation
        and '"evil"' in denied.explanation
    )


def test_sgx_default_policy_from_the_documented_unsigned_jwt():
    from attestd.policy.signing import parse_signed_policy

    signed = parse_signed_policy((DATA / "azure_doc_unsigned_sgx.jws").read_text(), [], allow_unsigned=True)
    p = signed.compile()
    assert p.version == "1.0"
    d = p.evaluate(
        {
            "$is-debuggable": False,
            "$sgx-mrsigner": "aa",
            "$sgx-mrenclave": "bb",
            "$product-id": 0,
            "$svn": 1,
            "$tee": "SGX",
        }
    )
    assert d.permitted
    assert dict(d.issued_claims) == {
        "is-debuggable": False,
        "sgx-mrsigner": "aa",
        "sgx-mrenclave": "bb",
        "product-id": 0,
        "svn": 1,
        "tee": "SGX",
    }
    # authorization needs the $is-debuggable claim to exist at all
    assert not p.evaluate({"$svn": 1}).permitted


TPM_1_0 = """version=1.0;

authorizationrules { 
    => permit();
};

issuancerules
{
[type=="aikValidated", value==true]&& 
[type=="secureBootEnabled", value==true] &&
[type=="bootDebuggingDisabled", value==true] && 
[type=="vbsEnabled", value==true] && 
[type=="notWinPE", value==true] && 
[type=="notSafeMode", value==true] => issue(type="PlatformAttested", value=true);
};"""

TPM_1_1 = """version=1.1;

configurationrules{
=> issueproperty(type = "required_pcr_mask", value = 15);
=> issueproperty(type = "require_valid_aik_cert", value = false);
};

authorizationrules { 
    => permit();
};


issuancerules
{
[type=="aikValidated", value==true]&& 
[type=="secureBootEnabled", value==true] &&
[type=="bootDebuggingDisabled", value==true] && 
[type=="notSafeMode", value==true] => issue(type="PlatformAttested", value=true);

[type=="aikValidated", value==false]&& 
[type=="secureBootEnabled", value==true] &&
[type=="bootDebuggingDisabled", value==true] && 
[type=="notSafeMode", value==true] => issue(type="PlatformAttested", value=false);
};"""

GOOD_HOST = {
    "aikValidated": True,
    "secureBootEnabled": True,
    "bootDebuggingDisabled": True,
    "vbsEnabled": True,
    "notWinPE": True,
    "notSafeMode": True,
}


def test_tpm_v1_0_sample():
    p = compile_policy(TPM_1_0)
    assert dict(p.evaluate(GOOD_HOST).issued_claims) == {"PlatformAttested": True}
    for flag in GOOD_HOST:
        d = p.evaluate({**GOOD_HOST, flag: False})
        assert d.permitted and "PlatformAttested" not in d.issued_claims, flag


def test_tpm_v1_1_sample_configuration():
    p = compile_policy(TPM_1_1)
    assert p.configuration.required_pcr_mask == 15 and p.configuration.required_pcrs == (0, 1, 2, 3)
    assert p.configuration.require_valid_aik_cert is False
    assert dict(p.evaluate(GOOD_HOST).issued_claims) == {"PlatformAttested": True}
    assert dict(p.evaluate({**GOOD_HOST, "aikValidated": False}).issued_claims) == {"PlatformAttested": False}
    assert dict(p.evaluate({**GOOD_HOST, "notSafeMode": False}).issued_claims) == {}


def test_configurationrules_need_version_1_1():
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy(TPM_1_1.replace("version=1.1", "version=1.0"))
    assert info.value.code == "policy.version_feature" and info.value.line == 3


# --------------------------------------------------------------------------- version 1.2 and events


def efi_var(seq: int, name: str, data: str, guid: str = "8BE4DF61-93CA-11D2-AA0D-00E098032B8C", pcr: int = 7):
    return {
        "EventSeq": seq,
        "PcrIndex": pcr,
        "EventTypeString": "EV_EFI_VARIABLE_DRIVER_CONFIG",
        "ProcessedData": {"VariableGuid": guid, "UnicodeName": name, "VariableData": data},
    }


def tag(seq: int, pcr: int, **trust):
    return {
        "EventSeq": seq,
        "PcrIndex": pcr,
        "EventTypeString": "EV_EVENT_TAG",
        "ProcessedData": {"EVENT_TRUSTBOUNDARY": trust},
    }


def windows_events(
    secure_boot: str = "AQ",
    ci: tuple = (True, True),
    elam: str | None = "\\Windows\\System32\\drivers\\wd\\WdBoot.sys",
    bitlocker: int = 2,
):
    modules = [{"EVENT_IMAGEVALIDATED": True, "EVENT_FILEPATH": elam}] if elam else []
    return {
        "Events": [
            efi_var(1, "SecureBoot", secure_boot),
            efi_var(2, "PK", "AAAA"),
            efi_var(3, "db", "BBBB", guid="D719B2CB-3D3A-4596-A3BC-DAD00E67656F"),
            tag(
                10,
                12,
                EVENT_CODEINTEGRITY=ci[0],
                EVENT_BITLOCKER_UNLOCK={"Value": bitlocker},
                EVENT_LOADEDMODULE_AGGREGATION=modules,
            ),
            tag(11, 13, EVENT_CODEINTEGRITY=ci[1]),
        ]
    }


def test_tpm_v1_2_sample_jmespath_over_events():
    p = compile_policy((DATA / "tpm_v12_sample.policy").read_text())
    d = p.evaluate({"aikValidated": True, "events": windows_events()})
    assert d.permitted
    assert dict(d.issued_claims) == {
        "aikValidated": True,
        "SecureBootEnabled": True,
        "CodeIntegrityEnabled": True,
        "BitlockerStatus": True,
        "ELAMDriverLoaded": True,
    }
    d = p.evaluate(
        {
            "aikValidated": True,
            "events": windows_events(secure_boot="AA", ci=(True, False), elam=None, bitlocker=0),
        }
    )
    # Note: the sample's ELAM query ends in "| @ != `null`", and in JMESPath an empty filter result []
    # is not null - so as documented, ELAMDriverLoaded is true whenever boolProperties exist at all.
    assert dict(d.issued_claims) == {
        "aikValidated": True,
        "SecureBootEnabled": False,
        "CodeIntegrityEnabled": False,
        "BitlockerStatus": False,
        "ELAMDriverLoaded": True,
    }
    # Without events every derived claim falls back to its ![...] default.
    d = p.evaluate({"aikValidated": False})
    assert dict(d.issued_claims) == {
        "aikValidated": False,
        "SecureBootEnabled": False,
        "CodeIntegrityEnabled": False,
        "BitlockerStatus": False,
        "ELAMDriverLoaded": False,
    }


SECURE_BOOT_RECIPE = """version=1.2;

authorizationrules { 
  => permit();
};


issuancerules
{

c:[type == "events", issuer=="AttestationService"] => add(type = "efiConfigVariables", value = JmesPath(c.value, "Events[?EventTypeString == 'EV_EFI_VARIABLE_DRIVER_CONFIG' && ProcessedData.VariableGuid == '8BE4DF61-93CA-11D2-AA0D-00E098032B8C']"));

c:[type=="efiConfigVariables", issuer="AttestationPolicy"]=> issue(type = "secureBootEnabled", value = JsonToClaimValue(JmesPath(c.value, "[?ProcessedData.UnicodeName == 'SecureBoot'] | length(@) == `1` && @[0].ProcessedData.VariableData == 'AQ'")));
![type=="secureBootEnabled", issuer=="AttestationPolicy"] => issue(type="secureBootEnabled", value=false);

};"""


def test_secure_boot_recipe_as_documented_has_a_single_equals():
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy(SECURE_BOOT_RECIPE)
    e = info.value
    assert (e.line, e.column) == (13, 38) and "did you mean '=='" in e.hint


def test_secure_boot_recipe_corrected():
    p = compile_policy(
        SECURE_BOOT_RECIPE.replace('issuer="AttestationPolicy"', 'issuer=="AttestationPolicy"')
    )
    assert dict(p.evaluate({"events": windows_events()}).issued_claims) == {"secureBootEnabled": True}
    assert dict(p.evaluate({"events": windows_events(secure_boot="AA")}).issued_claims) == {
        "secureBootEnabled": False
    }
    # two SecureBoot variables: the recipe's length(@) == `1` makes it false
    twice = windows_events()
    twice["Events"].append(efi_var(9, "SecureBoot", "AQ"))
    assert dict(p.evaluate({"events": twice}).issued_claims) == {"secureBootEnabled": False}
    assert dict(p.evaluate({}).issued_claims) == {"secureBootEnabled": False}
    # A CustomClaim "events" does not match issuer=="AttestationService"
    forged = [Claim("events", windows_events(), "CustomClaim")]
    assert dict(p.evaluate(forged).issued_claims) == {"secureBootEnabled": False}


PCR_ALLOW_LIST = """version=1.2;

authorizationrules
{    
    c:[type == "pcrs", issuer=="AttestationService"] =>  add(type="pcr0Validated", value=JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == `0`].Digests.SHA256 | @[0] =='4c833b1c361fceffd8dc0f81eec76081b71e1a0eb2193caed0b6e1c7735ec33e' ")));
    c:[type == "pcrs", issuer=="AttestationService"] =>  add(type="pcr1Validated", value=JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == `1`].Digests.SHA256 | @[0] =='8c25e3be6ad6f5bd33c9ae40d5d5461e88c1a7366df0c9ee5c7e5ff40d3d1d0e' ")));
    c:[type == "pcrs", issuer=="AttestationService"] =>  add(type="pcr2Validated", value=JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == `2`].Digests.SHA256 | @[0] =='3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969' ")));
    c:[type == "pcrs", issuer=="AttestationService"] =>  add(type="pcr3Validated", value=JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == `3`].Digests.SHA256 | @[0] =='3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969' ")));
    
    [type=="pcr0Validated", value==true] &&
    [type=="pcr1Validated", value==true] &&
    [type=="pcr2Validated", value==true] &&
    [type=="pcr3Validated", value==true] => permit();
};

issuancerules
{
};"""

GOLDEN = [
    "4c833b1c361fceffd8dc0f81eec76081b71e1a0eb2193caed0b6e1c7735ec33e",
    "8c25e3be6ad6f5bd33c9ae40d5d5461e88c1a7366df0c9ee5c7e5ff40d3d1d0e",
    "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
    "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
]


def pcrs(values):
    return {"PCRs": [{"Index": i, "Digests": {"SHA256": v}} for i, v in enumerate(values)]}


def test_pcr_allow_list():
    p = compile_policy(PCR_ALLOW_LIST)
    assert p.evaluate({"pcrs": pcrs(GOLDEN)}).permitted
    tampered = GOLDEN[:1] + ["00" * 32] + GOLDEN[2:]
    d = p.evaluate({"pcrs": pcrs(tampered)})
    assert not d.permitted
    assert '[type=="pcr1Validated", value==true]; saw false (AttestationPolicy)' in d.explanation
    assert not p.evaluate({"pcrs": pcrs(GOLDEN[:3])}).permitted  # PCR 3 missing: @[0] is null != digest


def test_pcr_values_are_read_only():
    # "PCRs are read-only and thus cannot be used with issue operation" (policy-version-1-2.md)
    p = compile_policy(
        "version=1.2; authorizationrules { => permit(); }; issuancerules {\n"
        ' c:[type=="pcrs", issuer=="AttestationService"] => issue(type="pcr0", '
        'value=JmesPath(c.value, "PCRs[0].Digests.SHA256"));\n};'
    )
    with pytest.raises(PolicyEvaluationError) as info:
        p.evaluate({"pcrs": pcrs(GOLDEN)})
    assert info.value.code == "policy.read_only_claim" and info.value.line == 2
    # ...but a claim *compared* with a PCR value may be issued: the documented PCR-match rule
    p = compile_policy(
        "version=1.2; authorizationrules { => permit(); }; issuancerules {\n"
        'c:[type == "pcrs", issuer=="AttestationService"] && c1:[type=="pcrMatchesExpectedValue", '
        'value==JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == `0`].Digests.SHA256 | @[0] == '
        f"'{GOLDEN[0]}'\"))] => issue(claim = c1);\n}};"
    )
    assert dict(
        p.evaluate(
            [Claim("pcrs", pcrs(GOLDEN)), Claim("pcrMatchesExpectedValue", True, "CustomClaim")]
        ).issued_claims
    ) == {"pcrMatchesExpectedValue": True}
    assert (
        dict(
            p.evaluate(
                [Claim("pcrs", pcrs(GOLDEN)), Claim("pcrMatchesExpectedValue", False, "CustomClaim")]
            ).issued_claims
        )
        == {}
    )


SYSTEM_GUARD = """version = 1.2;

authorizationrules
{
    => permit();
};

issuancerules
{
    c:[type=="events", issuer=="AttestationService"] => add(type="validDrtmStateAuthEvent", value=JmesPath(c.value, "Events[? EventTypeString == 'EV_EVENT_TAG' && PcrIndex == `20` && ProcessedData.EVENT_TRUSTBOUNDARY.EVENT_DRTM_STATE_AUTH.SignatureValid != `null`] | length(@) == `1` && @[0] | @.{EventSeq:EventSeq, SignatureValid:ProcessedData.EVENT_TRUSTBOUNDARY.EVENT_DRTM_STATE_AUTH.SignatureValid}"));
    c:[type=="validDrtmStateAuthEvent", issuer=="AttestationPolicy"] => issue(type="drtmMleValid", value=JsonToClaimValue(JmesPath(c.value, "SignatureValid")));
    ![type=="drtmMleValid", issuer=="AttestationPolicy"] => issue(type="drtmMleValid", value=false);
    [type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] &&
    c:[type=="validDrtmStateAuthEvent", issuer=="AttestationPolicy"] => add(type="validDrtmStateAuthEventSeq", value=JmesPath(c.value, "EventSeq"));
    [type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] &&
    c:[type=="validDrtmStateAuthEventSeq", issuer=="AttestationPolicy"] => add(type="smmQuery", value=AppendString(AppendString("Events[? EventTypeString == 'EV_EVENT_TAG' && PcrIndex == `20` && EventSeq < `", c.value), "`].ProcessedData.EVENT_DRTM_SMM | length(@) == `1` && @[0] | @.Value"));
    [type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] &&
    c1:[type=="smmQuery", issuer=="AttestationPolicy"] &&
    c2:[type=="events", issuer=="AttestationService"] => issue(type="smmLevel", value=JsonToClaimValue(JmesPath(c2.value, c1.value)));
};"""


def drtm_events(signature_valid=True, smm_level=3):
    return {
        "Events": [
            {
                "EventSeq": 40,
                "PcrIndex": 20,
                "EventTypeString": "EV_EVENT_TAG",
                "ProcessedData": {"EVENT_DRTM_SMM": {"Value": smm_level}},
            },
            tag(41, 20, EVENT_DRTM_STATE_AUTH={"SignatureValid": signature_valid}),
        ]
    }


def test_system_guard_sample_builds_a_query_with_appendstring():
    p = compile_policy(SYSTEM_GUARD)
    d = p.evaluate({"events": drtm_events()})
    assert dict(d.issued_claims) == {"drtmMleValid": True, "smmLevel": 3}
    extract = next(t for t in d.trace if 'c1:[type=="smmQuery"' in t.source)
    query = extract.conditions[1].seen[0][1]
    assert query.startswith(
        "Events[? EventTypeString == 'EV_EVENT_TAG' && PcrIndex == `20` && EventSeq < `41`]"
    )
    assert dict(p.evaluate({"events": drtm_events(signature_valid=False)}).issued_claims) == {
        "drtmMleValid": False
    }
    assert dict(p.evaluate({"events": {"Events": []}}).issued_claims) == {"drtmMleValid": False}


def test_vbs_enclave_sample():
    p = compile_policy("""version=1.2;
authorizationrules { 
    [type=="vsmReportPresent", value==true] &&
    [type=="enclaveAuthorId", value=="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] &&
    [type=="enclaveImageId", value=="AQEAAAAAAAAAAAAAAAAAAA"] &&
    [type=="enclaveSvn", value>=0] =>  permit();
};
issuancerules
{
};""")
    good = {
        "vsmReportPresent": True,
        "enclaveAuthorId": "A" * 43,
        "enclaveImageId": "AQEAAAAAAAAAAAAAAAAAAA",
        "enclaveSvn": 0,
    }
    assert p.evaluate(good).permitted
    assert not p.evaluate({**good, "enclaveSvn": -1}).permitted
    assert not p.evaluate({**good, "enclaveSvn": "5"}).permitted  # ordering compares integers only
    assert not p.evaluate({**good, "enclaveImageId": "x"}).permitted


def test_issue_all_incoming_claims_sample():
    p = compile_policy("""version = 1.2;
configurationrules
{
};
authorizationrules
{
    => permit();
};
issuancerules
{
   c:[type=="bootEvents", issuer=="AttestationService"] => issue(type="outputBootEvents", value=c.value);
   c:[type=="events", issuer=="AttestationService"] => issue(type="outputEvents", value=c.value);
};""")
    events = windows_events()
    assert dict(p.evaluate({"events": events}).issued_claims) == {"outputEvents": events}


KEY_ATTESTATION = """version=1.2;

authorizationrules
{
	c:[type=="x-ms-tpm-request-key", issuer=="AttestationService"] => add(type="requestKeyType", value=JsonToClaimValue(JmesPath(c.value, "jwk.kty")));
    c:[type=="requestKeyType", issuer=="AttestationPolicy", value=="RSA"] => issue(type="requestKeyType", value="RSA");
    c:[type=="x-ms-tpm-request-key", issuer=="AttestationService"] => add(type="requestKeyCertify", value=JmesPath(c.value, "info.tpm_certify"));
    c:[type=="requestKeyCertify", issuer=="AttestationPolicy"] => add(type="requestKeyCertifyObjAttr", value=JsonToClaimValue(JmesPath(c.value, "obj_attr")));
    c:[type=="requestKeyCertifyObjAttr", issuer=="AttestationPolicy", value==50] => issue(type="requestKeyCertifyObjAttrVerified", value=true);
    c:[type=="requestKeyCertifyObjAttrVerified", issuer=="AttestationPolicy" , value==true] => permit();
};

issuancerules
{
    
};"""


def test_key_attestation_sample_issue_in_authorizationrules_is_rejected_then_fixed():
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy(KEY_ATTESTATION)
    assert info.value.code == "policy.action_not_allowed" and info.value.line == 6
    assert "use add() here" in info.value.hint
    p = compile_policy(KEY_ATTESTATION.replace("=> issue(", "=> add("))
    key = {"jwk": {"kty": "RSA"}, "info": {"tpm_certify": {"obj_attr": 50}}}
    assert p.evaluate({"x-ms-tpm-request-key": key}).permitted
    assert not p.evaluate(
        {"x-ms-tpm-request-key": {**key, "info": {"tpm_certify": {"obj_attr": 0x72}}}}
    ).permitted


# --------------------------------------------------------------------------- claim-rule-functions.md


def run12(rules: str, claims) -> list[tuple[str, object]]:
    """Evaluate issuance rules; return the claims they added (type, value) in order."""
    p = compile_policy(f"version=1.2; authorizationrules {{ => permit(); }}; issuancerules {{\n{rules}\n}};")
    d = p.evaluate(claims)
    out = []
    for t in d.trace:
        if t.section == "issuancerules" and t.matched and t.action and "(nothing" not in t.action:
            out.append(t.action)
    return out


def added(rules: str, claims, claim_type: str) -> list:
    p = compile_policy(
        f"version=1.2; authorizationrules {{ => permit(); }}; issuancerules {{\n{rules}\n"
        f'c:[type=="{claim_type}"] => issue(type="out", value=c.value);\n}};'
    )
    v = p.evaluate(claims).issued_claims.get("out")
    return [] if v is None else v if isinstance(v, list) else [v]


def test_jmespath_literal_arguments():
    assert added(
        '=>add(type="JmesPathResult", value=JmesPath("{\\"foo\\": \\"bar\\"}", "foo"));', {}, "JmesPathResult"
    ) == ['"bar"']


def test_jmespath_arguments_from_claims():
    rules = (
        'c1:[type=="JsonData"] && c2:[type=="JmesPathQuery"] =>\n'
        'add(type="JmesPathResult", value=JmesPath(c1.value, c2.value));'
    )
    assert added(
        rules, {"JsonData": '{"values": [0,1,2,3,4]}', "JmesPathQuery": "values[2]"}, "JmesPathResult"
    ) == ["2"]


def test_json_to_claim_value_scalars_arrays_null():
    rules = (
        'c:[type=="JsonIntegerData"] => add(type="IntegerResult", value=JsonToClaimValue(c.value));\n'
        'c:[type=="JsonBooleanData"] => add(type="BooleanResult", value=JsonToClaimValue(c.value));\n'
        'c:[type=="JsonStringData"] => add(type="StringResult", value=JsonToClaimValue(c.value));'
    )
    claims = {"JsonIntegerData": "100", "JsonBooleanData": "true", "JsonStringData": '"abc"'}
    assert added(rules, claims, "IntegerResult") == [100]
    assert added(rules, claims, "BooleanResult") == [True]
    assert added(rules, claims, "StringResult") == ["abc"]
    rule = 'c:[type=="JsonData"] => add(type="Result", value=JsonToClaimValue(c.value));'
    assert added(rule, {"JsonData": '[0, "abc", true]'}, "Result") == [0, "abc", True]
    assert added(rule, {"JsonData": "null"}, "Result") == []  # an empty claim: no-op
    for bad, code in (
        ('{"a": 1}', "policy.function_error"),
        ("1.5", "policy.function_error"),
        ("[[1]]", "policy.function_error"),
        ("not json", "policy.function_error"),
    ):
        with pytest.raises(PolicyEvaluationError) as info:
            added(rule, {"JsonData": bad}, "Result")
        assert info.value.code == code and info.value.line == 2


def test_is_subset_of():
    rule = 'c1:[type == "Subset"] && c2:[type=="Superset"] => add(type="IsSubset", value=IsSubsetOf(c1.value, c2.value));'
    claims = [
        Claim("Subset", "abc"),
        Claim("Subset", 100),
        Claim("Superset", True),
        Claim("Superset", "abc"),
        Claim("Superset", 100),
    ]
    assert added(rule, claims, "IsSubset") == [True]
    assert added(rule, claims + [Claim("Subset", False)], "IsSubset") == [False]
    assert added(rule, [Claim("Subset", 1), Claim("Superset", True)], "IsSubset") == [False]  # 1 is not true


def test_append_string_and_the_documented_typo():
    documented = 'c:[type=="String1"] && c2:[type=="String2"] => add(type="Result", value=AppendString(c1.value, c2.value));'
    with pytest.raises(PolicySyntaxError) as info:
        run12(documented, {})
    assert info.value.code == "policy.unbound_identifier" and "did you mean c" in info.value.hint
    fixed = documented.replace("c:[", "c1:[")
    assert added(fixed, {"String1": "abc", "String2": "xyz"}, "Result") == ["abcxyz"]
    with pytest.raises(PolicyEvaluationError) as e:
        added(fixed, {"String1": "abc", "String2": 5}, "Result")
    assert e.value.code == "policy.type_error"


def test_negate_bool_and_the_documented_typo():
    documented = 'c:[type=="Input"] => add(type="Result", value=NegateBol(c.value));'
    with pytest.raises(PolicySyntaxError) as info:
        run12(documented, {})
    assert info.value.code == "policy.unknown_function" and info.value.hint == "did you mean NegateBool?"
    assert (info.value.line, info.value.column) == (2, 47)
    assert added(documented.replace("NegateBol", "NegateBool"), {"Input": True}, "Result") == [False]


def test_contains_only_value_and_the_documented_arity_mistake():
    documented = 'c:[type=="Set"] => add(type="Result", value=ContainsOnlyValue(100));'
    with pytest.raises(PolicySyntaxError) as info:
        run12(documented, {})
    assert info.value.code == "policy.arity"
    fixed = documented.replace("ContainsOnlyValue(100)", "ContainsOnlyValue(c.value, 100)")
    assert added(fixed, [Claim("Set", 100), Claim("Set", 101)], "Result") == [False]
    assert added(fixed, [Claim("Set", 100), Claim("Set", 100)], "Result") == [True]
    assert added(fixed, [Claim("Other", 100)], "Result") == []  # rule does not fire without a Set claim


def test_not_condition_operator():
    rule = '![type=="Claim3"] => add(type="Claim3", value=300);'
    assert added(rule, {"Claim1": 100, "Claim2": 200}, "Claim3") == [300]
    assert added(rule, {"Claim3": 1}, "Claim3") == [1]


def test_functions_need_version_1_2():
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy('version=1.1; authorizationrules { => add(type="x", value=NegateBool(true)); };')
    assert info.value.code == "policy.version_feature" and "version=1.2" in info.value.hint
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy('version=1.0; authorizationrules { ![type=="x"] => permit(); };')
    assert info.value.code == "policy.version_feature"


# --------------------------------------------------------------------------- claim-rule-grammar.md


def test_claim_rule_grammar_identifier_examples():
    p = compile_policy("""version=1.0;
authorizationrules { => permit(); };
issuancerules {
F1:[type=="OSName" , issuer=="CustomClaim"] && 
[type=="OSName" , issuer=="AttestationService", value== F1.value ] 
=> issueproperty(type="report_validity_in_minutes", value=1440);

F1:[type=="OSName" , issuer=="CustomClaim"] && 
C2:[type=="OSName" , issuer=="AttestationService", value== F1.value ] 
=> issue(claim = C2);
};""")
    same = [Claim("OSName", "Windows", "CustomClaim"), Claim("OSName", "Windows")]
    d = p.evaluate(same)
    assert dict(d.issued_claims) == {"OSName": "Windows"}
    assert d.properties["report_validity_in_minutes"] == 1440
    d = p.evaluate([Claim("OSName", "Linux", "CustomClaim"), Claim("OSName", "Windows")])
    assert dict(d.issued_claims) == {} and "report_validity_in_minutes" not in d.properties


# --------------------------------------------------------------------------- author-sign-policy.md


def test_author_sign_policy_samples():
    documented = """version=1.0;
authorizationrules
{
   c:[type="secureBootEnables", issuer=="AttestationService"]=> permit()
};

issuancerules
{
  c:[type="secureBootEnables", issuer=="AttestationService"]=> issue(claim=c)
  c:[type="notSafeMode", issuer=="AttestationService"]=> issue(claim=c)
};"""
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy(documented)
    assert info.value.line == 4 and "==" in info.value.hint
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy(documented.replace('type="', 'type=="'))
    assert info.value.line == 5 and "missing ';' at the end of the rule" in info.value.hint
    fixed = documented.replace('type="', 'type=="').replace(")\n", ");\n")
    p = compile_policy(fixed)
    d = p.evaluate({"secureBootEnables": True, "notSafeMode": True})
    assert d.permitted and dict(d.issued_claims) == {"secureBootEnables": True, "notSafeMode": True}
    assert not p.evaluate({"notSafeMode": True}).permitted

    deny_all = compile_policy("version=1.0;\nauthorizationrules\n{\n=>deny();\n};\n\nissuancerules\n{\n};")
    assert not deny_all.evaluate({"secureBootEnabled": True}).permitted
    p = compile_policy(
        'version=1.0;\nauthorizationrules\n{\n[type=="secureBootEnabled", value==true, '
        'issuer=="AttestationService"]=>permit();\n};\n\nissuancerules\n{\n'
        '=> issue(type="SecurityLevelValue", value=100);\n};'
    )
    assert dict(p.evaluate({"secureBootEnabled": True}).issued_claims) == {"SecurityLevelValue": 100}
    assert not p.evaluate([Claim("secureBootEnabled", True, "CustomClaim")]).permitted


def test_missing_type_keyword_from_the_1_2_sample():
    # policy-version-1-2.md ends with: => issue("PlatformAttested", value=true);
    with pytest.raises(PolicySyntaxError) as info:
        compile_policy(
            "version=1.2; authorizationrules { => permit(); }; issuancerules {\n"
            '[type=="secureBootEnabled", value==true] => issue("PlatformAttested", value=true);\n};'
        )
    assert (
        info.value.code == "policy.arguments"
        and info.value.hint == 'arguments are named: did you mean type="PlatformAttested"?'
    )
