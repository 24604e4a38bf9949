"""verify_quote / verify_certify with software keys: every check, with a valid signature over
crafted content, so each code is proven to come from its own check (not from the signature)."""

from __future__ import annotations

import hashlib

import pytest
import tpm_support as ts
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestd.errors import EvidenceError, VerificationError
from attestd.tpm import (
    TPM_ALG,
    Public,
    Scheme,
    check_ak_attributes,
    parse_public,
    verify_certify,
    verify_quote,
    verify_signature,
)

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P256 = ec.generate_private_key(ec.SECP256R1())
P384 = ec.generate_private_key(ec.SECP384R1())
BANKS = {"sha1": [0, 7], "sha256": [0, 7, 16]}
VALUES = {bank: {p: hashlib.new(bank, f"{bank}{p}".encode()).digest() for p in range(24)} for bank in ts.ALG}
NONCE = b"nonce-0123456789"


def make(key, *, hash="sha256", scheme=None, banks=BANKS, values=VALUES, **kw):
    info = ts.quote_info(banks, values, hash)
    msg = ts.attest(info, extra=kw.pop("extra", NONCE), **kw)
    return msg, ts.sign(key, msg, hash=hash, scheme=scheme)


def spki(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("key,hash,scheme", [
    (RSA_KEY, "sha1", ts.RSASSA), (RSA_KEY, "sha256", ts.RSASSA), (RSA_KEY, "sha384", ts.RSASSA),
    (RSA_KEY, "sha512", ts.RSASSA), (RSA_KEY, "sha256", ts.RSAPSS), (RSA_KEY, "sha384", ts.RSAPSS),
    (P256, "sha256", ts.ECDSA), (P256, "sha1", ts.ECDSA), (P384, "sha384", ts.ECDSA), (P384, "sha512", ts.ECDSA),
])
def test_every_scheme_and_hash_verifies(key, hash, scheme):
    msg, sig = make(key, hash=hash, scheme=scheme)
    r = verify_quote(spki(key), msg, sig, nonce=NONCE, pcrs=VALUES)
    assert r.signature.hash_alg.name == hash
    assert r.pcr_digest == hashlib.new(hash, b"".join(VALUES[b][p] for b, ps in BANKS.items() for p in ps)).digest()
    assert r.pcrs == {b: {p: VALUES[b][p] for p in ps} for b, ps in BANKS.items()}
    assert (r.clock_info.clock, r.clock_info.reset_count, r.clock_info.restart_count, r.clock_info.safe) == (
        1234, 2, 3, True)
    assert r.firmware_version == 0x2019102300163636
    assert r.qualified_signer == b"\x00\x0b" + b"\x11" * 32
    # also without PCR values: structure, signature and nonce only
    assert verify_quote(key.public_key(), msg, sig, nonce=NONCE).pcrs is None


def test_ak_forms_are_equivalent():
    msg, sig = make(RSA_KEY)
    pub = RSA_KEY.public_key()
    tpmt = ts.rsa_tpmt_public(pub)
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for ak in (pub, spki(RSA_KEY), der, tpmt, ts.b2(tpmt), parse_public(tpmt)):
        r = verify_quote(ak, msg, sig, nonce=NONCE, pcrs=VALUES)
    assert r.ak_name == ts.name(tpmt)


def test_nonce_mismatch():
    msg, sig = make(RSA_KEY)
    for wrong in (b"", NONCE[:-1], NONCE + b"\x00", bytes([NONCE[0] ^ 1]) + NONCE[1:]):
        with pytest.raises(VerificationError) as e:
            verify_quote(spki(RSA_KEY), msg, sig, nonce=wrong)
        assert e.value.code == "quote.nonce_mismatch"
        assert e.value.field == "TPMS_ATTEST.extraData"


def test_pcr_value_changed_is_digest_mismatch():
    msg, sig = make(P256)
    for bank, pcr in (("sha1", 0), ("sha256", 16), ("sha256", 7)):
        tampered = {b: dict(v) for b, v in VALUES.items()}
        tampered[bank][pcr] = bytes([tampered[bank][pcr][0] ^ 0x80]) + tampered[bank][pcr][1:]
        with pytest.raises(VerificationError) as e:
            verify_quote(spki(P256), msg, sig, nonce=NONCE, pcrs=tampered)
        assert e.value.code == "quote.pcr_digest_mismatch"


def test_selected_pcr_missing():
    msg, sig = make(RSA_KEY)
    partial = {"sha1": VALUES["sha1"], "sha256": {p: v for p, v in VALUES["sha256"].items() if p != 16}}
    with pytest.raises(VerificationError) as e:
        verify_quote(spki(RSA_KEY), msg, sig, nonce=NONCE, pcrs=partial)
    assert e.value.code == "quote.pcr_missing"
    assert e.value.details == {"bank": "sha256", "pcr": 16}
    with pytest.raises(VerificationError) as e:
        verify_quote(spki(RSA_KEY), msg, sig, nonce=NONCE, pcrs={"sha256": VALUES["sha256"]})
    assert e.value.code == "quote.pcr_missing"


def test_selection_order_matters():
    """The digest is over the selection order of the quote, not sorted banks."""
    banks = {"sha256": [1], "sha1": [2]}
    msg, sig = make(RSA_KEY, banks=banks)
    assert verify_quote(spki(RSA_KEY), msg, sig, nonce=NONCE, pcrs=VALUES).pcr_select.as_dict() == {
        "sha256": (1,), "sha1": (2,)}
    # a quote whose selection differs from what its digest covers fails
    info = ts.selection({"sha1": [2], "sha256": [1]}) + ts.quote_info(banks, VALUES, "sha256")[-34:]
    msg2 = ts.attest(info, extra=NONCE)
    with pytest.raises(VerificationError) as e:
        verify_quote(spki(RSA_KEY), msg2, ts.sign(RSA_KEY, msg2), nonce=NONCE, pcrs=VALUES)
    assert e.value.code == "quote.pcr_digest_mismatch"


def test_digest_uses_signing_hash_not_bank_hash():
    msg, sig = make(RSA_KEY, hash="sha384", banks={"sha1": [0, 1]})
    r = verify_quote(spki(RSA_KEY), msg, sig, nonce=NONCE, pcrs=VALUES)
    assert len(r.pcr_digest) == 48


def test_pcr_input_forms():
    msg, sig = make(RSA_KEY)
    hexed = {b: {str(p): v.hex().upper() for p, v in vals.items()} for b, vals in VALUES.items()}
    by_id = {ts.ALG[b]: vals for b, vals in VALUES.items()}
    for pcrs in (hexed, by_id, {"SHA-256": VALUES["sha256"], "sha1": VALUES["sha1"]}):
        verify_quote(spki(RSA_KEY), msg, sig, nonce=NONCE, pcrs=pcrs)
    for bad in ({"sha256": {0: b"short"}}, {"md5": {}}, {"sha256": {"x": "00" * 32}}, {"sha256": {0: "zz"}}, []):
        with pytest.raises(EvidenceError) as e:
            verify_quote(spki(RSA_KEY), msg, sig, nonce=NONCE, pcrs=bad)
        assert e.value.code == "quote.pcrs_invalid"


def test_magic_and_type():
    msg, sig = make(RSA_KEY, magic=0xFF544346)
    with pytest.raises(VerificationError) as e:
        verify_quote(spki(RSA_KEY), msg, sig, nonce=NONCE)
    assert (e.value.code, e.value.offset) == ("quote.magic", 0)
    info = ts.b2(b"\x00\x0b" + b"\x22" * 32) + ts.b2(b"\x00\x0b" + b"\x33" * 32)
    msg = ts.attest(info, st=ts.ST_CERTIFY, extra=NONCE)
    with pytest.raises(VerificationError) as e:
        verify_quote(spki(RSA_KEY), msg, ts.sign(RSA_KEY, msg), nonce=NONCE)
    assert (e.value.code, e.value.offset) == ("quote.type", 4)


def test_signature_invalid():
    msg, sig = make(P256)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(VerificationError) as e:
        verify_quote(spki(other), msg, sig, nonce=NONCE)
    assert e.value.code == "quote.signature_invalid"
    msg, sig = make(RSA_KEY)
    for i in (6, len(sig) // 2, len(sig) - 1):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        with pytest.raises(VerificationError) as e:
            verify_quote(spki(RSA_KEY), msg, bytes(bad), nonce=NONCE)
        assert e.value.code == "quote.signature_invalid"


def test_signature_scheme_must_fit_the_key():
    msg, ecdsa_sig = make(P256)
    with pytest.raises(VerificationError) as e:  # ECDSA signature, RSA key
        verify_quote(spki(RSA_KEY), msg, ecdsa_sig, nonce=NONCE)
    assert e.value.code == "quote.signature_scheme"
    msg, rsa_sig = make(RSA_KEY)
    with pytest.raises(VerificationError) as e:  # RSASSA signature, ECC key
        verify_quote(spki(P256), msg, rsa_sig, nonce=NONCE)
    assert e.value.code == "quote.signature_scheme"
    # an RSASSA-SHA256 AK must not accept an RSAPSS or a SHA-1 signature, even a valid one
    ak = ts.rsa_tpmt_public(RSA_KEY.public_key(), scheme=ts.RSASSA, hash="sha256")
    verify_quote(ak, msg, rsa_sig, nonce=NONCE)
    for hash, scheme in (("sha256", ts.RSAPSS), ("sha1", ts.RSASSA)):
        m, s = make(RSA_KEY, hash=hash, scheme=scheme)
        verify_quote(spki(RSA_KEY), m, s, nonce=NONCE)
        with pytest.raises(VerificationError) as e:
            verify_quote(ak, m, s, nonce=NONCE)
        assert e.value.code == "quote.signature_scheme"
    # ECDAA / SM2 / HMAC / NULL signatures cannot be verified
    for alg in (0x001A, 0x001B):
        forged = alg.to_bytes(2, "big") + ecdsa_sig[2:]
        with pytest.raises(VerificationError) as e:
            verify_quote(spki(P256), msg, forged, nonce=NONCE)
        assert e.value.code == "quote.signature_scheme"
    for forged in (b"\x00\x10", b"\x00\x05\x00\x0b" + b"\x00" * 32):
        with pytest.raises(VerificationError) as e:
            verify_signature(spki(P256), msg, forged)
        assert e.value.code == "tpm.signature_scheme"


def test_malformed_inputs_are_evidence_errors():
    msg, sig = make(RSA_KEY)
    for bad_msg in (b"", msg[:3], msg[:20], msg + b"\x00"):
        with pytest.raises(EvidenceError):
            verify_quote(spki(RSA_KEY), bad_msg, sig, nonce=NONCE)
    for bad_sig in (b"", sig[:5], sig + b"\x00"):
        with pytest.raises(EvidenceError):
            verify_quote(spki(RSA_KEY), msg, bad_sig, nonce=NONCE)
    for bad_ak in (b"", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", b"\x30\x03\x02\x01\x00",
                   b"\x00\x01\x00"):
        with pytest.raises(EvidenceError):
            verify_quote(bad_ak, msg, sig, nonce=NONCE)
    ed = serialization.load_pem_public_key(
        b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n")
    with pytest.raises(EvidenceError) as e:
        verify_quote(ed, msg, sig, nonce=NONCE)
    assert e.value.code == "tpm.key_type"


def test_certify_checks_the_certified_name():
    ak_pub = ts.rsa_tpmt_public(RSA_KEY.public_key())
    certified = ts.ecc_tpmt_public(P256.public_key())
    info = ts.b2(ts.name(certified)) + ts.b2(b"\x00\x0b" + b"\x44" * 32)
    msg = ts.attest(info, st=ts.ST_CERTIFY, extra=b"n")
    sig = ts.sign(RSA_KEY, msg)
    r = verify_certify(ak_pub, msg, sig, nonce=b"n", certified=certified)
    assert r.certified_name == ts.name(certified)
    with pytest.raises(VerificationError) as e:
        verify_certify(ak_pub, msg, sig, nonce=b"n", certified=ak_pub)
    assert e.value.code == "certify.name_mismatch"
    with pytest.raises(VerificationError) as e:
        verify_certify(ak_pub, msg, sig, nonce=b"m", certified=certified)
    assert e.value.code == "certify.nonce_mismatch"
    with pytest.raises(VerificationError) as e:
        verify_certify(ak_pub, msg, sig, nonce=b"n", certified=certified, qualified_name=b"\x00\x0b" + b"\x45" * 32)
    assert e.value.code == "certify.qualified_name_mismatch"
    quote_msg, quote_sig = make(RSA_KEY)
    with pytest.raises(VerificationError) as e:
        verify_certify(ak_pub, quote_msg, quote_sig, nonce=NONCE, certified=certified)
    assert e.value.code == "certify.type"


def test_ak_attributes():
    pub = RSA_KEY.public_key()
    check_ak_attributes(ts.rsa_tpmt_public(pub))
    for attrs, missing in ((0x00050070, "fixed_tpm"), (0x00040072, "restricted"), (0x00010072, "sign_encrypt")):
        with pytest.raises(VerificationError) as e:
            check_ak_attributes(ts.rsa_tpmt_public(pub, attrs=attrs))
        assert e.value.code == "ak.attributes" and missing in e.value.details["missing"]
    with pytest.raises(VerificationError) as e:
        check_ak_attributes(ts.rsa_tpmt_public(pub, attrs=0x00070072))  # decrypt too
    assert e.value.code == "ak.attributes"


def test_public_from_key_round_trip():
    for key in (RSA_KEY.public_key(), P256.public_key(), P384.public_key()):
        pub = Public.from_public_key(key)
        assert parse_public(pub.to_bytes()) == pub
        assert pub.public_key().public_numbers() == key.public_numbers()
    p = Public.from_public_key(RSA_KEY.public_key(), scheme=Scheme(TPM_ALG.RSASSA, TPM_ALG.SHA1))
    assert p.to_bytes() == ts.rsa_tpmt_public(RSA_KEY.public_key(), scheme=ts.RSASSA, hash="sha1")
