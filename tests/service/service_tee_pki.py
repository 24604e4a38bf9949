"""Fresh SEV-SNP evidence over service nonces, for the TEE route tests.

The corpus reports cannot carry a nonce this service issued, so freshness is tested with a private
AMD-shaped PKI made here: an ARK and ASK (RSA-2048, RSASSA-PSS SHA-384, salt 48) and
a VCEK (ECDSA P-384) carrying AMD's extensions, which signs copies of a real corpus report
(trustee ``snp/test-report.bin``, Milan, not debuggable) with REPORT_DATA / HOST_DATA / POLICY
replaced. The service trusts the private ARK only because the test configures it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
#: a time inside the private certificates' validity
AT = datetime(2024, 6, 1, tzinfo=UTC)

# ATTESTATION_REPORT offsets (AMD SEV-SNP ABI, "ATTESTATION_REPORT Structure")
POLICY, REPORT_DATA, HOST_DATA, REPORTED_TCB, CHIP_ID = 0x08, 0x50, 0xC0, 0x180, 0x1A0
DEBUG_BIT = 1 << 19


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Advanced Micro Devices"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: str, pub, key, *, ca: bool, exts=()) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer)).public_key(pub)
         .serial_number(x509.random_serial_number()).not_valid_before(NOT_BEFORE)
         .not_valid_after(NOT_BEFORE + timedelta(days=3650)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    for oid, value in exts:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False)
    return b.sign(key, hashes.SHA384(), rsa_padding=PSS)


def _der_int(n: int) -> bytes:
    body = n.to_bytes(1, "big") if n < 0x80 else b"\x00" + n.to_bytes(1, "big")
    return bytes([0x02, len(body)]) + body


def _ia5(s: str) -> bytes:
    return bytes([0x16, len(s)]) + s.encode()


@dataclass
class SnpSigner:
    """ARK -> ASK -> VCEK for the chip and TCB of ``base`` (a Milan report), and reports signed by it."""

    base: bytes
    ark: x509.Certificate
    ask: x509.Certificate
    vcek: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def for_report(cls, base: bytes) -> SnpSigner:
        ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ark = _cert("ARK-Milan", "ARK-Milan", ark_key.public_key(), ark_key, ca=True)
        ask = _cert("SEV-Milan", "ARK-Milan", ask_key.public_key(), ark_key, ca=True)
        key = ec.generate_private_key(ec.SECP384R1())
        tcb = base[REPORTED_TCB:REPORTED_TCB + 8]  # boot_loader, tee, reserved x4, snp, microcode
        a = "1.3.6.1.4.1.3704.1"
        exts = [(f"{a}.1", _der_int(0)), (f"{a}.2", _ia5("Milan-B0")), (f"{a}.3.1", _der_int(tcb[0])),
                (f"{a}.3.2", _der_int(tcb[1])), (f"{a}.3.3", _der_int(tcb[6])), (f"{a}.3.8", _der_int(tcb[7])),
                (f"{a}.4", base[CHIP_ID:CHIP_ID + 64])]
        vcek = _cert("SEV-VCEK", "SEV-Milan", key.public_key(), ask_key, ca=False, exts=exts)
        return cls(base, ark, ask, vcek, key)

    def write_roots(self, path: Path) -> Path:
        """The ASK and ARK as a PEM file (what ``tee_amd_roots`` takes, like KDS ``cert_chain``)."""
        path.write_bytes(self.ask.public_bytes(Encoding.PEM) + self.ark.public_bytes(Encoding.PEM))
        return path

    def report(self, *, report_data: bytes = b"", host_data: bytes | None = None, debug: bool = False) -> bytes:
        out = bytearray(self.base)
        out[REPORT_DATA:REPORT_DATA + 64] = report_data.ljust(64, b"\0")
        if host_data is not None:
            out[HOST_DATA:HOST_DATA + 32] = host_data
        policy = struct.unpack_from("<Q", out, POLICY)[0]
        policy = policy | DEBUG_BIT if debug else policy & ~DEBUG_BIT
        struct.pack_into("<Q", out, POLICY, policy)
        der = self.key.sign(bytes(out[:0x2A0]), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(der)
        out[0x2A0:0x4A0] = (r.to_bytes(72, "little") + s.to_bytes(72, "little")).ljust(0x200, b"\0")
        return bytes(out)

    def azure_report(self, report: bytes) -> str:
        """Azure's ``report`` member: base64url of ``{"SnpReport", "VcekCertChain"}``."""
        inner = {"SnpReport": b64u(report), "VcekCertChain": b64u(self.vcek.public_bytes(Encoding.PEM))}
        return b64u(json.dumps(inner).encode())

    def request(self, nonce: str | None, *, runtime: bytes | None = None, runtime_type: str = "JSON",
                init: bytes | None = None, bind: bytes | None = None, debug: bool = False, **extra) -> dict:
        """An AttestSevSnpVm request whose REPORT_DATA binds ``nonce`` as the service wants:
        the nonce bytes, or SHA-256(nonce || runtime) (``bind`` overrides what is bound)."""
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4)) if nonce else b""
        if bind is None:
            bind = hashlib.sha256(raw + runtime).digest() if runtime is not None else raw
        report = self.report(report_data=bind, host_data=hashlib.sha256(init).digest() if init else None,
                             debug=debug)
        body: dict = {"report": self.azure_report(report)}
        if nonce is not None:
            body["nonce"] = nonce
        if runtime is not None:
            body["runtimeData"] = {"data": b64u(runtime), "dataType": runtime_type}
        if init is not None:
            body["initTimeData"] = {"data": b64u(init), "dataType": "JSON"}
        body.update(extra)
        return body


def throwaway_roots(directory: Path) -> dict[str, str]:
    """TEE trust settings with freshly made roots (an ARK-Milan / SEV-Milan pair and a P-256
    "Intel SGX Root CA"): nothing real verifies against them, but every request reaches the
    evidence parsers (for fuzzing the routes without the corpus)."""
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ark = _cert("ARK-Milan", "ARK-Milan", ark_key.public_key(), ark_key, ca=True)
    ask = _cert("SEV-Milan", "ARK-Milan", ask_key.public_key(), ark_key, ca=True)
    amd = directory / "throwaway-ark.pem"
    amd.write_bytes(ask.public_bytes(Encoding.PEM) + ark.public_bytes(Encoding.PEM))
    intel_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intel SGX Root CA")])
    intel = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(intel_key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(NOT_BEFORE)
             .not_valid_after(NOT_BEFORE + timedelta(days=36500))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .sign(intel_key, hashes.SHA256()))
    root = directory / "throwaway-intel-root.pem"
    root.write_bytes(intel.public_bytes(Encoding.PEM))
    return {"tee_amd_roots": str(amd), "tee_intel_root": str(root)}
