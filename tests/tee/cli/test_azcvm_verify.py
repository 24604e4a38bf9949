"""Azure confidential VMs: HCL report + SNP report / TD quote + vTPM quote (trustee corpus, read in place)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

import pytest
from teecli_times import AT_AZ_SNP, AT_AZ_SNP_2024, AT_AZ_TDX

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.azure_cvm import (
    VerifiedAzureCvm,
    hcl_ak_public,
    parse_azure_cvm_evidence,
    parse_td_report,
    verify_azure_cvm,
)
from attestd.tee.azure_hcl import parse_hcl_report
from attestd.tpm import verify_quote

pytestmark = pytest.mark.corpus

# (file, nonce, UPSTREAM tpm.pcr00 from trustee/expected.json, SNP TCB)
SNP_CASES = [
    ("evidence-v0.json", b"challenge", "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced", (4, 0, 24, 219)),
    ("evidence-v1.json", b"challenge", "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced", (4, 0, 24, 219)),
    (
        "evidence-v2.json",
        bytes.fromhex("982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9a"
                      "a398f647caa2338748cd0fd9f5f819ef"),
        "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7",
        (4, 0, 24, 219),
    ),
    (
        "evidence-genoa.json",
        bytes.fromhex("0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938c"
                      "a05475f8b46094de6b64270ea35d950f"),
        "afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338",
        (10, 0, 23, 84),
    ),
]


def snp_kwargs(anchors):
    return {"trusted_arks": anchors.amd_arks, "amd_chain": anchors.amd_intermediates}


@pytest.mark.parametrize("name, nonce, pcr0, tcb", SNP_CASES)
def test_snp_cvm_evidence_verifies(az_snp, anchors, name, nonce, pcr0, tcb):
    raw = (az_snp / name).read_bytes()
    r = verify_azure_cvm(raw, at=AT_AZ_SNP, nonce=nonce, **snp_kwargs(anchors))
    c = r.claims
    assert r.tee == "sevsnpvm" and r.nonce_verified and r.snp is not None and r.tdx is None
    assert c["x-ms-attestation-type"] == "azurevm"
    assert c["x-attestd-azurevm-pcrs"]["sha256"]["0"] == pcr0
    assert len(c["x-attestd-azurevm-pcrs"]["sha256"]) == 24
    assert c["x-attestd-azurevm-vtpm-nonce"] == nonce.hex()
    tee = c["x-ms-isolation-tee"]
    assert tee["x-ms-attestation-type"] == "sevsnpvm" and tee["x-ms-sevsnpvm-vmpl"] == 0
    assert (tee["x-ms-sevsnpvm-bootloader-svn"], tee["x-ms-sevsnpvm-tee-svn"], tee["x-ms-sevsnpvm-snpfw-svn"],
            tee["x-ms-sevsnpvm-microcode-svn"]) == tcb
    # REPORT_DATA = SHA-256(variable data) || 0^32, and the runtime claim is that variable data
    assert tee["x-ms-sevsnpvm-reportdata"] == hashlib.sha256(r.hcl.variable_data).hexdigest() + "00" * 32
    assert tee["x-ms-runtime"] == json.loads(r.hcl.variable_data)
    assert tee["x-ms-runtime"]["keys"][0]["kid"] == "HCLAkPub"
    assert c["x-ms-azurevm-vmid"] == tee["x-ms-runtime"]["vm-configuration"]["vmUniqueId"]
    # the AK the claims name is the one in the HCL report
    ak = hcl_ak_public(r.hcl)
    from cryptography.hazmat.primitives import serialization

    spki = ak.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert c["x-attestd-azurevm-ak-sha256"] == hashlib.sha256(spki).hexdigest()


def test_v2_user_data_carries_the_nonce(az_snp, anchors):
    """UPSTREAM: v2's HCL user-data is the nonce in upper-case hex followed by 16 zero bytes."""
    nonce = SNP_CASES[2][1]
    r = verify_azure_cvm((az_snp / "evidence-v2.json").read_bytes(), at=AT_AZ_SNP, nonce=nonce,
                         **snp_kwargs(anchors))
    assert r.claims["x-ms-isolation-tee"]["x-ms-runtime"]["user-data"] == nonce.hex().upper() + "00" * 16


def _evidence_from_files(d: Path, **extra) -> dict:
    quote = json.loads((d / "tpm-quote-v1.json").read_text())
    return {"hcl_report": list((d / "hcl-report.bin").read_bytes()), "tpm_quote": quote, **extra}


def test_separate_snp_files(az_snp, anchors):
    """hcl-report.bin + tpm-quote-v1.json + vcek.pem (VCEK, ASK, ARK bundle), assembled in memory."""
    ev = _evidence_from_files(az_snp, vcek=(az_snp / "vcek.pem").read_text())
    r = verify_azure_cvm(ev, at=AT_AZ_SNP_2024, nonce=b"challenge", trusted_arks=anchors.amd_arks)
    assert r.claims["x-ms-isolation-tee"]["x-ms-sevsnpvm-reportdata"][:64] == (
        "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac")
    # "reversed" nonce must fail (upstream test_verify_quote_nonce_failure)
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm(ev, at=AT_AZ_SNP_2024, nonce=b"egnellahc", trusted_arks=anchors.amd_arks)
    assert e.value.code == "quote.nonce_mismatch" and e.value.field == "TPMS_ATTEST.extraData"


def test_tdx_cvm_evidence_verifies(az_tdx, anchors):
    r = verify_azure_cvm((az_tdx / "evidence-v1.json").read_bytes(), at=AT_AZ_TDX, nonce=b"challenge",
                         intel_root=anchors.intel_root)
    tee = r.claims["x-ms-isolation-tee"]
    assert r.tee == "tdxvm" and r.tdx is not None and r.tdx.tcb is None  # no collateral for this FMSPC
    assert tee["tdx_mrtd"] == ("024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795"
                               "d1737b66205949d15469dc8c1ba7ab7b")
    assert all(tee[f"tdx_rtmr{i}"] == "00" * 48 for i in range(4))
    assert tee["tdx_report_data"][:64] == "9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839"
    assert r.claims["x-attestd-azurevm-pcrs"]["sha256"]["0"] == (
        "782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273")
    # the same evidence from the separate files
    ev = _evidence_from_files(az_tdx, td_quote=base64.b64encode((az_tdx / "td-quote.bin").read_bytes()).decode())
    r2 = verify_azure_cvm(ev, at=AT_AZ_TDX, nonce=b"challenge", intel_root=anchors.intel_root)
    assert r2.claims["x-ms-isolation-tee"] == tee


def test_td_report_parse(az_tdx):
    td = parse_td_report(parse_hcl_report((az_tdx / "hcl-report.bin").read_bytes()).hw_report)
    assert td.report_type == 0x81
    assert td.report_data[:32] == hashlib.sha256(
        parse_hcl_report((az_tdx / "hcl-report.bin").read_bytes()).variable_data).digest()
    with pytest.raises(EvidenceError) as e:
        parse_td_report(bytes(1024))
    assert e.value.code == "td.report_type"


# -- failures --------------------------------------------------------------------------------------


def _v1(az_snp) -> dict:
    return json.loads((az_snp / "evidence-v1.json").read_text())


def _b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _hcl(ev: dict) -> bytearray:
    s = ev["hcl_report"]
    return bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))


def _with_hcl(ev: dict, hcl: bytes) -> dict:
    return {**ev, "hcl_report": _b64u(bytes(hcl))}


@pytest.mark.parametrize(
    "offset, value, cls, code, field",
    [
        # upstream mutation: variable data -> "HCL variable data digest doesn't match SNP report data"
        (0x06E0, "+1", VerificationError, "azure_cvm.runtime_data_mismatch", "ATTESTATION_REPORT.REPORT_DATA"),
        # upstream mutation: SNP reported TCB byte -> "SNP version mismatch"
        (0x01A6, 0, VerificationError, "snp.tcb_mismatch", "ATTESTATION_REPORT.REPORTED_TCB"),
        # upstream mutation: AK JWK -> "Failed to get AKpub" (a NUL inside the JSON string)
        (0x0540, 0, EvidenceError, "azure_cvm.runtime_data_malformed", "IGVM_REQUEST_DATA.variable_data"),
        # one character of the AK modulus: still JSON, but no longer the key the SNP report vouches for
        (0x0540, "+1", VerificationError, "azure_cvm.runtime_data_mismatch", "ATTESTATION_REPORT.REPORT_DATA"),
        # MEASUREMENT, inside the signed part of the SNP report
        (0x20 + 0x90, "+1", VerificationError, "snp.signature_invalid", "ATTESTATION_REPORT.SIGNATURE"),
        # the HCL header
        (0x0000, "+1", EvidenceError, "hcl.bad_signature", "ATTESTATION_HEADER.signature"),
    ],
)
def test_flipped_hcl_byte(az_snp, anchors, offset, value, cls, code, field):
    ev = _v1(az_snp)
    hcl = _hcl(ev)
    hcl[offset] = (hcl[offset] + 1) % 256 if value == "+1" else value
    with pytest.raises(cls) as e:
        verify_azure_cvm(_with_hcl(ev, hcl), at=AT_AZ_SNP, nonce=b"challenge", **snp_kwargs(anchors))
    assert (e.value.code, e.value.field) == (code, field)


def test_every_variable_data_byte_is_bound(az_snp, anchors):
    """Any change in the runtime data (which carries the AK) breaks the binding to the SNP report."""
    ev = _v1(az_snp)
    hcl = _hcl(ev)
    (size,) = struct.unpack_from("<I", hcl, 0x4D0)
    for offset in range(0x4D4, 0x4D4 + size, 97):
        bad = bytearray(hcl)
        bad[offset] ^= 0x01
        with pytest.raises((VerificationError, EvidenceError)) as e:
            verify_azure_cvm(_with_hcl(ev, bad), at=AT_AZ_SNP, nonce=b"challenge", **snp_kwargs(anchors))
        assert e.value.code in ("azure_cvm.runtime_data_mismatch", "azure_cvm.runtime_data_malformed",
                                "azure_cvm.ak_malformed", "azure_cvm.ak_missing")


def test_ak_swapped_for_ek_is_caught(az_snp, anchors):
    """Rewrite the variable data so that 'HCLAkPub' is the EK: the report data no longer matches."""
    ev = _v1(az_snp)
    hcl = _hcl(ev)
    (size,) = struct.unpack_from("<I", hcl, 0x4D0)
    doc = json.loads(hcl[0x4D4:0x4D4 + size])
    ak, ek = doc["keys"][0], doc["keys"][1]
    doc["keys"] = [{**ek, "kid": "HCLAkPub"}, {**ak, "kid": "HCLEkPub"}]
    var = json.dumps(doc, separators=(",", ":")).encode()
    new = bytearray(hcl[:0x4C0])
    new += struct.pack("<I", 20 + len(var)) + hcl[0x4C4:0x4D0] + struct.pack("<I", len(var)) + var
    struct.pack_into("<I", new, 8, len(new))  # report_size
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm(_with_hcl(ev, new), at=AT_AZ_SNP, nonce=b"challenge", **snp_kwargs(anchors))
    assert e.value.code == "azure_cvm.runtime_data_mismatch"


def test_wrong_ak(az_snp):
    """The v2 VM's AK does not verify the v1 VM's quote."""
    v1, v2 = _v1(az_snp), json.loads((az_snp / "evidence-v2.json").read_text())
    other_ak = hcl_ak_public(parse_hcl_report(_hcl(v2)))
    from attestd.tpm import TPM_ALG, Signature

    q = v1["tpm_quote"]
    sig = Signature(TPM_ALG.RSASSA, TPM_ALG.SHA256, rsa_sig=bytes.fromhex(q["signature"]))
    verify_quote(hcl_ak_public(parse_hcl_report(_hcl(v1))), bytes.fromhex(q["message"]), sig, nonce=b"challenge")
    with pytest.raises(VerificationError) as e:
        verify_quote(other_ak, bytes.fromhex(q["message"]), sig, nonce=b"challenge")
    assert e.value.code == "quote.signature_invalid"


def test_quote_from_another_evidence(az_snp, az_tdx, anchors):
    v1, v2 = _v1(az_snp), json.loads((az_snp / "evidence-v2.json").read_text())
    mixed = {**v1, "tpm_quote": v2["tpm_quote"]}
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm(mixed, at=AT_AZ_SNP, nonce=SNP_CASES[2][1], **snp_kwargs(anchors))
    assert e.value.code == "quote.signature_invalid"
    tdx = json.loads((az_tdx / "evidence-v1.json").read_text())
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm({**tdx, "tpm_quote": v1["tpm_quote"]}, at=AT_AZ_TDX, nonce=b"challenge",
                         intel_root=anchors.intel_root)
    assert e.value.code == "quote.signature_invalid"


def test_wrong_nonce_and_pcr(az_snp, anchors):
    ev = _v1(az_snp)
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm(ev, at=AT_AZ_SNP, nonce=b"challengf", **snp_kwargs(anchors))
    assert e.value.code == "quote.nonce_mismatch"
    pcrs = list(ev["tpm_quote"]["pcrs"])
    pcrs[7] = ("0" if pcrs[7][0] != "0" else "1") + pcrs[7][1:]
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm({**ev, "tpm_quote": {**ev["tpm_quote"], "pcrs": pcrs}}, at=AT_AZ_SNP,
                         nonce=b"challenge", **snp_kwargs(anchors))
    assert e.value.code == "quote.pcr_digest_mismatch"


def test_without_nonce_the_claims_say_so(az_snp, anchors):
    r = verify_azure_cvm(_v1(az_snp), at=AT_AZ_SNP, **snp_kwargs(anchors))
    assert not r.nonce_verified and r.claims["x-attestd-azurevm-vtpm-nonce-verified"] is False
    assert r.claims["x-attestd-azurevm-vtpm-nonce"] == b"challenge".hex()


def test_tdx_failures(az_tdx, anchors):
    ev = json.loads((az_tdx / "evidence-v1.json").read_text())
    hcl = _hcl(ev)
    # upstream: hcl[0x0880] += 1 -> "TDX Quote report data mismatch"
    bad = bytearray(hcl)
    bad[0x0880] = (bad[0x0880] + 1) % 256
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm(_with_hcl(ev, bad), at=AT_AZ_TDX, nonce=b"challenge", intel_root=anchors.intel_root)
    assert (e.value.code, e.value.field) == ("azure_cvm.runtime_data_mismatch", "TDREPORT.report_data")
    # the TDREPORT in the HCL must be the one the quote signs
    bad = bytearray(hcl)
    bad[0x20 + 528] ^= 0x80  # TDINFO.MRTD
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm(_with_hcl(ev, bad), at=AT_AZ_TDX, nonce=b"challenge", intel_root=anchors.intel_root)
    assert (e.value.code, e.value.field, e.value.offset) == ("azure_cvm.tdreport_mismatch", "TDREPORT.mr_td",
                                                            0x20 + 528)
    # a TD quote byte inside the signed body
    tdq = bytearray(base64.urlsafe_b64decode(ev["td_quote"] + "=" * (-len(ev["td_quote"]) % 4)))
    tdq[48 + 136] ^= 1  # body.mr_td
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm({**ev, "td_quote": _b64u(bytes(tdq))}, at=AT_AZ_TDX, nonce=b"challenge",
                         intel_root=anchors.intel_root)
    assert e.value.code == "tdx.quote_signature_invalid"
    with pytest.raises(EvidenceError) as e:
        verify_azure_cvm({k: v for k, v in ev.items() if k != "td_quote"}, at=AT_AZ_TDX,
                         intel_root=anchors.intel_root)
    assert e.value.code == "azure_cvm.td_quote_missing"


def test_trust_anchors_and_time(az_snp, anchors, corpus):
    genoa = (az_snp / "evidence-genoa.json").read_bytes()
    milan_only = [a for a in anchors.amd_arks if "Milan" in a.subject.rfc4514_string()]
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm(genoa, at=AT_AZ_SNP, trusted_arks=milan_only, amd_chain=anchors.amd_intermediates)
    assert e.value.code == "snp.untrusted_root"
    with pytest.raises(VerificationError) as e:
        verify_azure_cvm(_v1(az_snp), at=AT_AZ_SNP_2024, nonce=b"challenge", **snp_kwargs(anchors))
    assert e.value.code == "snp.cert_not_yet_valid"
    with pytest.raises(EvidenceError) as e:
        verify_azure_cvm(_v1(az_snp), at=AT_AZ_SNP, nonce=b"challenge")
    assert e.value.code == "azure_cvm.trust_anchor_missing"


@pytest.mark.parametrize(
    "doc, code",
    [
        (b"not json", "azure_cvm.bad_json"),
        (b"[]", "azure_cvm.bad_field"),
        (b'{"hcl_report": "SENMQQ"}', "azure_cvm.missing_field"),
        (b'{"hcl_report": "**", "tpm_quote": {"message": "", "signature": "", "pcrs": []}}',
         "azure_cvm.bad_encoding"),
        (b'{"hcl_report": "", "tpm_quote": {"message": "00", "signature": "00", "pcrs": ["00"]}}',
         "azure_cvm.bad_field"),
        (b'{"hcl_report": [300], "tpm_quote": {}}', "azure_cvm.bad_field"),
    ],
)
def test_malformed_evidence(doc, code):
    with pytest.raises(EvidenceError) as e:
        parse_azure_cvm_evidence(doc)
    assert e.value.code == code


def test_result_cannot_be_forged():
    with pytest.raises(TypeError):
        VerifiedAzureCvm(tee="sevsnpvm", hcl=None, runtime={}, snp=None, tdx=None, quote=None,  # type: ignore[arg-type]
                         nonce_verified=True, verified_at=AT_AZ_SNP, claims={})
