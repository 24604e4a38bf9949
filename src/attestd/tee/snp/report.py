"""AMD SEV-SNP ``ATTESTATION_REPORT``: a pure parser for versions 2 to 5.

Layout and names follow AMD's *SEV Secure Nested Paging Firmware ABI Specification* (publication
56860): the table "ATTESTATION_REPORT Structure" (section 7.3, carried in ``MSG_REPORT_RSP``), the
"TCB_VERSION Structure" (section 2.2), "Guest Policy" (section 4.3) and the ``PLATFORM_INFO`` and
signer-info bit fields of the report table. Field names are the spec's, lower-cased.

The report is 0x4A0 (1184) bytes. Everything in ``[0x000, 0x2A0)`` is signed; the signature at
0x2A0 is ECDSA P-384 with SHA-384, its R and S stored as 72-byte *little-endian* integers.

Version differences:

* v2: no CPUID fields (0x188..0x1A0 reserved).
* v3 and v4: ``CPUID_FAM_ID``, ``CPUID_MOD_ID``, ``CPUID_STEP`` at 0x188..0x18A.
* v5: additionally ``LAUNCH_MIT_VECTOR`` (0x1F8) and ``CURRENT_MIT_VECTOR`` (0x200).

``TCB_VERSION`` is product specific: Milan and Genoa put BOOT_LOADER, TEE, SNP, MICROCODE in bytes
0, 1, 6, 7; Turin puts FMC, BOOT_LOADER, TEE, SNP in bytes 0 to 3 and MICROCODE in byte 7. The
product line comes from the report's CPUID fields (v3+); for a v2 report the caller passes the
product line it learnt from the certificate chain (``product_line=``), and without one the Milan and
Genoa layout is used (no Turin firmware emits v2 reports).

The parser is pure and raises only :class:`~attestd.errors.EvidenceError` (codes ``snp.*``). It
checks the must-be-zero ranges the spec reserves, as go-sev-guest's ``ReportToProto`` does, because
a genuine firmware never sets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from attestd.binary import Reader
from attestd.errors import EvidenceError

__all__ = [
    "REPORT_SIZE",
    "SIGNED_LENGTH",
    "SUPPORTED_VERSIONS",
    "AttestationReport",
    "GuestPolicy",
    "PlatformInfo",
    "ProductLine",
    "SignerInfo",
    "SigningKey",
    "TcbVersion",
    "parse_report",
    "product_from_cpuid",
]

#: Size of ATTESTATION_REPORT in bytes (0x4A0).
REPORT_SIZE = 0x4A0
#: The signature covers bytes [0, SIGNED_LENGTH).
SIGNED_LENGTH = 0x2A0
#: ATTESTATION_REPORT.VERSION values this parser understands (v4 shares v3's layout).
SUPPORTED_VERSIONS = frozenset({2, 3, 4, 5})
#: SIGNATURE_ALGO value for ECDSA P-384 with SHA-384 (spec "Signature Algorithm" encodings).
SIG_ALGO_ECDSA_P384_SHA384 = 1
#: Size of each of R and S inside the SIGNATURE field.
ECDSA_COMPONENT_SIZE = 72

_P = "ATTESTATION_REPORT"


class ProductLine(str, Enum):
    """EPYC generations that implement SEV-SNP, spelled as AMD's KDS and certificate CNs spell them."""

    MILAN = "Milan"
    GENOA = "Genoa"
    TURIN = "Turin"

    @property
    def turin_tcb_layout(self) -> bool:
        return self is ProductLine.TURIN


def product_from_cpuid(family: int, model: int) -> ProductLine | None:
    """Product line for a CPUID family/model pair (extended values combined), ``None`` if unknown.

    Family 19h models 00h-0Fh are Milan, 10h-1Fh and A0h-AFh Genoa; family 1Ah models 00h-11h are
    Turin (AMD KDS specification 57230, "Determining the Product Name", and the processor
    programming references).
    """
    if family == 0x19:
        if model <= 0x0F:
            return ProductLine.MILAN
        if 0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF:
            return ProductLine.GENOA
        return None
    if family == 0x1A and model <= 0x11:
        return ProductLine.TURIN
    return None


class SigningKey(IntEnum):
    """SIGNING_KEY (signer info bits 4:2): which key signed the report."""

    VCEK = 0
    VLEK = 1
    NONE = 7


@dataclass(frozen=True, slots=True)
class TcbVersion:
    """TCB_VERSION (56860 section 2.2, "TCB_VERSION Structure"): security patch levels.

    ``raw`` is the 64-bit little-endian value as stored. ``fmc`` is present only for the Turin
    layout. ``reserved`` holds the bytes the layout reserves (Milan/Genoa bytes 2-5, Turin bytes
    4-6) so nothing in the value is lost.
    """

    raw: int
    boot_loader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None
    reserved: bytes

    @classmethod
    def decode(cls, raw: int, *, turin: bool) -> TcbVersion:
        b = raw.to_bytes(8, "little")
        if turin:
            return cls(raw, boot_loader=b[1], tee=b[2], snp=b[3], microcode=b[7], fmc=b[0], reserved=b[4:7])
        return cls(raw, boot_loader=b[0], tee=b[1], snp=b[6], microcode=b[7], fmc=None, reserved=b[2:6])

    @staticmethod
    def compose(
        *,
        boot_loader: int,
        tee: int,
        snp: int,
        microcode: int,
        fmc: int | None = None,
        reserved: bytes | None = None,
    ) -> int:
        """The raw value for components; Turin layout when ``fmc`` is given."""
        if fmc is not None:
            rsv = reserved if reserved is not None else bytes(3)
            b = bytes([fmc, boot_loader, tee, snp]) + rsv + bytes([microcode])
        else:
            rsv = reserved if reserved is not None else bytes(4)
            b = bytes([boot_loader, tee]) + rsv + bytes([snp, microcode])
        return int.from_bytes(b, "little")

    def components(self) -> dict[str, int]:
        """Named components (``fmc`` only for Turin), for messages and claims."""
        out = {"boot_loader": self.boot_loader, "tee": self.tee, "snp": self.snp, "microcode": self.microcode}
        if self.fmc is not None:
            out = {"fmc": self.fmc, **out}
        return out

    def __str__(self) -> str:
        parts = " ".join(f"{k}={v}" for k, v in self.components().items())
        return f"0x{self.raw:016x} ({parts})"


@dataclass(frozen=True, slots=True)
class GuestPolicy:
    """GUEST_POLICY (56860 section 4.3, "Guest Policy"): the policy the guest owner launched with.

    Bit 17 is reserved and must be one; bits 63:26 are reserved and must be zero.
    """

    raw: int
    abi_minor: int  # bits 7:0
    abi_major: int  # bits 15:8
    smt: bool  # bit 16: SMT allowed
    migrate_ma: bool  # bit 18: association with a migration agent allowed
    debug: bool  # bit 19: debugging allowed
    single_socket: bool  # bit 20: guest may be active on a single socket only
    cxl_allow: bool  # bit 21: CXL may be populated with devices or memory
    mem_aes_256_xts: bool  # bit 22: AES-256-XTS required for memory encryption
    rapl_dis: bool  # bit 23: Running Average Power Limit must be disabled
    ciphertext_hiding: bool  # bit 24: ciphertext hiding (DRAM) must be enabled
    page_swap_disable: bool  # bit 25: SNP_PAGE_MOVE / SWAP_OUT / SWAP_IN disabled

    @classmethod
    def decode(cls, raw: int) -> GuestPolicy:
        bit = lambda n: bool((raw >> n) & 1)
        return cls(
            raw=raw,
            abi_minor=raw & 0xFF,
            abi_major=(raw >> 8) & 0xFF,
            smt=bit(16),
            migrate_ma=bit(18),
            debug=bit(19),
            single_socket=bit(20),
            cxl_allow=bit(21),
            mem_aes_256_xts=bit(22),
            rapl_dis=bit(23),
            ciphertext_hiding=bit(24),
            page_swap_disable=bit(25),
        )


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """PLATFORM_INFO (ATTESTATION_REPORT offset 0x40): platform state when the report was made.

    Unknown bits are kept in ``raw`` and not rejected: the field describes the host, and newer
    firmware defines further bits.
    """

    raw: int
    smt_en: bool  # bit 0: SMT enabled in the system
    tsme_en: bool  # bit 1: TSME enabled in the system
    ecc_en: bool  # bit 2: platform uses ECC memory
    rapl_dis: bool  # bit 3: RAPL disabled
    ciphertext_hiding_en: bool  # bit 4: ciphertext hiding enabled
    alias_check_complete: bool  # bit 5: memory alias check completed (BadRAM mitigation)
    tio_en: bool  # bit 7: SEV-TIO enabled

    @classmethod
    def decode(cls, raw: int) -> PlatformInfo:
        bit = lambda n: bool((raw >> n) & 1)
        return cls(raw, bit(0), bit(1), bit(2), bit(3), bit(4), bit(5), bit(7))


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """Signer info (ATTESTATION_REPORT offset 0x48): AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY."""

    raw: int
    author_key_en: bool  # bit 0: the ID block carried an author key
    mask_chip_key: bool  # bit 1: host masked CHIP_ID (reported as zeros)
    signing_key: SigningKey  # bits 4:2


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """One parsed ATTESTATION_REPORT (56860 section 7.3, "ATTESTATION_REPORT Structure").

    ``product_line`` is the product whose TCB_VERSION layout was used to decode the TCB fields:
    the CPUID-derived product for v3+ reports (``cpuid_product``), otherwise the caller's hint.
    ``raw`` keeps the exact input for signature checking.
    """

    raw: bytes
    version: int
    guest_svn: int
    policy: GuestPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: TcbVersion
    platform_info: PlatformInfo
    signer_info: SignerInfo
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: TcbVersion
    cpuid_fam_id: int | None
    cpuid_mod_id: int | None
    cpuid_step: int | None
    chip_id: bytes
    committed_tcb: TcbVersion
    current_build: int
    current_minor: int
    current_major: int
    committed_build: int
    committed_minor: int
    committed_major: int
    launch_tcb: TcbVersion
    launch_mit_vector: int | None
    current_mit_vector: int | None
    signature_r: int
    signature_s: int
    cpuid_product: ProductLine | None
    product_line: ProductLine | None

    @property
    def signed_bytes(self) -> bytes:
        """The bytes the signature covers: ``[0x000, 0x2A0)``."""
        return self.raw[:SIGNED_LENGTH]

    @property
    def chip_id_masked(self) -> bool:
        return self.signer_info.mask_chip_key


def _mbz(data: bytes, start: int, end: int, field: str) -> None:
    for i in range(start, end):
        if data[i]:
            raise EvidenceError(
                "snp.reserved_nonzero",
                f"reserved byte 0x{i:03x} is 0x{data[i]:02x}, must be zero",
                field=f"{_P}.{field}",
                offset=i,
            )


def parse_report(
    data: bytes | bytearray | memoryview, *, product_line: ProductLine | None = None
) -> AttestationReport:
    """Parse exactly one ATTESTATION_REPORT (0x4A0 bytes).

    ``product_line`` selects the TCB_VERSION layout for v2 reports (which carry no CPUID); a v3+
    report's own CPUID fields take precedence when they name a known product.
    """
    data = bytes(data)
    if len(data) < REPORT_SIZE:
        raise EvidenceError(
            "snp.truncated",
            f"an ATTESTATION_REPORT is {REPORT_SIZE} bytes, got {len(data)}",
            field=_P,
            offset=len(data),
        )
    if len(data) > REPORT_SIZE:
        raise EvidenceError(
            "snp.trailing_data",
            f"{len(data) - REPORT_SIZE} unexpected bytes after the {REPORT_SIZE}-byte ATTESTATION_REPORT",
            field=_P,
            offset=REPORT_SIZE,
        )
    r = Reader(data, prefix="snp")
    version = r.u32(f"{_P}.VERSION")
    if version not in SUPPORTED_VERSIONS:
        raise EvidenceError(
            "snp.unsupported_version",
            f"report version {version} is not supported (supported: 2, 3, 4, 5)",
            field=f"{_P}.VERSION",
            offset=0,
        )
    guest_svn = r.u32(f"{_P}.GUEST_SVN")
    policy_raw = r.u64(f"{_P}.POLICY")
    if not (policy_raw >> 17) & 1:
        raise EvidenceError(
            "snp.bad_policy",
            "GUEST_POLICY bit 17 is reserved and must be 1",
            field=f"{_P}.POLICY",
            offset=0x08,
        )
    if policy_raw >> 26:
        raise EvidenceError(
            "snp.bad_policy",
            f"GUEST_POLICY bits 63:26 are reserved and must be 0, got 0x{policy_raw:016x}",
            field=f"{_P}.POLICY",
            offset=0x08,
        )
    family_id = r.bytes(16, f"{_P}.FAMILY_ID")
    image_id = r.bytes(16, f"{_P}.IMAGE_ID")
    vmpl = r.u32(f"{_P}.VMPL")
    signature_algo = r.u32(f"{_P}.SIGNATURE_ALGO")
    current_tcb_raw = r.u64(f"{_P}.CURRENT_TCB")
    platform_info = PlatformInfo.decode(r.u64(f"{_P}.PLATFORM_INFO"))
    signer_raw = r.u32(f"{_P}.SIGNER_INFO")
    if signer_raw >> 5:
        raise EvidenceError(
            "snp.reserved_nonzero",
            f"signer info bits 31:5 are reserved, got 0x{signer_raw:08x}",
            field=f"{_P}.SIGNER_INFO",
            offset=0x48,
        )
    key_sel = (signer_raw >> 2) & 7
    if key_sel not in (0, 1, 7):
        raise EvidenceError(
            "snp.bad_signer_info",
            f"SIGNING_KEY value {key_sel} is reserved (0 = VCEK, 1 = VLEK, 7 = none)",
            field=f"{_P}.SIGNING_KEY",
            offset=0x48,
        )
    signer_info = SignerInfo(signer_raw, bool(signer_raw & 1), bool(signer_raw & 2), SigningKey(key_sel))
    _mbz(data, 0x4C, 0x50, "reserved_0x4c")
    r.skip(4, f"{_P}.reserved_0x4c")
    report_data = r.bytes(64, f"{_P}.REPORT_DATA")
    measurement = r.bytes(48, f"{_P}.MEASUREMENT")
    host_data = r.bytes(32, f"{_P}.HOST_DATA")
    id_key_digest = r.bytes(48, f"{_P}.ID_KEY_DIGEST")
    author_key_digest = r.bytes(48, f"{_P}.AUTHOR_KEY_DIGEST")
    report_id = r.bytes(32, f"{_P}.REPORT_ID")
    report_id_ma = r.bytes(32, f"{_P}.REPORT_ID_MA")
    reported_tcb_raw = r.u64(f"{_P}.REPORTED_TCB")
    cpuid_fam = cpuid_mod = cpuid_step = None
    if version >= 3:
        cpuid_fam = r.u8(f"{_P}.CPUID_FAM_ID")
        cpuid_mod = r.u8(f"{_P}.CPUID_MOD_ID")
        cpuid_step = r.u8(f"{_P}.CPUID_STEP")
    _mbz(data, r.pos, 0x1A0, "reserved_0x188")
    r.skip(0x1A0 - r.pos, f"{_P}.reserved_0x188")
    chip_id = r.bytes(64, f"{_P}.CHIP_ID")
    committed_tcb_raw = r.u64(f"{_P}.COMMITTED_TCB")
    current_build = r.u8(f"{_P}.CURRENT_BUILD")
    current_minor = r.u8(f"{_P}.CURRENT_MINOR")
    current_major = r.u8(f"{_P}.CURRENT_MAJOR")
    _mbz(data, 0x1EB, 0x1EC, "reserved_0x1eb")
    r.skip(1, f"{_P}.reserved_0x1eb")
    committed_build = r.u8(f"{_P}.COMMITTED_BUILD")
    committed_minor = r.u8(f"{_P}.COMMITTED_MINOR")
    committed_major = r.u8(f"{_P}.COMMITTED_MAJOR")
    _mbz(data, 0x1EF, 0x1F0, "reserved_0x1ef")
    r.skip(1, f"{_P}.reserved_0x1ef")
    launch_tcb_raw = r.u64(f"{_P}.LAUNCH_TCB")
    launch_mit = current_mit = None
    if version >= 5:
        launch_mit = r.u64(f"{_P}.LAUNCH_MIT_VECTOR")
        current_mit = r.u64(f"{_P}.CURRENT_MIT_VECTOR")
    _mbz(data, r.pos, SIGNED_LENGTH, "reserved_0x1f8")
    r.skip(SIGNED_LENGTH - r.pos, f"{_P}.reserved_0x1f8")
    sig_r = int.from_bytes(r.bytes(ECDSA_COMPONENT_SIZE, f"{_P}.SIGNATURE.R"), "little")
    sig_s = int.from_bytes(r.bytes(ECDSA_COMPONENT_SIZE, f"{_P}.SIGNATURE.S"), "little")
    if signature_algo == SIG_ALGO_ECDSA_P384_SHA384:
        _mbz(data, r.pos, REPORT_SIZE, "SIGNATURE.reserved")
    r.skip(REPORT_SIZE - r.pos, f"{_P}.SIGNATURE.reserved")
    r.expect_end(_P)

    cpuid_product = product_from_cpuid(cpuid_fam, cpuid_mod) if cpuid_fam is not None else None
    effective = cpuid_product or product_line
    turin = effective is ProductLine.TURIN

    def tcb(raw: int) -> TcbVersion:
        return TcbVersion.decode(raw, turin=turin)

    return AttestationReport(
        raw=data,
        version=version,
        guest_svn=guest_svn,
        policy=GuestPolicy.decode(policy_raw),
        family_id=family_id,
        image_id=image_id,
        vmpl=vmpl,
        signature_algo=signature_algo,
        current_tcb=tcb(current_tcb_raw),
        platform_info=platform_info,
        signer_info=signer_info,
        report_data=report_data,
        measurement=measurement,
        host_data=host_data,
        id_key_digest=id_key_digest,
        author_key_digest=author_key_digest,
        report_id=report_id,
        report_id_ma=report_id_ma,
        reported_tcb=tcb(reported_tcb_raw),
        cpuid_fam_id=cpuid_fam,
        cpuid_mod_id=cpuid_mod,
        cpuid_step=cpuid_step,
        chip_id=chip_id,
        committed_tcb=tcb(committed_tcb_raw),
        current_build=current_build,
        current_minor=current_minor,
        current_major=current_major,
        committed_build=committed_build,
        committed_minor=committed_minor,
        committed_major=committed_major,
        launch_tcb=tcb(launch_tcb_raw),
        launch_mit_vector=launch_mit,
        current_mit_vector=current_mit,
        signature_r=sig_r,
        signature_s=sig_s,
        cpuid_product=cpuid_product,
        product_line=effective,
    )
