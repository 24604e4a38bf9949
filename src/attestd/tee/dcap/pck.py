"""PCK certificates: PEM chains, Intel's SGX extensions, chain and CRL checks.

"Intel SGX PCK Certificate and Certificate Revocation List Profile Specification":

* section 1.3 "Intel SGX PCK Certificate": PCK leaf -> "Intel SGX PCK Platform CA" or
  "Intel SGX PCK Processor CA" -> "Intel SGX Root CA"; ECDSA P-256 with SHA-256 throughout.
* section 1.3.5 "Intel SGX PCK Certificate Extensions" (OID 1.2.840.113741.1.13.1): PPID (.1), TCB
  (.2: SGX TCB Comp01..16 SVN .2.1-.2.16, PCESVN .2.17, CPUSVN .2.18), PCE-ID (.3), FMSPC (.4),
  SGX Type (.5) and, for Platform CA certificates, PlatformInstanceID (.6) and Configuration
  (.7: dynamicPlatform .7.1, cachedKeys .7.2, SMTEnabled .7.3).
* section 1.4 CRLs: the PCK CRL is issued by the PCK CA that issued the PCK certificate; the Root CA
  CRL by the Root CA (it covers the PCK CAs and the TCB Signing certificate).

The caller supplies the trust anchor (the Intel SGX Root CA certificate). Time is always an input.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.dcap import der

__all__ = [
    "SGX_EXTENSIONS_OID",
    "PckExtensions",
    "PckCertChain",
    "load_pem_certificates",
    "load_trusted_root",
    "parse_pck_extensions",
    "parse_pck_chain",
    "verify_chain",
    "check_crl",
    "check_not_revoked",
    "utc",
]

SGX_EXTENSIONS_OID = "1.2.840.113741.1.13.1"
_P = SGX_EXTENSIONS_OID

_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime (a naive value is taken to be UTC)."""
    if at.tzinfo is None:
        return at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc)


def load_pem_certificates(data: bytes | str, *, code: str, field: str) -> list[x509.Certificate]:
    """Every complete ``CERTIFICATE`` PEM block in ``data``, in order.

    Text outside the blocks is ignored (Intel chains in quotes are NUL-terminated; test quotes carry
    extra text). A block that does not decode is a ``code`` :class:`VerificationError`.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    certs = []
    for i, m in enumerate(_PEM_RE.finditer(data)):
        try:
            der_bytes = base64.b64decode(b"".join(m.group(1).split()), validate=True)
            certs.append(x509.load_der_x509_certificate(der_bytes))
        except (binascii.Error, ValueError) as exc:
            raise VerificationError(code, f"certificate {i} of the chain does not decode: {exc}",
                                    field=f"{field}[{i}]") from None
    return certs


def load_trusted_root(root: x509.Certificate | bytes | str) -> x509.Certificate:
    """The trust anchor as a certificate, from a certificate, PEM or DER."""
    if isinstance(root, x509.Certificate):
        return root
    if isinstance(root, str):
        root = root.encode()
    try:
        if b"-----BEGIN" in root:
            return x509.load_pem_x509_certificate(root)
        return x509.load_der_x509_certificate(root)
    except ValueError as exc:
        raise EvidenceError("dcap.trusted_root_invalid", f"the trusted root does not decode: {exc}",
                            field="trusted_root") from None


@dataclass(frozen=True, slots=True)
class PckExtensions:
    """The SGX Extensions of a PCK certificate (PCK profile 1.3.5)."""

    ppid: bytes
    #: SGX TCB Comp01..16 SVN
    tcb_components: tuple[int, ...]
    pce_svn: int
    cpu_svn: bytes
    pce_id: bytes
    fmspc: bytes
    #: 0 Standard, 1 Scalable, 2 Scalable with Integrity
    sgx_type: int
    platform_instance_id: bytes | None = None
    dynamic_platform: bool | None = None
    cached_keys: bool | None = None
    smt_enabled: bool | None = None

    def to_json(self) -> dict:
        out = {
            "ppid": self.ppid.hex(),
            "tcb_components": list(self.tcb_components),
            "pce_svn": self.pce_svn,
            "cpu_svn": self.cpu_svn.hex(),
            "pce_id": self.pce_id.hex(),
            "fmspc": self.fmspc.hex(),
            "sgx_type": self.sgx_type,
        }
        if self.platform_instance_id is not None:
            out["platform_instance_id"] = self.platform_instance_id.hex()
        for name in ("dynamic_platform", "cached_keys", "smt_enabled"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        return out


def _pairs(value: bytes, field: str, base: int) -> dict[str, der.Tlv]:
    """A DER SEQUENCE OF SEQUENCE { OID, value } as ``{oid: value TLV}``."""
    outer = der.read_tlvs(value, field=field, base=base)
    if len(outer) != 1 or outer[0].tag != der.TAG_SEQUENCE:
        raise EvidenceError("dcap.pck_extension_invalid", "expected one SEQUENCE", field=field, offset=base)
    return _pairs_content(outer[0].value, field, outer[0].offset)


def _pairs_content(content: bytes, field: str, base: int) -> dict[str, der.Tlv]:
    """The contents of a SEQUENCE OF SEQUENCE { OID, value } as ``{oid: value TLV}``."""
    out: dict[str, der.Tlv] = {}
    for item in der.read_tlvs(content, field=field, base=base):
        if item.tag != der.TAG_SEQUENCE:
            raise EvidenceError("dcap.pck_extension_invalid", "expected SEQUENCE {OID, value}", field=field,
                                offset=item.offset)
        parts = der.read_tlvs(item.value, field=field, base=item.offset)
        if len(parts) != 2 or parts[0].tag != der.TAG_OID:
            raise EvidenceError("dcap.pck_extension_invalid", "expected SEQUENCE {OID, value}", field=field,
                                offset=item.offset)
        oid = der.decode_oid(parts[0].value, field=field, offset=parts[0].offset)
        out[oid] = parts[1]
    return out


def _need(items: dict[str, der.Tlv], oid: str, tag: int, name: str, size: int | None = None) -> der.Tlv:
    tlv = items.get(oid)
    if tlv is None:
        raise EvidenceError("dcap.pck_extension_invalid", f"the PCK certificate has no {name} ({oid})",
                            field=f"SGX Extensions.{name}")
    if tlv.tag != tag or (size is not None and len(tlv.value) != size):
        raise EvidenceError("dcap.pck_extension_invalid", f"{name} ({oid}) has the wrong type or size",
                            field=f"SGX Extensions.{name}", offset=tlv.offset)
    return tlv


def parse_pck_extensions(cert: x509.Certificate) -> PckExtensions:
    """Decode the SGX Extensions (PCK profile 1.3.5) of a PCK certificate."""
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(_P))
    except x509.ExtensionNotFound:
        raise EvidenceError("dcap.pck_extension_invalid", "the PCK certificate has no SGX Extensions",
                            field="SGX Extensions") from None
    raw = ext.value.value  # UnrecognizedExtension
    items = _pairs(raw, "SGX Extensions", 0)
    ppid = _need(items, f"{_P}.1", der.TAG_OCTET_STRING, "PPID", 16).value
    tcb_tlv = _need(items, f"{_P}.2", der.TAG_SEQUENCE, "TCB")
    tcb = _pairs_content(tcb_tlv.value, "SGX Extensions.TCB", tcb_tlv.offset)
    comps = tuple(
        der.decode_int(_need(tcb, f"{_P}.2.{i}", der.TAG_INTEGER, f"TCB.SGX TCB Comp{i:02d} SVN").value,
                       field=f"SGX Extensions.TCB.SGX TCB Comp{i:02d} SVN")
        for i in range(1, 17)
    )
    if any(c > 255 for c in comps):
        raise EvidenceError("dcap.pck_extension_invalid", "an SGX TCB component SVN exceeds 255",
                            field="SGX Extensions.TCB")
    pce_svn = der.decode_int(_need(tcb, f"{_P}.2.17", der.TAG_INTEGER, "TCB.PCESVN").value,
                             field="SGX Extensions.TCB.PCESVN")
    cpu_svn = _need(tcb, f"{_P}.2.18", der.TAG_OCTET_STRING, "TCB.CPUSVN", 16).value
    pce_id = _need(items, f"{_P}.3", der.TAG_OCTET_STRING, "PCE-ID", 2).value
    fmspc = _need(items, f"{_P}.4", der.TAG_OCTET_STRING, "FMSPC", 6).value
    sgx_type = der.decode_int(_need(items, f"{_P}.5", der.TAG_ENUMERATED, "SGX Type").value,
                              field="SGX Extensions.SGX Type")
    pii = items.get(f"{_P}.6")
    platform_instance_id = pii.value if pii is not None and pii.tag == der.TAG_OCTET_STRING else None
    dyn = cached = smt = None
    conf = items.get(f"{_P}.7")
    if conf is not None and conf.tag == der.TAG_SEQUENCE:
        c = _pairs_content(conf.value, "SGX Extensions.Configuration", conf.offset)

        def flag(sub: str) -> bool | None:
            t = c.get(f"{_P}.7.{sub}")
            return bool(t.value and t.value[0]) if t is not None and t.tag == der.TAG_BOOLEAN else None

        dyn, cached, smt = flag("1"), flag("2"), flag("3")
    return PckExtensions(ppid, comps, pce_svn, cpu_svn, pce_id, fmspc, sgx_type, platform_instance_id, dyn,
                         cached, smt)


# -- chains ------------------------------------------------------------------------------------


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


#: Successful signature checks, keyed by the exact DER of (signed object, issuer). A signature check
#: is a pure function of those bytes, so a hit is as good as re-verifying; failures are never cached.
_VERIFIED: dict[tuple[bytes, bytes], bool] = {}
_VERIFIED_MAX = 4096


def _remember(key: tuple[bytes, bytes]) -> None:
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = True


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> None:
    """``child.verify_directly_issued_by(parent)``, memoised on success."""
    key = (child.tbs_certificate_bytes + child.signature, parent.public_bytes(serialization.Encoding.DER))
    if key in _VERIFIED:
        return
    child.verify_directly_issued_by(parent)
    _remember(key)


def verify_chain(
    certs: list[x509.Certificate],
    trusted_root: x509.Certificate,
    at: datetime,
    *,
    field: str,
    code: str,
    expired_code: str,
    names: tuple[str, ...] | None = None,
) -> None:
    """Check ``certs`` (leaf first, root last) against ``trusted_root`` at time ``at``.

    The last certificate must be a self-signed root with the trust anchor's subject and key; each
    certificate must be issued (name and ECDSA signature) by the next, and every issuer must be a
    CA. Signature and trust failures raise ``code``; a certificate outside its validity period at
    ``at`` raises ``expired_code``. ``names`` label the certificates in messages and ``field``.
    """
    at = utc(at)
    labels = names or tuple(f"{i}" for i in range(len(certs)))
    root = certs[-1]
    root_label = f"{field}.{labels[-1]}"
    try:
        _issued_by(root, root)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise VerificationError(code, f"unable to validate root cert {_cn(root.subject)!r}: "
                                f"self-signature does not verify ({type(exc).__name__})", field=root_label) from None
    if root.subject != trusted_root.subject or _spki(root) != _spki(trusted_root):
        raise VerificationError(code, f"the chain's root {_cn(root.subject)!r} is not the trusted root "
                                f"{_cn(trusted_root.subject)!r}", field=root_label)
    for i in range(len(certs) - 2, -1, -1):
        child, parent = certs[i], (trusted_root if i == len(certs) - 2 else certs[i + 1])
        label = f"{field}.{labels[i]}"
        try:
            _issued_by(child, parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise VerificationError(code, f"unable to validate {_cn(child.subject)!r}: signature verification "
                                    f"using {_cn(parent.subject)!r} failed ({type(exc).__name__})",
                                    field=label) from None
        try:
            bc = parent.extensions.get_extension_for_class(x509.BasicConstraints).value
            is_ca = bc.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise VerificationError(code, f"issuer {_cn(parent.subject)!r} is not a CA", field=label)
    for cert, lab in zip(certs, labels):
        if not (cert.not_valid_before_utc <= at <= cert.not_valid_after_utc):
            raise VerificationError(
                expired_code,
                f"certificate {_cn(cert.subject)!r} is valid {cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()}, not at {at.isoformat()}",
                field=f"{field}.{lab}",
                details={"not_before": cert.not_valid_before_utc.isoformat(),
                         "not_after": cert.not_valid_after_utc.isoformat(), "at": at.isoformat()},
            )


@dataclass(frozen=True, slots=True)
class PckCertChain:
    """The PCK chain from a quote: leaf, PCK CA (``ca`` = "platform" / "processor"), root."""

    leaf: x509.Certificate
    intermediate: x509.Certificate
    root: x509.Certificate
    extensions: PckExtensions
    ca: str

    @property
    def certificates(self) -> list[x509.Certificate]:
        return [self.leaf, self.intermediate, self.root]


def parse_pck_chain(pem: bytes) -> PckCertChain:
    """The three-certificate PCK chain of certification data type 5 (PCK profile 1.3).

    Anything other than exactly leaf, PCK CA and root is ``dcap.pck_chain_invalid``.
    """
    certs = load_pem_certificates(pem, code="dcap.pck_chain_invalid", field="pck_chain")
    if len(certs) != 3:
        raise VerificationError("dcap.pck_chain_invalid",
                                f"PCK cert chain invalid: expected 3 PEM certificates (PCK, PCK CA, root), "
                                f"found {len(certs)}", field="pck_chain")
    leaf, inter, root = certs
    cn = _cn(inter.subject)
    ca = "platform" if "Platform" in cn else "processor" if "Processor" in cn else "unknown"
    try:
        ext = parse_pck_extensions(leaf)
    except EvidenceError as err:
        raise VerificationError(err.code, err.message, field=err.field, offset=err.offset) from None
    return PckCertChain(leaf, inter, root, ext, ca)


# -- CRLs --------------------------------------------------------------------------------------


def check_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, at: datetime, *, field: str,
              code: str = "dcap.collateral_signature_invalid",
              expired_code: str = "dcap.collateral_expired") -> None:
    """The CRL is issued and signed by ``issuer`` and current at ``at`` (thisUpdate..nextUpdate)."""
    at = utc(at)
    if crl.issuer != issuer.subject:
        raise VerificationError("dcap.collateral_mismatch",
                                f"{field} is issued by {_cn(crl.issuer)!r}, not {_cn(issuer.subject)!r}",
                                field=field)
    key = (crl.tbs_certlist_bytes + crl.signature, issuer.public_bytes(serialization.Encoding.DER))
    if key not in _VERIFIED:
        if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise VerificationError(code, f"{field} signature does not verify with {_cn(issuer.subject)!r}",
                                    field=field)
        _remember(key)
    nu = crl.next_update_utc
    if at < crl.last_update_utc or (nu is not None and at > nu):
        raise VerificationError(
            expired_code,
            f"{field} is valid {crl.last_update_utc.isoformat()} to {nu.isoformat() if nu else '-'}, "
            f"not at {at.isoformat()}",
            field=field,
        )


def check_not_revoked(cert: x509.Certificate, crl: x509.CertificateRevocationList, *, field: str) -> None:
    revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if revoked is not None:
        raise VerificationError(
            "dcap.pck_revoked",
            f"{_cn(cert.subject)!r} (serial {cert.serial_number:x}) was revoked at "
            f"{revoked.revocation_date_utc.isoformat()}",
            field=field,
        )
