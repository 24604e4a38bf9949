"""File signatures: signature_v2_hdr decoding, key ids, verification results."""

from __future__ import annotations

import datetime
import hashlib
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from attestd.errors import EvidenceError
from attestd.ima import Keyring, SignatureStatus, keyid_v2, parse, parse_signature, verify_signatures
from attestd.ima.signatures import verify_signature
from attestd.testing.imagen import generate


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("which", ["rsa_key", "ec_key"])
def test_generated_signatures_verify(which, request):
    key = request.getfixturevalue(which)
    g = generate(40, seed=5, templates=("ima-sig", "ima-modsig"), signer=key, sign_rate=0.6)
    assert g.signed
    for data in (g.binary, g.ascii):
        log = parse(data)
        results = verify_signatures(log, Keyring.from_keys([key.public_key()]))
        valid = [r.index for r in results if r.status is SignatureStatus.VALID]
        assert valid == g.signed
        assert all(r.status is SignatureStatus.UNSIGNED for r in results if r.index not in g.signed)
        assert all(r.status is SignatureStatus.UNKNOWN_KEY for r in verify_signatures(log, Keyring())
                   if r.index in g.signed)


def test_wrong_key_with_same_keyid_is_invalid(rsa_key):
    g = generate(10, seed=1, templates=("ima-sig",), signer=rsa_key, sign_rate=1.0)
    log = parse(g.binary)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    keyid = keyid_v2(rsa_key.public_key())
    fake = Keyring((type(Keyring.from_keys([other]).keys[0])(keyid, other, "impostor"),))
    r = verify_signatures(log, fake)[1]
    assert r.status is SignatureStatus.INVALID and r.code == "ima.signature.invalid" and r.keyid == keyid


def test_signature_over_other_digest_is_invalid(ec_key):
    g = generate(4, seed=2, templates=("ima-sig",), signer=ec_key, sign_rate=1.0)
    # swap entry 1's signature into entry 2: well formed, known key, wrong digest
    log = parse(g.binary)
    e1, e2 = log.entries[1], log.entries[2]
    i = e2.template.index("sig")
    forged = type(e2)(e2.index, e2.offset, e2.pcr, e2.template_hash, e2.template,
                      e2.fields[:i] + (e1.fields[i],) + e2.fields[i + 1 :], e2.template_data)
    r = verify_signature(forged, Keyring.from_keys([ec_key.public_key()]))
    assert r.status is SignatureStatus.INVALID


def test_keyid_from_certificate_ski_and_pem_der(ec_key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ima signer")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier(b"\x01" * 16 + b"\xde\xad\xbe\xef")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ec_key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(ski, critical=False).sign(ec_key, hashes.SHA256()))
    for item in (cert, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)):
        ring = Keyring.from_keys([item])
        assert {k.keyid for k in ring.keys} == {0xDEADBEEF, keyid_v2(ec_key.public_key())}
    der_pub = ec_key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    assert Keyring.from_keys([der_pub]).keys[0].keyid == keyid_v2(ec_key.public_key())
    expected = hashlib.sha1(ec_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).digest()[-4:]
    assert keyid_v2(ec_key.public_key()).to_bytes(4, "big") == expected
    with pytest.raises(EvidenceError) as exc:
        Keyring.from_keys([b"not a key"])
    assert exc.value.code == "ima.keyring.bad_key"


@pytest.mark.parametrize(
    "blob, code",
    [
        (b"", "ima.signature.truncated"),
        (b"\x03\x02\x04\x00\x00", "ima.signature.truncated"),
        (b"\x02\x02\x04" + bytes(6), "ima.signature.type"),
        (b"\x03\x01\x04" + bytes(6), "ima.signature.version"),
        (b"\x03\x02\x04\x01\x02\x03\x04\x00\x05abc", "ima.signature.size"),
        (b"\x03\x02\x04\x01\x02\x03\x04\x00\x02abc", "ima.signature.size"),
    ],
)
def test_signature_header_errors(blob, code):
    with pytest.raises(EvidenceError) as exc:
        parse_signature(blob)
    assert exc.value.code == code


def test_header_fields():
    s = parse_signature(b"\x03\x02\x04\xf3\x45\x2d\x23\x00\x03abc")
    assert (s.type, s.version, s.hash_name, s.keyid_hex, s.signature) == (3, 2, "sha256", "f3452d23", b"abc")


def test_fsverity_v3_signature(ec_key):
    """IMA_VERITY_DIGSIG v3 signs H(ima_file_id) = H(type || algo || fs-verity digest)."""
    digest = hashlib.sha256(b"verity tree root").digest()
    signed = hashlib.sha256(bytes([6, 4]) + digest).digest()
    sig = ec_key.sign(signed, ec.ECDSA(Prehashed(hashes.SHA256())))
    hdr = struct.pack(">BBBIH", 6, 3, 4, keyid_v2(ec_key.public_key()), len(sig)) + sig
    tdata = b"".join(struct.pack("<I", len(f)) + f for f in (b"verity:sha256:\0" + digest, b"/usr/bin/x\0", hdr))
    th = hashlib.sha1(tdata).digest()
    data = struct.pack("<I20sI", 10, th, 9) + b"ima-sigv2" + struct.pack("<I", len(tdata)) + tdata
    log = parse(data)
    ring = Keyring.from_keys([ec_key.public_key()])
    assert verify_signatures(log, ring)[0].status is SignatureStatus.VALID
    assert log.replay()["sha1"][10] == hashlib.sha1(bytes(20) + th).digest()


def test_algorithm_mismatch_is_invalid(ec_key):
    g = generate(3, seed=3, templates=("ima-sig",), signer=ec_key, sign_rate=1.0, digest_algo="sha1")
    log = parse(g.binary)
    assert verify_signatures(log, Keyring.from_keys([ec_key.public_key()]))[1].status is SignatureStatus.VALID
    e = log.entries[1]
    i = e.template.index("sig")
    sig = bytearray(e.fields[i])
    sig[2] = 4  # header now claims sha256 while the measured digest is sha1
    forged = type(e)(e.index, e.offset, e.pcr, e.template_hash, e.template,
                     e.fields[:i] + (bytes(sig),), e.template_data)
    r = verify_signature(forged, Keyring.from_keys([ec_key.public_key()]))
    assert r.status is SignatureStatus.INVALID and r.code == "ima.signature.algo_mismatch"
