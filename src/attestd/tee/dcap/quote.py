"""Parse Intel DCAP ECDSA quotes: SGX quote v3, TDX quote v4 and v5.

Layouts and field names follow:

* "Intel SGX ECDSA Quote Library API" (SGX DCAP), Appendix A.4 "Quote Format": the v3 quote is a
  48-byte Quote Header (A.4.3, Table 3), a 384-byte ISV Enclave Report Body (A.4.4 "Report Body",
  Table 5), ``Quote Signature Data Len`` (uint32) and the Quote Signature Data (A.4.5,
  "ECDSA 256-bit Quote Signature Data Structure", Table 6) whose QE Certification Data (Table 9)
  is usually type 5, the PCK certificate chain in PEM.
* "Intel TDX DCAP Quoting Library API", Appendix A.3 "Version 4 Quote Format": the v4 header
  (A.3.1) carries a TEE type (0x00 SGX, 0x81 TDX), the TD Quote Body (A.3.2, 584 bytes) follows,
  and the ECDSA signature data (A.3.8) holds the quote signature, the attestation key and a
  Certification Data of type 6, "QE Report Certification Data" (A.3.11), which wraps the QE report,
  its PCK signature, the QE authentication data and a nested type 5 PCK chain.
* Same document, Appendix A.4 "Version 5 Quote Format": after the header come ``Quote Body Type``
  (uint16: 1 SGX enclave report, 2 TD report for TDX 1.0, 3 TD report for TDX 1.5) and
  ``Size`` (uint32) then the body; the TD Quote Body v1.5 (A.4.2) adds ``TEE_TCB_SVN_2`` and
  ``MRSERVICETD`` (648 bytes).

All integers are little-endian. The parser is pure and raises only
:class:`~attestd.errors.EvidenceError` (codes ``dcap.*``). Bytes after the declared signature data
(padding some drivers and test files append) are ignored but counted in :attr:`Quote.trailing`;
they are not covered by any signature and never reach a claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from attestd.binary import Reader
from attestd.errors import EvidenceError

__all__ = [
    "TeeType",
    "BodyType",
    "CertDataType",
    "QuoteHeader",
    "EnclaveReportBody",
    "TdReportBody",
    "CertificationData",
    "QeReportCertificationData",
    "QuoteSignatureData",
    "Quote",
    "parse_quote",
    "parse_enclave_report",
    "INTEL_QE_VENDOR_ID",
    "ATT_KEY_TYPE_ECDSA_P256",
]

#: QE Vendor ID of Intel's quoting enclaves (SGX ECDSA QL API A.4.3).
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
#: Attestation Key Type 2: ECDSA-256-with-P-256 curve (A.4.3; TDX A.3.1).
ATT_KEY_TYPE_ECDSA_P256 = 2

HEADER_SIZE = 48
ENCLAVE_REPORT_SIZE = 384
TD_REPORT10_SIZE = 584
TD_REPORT15_SIZE = 648
#: Upper bound for any length field: a real quote is about 5 KB, a PEM chain about 4 KB.
MAX_LENGTH = 1 << 20


class TeeType(IntEnum):
    """``TEE Type`` of the v4/v5 header (TDX DCAP API A.3.1); v3 quotes are always SGX."""

    SGX = 0x00000000
    TDX = 0x00000081


class BodyType(IntEnum):
    """``Quote Body Type`` of a v5 quote (TDX DCAP API A.4.1); implied by the header for v3/v4."""

    SGX_ENCLAVE_REPORT = 1
    TD_REPORT_10 = 2
    TD_REPORT_15 = 3


class CertDataType(IntEnum):
    """``Certification Data Type`` (SGX ECDSA QL API A.4.5 Table 9; TDX A.3.9)."""

    PPID_CLEARTEXT = 1
    PPID_RSA2048_OAEP = 2
    PPID_RSA3072_OAEP = 3
    PCK_CERT = 4
    PCK_CERT_CHAIN = 5
    QE_REPORT_CERTIFICATION_DATA = 6
    PLATFORM_MANIFEST = 7


@dataclass(frozen=True, slots=True)
class QuoteHeader:
    """Quote Header (SGX ECDSA QL API A.4.3 Table 3; TDX DCAP API A.3.1 / A.4.1), 48 bytes.

    In v3 the four bytes after the attestation key type are reserved (``tee_type`` reads 0, SGX).
    """

    version: int
    att_key_type: int
    tee_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    user_data: bytes

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "att_key_type": self.att_key_type,
            "tee_type": self.tee_type,
            "qe_svn": self.qe_svn,
            "pce_svn": self.pce_svn,
            "qe_vendor_id": self.qe_vendor_id.hex(),
            "user_data": self.user_data.hex(),
        }


@dataclass(frozen=True, slots=True)
class EnclaveReportBody:
    """ISV Enclave Report Body / ``sgx_report_body_t`` (SGX ECDSA QL API A.4.4 Table 5), 384 bytes.

    Used both for the application enclave's report in an SGX quote and for the QE report.
    ``attributes`` is the 16-byte ATTRIBUTES (flags u64 then XFRM u64).
    """

    cpu_svn: bytes
    misc_select: int
    isv_ext_prod_id: bytes
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    config_id: bytes
    isv_prod_id: int
    isv_svn: int
    config_svn: int
    isv_family_id: bytes
    report_data: bytes

    @property
    def attributes_flags(self) -> int:
        return int.from_bytes(self.attributes[:8], "little")

    @property
    def attributes_xfrm(self) -> int:
        return int.from_bytes(self.attributes[8:], "little")

    @property
    def debug(self) -> bool:
        """ATTRIBUTES.DEBUG (flags bit 1; Intel SDM Vol. 3D, 38.7.1 "ATTRIBUTES")."""
        return bool(self.attributes[0] & 0x02)

    def to_json(self) -> dict:
        return {
            "cpu_svn": self.cpu_svn.hex(),
            "misc_select": self.misc_select,
            "isv_ext_prod_id": self.isv_ext_prod_id.hex(),
            "attributes": self.attributes.hex(),
            "mr_enclave": self.mr_enclave.hex(),
            "mr_signer": self.mr_signer.hex(),
            "config_id": self.config_id.hex(),
            "isv_prod_id": self.isv_prod_id,
            "isv_svn": self.isv_svn,
            "config_svn": self.config_svn,
            "isv_family_id": self.isv_family_id.hex(),
            "report_data": self.report_data.hex(),
        }


@dataclass(frozen=True, slots=True)
class TdReportBody:
    """TD Quote Body (TDX DCAP API A.3.2, 584 bytes; v1.5 A.4.2, 648 bytes).

    ``tee_tcb_svn2`` and ``mr_servicetd`` are None for a TDX 1.0 body.
    """

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
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    mr_servicetd: bytes | None = None

    @property
    def td_attributes_int(self) -> int:
        return int.from_bytes(self.td_attributes, "little")

    @property
    def debug(self) -> bool:
        """TDATTRIBUTES.DEBUG (bit 0; Intel TDX Module ABI spec, "TDATTRIBUTES")."""
        return bool(self.td_attributes[0] & 0x01)

    def to_json(self) -> dict:
        out = {
            "tee_tcb_svn": self.tee_tcb_svn.hex(),
            "mr_seam": self.mr_seam.hex(),
            "mr_signer_seam": self.mr_signer_seam.hex(),
            "seam_attributes": self.seam_attributes.hex(),
            "td_attributes": self.td_attributes.hex(),
            "xfam": self.xfam.hex(),
            "mr_td": self.mr_td.hex(),
            "mr_config_id": self.mr_config_id.hex(),
            "mr_owner": self.mr_owner.hex(),
            "mr_owner_config": self.mr_owner_config.hex(),
            "rtmr0": self.rtmr[0].hex(),
            "rtmr1": self.rtmr[1].hex(),
            "rtmr2": self.rtmr[2].hex(),
            "rtmr3": self.rtmr[3].hex(),
            "report_data": self.report_data.hex(),
        }
        if self.tee_tcb_svn2 is not None:
            out["tee_tcb_svn2"] = self.tee_tcb_svn2.hex()
        if self.mr_servicetd is not None:
            out["mr_servicetd"] = self.mr_servicetd.hex()
        return out


@dataclass(frozen=True, slots=True)
class CertificationData:
    """QE Certification Data (SGX A.4.5 Table 9; TDX A.3.9): a type and its data."""

    cert_type: int
    data: bytes
    #: absolute offset of ``data`` in the quote
    offset: int


@dataclass(frozen=True, slots=True)
class QeReportCertificationData:
    """The QE-related part of the signature data.

    In v3 these fields sit directly in the Quote Signature Data (SGX A.4.5 Table 6); in v4/v5 they
    are the content of Certification Data type 6 (TDX A.3.11 "QE Report Certification Data").
    ``qe_report_raw`` is the exact 384 signed bytes of the QE report.
    """

    qe_report: EnclaveReportBody
    qe_report_raw: bytes
    qe_report_signature: bytes
    qe_auth_data: bytes
    certification_data: CertificationData


@dataclass(frozen=True, slots=True)
class QuoteSignatureData:
    """ECDSA 256-bit Quote Signature Data (SGX A.4.5 Table 6; TDX A.3.8).

    ``signature`` is the raw r||s ECDSA-P256 signature by ``attestation_key`` (raw x||y) over the
    header and body.
    """

    signature: bytes
    attestation_key: bytes
    qe: QeReportCertificationData


@dataclass(frozen=True, slots=True)
class Quote:
    """A parsed DCAP quote. ``signed_data`` is exactly what the attestation key signed."""

    header: QuoteHeader
    body_type: BodyType
    body: EnclaveReportBody | TdReportBody
    signature_data: QuoteSignatureData
    signed_data: bytes
    #: the quote's own bytes (header through signature data, without trailing bytes)
    raw: bytes
    trailing: int

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def is_tdx(self) -> bool:
        return self.body_type in (BodyType.TD_REPORT_10, BodyType.TD_REPORT_15)

    @property
    def report_data(self) -> bytes:
        return self.body.report_data


def _header(r: Reader) -> QuoteHeader:
    start = r.offset
    version = r.u16("Quote Header.Version")
    att_key_type = r.u16("Quote Header.Attestation Key Type")
    tee_type = r.u32("Quote Header.TEE Type")
    qe_svn = r.u16("Quote Header.QE SVN")
    pce_svn = r.u16("Quote Header.PCE SVN")
    vendor = r.bytes(16, "Quote Header.QE Vendor ID")
    user_data = r.bytes(20, "Quote Header.User Data")
    if version not in (3, 4, 5):
        raise EvidenceError("dcap.quote_version_unsupported",
                            f"quote format not supported: version {version} (supported: 3, 4, 5)",
                            field="Quote Header.Version", offset=start)
    if att_key_type != ATT_KEY_TYPE_ECDSA_P256:
        raise EvidenceError("dcap.att_key_type_unsupported",
                            f"attestation key type {att_key_type} is not ECDSA-256-with-P-256 (2)",
                            field="Quote Header.Attestation Key Type", offset=start + 2)
    if version == 3:
        # v3: these four bytes are reserved; an SGX quote.
        tee_type = TeeType.SGX
    elif tee_type not in (TeeType.SGX, TeeType.TDX):
        raise EvidenceError("dcap.tee_type_unsupported", f"unknown TEE type 0x{tee_type:08x}",
                            field="Quote Header.TEE Type", offset=start + 4)
    return QuoteHeader(version, att_key_type, tee_type, qe_svn, pce_svn, vendor, user_data)


def _enclave_report(r: Reader, name: str) -> EnclaveReportBody:
    cpu_svn = r.bytes(16, f"{name}.CPUSVN")
    misc_select = r.u32(f"{name}.MISCSELECT")
    r.skip(12, f"{name}.Reserved1")
    isv_ext_prod_id = r.bytes(16, f"{name}.ISVEXTPRODID")
    attributes = r.bytes(16, f"{name}.ATTRIBUTES")
    mr_enclave = r.bytes(32, f"{name}.MRENCLAVE")
    r.skip(32, f"{name}.Reserved2")
    mr_signer = r.bytes(32, f"{name}.MRSIGNER")
    r.skip(32, f"{name}.Reserved3")
    config_id = r.bytes(64, f"{name}.CONFIGID")
    isv_prod_id = r.u16(f"{name}.ISVPRODID")
    isv_svn = r.u16(f"{name}.ISVSVN")
    config_svn = r.u16(f"{name}.CONFIGSVN")
    r.skip(42, f"{name}.Reserved4")
    isv_family_id = r.bytes(16, f"{name}.ISVFAMILYID")
    report_data = r.bytes(64, f"{name}.REPORTDATA")
    return EnclaveReportBody(cpu_svn, misc_select, isv_ext_prod_id, attributes, mr_enclave, mr_signer,
                             config_id, isv_prod_id, isv_svn, config_svn, isv_family_id, report_data)


def parse_enclave_report(data: bytes) -> EnclaveReportBody:
    """Parse a standalone 384-byte SGX report body (e.g. a QE report)."""
    r = Reader(data, prefix="dcap")
    body = _enclave_report(r, "Report Body")
    r.expect_end("Report Body")
    return body


def _td_report(r: Reader, v15: bool) -> TdReportBody:
    n = "TD Quote Body"
    tee_tcb_svn = r.bytes(16, f"{n}.TEE_TCB_SVN")
    mr_seam = r.bytes(48, f"{n}.MRSEAM")
    mr_signer_seam = r.bytes(48, f"{n}.MRSIGNERSEAM")
    seam_attributes = r.bytes(8, f"{n}.SEAMATTRIBUTES")
    td_attributes = r.bytes(8, f"{n}.TDATTRIBUTES")
    xfam = r.bytes(8, f"{n}.XFAM")
    mr_td = r.bytes(48, f"{n}.MRTD")
    mr_config_id = r.bytes(48, f"{n}.MRCONFIGID")
    mr_owner = r.bytes(48, f"{n}.MROWNER")
    mr_owner_config = r.bytes(48, f"{n}.MROWNERCONFIG")
    rtmr = tuple(r.bytes(48, f"{n}.RTMR{i}") for i in range(4))
    report_data = r.bytes(64, f"{n}.REPORTDATA")
    tee_tcb_svn2 = mr_servicetd = None
    if v15:
        tee_tcb_svn2 = r.bytes(16, f"{n}.TEE_TCB_SVN_2")
        mr_servicetd = r.bytes(48, f"{n}.MRSERVICETD")
    return TdReportBody(tee_tcb_svn, mr_seam, mr_signer_seam, seam_attributes, td_attributes, xfam, mr_td,
                        mr_config_id, mr_owner, mr_owner_config, rtmr, report_data,  # type: ignore[arg-type]
                        tee_tcb_svn2, mr_servicetd)


def _cert_data(r: Reader, name: str) -> CertificationData:
    cert_type = r.u16(f"{name}.Certification Data Type")
    data_offset = r.offset + 4
    data = r.sized(4, f"{name}.Certification Data", max_length=MAX_LENGTH)
    return CertificationData(cert_type, data, data_offset)


def _qe_block(r: Reader, name: str) -> QeReportCertificationData:
    raw_start = r.pos
    qe_report = _enclave_report(r, f"{name}.QE Report")
    qe_report_raw = r.data[raw_start:r.pos]
    qe_report_signature = r.bytes(64, f"{name}.QE Report Signature")
    qe_auth_data = r.sized(2, f"{name}.QE Authentication Data", max_length=MAX_LENGTH)
    cert = _cert_data(r, name)
    return QeReportCertificationData(qe_report, qe_report_raw, qe_report_signature, qe_auth_data, cert)


def _signature_data(r: Reader, version: int) -> QuoteSignatureData:
    name = "Quote Signature Data"
    signature = r.bytes(64, f"{name}.ISV Enclave Report Signature" if version == 3 else f"{name}.Quote Signature")
    attestation_key = r.bytes(64, f"{name}.ECDSA Attestation Key")
    if version == 3:
        qe = _qe_block(r, name)
    else:
        outer = _cert_data(r, name)
        if outer.cert_type != CertDataType.QE_REPORT_CERTIFICATION_DATA:
            raise EvidenceError(
                "dcap.certification_data_type",
                f"v{version} quote certification data has type {outer.cert_type}, expected 6 "
                "(QE Report Certification Data)",
                field=f"{name}.Certification Data Type", offset=outer.offset - 6)
        inner = Reader(r.data, prefix="dcap", start=outer.offset, end=outer.offset + len(outer.data))
        qe = _qe_block(inner, "QE Report Certification Data")
        inner.expect_end("QE Report Certification Data")
    r.expect_end(name)
    return QuoteSignatureData(signature, attestation_key, qe)


def parse_quote(data: bytes | bytearray | memoryview) -> Quote:
    """Parse an SGX v3 or TDX v4/v5 ECDSA quote; raises only :class:`EvidenceError`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EvidenceError("dcap.type", f"expected bytes, got {type(data).__name__}", field="quote")
    data = bytes(data)
    r = Reader(data, prefix="dcap")
    header = _header(r)
    if header.version == 5:
        bt_offset = r.offset
        body_type = r.u16("Quote Body Type")
        body_size = r.u32("Quote Body Size")
        try:
            btype = BodyType(body_type)
        except ValueError:
            raise EvidenceError("dcap.body_type_unsupported", f"unknown quote body type {body_type}",
                                field="Quote Body Type", offset=bt_offset) from None
        expected = {BodyType.SGX_ENCLAVE_REPORT: ENCLAVE_REPORT_SIZE, BodyType.TD_REPORT_10: TD_REPORT10_SIZE,
                    BodyType.TD_REPORT_15: TD_REPORT15_SIZE}[btype]
        if body_size != expected:
            raise EvidenceError("dcap.length", f"quote body type {body_type} must be {expected} bytes, "
                                f"the quote declares {body_size}", field="Quote Body Size", offset=bt_offset + 2)
        if (btype == BodyType.SGX_ENCLAVE_REPORT) != (header.tee_type == TeeType.SGX):
            raise EvidenceError("dcap.body_type_mismatch",
                                f"quote body type {body_type} does not match TEE type 0x{header.tee_type:x}",
                                field="Quote Body Type", offset=bt_offset)
    elif header.tee_type == TeeType.TDX:
        btype = BodyType.TD_REPORT_10
    else:
        btype = BodyType.SGX_ENCLAVE_REPORT
    body: EnclaveReportBody | TdReportBody
    if btype == BodyType.SGX_ENCLAVE_REPORT:
        body = _enclave_report(r, "ISV Enclave Report Body")
    else:
        body = _td_report(r, btype == BodyType.TD_REPORT_15)
    signed_end = r.pos
    sig = _signature_data(r.sub(_sig_len(r), "Quote Signature Data"), header.version)
    return Quote(header, btype, body, sig, data[:signed_end], data[: r.pos], len(data) - r.pos)


def _sig_len(r: Reader) -> int:
    off = r.offset
    n = r.u32("Quote Signature Data Len")
    if n > r.remaining:
        raise EvidenceError("dcap.truncated",
                            f"Quote Signature Data Len declares {n} bytes but only {r.remaining} remain",
                            field="Quote Signature Data Len", offset=off)
    return n
