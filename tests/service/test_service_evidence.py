"""The evidence document: its JSON Schema, and malformed or hostile input -> 400 naming the field."""

from __future__ import annotations

import json

import pytest
from service_helpers import ROOT

from attestd.service.evidence import TpmEvidence, json_schema

GOOD_PCRS = {"sha256": {"0": "00" * 32}}


def _ak_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


AK_PEM = _ak_pem()


def test_schema_file_is_the_models_schema():
    committed = json.loads((ROOT / "docs" / "evidence.schema.json").read_text())
    assert committed == json_schema()
    assert set(committed["required"]) == {"ak", "pcrs", "nonce"}
    assert committed["additionalProperties"] is False


def _doc(service, **over):
    nonce = service.client.post("/tenants/default/challenge").json()["nonce"]
    doc = {"ak": AK_PEM, "quote": "AAAA", "signature": "AAAA", "pcrs": GOOD_PCRS,
           "nonce": nonce}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not ...}


@pytest.mark.parametrize("over, field, code", [
    ({"quote": "!!!not base64!!!"}, "quote", "request.invalid"),
    ({"signature": "AAA"}, "signature", "request.invalid"),
    ({"ak": "%%%%"}, "ak", "request.invalid"),
    ({"pcrs": {"sha256": {"0": "00" * 20}}}, "pcrs", "request.invalid"),
    ({"pcrs": {"sha256": {"24": "00" * 32}}}, "pcrs.sha256.24.[key]", "request.invalid"),
    ({"pcrs": {"md5": {"0": "00" * 16}}}, "pcrs.md5.[key]", "request.invalid"),
    ({"pcrs": {"sha256": {"0": "zz" * 32}}}, "pcrs.sha256.0", "request.invalid"),
    ({"pcrs": {}}, "pcrs", "request.invalid"),
    ({"nonce": ...}, "nonce", "request.invalid"),
    ({"quote": ..., "signature": ...}, "quote", "request.invalid"),
    ({"signature": ...}, "signature", "request.invalid"),
    ({"quotes": [{"quote": "AAAA", "signature": "AAAA"}]}, "quotes", "request.invalid"),
    ({"extra": 1}, "extra", "request.invalid"),
    ({"eventLog": 5}, "eventLog", "request.invalid"),
    ({"runtimeData": {"data": "AAAA", "dataType": "JSON"}}, "runtimeData", "request.invalid"),
    ({"runtimeData": {"data": "AAAA", "dataType": "XML"}}, "runtimeData.dataType", "request.invalid"),
    ({"nonce": "short"}, "nonce", "nonce.malformed"),
    ({"nonce": "A" * 43}, "nonce", "nonce.malformed"),
    ({"nonce": "AQ" + "A" * 41}, "nonce", "nonce.invalid"),
    ({"ak": "AAAA"}, "ak", None),  # decodes, but is no TPMT_PUBLIC
    ({"quote": "AAAAAAAA"}, "quote", None),  # decodes, but is no TPMS_ATTEST
])
def test_malformed_evidence_is_400_naming_the_field(service, over, field, code):
    r = service.client.post("/tenants/default/attest/Tpm", json=_doc(service, **over))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["field"] == field, body
    if code is not None:
        assert body["code"] == code
    assert body["error"]["code"] == body["code"]


@pytest.mark.parametrize("payload, ctype", [
    (b"[" * 100_000, "application/json"),
    (b'{"ak": ' * 50_000, "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b'{"nonce": 1' + b"0" * 5000 + b"}", "application/json"),
    (b"not json", "text/plain"),
    (b"", "application/json"),
    (b"null", "application/json"),
    (b"[]", "application/json"),
])
def test_hostile_bodies_are_400_not_500(service, payload, ctype):
    r = service.client.post("/tenants/default/attest/Tpm", content=payload, headers={"content-type": ctype})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"]


def test_body_limit(tmp_path):
    from fastapi.testclient import TestClient

    from attestd.service import create_app, load_settings

    app = create_app(load_settings(env={}, data_dir=tmp_path, max_body_bytes=1000), announce=lambda m: None)
    with TestClient(app) as c:
        r = c.post("/tenants/default/attest/Tpm", content=b"x" * 2000, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "request.too_large"


def test_pydantic_and_schema_agree_on_pcr_lengths():
    schema = json_schema()
    for bank, size in (("sha1", 20), ("sha256", 32), ("sha384", 48)):
        assert schema["properties"]["pcrs"]["properties"][bank]["additionalProperties"]["pattern"] == \
            f"^[0-9a-fA-F]{{{2 * size}}}$"
        TpmEvidence.model_validate({"ak": "AAAA", "quote": "AAAA", "signature": "AAAA",
                                    "pcrs": {bank: {"7": "ab" * size}}, "nonce": "n"})
        with pytest.raises(ValueError):
            TpmEvidence.model_validate({"ak": "AAAA", "quote": "AAAA", "signature": "AAAA",
                                        "pcrs": {bank: {"7": "ab" * (size + 1)}}, "nonce": "n"})


def test_base64_text_is_the_schemas_pattern():
    """The validators' base64 check (bytes deleted, not a regular expression) accepts exactly the
    strings the JSON schema's pattern matches as a whole - a trailing newline, stray padding,
    non-ASCII look-alikes included."""
    import re

    from hypothesis import given
    from hypothesis import strategies as st

    from attestd.service.evidence import _b64_text, check_b64

    pattern = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
    alphabet = st.sampled_from(list("Aa09+/_-=\n =\u00e9\u0410\uff21.") + ["=="])

    @given(st.lists(alphabet, max_size=12).map("".join))
    def agree(text):
        assert _b64_text(text) == (pattern.fullmatch(text) is not None)

    agree()
    for bad in ("abcd\n", "ab=c", "abc===", "\u0410bcd", "ab cd"):
        with pytest.raises(ValueError):
            check_b64(bad)
    assert check_b64("QUJD") == 3 and check_b64("QUI=") == 2 and check_b64("QUI") == 2
