"""Independent test helpers: TPM structures built with ``struct`` (not with attestd's encoders),
software-signed quotes, and a reference TPM2_ActivateCredential written from TPM 2.0 Part 1, 24.

They let the verifier's individual checks be exercised with *valid* signatures over crafted
content (which an attacker could not produce, but a buggy verifier must still reject), and let the
credential code be checked without a TPM as well as with swtpm.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

ALG = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sha512": 0x000D}
SIZE = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
CRYPTO = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
RSASSA, RSAPSS, ECDSA = 0x0014, 0x0016, 0x0018
MAGIC = 0xFF544347
ST_QUOTE, ST_CERTIFY, ST_CREATION = 0x8018, 0x8017, 0x801A


def b2(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def selection(banks: dict[str, list[int]], size: int = 3) -> bytes:
    out = struct.pack(">I", len(banks))
    for bank, pcrs in banks.items():
        bitmap = bytearray(size)
        for p in pcrs:
            bitmap[p // 8] |= 1 << (p % 8)
        out += struct.pack(">HB", ALG[bank], size) + bytes(bitmap)
    return out


def attest(attested: bytes, *, st: int = ST_QUOTE, extra: bytes = b"", magic: int = MAGIC,
           signer: bytes = b"\x00\x0b" + b"\x11" * 32, clock: int = 1234, reset: int = 2, restart: int = 3,
           safe: int = 1, fw: int = 0x2019102300163636) -> bytes:
    return (struct.pack(">IH", magic, st) + b2(signer) + b2(extra)
            + struct.pack(">QIIB", clock, reset, restart, safe) + struct.pack(">Q", fw) + attested)


def quote_info(banks: dict[str, list[int]], values: dict[str, dict[int, bytes]], hash: str) -> bytes:
    h = hashlib.new(hash)
    for bank, pcrs in banks.items():
        for p in sorted(pcrs):
            h.update(values[bank][p])
    return selection(banks) + b2(h.digest())


def sign(key, message: bytes, *, hash: str = "sha256", scheme: int | None = None) -> bytes:
    """TPMT_SIGNATURE by a software key."""
    ch = CRYPTO[hash]()
    if isinstance(key, rsa.RSAPrivateKey):
        scheme = scheme or RSASSA
        if scheme == RSASSA:
            sig = key.sign(message, padding.PKCS1v15(), ch)
        else:
            sig = key.sign(message, padding.PSS(padding.MGF1(ch), SIZE[hash]), ch)
        return struct.pack(">HH", scheme, ALG[hash]) + b2(sig)
    der = key.sign(message, ec.ECDSA(ch))
    r, s = decode_dss_signature(der)
    n = (key.curve.key_size + 7) // 8
    return struct.pack(">HH", scheme or ECDSA, ALG[hash]) + b2(r.to_bytes(n, "big")) + b2(s.to_bytes(n, "big"))


def rsa_tpmt_public(key: rsa.RSAPublicKey, *, scheme: int = 0x0010, hash: str | None = None,
                    attrs: int = 0x00050072, name_alg: str = "sha256") -> bytes:
    """TPMT_PUBLIC of an RSA signing key (NULL symmetric)."""
    scheme_bytes = struct.pack(">H", scheme) + (struct.pack(">H", ALG[hash]) if hash else b"")
    n = key.public_numbers().n.to_bytes(key.key_size // 8, "big")
    return (struct.pack(">HHI", 0x0001, ALG[name_alg], attrs) + b2(b"") + struct.pack(">H", 0x0010)
            + scheme_bytes + struct.pack(">HI", key.key_size, 0) + b2(n))


def ecc_tpmt_public(key: ec.EllipticCurvePublicKey, *, hash: str = "sha256", attrs: int = 0x00050072) -> bytes:
    curve = {"secp256r1": 3, "secp384r1": 4}[key.curve.name]
    n = (key.curve.key_size + 7) // 8
    nums = key.public_numbers()
    return (struct.pack(">HHI", 0x0023, ALG["sha256"], attrs) + b2(b"") + struct.pack(">H", 0x0010)
            + struct.pack(">HH", ECDSA, ALG[hash]) + struct.pack(">HH", curve, 0x0010)
            + b2(nums.x.to_bytes(n, "big")) + b2(nums.y.to_bytes(n, "big")))


def name(tpmt_public: bytes, name_alg: str = "sha256") -> bytes:
    return struct.pack(">H", ALG[name_alg]) + hashlib.new(name_alg, tpmt_public).digest()


# -- reference credential activation (TPM side), Part 1 11.4.10 and 24 -------------------------

def ref_kdfa(hash: str, key: bytes, label: bytes, context: bytes, bits: int) -> bytes:
    out, i = b"", 1
    while len(out) * 8 < bits:
        out += hmac.new(key, struct.pack(">I", i) + label + b"\x00" + context + struct.pack(">I", bits),
                        hash).digest()
        i += 1
    return out[: bits // 8]


def ref_kdfe(hash: str, z: bytes, use: bytes, u: bytes, v: bytes, bits: int) -> bytes:
    out, i = b"", 1
    while len(out) * 8 < bits:
        out += hashlib.new(hash, struct.pack(">I", i) + z + use + b"\x00" + u + v).digest()
        i += 1
    return out[: bits // 8]


def ref_activate(ek_private, name_alg: str, sym_bits: int, ek_x: bytes, ak_name: bytes,
                 id_object: bytes, encrypted_secret: bytes) -> bytes:
    """Recover the credential like TPM2_ActivateCredential; raises ValueError on an integrity failure."""
    (size,) = struct.unpack(">H", id_object[:2])
    assert size == len(id_object) - 2
    body = id_object[2:]
    (hsize,) = struct.unpack(">H", body[:2])
    integrity, enc_identity = body[2:2 + hsize], body[2 + hsize:]
    secret = encrypted_secret[2:]
    if isinstance(ek_private, rsa.RSAPrivateKey):
        h = CRYPTO[name_alg]()
        seed = ek_private.decrypt(secret, padding.OAEP(padding.MGF1(h), h, b"IDENTITY\x00"))
    else:
        (xl,) = struct.unpack(">H", secret[:2])
        x = secret[2:2 + xl]
        (yl,) = struct.unpack(">H", secret[2 + xl:4 + xl])
        y = secret[4 + xl:4 + xl + yl]
        eph = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                            ek_private.curve).public_key()
        z = ek_private.exchange(ec.ECDH(), eph)
        seed = ref_kdfe(name_alg, z, b"IDENTITY", x, ek_x, SIZE[name_alg] * 8)
    hmac_key = ref_kdfa(name_alg, seed, b"INTEGRITY", b"", SIZE[name_alg] * 8)
    if not hmac.compare_digest(hmac.new(hmac_key, enc_identity + ak_name, name_alg).digest(), integrity):
        raise ValueError("integrity check failed")
    sym = ref_kdfa(name_alg, seed, b"STORAGE", ak_name, sym_bits)
    dec = Cipher(algorithms.AES(sym), CFB(b"\x00" * 16)).decryptor()
    plain = dec.update(enc_identity) + dec.finalize()
    (n,) = struct.unpack(">H", plain[:2])
    return plain[2:2 + n]


#: AK name -> (EK algorithm, AK algorithm, hash, scheme)
AK_KINDS = {
    "rsa-sha256": ("rsa", "rsa", "sha256", "rsassa"),
    "rsa-sha1": ("rsa", "rsa", "sha1", "rsassa"),
    "rsapss-sha384": ("rsa", "rsa", "sha384", "rsapss"),
    "ecc-sha256": ("ecc", "ecc", "sha256", "ecdsa"),
    "ecc384-sha384": ("ecc", "ecc384", "sha384", "ecdsa"),
}
