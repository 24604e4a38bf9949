"""make_credential: recovered by a real TPM (swtpm: tpm2_createek + tpm2_createak +
tpm2_activatecredential) for RSA and ECC EKs, rejected for a wrong AK name; also checked against a
reference activation written from Part 1 with software EKs; KDFa/KDFe against the spec formulas."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
import tpm_support as ts
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from attestd.errors import EvidenceError
from attestd.testing.swtpm import SwTPMError
from attestd.tpm import (
    TPM_ALG,
    Public,
    SymDefObject,
    ek_public_from_key,
    encode_tpm2_tools_credential,
    hash_alg_by_name,
    kdfa,
    kdfe,
    make_credential,
    parse_public_2b,
    parse_tpm2_tools_credential,
)

SECRET = b"attestd secret 0123456789abcdef!"  # 32 bytes = SHA-256 digest size


@pytest.mark.swtpm
@pytest.mark.parametrize("ek_alg,ak_kind", [("rsa", "rsa-sha256"), ("ecc", "ecc-sha256"), ("ecc", "ecc384-sha384"),
                                             ("rsa", "rsa-sha1")])
def test_swtpm_activates_our_credential(keys, ek_alg, ak_kind):
    tpm, ek, ak = keys.tpm, keys.eks[ek_alg], keys.aks[ak_kind]
    for secret in (SECRET, b"\x01", os.urandom(16)):
        cred = make_credential(ek.public, ak.name, secret)
        assert tpm.activate_credential(ak, ek, cred.to_tpm2_tools()) == secret


@pytest.mark.swtpm
@pytest.mark.parametrize("ek_alg", ["rsa", "ecc"])
def test_swtpm_rejects_a_wrong_ak_name(keys, ek_alg):
    tpm, ek = keys.tpm, keys.eks[ek_alg]
    ak, other = keys.aks["rsa-sha256"], keys.aks["ecc-sha256"]
    cred = make_credential(ek.public, other.name, SECRET)  # made for another AK
    with pytest.raises(SwTPMError) as e:
        tpm.activate_credential(ak, ek, cred.to_tpm2_tools())
    assert "integrity" in e.value.stderr.lower()
    # and a credential for the right AK but another EK cannot be opened with this EK
    other_ek = keys.eks["ecc" if ek_alg == "rsa" else "rsa"]
    cred = make_credential(other_ek.public, ak.name, SECRET)
    with pytest.raises(SwTPMError):
        tpm.activate_credential(ak, ek, cred.to_tpm2_tools())


@pytest.mark.swtpm
def test_ek_template_from_key_matches_the_tpm(keys):
    """An EK known only from its certificate's key gets the TPM's own Name (default templates)."""
    for alg in ("rsa", "ecc"):
        tpm_pub = parse_public_2b(keys.eks[alg].public)
        assert ek_public_from_key(tpm_pub.public_key()) == tpm_pub
        assert ek_public_from_key(tpm_pub.public_key()).name == keys.eks[alg].name
    # make_credential straight from the cryptography key, activated by the TPM
    ek, ak = keys.eks["rsa"], keys.aks["rsa-sha256"]
    cred = make_credential(parse_public_2b(ek.public).public_key(), ak.name, SECRET)
    assert keys.tpm.activate_credential(ak, ek, cred.to_tpm2_tools()) == SECRET


def _soft_ek(kind: str, name_alg: int = TPM_ALG.SHA256, bits: int = 128):
    priv = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
            else ec.generate_private_key(ec.SECP384R1() if kind == "p384" else ec.SECP256R1()))
    pub = ek_public_from_key(priv.public_key(), name_alg=name_alg)
    sym = SymDefObject(TPM_ALG.AES, bits, TPM_ALG.CFB)
    return priv, replace(pub, parameters=replace(pub.parameters, symmetric=sym))


@pytest.mark.parametrize("kind,name_alg,bits", [("rsa", TPM_ALG.SHA256, 128), ("p256", TPM_ALG.SHA256, 128),
                                                ("p384", TPM_ALG.SHA384, 256), ("rsa", TPM_ALG.SHA1, 128),
                                                ("p256", TPM_ALG.SHA512, 192)])
def test_reference_activation(kind, name_alg, bits):
    priv, pub = _soft_ek(kind, name_alg, bits)
    bank = {4: "sha1", 11: "sha256", 12: "sha384", 13: "sha512"}[name_alg]
    ak_name = b"\x00\x0b" + hashlib.sha256(b"ak").digest()
    secret = os.urandom(hash_alg_by_name(bank).digest_size)
    id_object, enc = make_credential(pub, ak_name, secret)
    ek_x = pub.unique.x if kind != "rsa" else b""
    assert ts.ref_activate(priv, bank, bits, ek_x, ak_name, id_object, enc) == secret
    with pytest.raises(ValueError, match="integrity"):
        ts.ref_activate(priv, bank, bits, ek_x, b"\x00\x0b" + hashlib.sha256(b"other").digest(), id_object, enc)
    tampered = bytearray(id_object)
    tampered[-1] ^= 1
    with pytest.raises(ValueError, match="integrity"):
        ts.ref_activate(priv, bank, bits, ek_x, ak_name, bytes(tampered), enc)


def test_make_credential_input_checks():
    _, pub = _soft_ek("p256")
    name = b"\x00\x0b" + bytes(32)
    for secret in (b"", bytes(33)):
        with pytest.raises(EvidenceError) as e:
            make_credential(pub, name, secret)
        assert e.value.code == "credential.secret_size"
    for bad_name in (b"", b"\x00\x0b" + bytes(31), b"\x00\x99" + bytes(32)):
        with pytest.raises(EvidenceError) as e:
            make_credential(pub, bad_name, SECRET)
        assert e.value.code == "credential.name"
    signing = Public.from_public_key(pub.public_key())  # an AK-like signing key is no EK
    with pytest.raises(EvidenceError) as e:
        make_credential(signing, name, SECRET)
    assert e.value.code == "credential.ek_unsuitable"
    no_sym = replace(pub, parameters=replace(pub.parameters, symmetric=SymDefObject()))
    with pytest.raises(EvidenceError) as e:
        make_credential(no_sym, name, SECRET)
    assert e.value.code == "credential.ek_unsuitable"


def test_tpm2_tools_credential_file_format():
    _, pub = _soft_ek("rsa")
    cred = make_credential(pub, b"\x00\x0b" + bytes(32), SECRET)
    blob = cred.to_tpm2_tools()
    assert blob[:8] == bytes.fromhex("badcc0de00000001")
    assert blob[8:] == cred.id_object + cred.encrypted_secret
    assert int.from_bytes(cred.encrypted_secret[:2], "big") == 256  # RSA-2048 OAEP block
    assert parse_tpm2_tools_credential(blob) == cred
    assert encode_tpm2_tools_credential(*cred) == blob
    for bad in (blob[:7], blob[:-1], blob + b"\x00", b"\xba\xdc\xc0\xdf" + blob[4:], blob[:7] + b"\x02" + blob[8:]):
        with pytest.raises(EvidenceError):
            parse_tpm2_tools_credential(bad)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_credential_file_parser_only_raises_evidence_errors(data):
    try:
        parse_tpm2_tools_credential(data)
    except EvidenceError:
        pass


@settings(max_examples=50, deadline=None)
@given(hash=st.sampled_from(["sha1", "sha256", "sha384", "sha512"]), key=st.binary(min_size=1, max_size=64),
       label=st.sampled_from([b"STORAGE", b"INTEGRITY", b"IDENTITY", b"DUPLICATE"]),
       u=st.binary(max_size=66), v=st.binary(max_size=66), nbytes=st.integers(1, 80))
def test_kdfa_kdfe_match_the_spec_formulas(hash, key, label, u, v, nbytes):
    alg = hash_alg_by_name(hash)
    assert kdfa(alg, key, label, u, v, nbytes * 8) == ts.ref_kdfa(hash, key, label, u + v, nbytes * 8)
    assert kdfa(alg, key, label + b"\x00", u, v, nbytes * 8) == kdfa(alg, key, label.decode(), u, v, nbytes * 8)
    assert kdfe(alg, key, label, u, v, nbytes * 8) == ts.ref_kdfe(hash, key, label, u, v, nbytes * 8)


def test_kdfa_rejects_partial_bytes():
    with pytest.raises(ValueError):
        kdfa(hash_alg_by_name("sha256"), b"k", "STORAGE", b"", b"", 12)
