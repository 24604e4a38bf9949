"""Quotes from a real TPM 2.0 (swtpm + tpm2-tools): RSA and ECC AKs, SHA-1/256/384 banks and mixed
selections verify; every single-field change is rejected with the right code; clock info is
reported so callers can enforce monotonicity."""

from __future__ import annotations

import hashlib

import pytest
from tpm_support import AK_KINDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestd.errors import AttestdError, EvidenceError, VerificationError
from attestd.testing.swtpm import TPM2_CERTIFY_QUALIFYING_DATA, SwTPM
from attestd.tpm import (
    parse_attest,
    parse_pcr_file,
    parse_public_2b,
    parse_signature,
    verify_certify,
    verify_quote,
)
from attestd.tpm.pcrfile import parse_tpm2_tools_pcrs

pytestmark = pytest.mark.swtpm

SELECTIONS = {
    "sha1": {"sha1": [0, 1, 2, 3, 4, 5, 6, 7, 16, 23]},
    "sha256": {"sha256": list(range(24))},
    "sha384": {"sha384": [0, 7, 16]},
    "mixed": {"sha256": [0, 16], "sha1": [16, 23], "sha384": [4, 16]},
}


@pytest.fixture(scope="module")
def extended(keys):
    """PCR 16 extended once in every bank (so quoted values are not all zero)."""
    tpm = keys.tpm
    before = tpm.read_pcrs({"sha1": [16], "sha256": [16], "sha384": [16]})
    digests = {bank: hashlib.new(bank, b"attestd").digest() for bank in ("sha1", "sha256", "sha384")}
    tpm.extend(16, digests)
    after = tpm.read_pcrs({"sha1": [16], "sha256": [16], "sha384": [16]})
    for bank, d in digests.items():
        assert after[bank][16] == hashlib.new(bank, before[bank][16] + d).digest()
    return after


@pytest.mark.parametrize("sel", sorted(SELECTIONS))
@pytest.mark.parametrize("ak_kind", sorted(AK_KINDS))
def test_quote_verifies(keys, extended, ak_kind, sel):
    tpm, ak = keys.tpm, keys.aks[ak_kind]
    nonce = hashlib.sha256(f"{ak_kind}/{sel}".encode()).digest()[:20]
    q = tpm.quote(ak, SELECTIONS[sel], nonce=nonce)
    # PCR values read independently (TPM2_PCR_Read), not those tpm2_quote printed
    values = tpm.read_pcrs(SELECTIONS[sel])
    assert values == q.pcrs
    r = verify_quote(q.ak_public, q.attest, q.signature, nonce=nonce, pcrs=values)
    assert r.signature.hash_alg.name == AK_KINDS[ak_kind][2]
    assert r.signature.scheme_name == AK_KINDS[ak_kind][3]
    assert r.pcr_select.as_dict() == {b: tuple(sorted(p)) for b, p in SELECTIONS[sel].items()}
    assert [s.bank for s in r.pcr_select.selections] == list(SELECTIONS[sel])
    assert r.pcrs == {b: {p: values[b][p] for p in ps} for b, ps in SELECTIONS[sel].items()}
    for bank in SELECTIONS[sel]:
        if 16 in SELECTIONS[sel][bank]:
            assert r.pcrs[bank][16] == extended[bank][16]
    assert r.ak_name == ak.name
    assert r.clock_info.safe and r.clock_info.reset_count >= 1
    assert r.firmware_version == 0x2019102300163636  # libtpms 0.9 / swtpm
    # the quote is well formed whatever the AK form
    assert parse_public_2b(ak.public).name == ak.name


@pytest.fixture(scope="module")
def quotes(keys, extended):
    """One RSA and one ECC quote over a mixed selection, with its PCR values."""
    out = {}
    for kind in ("rsa-sha256", "ecc-sha256"):
        nonce = b"\x90\x09" + kind.encode()
        q = keys.tpm.quote(keys.aks[kind], SELECTIONS["mixed"], nonce=nonce)
        out[kind] = q
    return out


def _flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


def _code(fn) -> str:
    with pytest.raises(AttestdError) as e:
        fn()
    return e.value.code


@pytest.mark.parametrize("kind", ["rsa-sha256", "ecc-sha256"])
def test_single_field_changes_are_rejected_with_their_code(quotes, kind):
    q = quotes[kind]
    ak, msg, sig, nonce, pcrs = q.ak_public, q.attest, q.signature, q.nonce, q.pcrs
    verify_quote(ak, msg, sig, nonce=nonce, pcrs=pcrs)
    a = parse_attest(msg)
    signer_len = len(a.qualified_signer)
    extra_off = 4 + 2 + 2 + signer_len + 2
    clock_off = extra_off + len(nonce)
    info_off = clock_off + 17 + 8
    sel_bitmap_off = info_off + 4 + 2 + 1  # first selection's pcrSelect[0]
    digest_off = len(msg) - len(a.attested.pcr_digest)

    assert _code(lambda: verify_quote(ak, msg, sig, nonce=_flip(nonce, 0), pcrs=pcrs)) == "quote.nonce_mismatch"
    assert _code(lambda: verify_quote(ak, msg, sig, nonce=b"", pcrs=pcrs)) == "quote.nonce_mismatch"
    bad = {b: dict(v) for b, v in pcrs.items()}
    bad["sha384"][16] = _flip(bad["sha384"][16], 47)
    assert _code(lambda: verify_quote(ak, msg, sig, nonce=nonce, pcrs=bad)) == "quote.pcr_digest_mismatch"
    missing = {b: dict(v) for b, v in pcrs.items()}
    del missing["sha1"][23]
    assert _code(lambda: verify_quote(ak, msg, sig, nonce=nonce, pcrs=missing)) == "quote.pcr_missing"
    assert _code(lambda: verify_quote(ak, msg, _flip(sig, len(sig) - 3), nonce=nonce)) == "quote.signature_invalid"
    assert _code(lambda: verify_quote(ak, _flip(msg, 1), sig, nonce=nonce)) == "quote.magic"
    assert _code(lambda: verify_quote(ak, _flip(msg, 5, 0x08), sig, nonce=nonce)) == "quote.type"  # 0x8018 -> 0x8010
    assert _code(lambda: verify_quote(ak, _flip(msg, 5, 0x0F), sig, nonce=nonce)) == "quote.type"  # -> CERTIFY
    # content the TPM signed: any change breaks the signature
    for off in (sel_bitmap_off, extra_off, clock_off + 7, digest_off, 10):
        assert _code(lambda off=off: verify_quote(ak, _flip(msg, off), sig, nonce=nonce)) == "quote.signature_invalid"
    # a signature scheme the AK does not use (RSAPSS for an RSASSA AK, ECDAA for an ECDSA AK)
    other_scheme = (b"\x00\x16" if kind.startswith("rsa") else b"\x00\x1a") + sig[2:]
    assert _code(lambda: verify_quote(ak, msg, other_scheme, nonce=nonce)) == "quote.signature_scheme"
    other_hash = sig[:2] + b"\x00\x0c" + sig[4:]  # SHA-384 instead of the AK's SHA-256
    assert _code(lambda: verify_quote(ak, msg, other_hash, nonce=nonce)) == "quote.signature_scheme"


@pytest.mark.parametrize("kind", ["rsa-sha256", "ecc-sha256"])
def test_every_single_byte_flip_is_rejected(quotes, kind):
    q = quotes[kind]
    for i in range(len(q.attest)):
        for mask in (0x01, 0x80):
            with pytest.raises(AttestdError):
                verify_quote(q.ak_public, _flip(q.attest, i, mask), q.signature, nonce=q.nonce, pcrs=q.pcrs)
    for i in range(len(q.signature)):
        with pytest.raises(AttestdError):
            verify_quote(q.ak_public, q.attest, _flip(q.signature, i), nonce=q.nonce, pcrs=q.pcrs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_never_verifies(quotes, data):
    q = quotes[data.draw(st.sampled_from(sorted(quotes)))]
    msg = bytearray(q.attest)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(msg) - 1))
        msg[i] = data.draw(st.integers(0, 255).filter(lambda v, i=i: v != q.attest[i]))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(msg))))
    damaged = bytes(msg[:cut] if cut is not None else msg)
    if damaged == q.attest:
        return
    with pytest.raises((VerificationError, EvidenceError)):
        verify_quote(q.ak_public, damaged, q.signature, nonce=q.nonce, pcrs=q.pcrs)


def test_clock_info_supports_monotonicity():
    """clock grows within a boot; a power cycle (TPM Reset) increments resetCount."""
    with SwTPM() as tpm:
        ek = tpm.create_ek("ecc")
        ak = tpm.create_ak(ek, "ecc")
        q1 = tpm.quote(ak, "sha256:0")
        first = verify_quote(ak.public, q1.attest, q1.signature, nonce=b"")
        q2 = tpm.quote(ak, "sha256:0")
        second = verify_quote(ak.public, q2.attest, q2.signature, nonce=b"")
        assert second.clock_info.clock >= first.clock_info.clock
        assert second.clock_info.reset_count == first.clock_info.reset_count
        tpm.restart()
        ek = tpm.create_ek("ecc")  # saved transient contexts do not survive a TPM Reset
        ak2 = tpm.create_ak(ek, "ecc")
        q = tpm.quote(ak2, "sha256:0")
        third = verify_quote(ak2.public, q.attest, q.signature, nonce=b"")
        assert third.clock_info.reset_count == first.clock_info.reset_count + 1
        assert third.clock_info.restart_count == 0
    assert not tpm.running
    assert not tpm.dir.exists()


def test_harness_cleans_up_on_failure():
    tpm = SwTPM()
    with pytest.raises(RuntimeError, match="boom"), tpm:
        assert tpm.running
        raise RuntimeError("boom")
    assert not tpm.running and not tpm.dir.exists()


def test_certify_by_ak(keys):
    tpm = keys.tpm
    signer, obj = keys.aks["rsa-sha256"], keys.aks["ecc-sha256"]
    att, sig = tpm.certify(signer, obj)
    r = verify_certify(signer.public, att, sig, nonce=TPM2_CERTIFY_QUALIFYING_DATA, certified=obj.public)
    assert r.certified_name == obj.name
    with pytest.raises(VerificationError) as e:
        verify_certify(signer.public, att, sig, nonce=TPM2_CERTIFY_QUALIFYING_DATA,
                       certified=keys.aks["ecc384-sha384"].public)
    assert e.value.code == "certify.name_mismatch"
    with pytest.raises(VerificationError) as e:
        verify_certify(obj.public, att, sig, nonce=TPM2_CERTIFY_QUALIFYING_DATA, certified=obj.public)
    assert e.value.code == "certify.signature_scheme"  # an ECC key cannot have made this RSASSA signature
    with pytest.raises(VerificationError) as e:
        verify_certify(keys.aks["rsa-sha1"].public, att, sig, nonce=TPM2_CERTIFY_QUALIFYING_DATA,
                       certified=obj.public)
    assert e.value.code == "certify.signature_scheme"  # that AK's scheme is RSASSA-SHA1


def _yaml_scalars(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and value.strip():
            out.setdefault(key.strip(), value.strip())
    return out


def test_parsers_agree_with_tpm2_print(keys, quotes):
    tpm = keys.tpm
    q = quotes["ecc-sha256"]
    path = tpm.dir / "print.bin"
    path.write_bytes(q.attest)
    printed = _yaml_scalars(tpm.run("tpm2_print", "-t", "TPMS_ATTEST", path, flush=False).stdout)
    a = parse_attest(q.attest)
    assert printed["magic"] == f"{a.magic:08x}" and printed["type"] == f"{a.type:04x}"
    assert printed["qualifiedSigner"] == a.qualified_signer.hex()
    assert printed["extraData"] == a.extra_data.hex()
    assert int(printed["clock"]) == a.clock_info.clock
    assert int(printed["resetCount"]) == a.clock_info.reset_count
    assert printed["pcrDigest"] == a.attested.pcr_digest.hex()
    # tpm2-tools 5.4 prints firmwareVersion byte-swapped; the value is the same 8 bytes
    assert bytes.fromhex(printed["firmwareVersion"].zfill(16))[::-1] == a.firmware_version.to_bytes(8, "big")
    assert a.to_bytes() == q.attest
    for kind, ak in keys.aks.items():
        path.write_bytes(ak.public)
        printed = _yaml_scalars(tpm.run("tpm2_print", "-t", "TPM2B_PUBLIC", path, flush=False).stdout)
        pub = parse_public_2b(ak.public)
        assert int(printed["raw"], 16) in (pub.name_alg,)  # first "raw" is name-alg
        assert pub.to_tpm2b() == ak.public
        assert pub.scheme.hash == {"sha1": 4, "sha256": 11, "sha384": 12}[AK_KINDS[kind][2]]
    sig = parse_signature(q.signature)
    assert sig.to_bytes() == q.signature


def test_pcrread_yaml_and_json_inputs(keys, extended):
    tpm = keys.tpm
    out = tpm.run("tpm2_pcrread", "sha1:16+sha256:0,16+sha384:16", flush=False).stdout
    values = parse_tpm2_tools_pcrs(out)
    assert values["sha256"][16] == extended["sha256"][16]
    assert parse_pcr_file(out.encode()) == values
    as_json = {"pcrs": {b: {str(i): v.hex() for i, v in vals.items()} for b, vals in values.items()}, "ok": True}
    import json

    assert parse_pcr_file(json.dumps(as_json)) == values
    assert parse_pcr_file(json.dumps(as_json["pcrs"])) == values


@pytest.mark.parametrize("alg,attrs", [
    ("aes128cfb", None),
    ("hmac", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"),
    ("rsa", None),
    ("ecc384", None),
])
def test_certify_creation_and_names_on_swtpm(keys, alg, attrs):
    """Names of RSA/ECC/SYMCIPHER/KEYEDHASH objects equal the TPM's own; TPM2_CertifyCreation verifies."""
    from attestd.tpm import parse_creation_data, verify_certify_creation

    tpm = keys.tpm
    obj = tpm.create_primary(alg, attributes=attrs)
    pub = parse_public_2b(obj.key.public)
    assert pub.name == obj.key.name  # computed here == TPM2_ReadPublic's name
    assert pub.to_tpm2b() == obj.key.public
    signer = keys.aks["ecc-sha256"]
    nonce = b"creation-nonce"
    att, sig = tpm.certify_creation(signer, obj, nonce=nonce)
    r = verify_certify_creation(signer.public, att, sig, creation_data=obj.creation_data, certified=obj.key.public,
                                nonce=nonce)
    assert r.object_name == obj.key.name
    assert r.creation_hash == obj.creation_hash[2:]  # tpm2-tools writes the TPM2B_DIGEST
    assert r.creation_data == parse_creation_data(obj.creation_data)
    assert r.creation_data.parent_name == b"\x40\x00\x00\x01"  # TPM_RH_OWNER
    with pytest.raises(VerificationError) as e:
        verify_certify_creation(signer.public, att, sig, creation_data=obj.creation_data,
                                certified=obj.key.public, nonce=b"other")
    assert e.value.code == "creation.nonce_mismatch"
    with pytest.raises(VerificationError) as e:
        verify_certify_creation(signer.public, att, sig, creation_data=obj.creation_data, certified=signer.public,
                                nonce=nonce)
    assert e.value.code == "creation.name_mismatch"


def test_pcr_bank_allocation():
    """A fresh swtpm has four banks; tpm2_pcrallocate + a power cycle leaves only the chosen ones."""
    from attestd.testing.swtpm import SwTPMError

    with SwTPM() as tpm:
        assert tpm.pcr_banks() == ["sha1", "sha256", "sha384", "sha512"]
        tpm.allocate_pcr_banks(["sha1", "sha256"])
        assert tpm.pcr_banks() == ["sha1", "sha256"]
        ek = tpm.create_ek("ecc")
        ak = tpm.create_ak(ek, "ecc")
        q = tpm.quote(ak, {"sha1": [0], "sha256": [0]})
        verify_quote(ak.public, q.attest, q.signature, nonce=b"", pcrs=tpm.read_pcrs({"sha1": [0], "sha256": [0]}))
        q = tpm.quote(ak, {"sha384": [0]})  # an unallocated bank is quoted as an empty selection
        r = verify_quote(ak.public, q.attest, q.signature, nonce=b"", pcrs={})
        assert r.pcr_digest == hashlib.sha256(b"").digest()
        with pytest.raises(SwTPMError):
            tpm.run("tpm2_quote", "-c", "/nonexistent.ctx", "-l", "sha256:0")
