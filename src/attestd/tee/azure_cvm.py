"""Azure confidential VMs (SEV-SNP and TDX): HCL report + hardware evidence + vTPM quote, verified offline.

An Azure CVM proves itself with three pieces (Microsoft, "Azure confidential VM guest attestation
design"; the ``az-snp-vtpm`` / ``az-tdx-vtpm`` crates; Trustee's ``az_snp_vtpm`` / ``az_tdx_vtpm``
verifiers):

* the **HCL report** (:mod:`attestd.tee.azure_hcl`), read from vTPM NV index 0x01400001: a header,
  the hardware report (an SEV-SNP ATTESTATION_REPORT, or a TDX TDREPORT) and the *variable data*
  (runtime data), a JSON document whose ``keys`` hold the vTPM attestation key ``HCLAkPub`` as an
  RSA JWK. The hardware REPORT_DATA begins with the hash of the variable data;
* for TDX only, a **TD quote** (from the IMDS quoting service): the TDREPORT signed by the
  platform's Quoting Enclave. The TDREPORT itself is MAC'ed with a CPU key and cannot be checked
  off the machine, so the quote is what is verified; the TDREPORT in the HCL report must agree with
  the quote body field by field;
* a **vTPM quote** (TPM2_Quote by ``HCLAkPub`` over the SHA-256 PCR bank) with the PCR values.
  Azure ships the signature as the raw RSASSA-PKCS1-v1_5/SHA-256 signature; a ``TPMT_SIGNATURE``
  is accepted as well.

:func:`verify_azure_cvm` checks, in this order (the first failure is raised):

1. the evidence and HCL report parse (``azure_cvm.*`` / ``hcl.*`` EvidenceErrors); the variable
   data is a JSON object (``azure_cvm.runtime_data_malformed``) with an ``HCLAkPub`` RSA JWK
   (``azure_cvm.ak_missing``, ``azure_cvm.ak_malformed``);
2. the hardware evidence: SNP - :func:`attestd.tee.snp.verify_snp_report` with the VCEK, the
   AMD chain and the trusted ARKs (``snp.*``), and VMPL 0, the paravisor's level
   (``azure_cvm.vmpl``); TDX - :func:`attestd.tee.tdx.verify_tdx_quote` with the collateral and the
   Intel root (``dcap.*``/``tdx.*``), then the HCL's TDREPORT equals the quote body
   (``azure_cvm.tdreport_mismatch``, field names the first differing member);
3. the binding: REPORT_DATA begins with hash(variable data), the hash the HCL header names
   (``azure_cvm.runtime_data_mismatch``);
4. the vTPM quote verifies with ``HCLAkPub`` (:func:`attestd.tpm.verify_quote`: ``quote.*``), with
   extraData equal to ``nonce`` when one is given, and its pcrDigest equal to the hash of the
   supplied PCR values.

Claims (only from a verified result), following the shape of an Azure Attestation ``azurevm``
token: ``x-ms-attestation-type`` = ``azurevm``; ``x-ms-isolation-tee`` = the TEE claims
(:mod:`attestd.tee.snp.claims` or :mod:`attestd.tee.tdx.claims`) plus ``x-ms-runtime`` = the
variable data JSON; ``x-ms-azurevm-vmid`` = ``vm-configuration.vmUniqueId`` when present; and
Attestd's own ``x-attestd-azurevm-*``: ``tee`` (``sevsnpvm``/``tdxvm``), ``vtpm-nonce`` (extraData,
hex), ``vtpm-nonce-verified`` (bool), ``pcrs`` (``{"sha256": {"0": hex, ...}}``), ``ak-sha256``
(SHA-256 of the AK's DER SubjectPublicKeyInfo), ``vtpm-firmware-version``, ``vtpm-clock``,
``hcl-version``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.azure_hcl import (
    HW_REPORT_OFFSET,
    IGVM_REQUEST_OFFSET,
    HclReport,
    HclReportType,
    parse_hcl_report,
)
from attestd.tee.dcap.collateral import Collateral, CollateralStore
from attestd.tee.dcap.quote import TdReportBody
from attestd.tee.dcap.verify import VerifiedQuote
from attestd.tee.snp.certs import CertInput, load_certificates
from attestd.tee.snp.verify import VerifiedSnpReport, verify_snp_report
from attestd.tee.tdx.claims import tdx_claims
from attestd.tee.tdx.verify import verify_tdx_quote
from attestd.tpm.alg import TPM_ALG
from attestd.tpm.attest import parse_attest
from attestd.tpm.signature import Signature, parse_signature
from attestd.tpm.verify import QuoteResult, verify_quote

__all__ = [
    "AzureCvmEvidence",
    "TdReport",
    "VerifiedAzureCvm",
    "VtpmQuote",
    "hcl_ak_public",
    "parse_azure_cvm_evidence",
    "parse_td_report",
    "verify_azure_cvm",
]

_VAR_DATA_OFFSET = IGVM_REQUEST_OFFSET + 20  # 0x4D4
_SNP_REPORT_DATA = 0x50
_TD_REPORT_DATA = 128
HCL_VMPL = 0
TD_REPORT_TYPE_TDX = 0x81


# -- evidence container ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VtpmQuote:
    """The vTPM quote as shipped: ``TPMS_ATTEST``, its signature (raw RSA or ``TPMT_SIGNATURE``),
    and the SHA-256 PCR values by index."""

    message: bytes
    signature: bytes
    pcrs: Mapping[int, bytes]


@dataclass(frozen=True, slots=True)
class AzureCvmEvidence:
    """Parsed (not verified) Azure CVM evidence. ``vcek`` is DER or PEM (VCEK, optionally with its
    ASK/ARK) for SNP CVMs; ``td_quote`` the TD quote for TDX CVMs. ``layout`` names the input shape."""

    hcl_report: bytes
    tpm_quote: VtpmQuote
    vcek: bytes | None
    td_quote: bytes | None
    layout: str


_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
_B64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


def _err(message: str, field: str, code: str = "azure_cvm.bad_field") -> EvidenceError:
    return EvidenceError(code, message, field=field)


def _bytes(value: Any, field: str, *, hex_first: bool) -> bytes:
    """Bytes from a JSON value: a list of 0..255 integers, hex text, or base64/base64url text."""
    if isinstance(value, list):
        try:
            return bytes(value)
        except (TypeError, ValueError):
            raise _err(f"{field} is not a list of byte values", field) from None
    if not isinstance(value, str):
        raise _err(f"{field} must be a byte list, hex or base64 string", field)
    text = "".join(value.split())
    if hex_first and _HEX.match(text):
        return bytes.fromhex(text)
    if not _B64.match(text) or len(text.rstrip("=")) % 4 == 1:
        raise _err(f"{field} is neither hex nor base64", field, "azure_cvm.bad_encoding")
    core = text.rstrip("=").translate(str.maketrans("-_", "+/"))
    try:
        return base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _err(f"{field} is not base64", field, "azure_cvm.bad_encoding") from None


def _member(obj: Mapping[str, Any], names: Sequence[str], field: str, *, required: bool = True) -> Any:
    for name in names:
        if name in obj:
            return obj[name]
    if required:
        raise _err(f"evidence lacks {field}", field, "azure_cvm.missing_field")
    return None


def _parse_tpm_quote(obj: Any) -> VtpmQuote:
    if not isinstance(obj, Mapping):
        raise _err("tpm_quote must be a JSON object", "tpm_quote")
    message = _bytes(_member(obj, ("message", "quote"), "tpm_quote.message"), "tpm_quote.message", hex_first=True)
    signature = _bytes(_member(obj, ("signature",), "tpm_quote.signature"), "tpm_quote.signature", hex_first=True)
    raw_pcrs = _member(obj, ("pcrs",), "tpm_quote.pcrs")
    pcrs: dict[int, bytes] = {}
    if isinstance(raw_pcrs, list):
        for i, v in enumerate(raw_pcrs):
            pcrs[i] = _bytes(v, f"tpm_quote.pcrs[{i}]", hex_first=True)
    elif isinstance(raw_pcrs, Mapping):
        bank = raw_pcrs.get("sha256", raw_pcrs)
        if not isinstance(bank, Mapping):
            raise _err("tpm_quote.pcrs.sha256 must map PCR indexes to values", "tpm_quote.pcrs")
        for k, v in bank.items():
            try:
                idx = int(k)
            except (TypeError, ValueError):
                raise _err(f"PCR index {k!r} is not an integer", "tpm_quote.pcrs") from None
            pcrs[idx] = _bytes(v, f"tpm_quote.pcrs[{idx}]", hex_first=True)
    else:
        raise _err("tpm_quote.pcrs must be a list or an object", "tpm_quote.pcrs")
    for i, v in pcrs.items():
        if len(v) != 32:
            raise _err(f"PCR {i} is {len(v)} bytes, a SHA-256 PCR is 32", f"tpm_quote.pcrs[{i}]")
    return VtpmQuote(message, signature, MappingProxyType(dict(sorted(pcrs.items()))))


def parse_azure_cvm_evidence(data: bytes | str | Mapping[str, Any]) -> AzureCvmEvidence:
    """Parse Azure CVM evidence JSON. Accepted shapes (byte fields as integer lists, hex or base64):

    * Trustee ``az-snp-vtpm`` v0: ``{"report": HCL, "quote": {"message", "signature", "pcrs"}, "vcek": PEM}``;
    * Trustee ``az-snp-vtpm`` v1/v2: ``{"version", "hcl_report", "tpm_quote": {...}, "vcek": DER base64}``;
    * Trustee ``az-tdx-vtpm``: ``{"hcl_report", "td_quote", "tpm_quote": {...}}``;
    * the same with camelCase names (``hclReport``, ``tdQuote``, ``tpmQuote``).

    ``pcrs`` is a list of the 24 SHA-256 values or ``{"sha256": {"index": value}}``.
    """
    if isinstance(data, Mapping):
        obj: Any = data
    else:
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise _err(f"evidence is not JSON: {exc}", "evidence", "azure_cvm.bad_json") from None
    if not isinstance(obj, Mapping):
        raise _err("evidence must be a JSON object", "evidence")
    hcl_raw = _member(obj, ("hcl_report", "hclReport", "report"), "hcl_report")
    hcl = _bytes(hcl_raw, "hcl_report", hex_first=isinstance(hcl_raw, str) and hcl_raw[:8].lower() == "48434c41")
    quote = _parse_tpm_quote(_member(obj, ("tpm_quote", "tpmQuote", "quote"), "tpm_quote"))
    vcek_raw = _member(obj, ("vcek", "vcekCertChain", "VcekCertChain"), "vcek", required=False)
    vcek: bytes | None = None
    if vcek_raw is not None:
        if isinstance(vcek_raw, str) and "-----BEGIN" in vcek_raw:
            vcek = vcek_raw.encode()
        else:
            vcek = _bytes(vcek_raw, "vcek", hex_first=False)
    td_raw = _member(obj, ("td_quote", "tdQuote"), "td_quote", required=False)
    td_quote = _bytes(td_raw, "td_quote", hex_first=False) if td_raw is not None else None
    if "report" in obj and "hcl_report" not in obj:
        layout = "trustee-v0"
    elif isinstance(obj.get("version"), int):
        layout = f"trustee-v{obj['version']}"
    else:
        layout = "json"
    return AzureCvmEvidence(hcl, quote, vcek, td_quote, layout)


# -- runtime data and the AK -------------------------------------------------------------------


def _runtime_json(hcl: HclReport) -> Mapping[str, Any]:
    try:
        doc = json.loads(hcl.variable_data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EvidenceError(
            "azure_cvm.runtime_data_malformed",
            f"the HCL variable data is not JSON: {exc}",
            field="IGVM_REQUEST_DATA.variable_data",
            offset=_VAR_DATA_OFFSET,
        ) from None
    if not isinstance(doc, dict):
        raise EvidenceError(
            "azure_cvm.runtime_data_malformed",
            "the HCL variable data is not a JSON object",
            field="IGVM_REQUEST_DATA.variable_data",
            offset=_VAR_DATA_OFFSET,
        )
    return doc


def _b64url_int(jwk: Mapping[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise EvidenceError("azure_cvm.ak_malformed", f"HCLAkPub.{name} is missing", field=f"HCLAkPub.{name}")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise EvidenceError(
            "azure_cvm.ak_malformed", f"HCLAkPub.{name} is not base64url", field=f"HCLAkPub.{name}"
        ) from None
    return int.from_bytes(raw, "big")


def hcl_ak_public(runtime: Mapping[str, Any] | HclReport) -> rsa.RSAPublicKey:
    """The vTPM AK: the RSA JWK with ``kid`` ``HCLAkPub`` in the variable data's ``keys``."""
    doc = _runtime_json(runtime) if isinstance(runtime, HclReport) else runtime
    keys = doc.get("keys")
    jwk = None
    if isinstance(keys, list):
        jwk = next((k for k in keys if isinstance(k, dict) and k.get("kid") == "HCLAkPub"), None)
    if jwk is None:
        raise EvidenceError(
            "azure_cvm.ak_missing",
            "the HCL variable data has no key with kid HCLAkPub",
            field="IGVM_REQUEST_DATA.variable_data.keys",
            offset=_VAR_DATA_OFFSET,
        )
    if jwk.get("kty") != "RSA":
        raise EvidenceError(
            "azure_cvm.ak_malformed", f"HCLAkPub has kty {jwk.get('kty')!r}, expected RSA", field="HCLAkPub.kty"
        )
    n, e = _b64url_int(jwk, "n"), _b64url_int(jwk, "e")
    if n.bit_length() < 2048 or e < 3 or e % 2 == 0:
        raise EvidenceError(
            "azure_cvm.ak_malformed",
            f"HCLAkPub is not a usable RSA key ({n.bit_length()}-bit modulus, e={e})",
            field="HCLAkPub.n",
        )
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise EvidenceError("azure_cvm.ak_malformed", f"HCLAkPub: {exc}", field="HCLAkPub") from None


# -- TDREPORT ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TdReport:
    """TDREPORT_STRUCT (Intel TDX Module ABI, 1024 bytes): the fields a TD quote body repeats."""

    report_type: int
    report_data: bytes
    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmr: tuple[bytes, bytes, bytes, bytes]


# (name, offset, size) inside TDREPORT_STRUCT: REPORTMACSTRUCT @0, TEE_TCB_INFO @256, TDINFO @512.
_TD_FIELDS = (
    ("report_data", 128, 64),
    ("tee_tcb_svn", 264, 16),
    ("mr_seam", 280, 48),
    ("mr_signer_seam", 328, 48),
    ("seam_attributes", 376, 8),
    ("td_attributes", 512, 8),
    ("xfam", 520, 8),
    ("mr_td", 528, 48),
    ("mr_config_id", 576, 48),
    ("mr_owner", 624, 48),
    ("mr_owner_config", 672, 48),
)
_TD_RTMR = 720


def parse_td_report(data: bytes) -> TdReport:
    """Parse the TDREPORT an HCL report carries (``td.*`` EvidenceErrors)."""
    if len(data) < 1024:
        raise EvidenceError("td.truncated", f"TDREPORT is {len(data)} bytes, needs 1024", field="TDREPORT")
    if data[0] != TD_REPORT_TYPE_TDX:
        raise EvidenceError(
            "td.report_type",
            f"REPORTTYPE.TYPE is 0x{data[0]:02x}, expected 0x81 (TDX)",
            field="REPORTMACSTRUCT.REPORTTYPE",
            offset=0,
        )
    values = {name: bytes(data[off : off + size]) for name, off, size in _TD_FIELDS}
    rtmr = tuple(bytes(data[_TD_RTMR + 48 * i : _TD_RTMR + 48 * (i + 1)]) for i in range(4))
    return TdReport(report_type=data[0], rtmr=rtmr, **values)  # type: ignore[arg-type]


def _check_td_report(td: TdReport, body: TdReportBody) -> None:
    offsets = {name: off for name, off, _ in _TD_FIELDS}
    for name, off in offsets.items():
        if getattr(td, name) != getattr(body, name):
            raise VerificationError(
                "azure_cvm.tdreport_mismatch",
                f"the HCL report's TDREPORT {name} differs from the TD quote's",
                field=f"TDREPORT.{name}",
                offset=HW_REPORT_OFFSET + off,
            )
    for i in range(4):
        if td.rtmr[i] != body.rtmr[i]:
            raise VerificationError(
                "azure_cvm.tdreport_mismatch",
                f"the HCL report's TDREPORT RTMR{i} differs from the TD quote's",
                field=f"TDREPORT.rtmr{i}",
                offset=HW_REPORT_OFFSET + _TD_RTMR + 48 * i,
            )


# -- verification ------------------------------------------------------------------------------

_ISSUE = object()


@dataclass(frozen=True, slots=True)
class VerifiedAzureCvm:
    """A verified Azure CVM; only :func:`verify_azure_cvm` makes one.

    ``snp`` is set for SEV-SNP CVMs, ``tdx`` for TDX CVMs. ``nonce_verified`` is False when the
    caller gave no nonce (extraData was then only reported, not compared).
    """

    tee: str
    hcl: HclReport
    runtime: Mapping[str, Any]
    snp: VerifiedSnpReport | None
    tdx: VerifiedQuote | None
    quote: QuoteResult
    nonce_verified: bool
    verified_at: datetime
    claims: Mapping[str, Any]
    _issued: object = None

    def __post_init__(self) -> None:
        if self._issued is not _ISSUE:
            raise TypeError("VerifiedAzureCvm is created only by verify_azure_cvm()")


def _vtpm_signature(sig: bytes, ak: rsa.RSAPublicKey) -> Signature:
    if len(sig) == ak.key_size // 8:
        return Signature(TPM_ALG.RSASSA, TPM_ALG.SHA256, rsa_sig=sig)
    return parse_signature(sig)


def _snp_chain_inputs(
    vcek: CertInput | Sequence[CertInput] | None, amd_chain: CertInput | Sequence[CertInput] | None
) -> list[x509.Certificate]:
    pool: list[x509.Certificate] = []
    if amd_chain is not None:
        pool.extend(load_certificates(amd_chain, "amd_chain"))
    if vcek is not None:
        pool.extend(load_certificates(vcek, "vcek"))
    return pool


def verify_azure_cvm(
    evidence: AzureCvmEvidence | bytes | str | Mapping[str, Any],
    *,
    at: datetime,
    nonce: bytes | None = None,
    trusted_arks: CertInput | Sequence[CertInput] | None = None,
    amd_chain: CertInput | Sequence[CertInput] | None = None,
    vcek: CertInput | Sequence[CertInput] | None = None,
    intel_root: x509.Certificate | bytes | str | None = None,
    collateral: Collateral | CollateralStore | None = None,
) -> VerifiedAzureCvm:
    """Verify Azure CVM evidence; see the module docstring for the checks and codes.

    SNP CVMs need ``trusted_arks`` and the VCEK (in the evidence, or ``vcek``) plus its ASK (in the
    evidence's bundle or ``amd_chain``). TDX CVMs need ``intel_root`` and optionally
    ``collateral`` (``None``: signatures and chain only, no TCB status). ``nonce``: the expected
    vTPM quote extraData.
    """
    ev = evidence if isinstance(evidence, AzureCvmEvidence) else parse_azure_cvm_evidence(evidence)
    hcl = parse_hcl_report(ev.hcl_report)
    runtime = _runtime_json(hcl)
    ak = hcl_ak_public(runtime)

    # 2. hardware evidence
    snp: VerifiedSnpReport | None = None
    tdq: VerifiedQuote | None = None
    if hcl.report_type is HclReportType.SNP:
        if trusted_arks is None:
            raise EvidenceError("azure_cvm.trust_anchor_missing", "an SNP CVM needs trusted AMD ARKs",
                                field="trusted_arks")
        pool = _snp_chain_inputs(ev.vcek if vcek is None else vcek, amd_chain)
        if not pool:
            raise EvidenceError("azure_cvm.vcek_missing", "an SNP CVM needs its VCEK (in the evidence or given)",
                                field="vcek")
        snp = verify_snp_report(hcl.hw_report, vcek=None, chain=pool, trusted_arks=trusted_arks, at=at)
        if snp.report.vmpl != HCL_VMPL:
            raise VerificationError(
                "azure_cvm.vmpl",
                f"the SNP report comes from VMPL {snp.report.vmpl}, the HCL paravisor runs at VMPL {HCL_VMPL}",
                field="ATTESTATION_REPORT.VMPL",
                offset=HW_REPORT_OFFSET + 0x30,
            )
        report_data, rd_offset, rd_field = snp.report.report_data, _SNP_REPORT_DATA, "ATTESTATION_REPORT.REPORT_DATA"
        tee_claims = dict(snp.claims)
        tee_name = "sevsnpvm"
    else:
        if intel_root is None:
            raise EvidenceError("azure_cvm.trust_anchor_missing", "a TDX CVM needs the Intel SGX Root CA",
                                field="intel_root")
        if ev.td_quote is None:
            raise EvidenceError("azure_cvm.td_quote_missing", "a TDX CVM's evidence needs its TD quote",
                                field="td_quote")
        td = parse_td_report(hcl.hw_report)
        verified = verify_tdx_quote(ev.td_quote, collateral, trusted_root=intel_root, at=at)
        assert isinstance(verified, VerifiedQuote)
        tdq = verified
        assert isinstance(tdq.body, TdReportBody)
        _check_td_report(td, tdq.body)
        report_data, rd_offset, rd_field = tdq.body.report_data, _TD_REPORT_DATA, "TDREPORT.report_data"
        tee_claims = tdx_claims(tdq)
        tee_name = "tdxvm"

    # 3. binding of the variable data (and so the AK) into the hardware report
    digest = hcl.variable_data_digest()
    if not hmac.compare_digest(report_data[: len(digest)], digest):
        raise VerificationError(
            "azure_cvm.runtime_data_mismatch",
            f"REPORT_DATA begins {report_data[:len(digest)].hex()}, not {hcl.hash_type.name}(variable data) "
            f"{digest.hex()}",
            field=rd_field,
            offset=HW_REPORT_OFFSET + rd_offset,
        )

    # 4. vTPM quote by the AK the hardware vouched for
    sig = _vtpm_signature(ev.tpm_quote.signature, ak)
    expected_nonce = nonce
    if expected_nonce is None:
        expected_nonce = parse_attest(ev.tpm_quote.message).extra_data
    quote = verify_quote(ak, ev.tpm_quote.message, sig, nonce=bytes(expected_nonce),
                         pcrs={"sha256": dict(ev.tpm_quote.pcrs)})

    claims = _claims(tee_name, tee_claims, runtime, hcl, quote, ak, nonce is not None)
    return VerifiedAzureCvm(
        tee=tee_name,
        hcl=hcl,
        runtime=MappingProxyType(dict(runtime)),
        snp=snp,
        tdx=tdq,
        quote=quote,
        nonce_verified=nonce is not None,
        verified_at=at,
        claims=MappingProxyType(claims),
        _issued=_ISSUE,
    )


def _claims(
    tee_name: str,
    tee_claims: dict[str, Any],
    runtime: Mapping[str, Any],
    hcl: HclReport,
    quote: QuoteResult,
    ak: rsa.RSAPublicKey,
    nonce_verified: bool,
) -> dict[str, Any]:
    tee = dict(tee_claims)
    tee["x-ms-runtime"] = json.loads(json.dumps(runtime))  # a private copy
    claims: dict[str, Any] = {
        "x-ms-attestation-type": "azurevm",
        "x-ms-isolation-tee": tee,
    }
    vm_config = runtime.get("vm-configuration")
    if isinstance(vm_config, dict) and isinstance(vm_config.get("vmUniqueId"), str):
        claims["x-ms-azurevm-vmid"] = vm_config["vmUniqueId"]
    spki = ak.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert quote.pcrs is not None
    claims.update({
        "x-attestd-azurevm-tee": tee_name,
        "x-attestd-azurevm-hcl-version": hcl.version,
        "x-attestd-azurevm-ak-sha256": hashlib.sha256(spki).hexdigest(),
        "x-attestd-azurevm-vtpm-nonce": quote.extra_data.hex(),
        "x-attestd-azurevm-vtpm-nonce-verified": nonce_verified,
        "x-attestd-azurevm-vtpm-firmware-version": f"0x{quote.firmware_version:016x}",
        "x-attestd-azurevm-vtpm-clock": quote.clock_info.to_json(),
        "x-attestd-azurevm-pcrs": {
            bank: {str(i): v.hex() for i, v in sorted(vals.items())} for bank, vals in quote.pcrs.items()
        },
    })
    return claims
