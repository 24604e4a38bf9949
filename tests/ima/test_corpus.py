"""The keylime IMA lines in the shared corpus (INDEX.md section 2, keylime/expected.json)."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography import x509

from attestd.errors import VerificationError
from attestd.ima import Keyring, SignatureStatus, keyid_v2, parse, parse_signature, verify_signatures
from attestd.ima.replay import ReplayState

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def kl(corpus):
    return corpus / "keylime"


@pytest.fixture(scope="module")
def keyring(kl):
    return Keyring.from_keys([(kl / "ima_rsa2048pub.pem").read_bytes(), (kl / "ima_secp256k1pub.pem").read_bytes()])


def test_openpower_template_hashes_and_fields(kl):
    log = parse((kl / "ima_ascii_measurements_openpower.txt").read_bytes())
    assert log.format == "ascii" and len(log) == 5
    assert all(e.template_name == "ima-sig" and e.pcr == 10 for e in log.entries)
    assert all(e.template_hash_ok for e in log.entries)
    log.verify_template_hashes()
    first = log.entries[0]
    assert first.filename == "boot_aggregate" and first.signature is None
    assert first.digest.algo == "sha256"
    assert [e.filename for e in log.entries[3:]] == ["/usr/bin/dd", "/usr/bin/zmore"]


def test_openpower_signatures(kl, keyring):
    log = parse((kl / "ima_ascii_measurements_openpower.txt").read_bytes())
    sig4, sig5 = parse_signature(log.entries[3].signature), parse_signature(log.entries[4].signature)
    assert (sig4.keyid_hex, sig4.hash_name, len(sig4.signature)) == ("f3452d23", "sha256", 256)
    assert (sig5.keyid_hex, sig5.hash_name) == ("531f4025", "sha256")
    assert sorted(f"{k.keyid:08x}" for k in keyring.keys) == ["531f4025", "f3452d23"]

    results = verify_signatures(log, keyring)
    assert [r.status for r in results] == [SignatureStatus.UNSIGNED] * 3 + [SignatureStatus.VALID] * 2
    assert [r.keyid for r in results[3:]] == [0xF3452D23, 0x531F4025]

    empty = verify_signatures(log, Keyring())
    assert [r.status for r in empty[3:]] == [SignatureStatus.UNKNOWN_KEY] * 2
    assert not any(r.valid for r in empty)

    # Each key verifies only its own entry: swap keys under the other's id -> invalid.
    rsa_key = next(k for k in keyring.keys if k.keyid == 0xF3452D23)
    ec_key = next(k for k in keyring.keys if k.keyid == 0x531F4025)
    swapped = Keyring((type(rsa_key)(0x531F4025, rsa_key.public_key, "x"), type(ec_key)(0xF3452D23, ec_key.public_key, "y")))
    assert [r.status for r in verify_signatures(log, swapped)[3:]] == [SignatureStatus.INVALID] * 2


def test_running_pcr10_fed_line_by_line(kl):
    """keylime test_iterative_attestation: SHA-1 running hash of template hashes, one line at a time."""
    lines = (kl / "ima_ascii_measurements_openpower.txt").read_bytes().splitlines(keepends=True)
    state = ReplayState.initial()
    expected = bytes(20)
    for k, line in enumerate(lines):
        chunk = parse(line, first_index=k)
        state = chunk.replay_state(state)
        expected = hashlib.sha1(expected + bytes.fromhex(line.split()[1].decode())).digest()
        assert state.position == k + 1
        assert state.value("sha1") == expected
        # the quote taken now matches exactly this prefix of the whole list
        assert parse(b"".join(lines)).matching_prefix(expected) == k + 1
    # nothing new: an empty continuation leaves the state unchanged
    assert parse(b"", first_index=len(lines)).replay_state(state) == state


def test_keyring_imabuf_entry(kl):
    log = parse((kl / "ima_ascii_keyring_imabuf.txt").read_bytes())
    (e,) = log.entries
    assert e.template_name == "ima-buf" and e.filename == ".ima" and e.template_hash_ok
    assert hashlib.sha256(e.buf).hexdigest() == "a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a"
    assert e.digest.digest == hashlib.sha256(e.buf).digest()
    cert = x509.load_der_x509_certificate(e.buf)
    assert "ecdsa-ca-signed-ec-key" in cert.subject.rfc4514_string()
    ring = Keyring.from_ima_buf(log.entries)
    assert keyid_v2(cert.public_key()) in {k.keyid for k in ring.keys}


def test_bad_signature_line(kl, keyring):
    """Parse succeeds (structure is fine); the template hash check and the signature both fail."""
    log = parse((kl / "ima_ascii_bad_signature.txt").read_bytes())
    (e,) = log.entries
    assert not e.template_hash_ok
    with pytest.raises(VerificationError) as exc:
        log.verify_template_hashes()
    assert exc.value.code == "ima.template_hash_mismatch"
    assert exc.value.offset == 0 and exc.value.details["index"] == 0
    with pytest.raises(VerificationError) as exc:
        log.replay()
    assert exc.value.code == "ima.template_hash_mismatch"
    (r,) = verify_signatures(log, keyring)
    assert r.status is SignatureStatus.MALFORMED and r.code == "ima.signature.size"


def test_derived_pcr10_over_measurements_signatures_keyring(kl, corpus):
    """DERIVED regression: the 5 openpower lines followed by the keyring line."""
    expected = json.loads((kl / "expected.json").read_text())["derived_pcr10_sha1_over_measurements+signatures+keyring"]
    data = (kl / "ima_ascii_measurements_openpower.txt").read_bytes() + (kl / "ima_ascii_keyring_imabuf.txt").read_bytes()
    log = parse(data)
    assert len(log) == 6
    assert log.replay()["sha1"][10].hex() == expected == "3071bc1579d80e38ff478dbccdd82e95b3f669a2"
    assert log.matching_prefix(bytes.fromhex(expected)) == 6
    # SHA-256 bank: template digests recomputed with SHA-256 over each entry's template data
    sha256 = bytes(32)
    for e in log.entries:
        sha256 = hashlib.sha256(sha256 + hashlib.sha256(e.template_data).digest()).digest()
    assert log.replay()["sha256"][10] == sha256
    assert log.matching_prefix(sha256, bank="sha256") == 6
