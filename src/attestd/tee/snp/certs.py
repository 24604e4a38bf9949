"""AMD SEV-SNP endorsement certificates: VCEK/VLEK extensions and the VCEK -> ASK -> ARK chain.

Names and OIDs follow AMD's *Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
Specification* (publication 57230), table "VCEK Certificate Extensions" (OIDs under
1.3.6.1.4.1.3704.1):

========================  ==========  ==================================================
OID                       name        encoding
========================  ==========  ==================================================
1.3.6.1.4.1.3704.1.1      structVersion  INTEGER
1.3.6.1.4.1.3704.1.2      productName    IA5String, e.g. ``Milan-B0`` or ``Genoa``
1.3.6.1.4.1.3704.1.3.1    blSPL          INTEGER (boot loader SVN)
1.3.6.1.4.1.3704.1.3.2    teeSPL         INTEGER
1.3.6.1.4.1.3704.1.3.3    snpSPL         INTEGER
1.3.6.1.4.1.3704.1.3.4-7  spl_4..spl_7   INTEGER (reserved)
1.3.6.1.4.1.3704.1.3.8    ucodeSPL       INTEGER (microcode)
1.3.6.1.4.1.3704.1.3.9    fmcSPL         INTEGER (Turin)
1.3.6.1.4.1.3704.1.4      hwID           raw 64 bytes (8 on Turin), or an OCTET STRING
1.3.6.1.4.1.3704.1.5      cspID          IA5String (VLEK only)
========================  ==========  ==================================================

The certificates are X.509 v3 signed with RSASSA-PSS, SHA-384, MGF1-SHA-384, salt length 48.
The ARK (AMD Root Key, ``CN=ARK-<product>``) is self-signed; it signs the ASK (``CN=SEV-<product>``)
or, for VLEKs, the ASVK (``CN=SEV-VLEK-<product>``), which signs the VCEK (``CN=SEV-VCEK``) or VLEK
(``CN=SEV-VLEK``). The product line is read from those CNs.

Trust anchors are an *input*: :func:`verify_chain` takes the caller's trusted ARKs (AMD publishes
them at ``https://kdsintf.amd.com/vcek/v1/<product>/cert_chain``). No ARK ships with Attestd.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.snp.report import ProductLine, SigningKey

__all__ = [
    "OID_BL_SPL",
    "OID_CSP_ID",
    "OID_FMC_SPL",
    "OID_HWID",
    "OID_PRODUCT_NAME",
    "OID_SNP_SPL",
    "OID_STRUCT_VERSION",
    "OID_TEE_SPL",
    "OID_UCODE_SPL",
    "CertInput",
    "EndorsementKeyInfo",
    "VerifiedChain",
    "endorsement_key_info",
    "load_certificate",
    "load_certificates",
    "verify_chain",
]

_AMD = "1.3.6.1.4.1.3704.1"
OID_STRUCT_VERSION = x509.ObjectIdentifier(f"{_AMD}.1")
OID_PRODUCT_NAME = x509.ObjectIdentifier(f"{_AMD}.2")
OID_BL_SPL = x509.ObjectIdentifier(f"{_AMD}.3.1")
OID_TEE_SPL = x509.ObjectIdentifier(f"{_AMD}.3.2")
OID_SNP_SPL = x509.ObjectIdentifier(f"{_AMD}.3.3")
OID_SPL_4_7 = tuple(x509.ObjectIdentifier(f"{_AMD}.3.{i}") for i in (4, 5, 6, 7))
OID_UCODE_SPL = x509.ObjectIdentifier(f"{_AMD}.3.8")
OID_FMC_SPL = x509.ObjectIdentifier(f"{_AMD}.3.9")
OID_HWID = x509.ObjectIdentifier(f"{_AMD}.4")
OID_CSP_ID = x509.ObjectIdentifier(f"{_AMD}.5")

#: A certificate given as DER, PEM (one or several) or an already loaded object.
CertInput = bytes | bytearray | str | x509.Certificate

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


# -- loading ------------------------------------------------------------------------------------


def _load_one_der(der: bytes, field: str) -> x509.Certificate:
    with warnings.catch_warnings():
        # AMD's KDS issued VCEKs with serial number 0 (go-sev-guest's vcek.testcer); cryptography
        # warns about non-positive serials but parses them.
        warnings.simplefilter("ignore")
        try:
            return x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise EvidenceError(
                "snp.cert_malformed", f"not a DER X.509 certificate: {exc}", field=field
            ) from None


def load_certificates(
    data: CertInput | Iterable[CertInput], field: str = "certificate"
) -> list[x509.Certificate]:
    """Certificates from DER bytes, a PEM bundle (text or bytes), a certificate, or an iterable of those.

    Malformed input is an :class:`EvidenceError` ``snp.cert_malformed``.
    """
    if isinstance(data, x509.Certificate):
        return [data]
    if isinstance(data, str):
        data = data.encode("ascii", errors="replace")
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
        if b"-----BEGIN" in raw:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    certs = x509.load_pem_x509_certificates(raw)
                except ValueError as exc:
                    raise EvidenceError(
                        "snp.cert_malformed", f"PEM certificate bundle does not parse: {exc}", field=field
                    ) from None
            return certs
        return [_load_one_der(raw, field)]
    out: list[x509.Certificate] = []
    for i, item in enumerate(data):
        out.extend(load_certificates(item, f"{field}[{i}]"))
    return out


def load_certificate(data: CertInput, field: str = "certificate") -> x509.Certificate:
    """Exactly one certificate (DER, PEM or object)."""
    certs = load_certificates(data, field)
    if len(certs) != 1:
        raise EvidenceError(
            "snp.cert_malformed", f"expected one certificate, found {len(certs)}", field=field
        )
    return certs[0]


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attrs) != 1:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


# -- VCEK / VLEK extensions ---------------------------------------------------------------------


def _der_integer(value: bytes, field: str) -> int:
    # INTEGER, short-form length, non-negative (a 0x00 pad byte before values >= 0x80).
    if len(value) < 3 or value[0] != 0x02 or value[1] != len(value) - 2 or value[1] > 2:
        raise EvidenceError(
            "snp.cert_extension", f"{field} is not a small DER INTEGER: {value.hex()}", field=field
        )
    body = value[2:]
    if body[0] & 0x80 or (len(body) == 2 and (body[0] != 0 or body[1] < 0x80)):
        raise EvidenceError(
            "snp.cert_extension", f"{field} is not a valid SPL value: {value.hex()}", field=field
        )
    n = int.from_bytes(body, "big")
    if n > 0xFF:
        raise EvidenceError("snp.cert_extension", f"{field} {n} does not fit a TCB byte", field=field)
    return n


def _der_ia5(value: bytes, field: str) -> str:
    if len(value) < 2 or value[0] != 0x16 or value[1] != len(value) - 2 or value[1] > 127:
        raise EvidenceError("snp.cert_extension", f"{field} is not a DER IA5String", field=field)
    try:
        return value[2:].decode("ascii")
    except UnicodeDecodeError:
        raise EvidenceError("snp.cert_extension", f"{field} is not ASCII", field=field) from None


def _hwid(value: bytes, field: str) -> bytes:
    # The KDS stores hwID as the raw 64 (Turin: 8) bytes without an OCTET STRING header; accept the
    # DER form too, as go-sev-guest and trustee do.
    if len(value) in (64, 8):
        return value
    if len(value) >= 2 and value[0] == 0x04 and value[1] == len(value) - 2 and value[1] in (64, 8):
        return value[2:]
    raise EvidenceError("snp.cert_extension", f"{field} has unexpected length {len(value)}", field=field)


@dataclass(frozen=True, slots=True)
class EndorsementKeyInfo:
    """What a VCEK or VLEK certificate says about the chip and TCB it endorses (57230)."""

    kind: SigningKey  # VCEK or VLEK
    product_name: str  # productName, e.g. "Milan-B0"
    struct_version: int | None
    bl_spl: int
    tee_spl: int
    snp_spl: int
    ucode_spl: int
    fmc_spl: int | None  # Turin only
    spl_4_7: tuple[int, int, int, int]
    hwid: bytes | None  # VCEK only: 64 bytes, 8 on Turin
    csp_id: str | None  # VLEK only

    @property
    def product_stepping(self) -> int | None:
        """Stepping from a productName such as ``Milan-B1`` (B0 -> 0, B1 -> 1), if named."""
        _, _, step = self.product_name.partition("-")
        if len(step) == 2 and step[0] == "B" and step[1].isdigit():
            return int(step[1])
        return None

    def components(self) -> dict[str, int]:
        out = {
            "boot_loader": self.bl_spl,
            "tee": self.tee_spl,
            "snp": self.snp_spl,
            "microcode": self.ucode_spl,
        }
        if self.fmc_spl is not None:
            out = {"fmc": self.fmc_spl, **out}
        return out


def endorsement_key_info(cert: x509.Certificate) -> EndorsementKeyInfo:
    """Read the AMD extensions of a VCEK (``CN=SEV-VCEK``) or VLEK (``CN=SEV-VLEK``) certificate."""
    cn = _cn(cert.subject)
    if cn == "SEV-VCEK":
        kind = SigningKey.VCEK
    elif cn == "SEV-VLEK":
        kind = SigningKey.VLEK
    else:
        raise EvidenceError(
            "snp.cert_extension",
            f"endorsement key certificate CN is {cn!r}, expected SEV-VCEK or SEV-VLEK",
            field="VCEK.subject",
        )
    exts: dict[str, bytes] = {}
    for ext in cert.extensions:
        dotted = ext.oid.dotted_string
        if dotted.startswith(_AMD + "."):
            if dotted in exts:
                raise EvidenceError("snp.cert_extension", f"duplicate extension {dotted}", field=dotted)
            value = ext.value
            exts[dotted] = value.value if isinstance(value, x509.UnrecognizedExtension) else b""

    def need(oid: x509.ObjectIdentifier, name: str) -> bytes:
        v = exts.get(oid.dotted_string)
        if v is None:
            raise EvidenceError(
                "snp.cert_extension",
                f"{kind.name} certificate lacks {name} ({oid.dotted_string})",
                field=name,
            )
        return v

    def opt_int(oid: x509.ObjectIdentifier, name: str) -> int | None:
        v = exts.get(oid.dotted_string)
        return None if v is None else _der_integer(v, name)

    hwid = _hwid(exts[OID_HWID.dotted_string], "hwID") if OID_HWID.dotted_string in exts else None
    csp = _der_ia5(exts[OID_CSP_ID.dotted_string], "cspID") if OID_CSP_ID.dotted_string in exts else None
    if kind is SigningKey.VCEK and hwid is None:
        raise EvidenceError(
            "snp.cert_extension", "VCEK certificate lacks hwID (1.3.6.1.4.1.3704.1.4)", field="hwID"
        )
    if kind is SigningKey.VLEK and hwid is not None:
        raise EvidenceError("snp.cert_extension", "VLEK certificate carries a hwID", field="hwID")
    spl = tuple(opt_int(oid, f"spl_{i}") or 0 for i, oid in zip(range(4, 8), OID_SPL_4_7))
    return EndorsementKeyInfo(
        kind=kind,
        product_name=_der_ia5(need(OID_PRODUCT_NAME, "productName"), "productName"),
        struct_version=opt_int(OID_STRUCT_VERSION, "structVersion"),
        bl_spl=_der_integer(need(OID_BL_SPL, "blSPL"), "blSPL"),
        tee_spl=_der_integer(need(OID_TEE_SPL, "teeSPL"), "teeSPL"),
        snp_spl=_der_integer(need(OID_SNP_SPL, "snpSPL"), "snpSPL"),
        ucode_spl=_der_integer(need(OID_UCODE_SPL, "ucodeSPL"), "ucodeSPL"),
        fmc_spl=opt_int(OID_FMC_SPL, "fmcSPL"),
        spl_4_7=spl,  # type: ignore[arg-type]
        hwid=hwid,
        csp_id=csp,
    )


# -- chain ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """A VCEK/VLEK whose chain to a trusted ARK verified at ``at``."""

    product_line: ProductLine
    kind: SigningKey
    leaf: x509.Certificate
    ask: x509.Certificate  # the ASK, or the ASVK for a VLEK
    ark: x509.Certificate  # the trusted ARK that anchored the chain
    public_key: ec.EllipticCurvePublicKey
    info: EndorsementKeyInfo

    def fingerprints(self) -> dict[str, str]:
        """SHA-256 of each certificate's DER, for logs and claims."""
        from cryptography.hazmat.primitives.serialization import Encoding

        return {
            role: hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest()
            for role, c in (("vcek", self.leaf), ("ask", self.ask), ("ark", self.ark))
        }


def _chain_error(message: str, field: str, **details) -> VerificationError:
    return VerificationError("snp.chain_invalid", message, field=field, details=details or None)


def _check_pss_signed(cert: x509.Certificate, issuer: x509.Certificate, role: str) -> None:
    if cert.signature_algorithm_oid != SignatureAlgorithmOID.RSASSA_PSS:
        raise _chain_error(
            f"{role} is not signed with RSASSA-PSS ({cert.signature_algorithm_oid.dotted_string})",
            f"{role}.signatureAlgorithm",
        )
    params = cert.signature_algorithm_parameters
    if not isinstance(params, padding.PSS) or not isinstance(cert.signature_hash_algorithm, hashes.SHA384):
        raise _chain_error(f"{role} signature is not RSASSA-PSS with SHA-384", f"{role}.signatureAlgorithm")
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise _chain_error(f"{role}'s issuer does not hold an RSA key", f"{role}.issuer")
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, _PSS, hashes.SHA384())
    except InvalidSignature:
        raise _chain_error(
            f"{role} signature does not verify with the key of {_cn(issuer.subject)!r}", f"{role}.signature"
        ) from None


def _check_validity(cert: x509.Certificate, role: str, at: datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise VerificationError(
            "snp.cert_not_yet_valid",
            f"{role} is valid from {cert.not_valid_before_utc.isoformat()}, verification time is {at.isoformat()}",
            field=f"{role}.notBefore",
        )
    if at > cert.not_valid_after_utc:
        raise VerificationError(
            "snp.cert_expired",
            f"{role} expired at {cert.not_valid_after_utc.isoformat()}, verification time is {at.isoformat()}",
            field=f"{role}.notAfter",
        )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return True  # AMD's ASK/ARK carry BasicConstraints; absence is not held against a trusted anchor


def _product_from_cn(cn: str | None, prefix: str) -> ProductLine | None:
    if cn is None or not cn.startswith(prefix):
        return None
    try:
        return ProductLine(cn[len(prefix) :])
    except ValueError:
        return None


def _der(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)


def verify_chain(
    *,
    vcek: CertInput | None,
    chain: CertInput | Sequence[CertInput] | None,
    trusted_arks: CertInput | Sequence[CertInput],
    at: datetime,
) -> VerifiedChain:
    """Verify VCEK/VLEK -> ASK/ASVK -> ARK, anchored in ``trusted_arks``, at time ``at``.

    ``vcek`` may be omitted when ``chain`` contains it (Azure's ``VcekCertChain`` and the KDS bundle
    ``VCEK || ASK || ARK``). ``chain`` holds the ASK (or ASVK) and optionally the ARK; an ARK found
    there must be byte-identical to a trusted one. Failures:

    * ``snp.untrusted_root`` - no trusted ARK issues this ASK, or the chain names another root;
    * ``snp.chain_invalid`` - a missing intermediate, a signature that does not verify, wrong
      algorithms or key types, inconsistent product lines;
    * ``snp.cert_expired`` / ``snp.cert_not_yet_valid`` - outside a certificate's validity at ``at``.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("verification time 'at' must be timezone-aware")
    anchors = load_certificates(trusted_arks, "trusted_arks")
    if not anchors:
        raise ValueError("at least one trusted ARK is required")
    pool = load_certificates(chain, "chain") if chain is not None else []
    if vcek is not None:
        leaf = load_certificate(vcek, "vcek")
    else:
        leaves = [c for c in pool if isinstance(c.public_key(), ec.EllipticCurvePublicKey)]
        if len(leaves) != 1:
            raise _chain_error(
                f"expected exactly one VCEK/VLEK (EC key) in the chain, found {len(leaves)}", "vcek"
            )
        leaf = leaves[0]
    leaf_der = _der(leaf)
    pool = [c for c in pool if _der(c) != leaf_der]

    info = endorsement_key_info(leaf)
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise _chain_error(f"{info.kind.name} key is not ECDSA P-384", "vcek.subjectPublicKeyInfo")

    # ASK / ASVK: the chain certificate that issued the leaf.
    asks = [c for c in pool if c.subject == leaf.issuer]
    if not asks:
        raise _chain_error(
            f"no certificate in the chain is the issuer {leaf.issuer.rfc4514_string()!r} of the {info.kind.name}",
            "ask",
            issuer=leaf.issuer.rfc4514_string(),
        )
    ask = asks[0]
    ask_prefix = "SEV-VLEK-" if info.kind is SigningKey.VLEK else "SEV-"
    ask_cn = _cn(ask.subject)
    product = _product_from_cn(ask_cn, ask_prefix)
    if product is None:
        role = "ASVK" if info.kind is SigningKey.VLEK else "ASK"
        raise _chain_error(
            f"{info.kind.name} issuer CN {ask_cn!r} is not an AMD {role} ({ask_prefix}<product>)",
            "ask.subject",
        )

    # ARK: a trusted anchor named as the ASK's issuer; a chain-supplied ARK must be one of them.
    anchor_ders = {_der(a) for a in anchors}
    for c in pool:
        if c is not ask and c.subject == ask.issuer and _der(c) not in anchor_ders:
            raise VerificationError(
                "snp.untrusted_root",
                f"the chain's root {_cn(c.subject)!r} is not one of the trusted ARKs",
                field="ark",
                details={"sha256": hashlib.sha256(_der(c)).hexdigest()},
            )
    candidates = [a for a in anchors if a.subject == ask.issuer]
    if not candidates:
        raise VerificationError(
            "snp.untrusted_root",
            f"no trusted ARK is named {ask.issuer.rfc4514_string()!r}, the issuer of {ask_cn!r}",
            field="ark",
        )
    ark = None
    last: VerificationError | None = None
    for cand in candidates:
        try:
            _check_pss_signed(ask, cand, "ASK")
        except VerificationError as err:
            last = err
            continue
        ark = cand
        break
    if ark is None:
        assert last is not None
        raise last
    if _product_from_cn(_cn(ark.subject), "ARK-") is not product:
        raise _chain_error(f"ARK {_cn(ark.subject)!r} does not match the {product.value} ASK", "ark.subject")
    if ark.subject != ark.issuer:
        raise _chain_error("the ARK is not self-issued", "ark.issuer")
    _check_pss_signed(ark, ark, "ARK")
    for cert, role in ((ark, "ARK"), (ask, "ASK")):
        if not _is_ca(cert):
            raise _chain_error(f"{role} is not a CA certificate", f"{role}.basicConstraints")
    _check_pss_signed(leaf, ask, info.kind.name)
    for cert, role in ((ark, "ARK"), (ask, "ASK"), (leaf, info.kind.name)):
        _check_validity(cert, role, at)
    return VerifiedChain(
        product_line=product, kind=info.kind, leaf=leaf, ask=ask, ark=ark, public_key=key, info=info
    )
