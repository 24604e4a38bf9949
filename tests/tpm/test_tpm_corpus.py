"""Real public quotes from ../shared/corpus (read in place; INDEX.md gives the expected values)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from attestd.errors import VerificationError
from attestd.tpm import (
    TPM_ALG,
    Signature,
    check_ak_attributes,
    parse_attest,
    parse_gotpm_attestation,
    parse_public,
    verify_certify_creation,
    verify_quote,
)

pytestmark = pytest.mark.corpus


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


@pytest.fixture(scope="module")
def windows(corpus):
    return json.loads((corpus / "go-attestation" / "windows_gcp_shielded_vm.json").read_text())


def test_windows_gcp_quote(windows):
    ak = _b64(windows["AK"]["Public"])
    quote, sig = _b64(windows["Quote"]["Quote"]), _b64(windows["Quote"]["Signature"])
    assert windows["Quote"]["Nonce"] in ("", None)
    # Log.PCRs: DigestAlg 3 is Go's crypto.SHA1
    assert {p["DigestAlg"] for p in windows["Log"]["PCRs"]} == {3}
    pcrs = {"sha1": {p["Index"]: _b64(p["Digest"]) for p in windows["Log"]["PCRs"]}}
    r = verify_quote(ak, quote, sig, nonce=b"", pcrs=pcrs)
    assert (r.signature.scheme_name, r.signature.hash_alg.name) == ("rsassa", "sha1")
    assert r.pcr_select.as_dict() == {"sha1": tuple(range(24))}
    assert r.pcr_digest.hex() == "a610f27bc687ce906243287d832706036e79f6e1"
    assert r.extra_data == b""
    with pytest.raises(VerificationError) as e:
        verify_quote(ak, quote, sig, nonce=b"\x00", pcrs=pcrs)
    assert e.value.code == "quote.nonce_mismatch"
    pcrs["sha1"][7] = bytes(20)
    with pytest.raises(VerificationError) as e:
        verify_quote(ak, quote, sig, nonce=b"", pcrs=pcrs)
    assert e.value.code == "quote.pcr_digest_mismatch"


def test_windows_gcp_certify_creation(windows):
    ak = _b64(windows["AK"]["Public"])
    data = _b64(windows["AK"]["CreateData"])
    att, sig = _b64(windows["AK"]["CreateAttestation"]), _b64(windows["AK"]["CreateSignature"])
    r = verify_certify_creation(ak, att, sig, creation_data=data)
    assert r.creation_hash.hex() == "033606205753c7703c098ab816f99cf1d878b845509746ec2a6171bc35c8f974"
    assert r.creation_hash == hashlib.sha256(data).digest()
    assert r.object_name == parse_public(ak).name
    assert r.object_name.hex().startswith("000b4ce9b151")
    check_ak_attributes(ak)
    # the creation data the AK was certified with, not other data
    tampered = bytearray(data)
    tampered[-3] ^= 1
    with pytest.raises(VerificationError) as e:
        verify_certify_creation(ak, att, sig, creation_data=bytes(tampered))
    assert e.value.code == "creation.hash_mismatch"
    # the AK signed it for itself, not for another object
    other = parse_public(ak)
    other = type(other)(other.type, other.name_alg, other.object_attributes ^ 0x400, other.auth_policy,
                        other.parameters, other.unique)
    with pytest.raises(VerificationError) as e:
        verify_certify_creation(ak, att, sig, creation_data=data, certified=other)
    assert e.value.code == "creation.name_mismatch"
    with pytest.raises(VerificationError) as e:
        verify_certify_creation(ak, att, sig, creation_data=data, nonce=b"x")
    assert e.value.code == "creation.nonce_mismatch"
    quote, qsig = _b64(windows["Quote"]["Quote"]), _b64(windows["Quote"]["Signature"])
    with pytest.raises(VerificationError) as e:
        verify_certify_creation(ak, quote, qsig, creation_data=data)
    assert e.value.code == "creation.type"


GCE = {"gce-cos-85-nonce9009.pb": b"\x90\x09", "gce-cos-85-no-nonce.pb": b""}


@pytest.mark.parametrize("fname", sorted(GCE))
def test_gce_cos_attestation(corpus, fname):
    att = parse_gotpm_attestation((corpus / "go-tpm-tools" / fname).read_bytes())
    expected = json.loads((corpus / "go-tpm-tools" / "gce-cos-85.expected.json").read_text())[fname]["quotes"]
    assert [q.hash for q in att.quotes] == [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384]
    nonce = GCE[fname]
    for q, exp in zip(att.quotes, expected):
        bank = exp["bank"]
        assert {str(i): v.hex() for i, v in q.pcrs.items()} == exp["pcrs"]
        r = verify_quote(att.ak_pub, q.quote, q.raw_sig, nonce=nonce, pcrs={q.hash: q.pcrs})
        assert r.pcr_select.as_dict() == {bank: tuple(range(24))}
        assert r.pcr_digest.hex() == exp["pcrDigest"]
        assert r.extra_data.hex() == exp["extraData"]
        assert (r.signature.scheme_name, r.signature.hash_alg.name) == ("rsassa", "sha256")
        for wrong in (b"\x90\x08", b"\x90\x09\x00", b"" if nonce else b"\x90\x09"):
            with pytest.raises(VerificationError) as e:
                verify_quote(att.ak_pub, q.quote, q.raw_sig, nonce=wrong, pcrs={q.hash: q.pcrs})
            assert e.value.code == "quote.nonce_mismatch"
    # the AK certificate certifies the same key as ak_pub
    cert = x509.load_der_x509_certificate(att.ak_cert)
    key = parse_public(att.ak_pub).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert cert.public_key().public_numbers() == key.public_numbers()
    assert att.event_log[:4] == b"\x00\x00\x00\x00"  # TCG log starts with a PCR0 EV_NO_ACTION header event


def test_gce_quotes_do_not_cross_verify(corpus):
    """Same machine and PCRs, different nonce: each quote verifies only with its own nonce."""
    a = parse_gotpm_attestation((corpus / "go-tpm-tools" / "gce-cos-85-nonce9009.pb").read_bytes())
    b = parse_gotpm_attestation((corpus / "go-tpm-tools" / "gce-cos-85-no-nonce.pb").read_bytes())
    assert a.ak_pub == b.ak_pub
    with pytest.raises(VerificationError) as e:
        verify_quote(a.ak_pub, a.quotes[1].quote, b.quotes[1].raw_sig, nonce=b"\x90\x09")
    assert e.value.code == "quote.signature_invalid"


def test_trustee_spki_ak(corpus):
    ev = json.loads((corpus / "trustee" / "tpm" / "tpm_evidence.json").read_text())
    ak = base64.b64decode(ev["ak_public"])  # DER SubjectPublicKeyInfo
    msg, sig = _b64(ev["tpm_quote"]["message"]), _b64(ev["tpm_quote"]["signature"])
    nonce = bytes.fromhex("a04182b506878d4f29b91ee606a71a0d3361ccf1b22db20c98adcaa537bea393"
                          "ef0e41a18b3569ab678f1497fbc5c120") + bytes(16)
    pcrs = {"sha256": dict(enumerate(ev["tpm_quote"]["pcrs"]))}
    r = verify_quote(ak, msg, sig, nonce=nonce, pcrs=pcrs)
    assert r.firmware_version == 0x2019102300163636
    assert r.ak_name is None  # an SPKI has no TPMT_PUBLIC, so no Name
    assert r.pcr_select.as_dict() == {"sha256": tuple(range(24))}
    with pytest.raises(VerificationError) as e:
        verify_quote(ak, msg, sig, nonce=nonce[:-1], pcrs=pcrs)
    assert e.value.code == "quote.nonce_mismatch"
    pcrs["sha256"][23] = "ff" * 32
    with pytest.raises(VerificationError) as e:
        verify_quote(ak, msg, sig, nonce=nonce, pcrs=pcrs)
    assert e.value.code == "quote.pcr_digest_mismatch"


def _hcl_ak(report: bytes) -> rsa.RSAPublicKey:
    """HCLAkPub (an RSA JWK) from an Azure HCL report's variable data (INDEX.md section 4)."""
    (size,) = struct.unpack_from("<I", report, 0x4D0)
    keys = json.loads(report[0x4D4:0x4D4 + size])["keys"]
    jwk = next(k for k in keys if k["kid"] == "HCLAkPub")
    n, e = (int.from_bytes(base64.urlsafe_b64decode(jwk[k] + "=" * (-len(jwk[k]) % 4)), "big") for k in ("n", "e"))
    return rsa.RSAPublicNumbers(e, n).public_key()


@pytest.mark.parametrize("vm", ["az-snp-vtpm", "az-tdx-vtpm"])
def test_azure_vtpm_quote(corpus, vm):
    d = corpus / "trustee" / vm
    q = json.loads((d / "tpm-quote-v1.json").read_text())
    ak = _hcl_ak((d / "hcl-report.bin").read_bytes())
    # Azure ships the raw RSASSA-SHA256 signature, not a TPMT_SIGNATURE
    sig = Signature(TPM_ALG.RSASSA, TPM_ALG.SHA256, rsa_sig=bytes.fromhex(q["signature"]))
    msg = bytes.fromhex(q["message"])
    pcrs = {"sha256": {i: v for i, v in enumerate(q["pcrs"])}}
    r = verify_quote(ak, msg, sig, nonce=b"challenge", pcrs=pcrs)
    assert parse_attest(msg).extra_data == b"challenge"
    assert r.pcr_select.as_dict() == {"sha256": tuple(range(24))}
    with pytest.raises(VerificationError) as e:
        verify_quote(ak, msg, sig, nonce=b"egnellahc", pcrs=pcrs)
    assert e.value.code == "quote.nonce_mismatch"
    flipped = bytearray(bytes.fromhex(q["pcrs"][0]))
    flipped[0] ^= 1
    pcrs["sha256"][0] = bytes(flipped)
    with pytest.raises(VerificationError) as e:
        verify_quote(ak, msg, sig, nonce=b"challenge", pcrs=pcrs)
    assert e.value.code == "quote.pcr_digest_mismatch"
