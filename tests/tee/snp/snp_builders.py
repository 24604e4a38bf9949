"""A private AMD-shaped PKI for cases the corpus lacks (Turin, VLEK, masked CHIP_ID).

Real keys and real signatures, generated here: an ARK and ASK (RSA, RSASSA-PSS SHA-384 salt 48),
a VCEK/VLEK (ECDSA P-384) with AMD's extensions, and reports signed with the VCEK key. The
verifier cannot tell these from AMD's except by the trust anchor, which the tests pass explicitly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
AT = datetime(2024, 6, 1, tzinfo=UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Advanced Micro Devices"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(subject: str, issuer: str, pub, signer_key, *, ca: bool, exts=(), days=3650) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + timedelta(days=days))
    )
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    for oid, value in exts:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False)
    return b.sign(signer_key, hashes.SHA384(), rsa_padding=PSS)


def der_int(n: int) -> bytes:
    body = n.to_bytes(1, "big") if n < 0x80 else b"\x00" + n.to_bytes(1, "big")
    return bytes([0x02, len(body)]) + body


def ia5(s: str) -> bytes:
    return bytes([0x16, len(s)]) + s.encode()


@dataclass(frozen=True)
class Pki:
    product: str
    ark: x509.Certificate
    ask: x509.Certificate
    ask_key: rsa.RSAPrivateKey


@cache
def pki(product: str, vlek: bool = False) -> Pki:
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ark = _cert(f"ARK-{product}", f"ARK-{product}", ark_key.public_key(), ark_key, ca=True)
    ask_cn = f"SEV-VLEK-{product}" if vlek else f"SEV-{product}"
    ask = _cert(ask_cn, f"ARK-{product}", ask_key.public_key(), ark_key, ca=True)
    return Pki(product, ark, ask, ask_key)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def endorsement_cert(
    p: Pki,
    *,
    tcb: dict,
    hwid: bytes | None,
    product_name: str,
    vlek: bool = False,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.Certificate:
    a = "1.3.6.1.4.1.3704.1"
    exts = [
        (f"{a}.1", der_int(0)),
        (f"{a}.2", ia5(product_name)),
        (f"{a}.3.1", der_int(tcb["boot_loader"])),
        (f"{a}.3.2", der_int(tcb["tee"])),
        (f"{a}.3.3", der_int(tcb["snp"])),
        (f"{a}.3.8", der_int(tcb["microcode"])),
    ]
    if "fmc" in tcb:
        exts.append((f"{a}.3.9", der_int(tcb["fmc"])))
    if hwid is not None:
        exts.append((f"{a}.4", hwid))
    if vlek:
        exts.append((f"{a}.5", ia5("csp.example")))
    cn = "SEV-VLEK" if vlek else "SEV-VCEK"
    return _cert(
        cn,
        p.ask.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
        (key or ec_key()).public_key(),
        p.ask_key,
        ca=False,
        exts=exts,
        days=2555,
    )


def sign_report(body: bytes, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """Replace the signature of a 1184-byte report with a fresh one over bytes [0, 0x2A0)."""
    assert len(body) == 0x4A0
    der = (key or ec_key()).sign(body[:0x2A0], ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    sig = r.to_bytes(72, "little") + s.to_bytes(72, "little")
    return body[:0x2A0] + sig + bytes(0x4A0 - 0x2A0 - len(sig))


def patch(report: bytes, offset: int, value: bytes) -> bytes:
    return report[:offset] + value + report[offset + len(value) :]


def make_report(
    base: bytes,
    *,
    version: int | None = None,
    cpuid: tuple[int, int, int] | None = None,
    tcb_raw: int | None = None,
    chip_id: bytes | None = None,
    signer_info: int | None = None,
) -> bytes:
    """A copy of ``base`` with fields changed, then re-signed with :func:`ec_key`."""
    out = base
    if version is not None:
        out = patch(out, 0, struct.pack("<I", version))
    if cpuid is not None:
        out = patch(out, 0x188, bytes(cpuid))
    if tcb_raw is not None:
        for off in (0x38, 0x180, 0x1E0, 0x1F0):
            out = patch(out, off, struct.pack("<Q", tcb_raw))
    if chip_id is not None:
        out = patch(out, 0x1A0, chip_id.ljust(64, b"\x00"))
    if signer_info is not None:
        out = patch(out, 0x48, struct.pack("<I", signer_info))
    return sign_report(out)
