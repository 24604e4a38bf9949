"""The agent's TPM layer (tpm2-pytss) against swtpm: EK, AK, quote, activation, certify, sealing."""

from __future__ import annotations

import os

import pytest

from attestd.agent.tpm import AgentTPM, TPMError
from attestd.testing.swtpm import SwTPM, swtpm_available
from attestd.tpm import make_credential, verify_certify, verify_quote
from attestd.tpm.seal import seal_to_ek

pytestmark = pytest.mark.swtpm
SELECTION = "sha256:0,7,14"

if not swtpm_available():
    pytest.skip("swtpm / tpm2-tools not installed", allow_module_level=True)
pytest.importorskip("tpm2_pytss", reason="tpm2-pytss is not installed")


@pytest.fixture(scope="module")
def swtpm():
    with SwTPM() as tpm:
        yield tpm


@pytest.fixture(scope="module")
def agent(swtpm):
    with AgentTPM(swtpm.tcti) as a:
        yield a


@pytest.mark.parametrize("alg", ["ecc", "rsa"])
def test_ak_quote_verifies_and_persists(agent, alg):
    handle = 0x81010010 if alg == "ecc" else 0x81010011
    ak = agent.ak(alg, handle=handle)
    assert agent.ak(alg, handle=handle).name == ak.name  # the persistent key, not a new one
    nonce = os.urandom(20)
    quote, sig = agent.quote(ak, nonce, SELECTION)
    result = verify_quote(ak.public, quote, sig, nonce=nonce, pcrs=agent.read_pcrs(SELECTION))
    assert result.extra_data == nonce


@pytest.mark.parametrize("ek_alg", ["ecc", "rsa"])
def test_credential_activation_proves_the_ak_is_in_the_eks_tpm(agent, ek_alg):
    ek = agent.ek(ek_alg)
    ak = agent.ak("ecc", handle=0x81010010)
    secret = os.urandom(32)
    cred = make_credential(ek.public, ak.name, secret)
    assert agent.activate_credential(ak, ek, cred.id_object, cred.encrypted_secret) == secret
    # a credential made for another object's Name does not activate
    other = make_credential(ek.public, b"\x00\x0b" + bytes(32), secret)
    with pytest.raises(TPMError):
        agent.activate_credential(ak, ek, other.id_object, other.encrypted_secret)


def test_identity_key_certified_by_the_ak(agent):
    ak = agent.ak("ecc", handle=0x81010010)
    key = agent.identity_key("ecc")
    nonce = os.urandom(16)
    attest, sig = agent.certify(key, ak, nonce)
    result = verify_certify(ak.public, attest, sig, nonce=nonce, certified=key.public)
    assert result.certified_name == key.name


def test_sealed_secret_opens_only_on_this_tpm_in_this_state(swtpm, agent):
    ek = agent.ek("ecc")
    blob = seal_to_ek(ek.public, b"disk key", agent.read_pcrs(SELECTION))
    assert agent.unseal(ek, blob.public, blob.duplicate, blob.encrypted_seed, SELECTION) == b"disk key"
    with SwTPM() as other_tpm, AgentTPM(other_tpm.tcti) as other:
        with pytest.raises(TPMError) as info:
            other.unseal(other.ek("ecc"), blob.public, blob.duplicate, blob.encrypted_seed, SELECTION)
        assert "integrity" in info.value.message
    swtpm.extend(14, {"sha256": b"\x01" * 32})
    with pytest.raises(TPMError) as info:
        agent.unseal(ek, blob.public, blob.duplicate, blob.encrypted_seed, SELECTION)
    assert "policy" in info.value.message
    # sealed again to the new state, it opens
    blob = seal_to_ek(ek.public, b"disk key", agent.read_pcrs(SELECTION))
    assert agent.unseal(ek, blob.public, blob.duplicate, blob.encrypted_seed, SELECTION) == b"disk key"


def test_no_ek_certificate_in_swtpm_nv(agent):
    assert agent.ek_certificate("ecc") is None


def test_unreachable_tpm_is_a_typed_error():
    with pytest.raises(TPMError) as info:
        AgentTPM("swtpm:host=127.0.0.1,port=1")
    assert info.value.code == "tpm.unavailable"
