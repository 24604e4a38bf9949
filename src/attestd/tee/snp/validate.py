"""Reference-value checks on a *verified* SEV-SNP report (the go-sev-guest ``validate`` options).

:func:`check_reference_values` compares a :class:`~attestd.tee.snp.verify.VerifiedSnpReport` with
the verifier owner's expectations. Semantics follow go-sev-guest's ``validate.Options`` (and its
``tools/check`` test cases):

* byte fields (report_data, host_data, family_id, image_id, report_id, report_id_ma, measurement,
  chip_id) must equal the expected value exactly;
* ``guest_policy`` is the *most permissive* policy accepted: the report may not allow SMT, debug,
  a migration agent or CXL unless it does, must require single-socket, AES-256-XTS, RAPL disabled,
  ciphertext hiding and page-swap disable when it does, and its ABI version must be at least the
  reference's;
* ``platform_info`` likewise bounds PLATFORM_INFO (SMT, TSME and TIO only if allowed; ECC, RAPL
  disabled, ciphertext hiding and alias check if required);
* ``minimum_tcb`` bounds REPORTED_TCB and ``minimum_launch_tcb`` bounds LAUNCH_TCB component by
  component (each TCB_VERSION byte is one component in both the Milan/Genoa and Turin layouts);
* firmware: CURRENT_BUILD >= ``minimum_build``, CURRENT_MAJOR.MINOR >= ``minimum_version``, and the
  committed TCB, build and version equal the current ones unless ``permit_provisional_firmware``
  (then they may only be lower); the certified (= reported) TCB may not exceed CURRENT_TCB;
* ``require_author_key`` needs AUTHOR_KEY_EN; ``require_id_block`` needs an ID_KEY_DIGEST in
  ``trusted_id_key_digests`` or an AUTHOR_KEY_DIGEST in ``trusted_author_key_digests``;
* ``vmpl``, ``minimum_guest_svn`` and ``product_stepping`` (CPUID stepping for v3+ reports, else
  the stepping in the VCEK productName, e.g. ``Milan-B0`` -> 0).

Bad reference values (wrong lengths, out-of-range numbers) are an
:class:`~attestd.errors.EvidenceError` ``snp.bad_reference_value`` when the object is built.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from attestd.errors import EvidenceError, VerificationError
from attestd.tee.snp.report import GuestPolicy, PlatformInfo, TcbVersion
from attestd.tee.snp.verify import VerifiedSnpReport

__all__ = ["SnpReferenceValues", "check_reference_values", "parse_firmware_version"]

_BYTE_FIELDS = {
    "report_data": (64, "REPORT_DATA", 0x50),
    "host_data": (32, "HOST_DATA", 0xC0),
    "family_id": (16, "FAMILY_ID", 0x10),
    "image_id": (16, "IMAGE_ID", 0x20),
    "report_id": (32, "REPORT_ID", 0x140),
    "report_id_ma": (32, "REPORT_ID_MA", 0x160),
    "measurement": (48, "MEASUREMENT", 0x90),
    "chip_id": (64, "CHIP_ID", 0x1A0),
}


def _bad(message: str, name: str) -> EvidenceError:
    return EvidenceError("snp.bad_reference_value", message, field=name)


def parse_firmware_version(text: str) -> tuple[int, int]:
    """``"1.49"`` -> (1, 49); anything but two dot-separated bytes is ``snp.bad_reference_value``."""
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise _bad(f"firmware version {text!r} is not MAJOR.MINOR", "minimum_version")
    major, minor = int(parts[0]), int(parts[1])
    if major > 255 or minor > 255:
        raise _bad(f"firmware version {text!r} is out of range", "minimum_version")
    return major, minor


@dataclass(frozen=True, slots=True)
class SnpReferenceValues:
    """What the verifier's owner accepts. ``None`` (or the default) leaves a field unchecked."""

    report_data: bytes | None = None
    host_data: bytes | None = None
    family_id: bytes | None = None
    image_id: bytes | None = None
    report_id: bytes | None = None
    report_id_ma: bytes | None = None
    measurement: bytes | None = None
    chip_id: bytes | None = None
    guest_policy: int | None = None
    platform_info: int | None = None
    minimum_tcb: int | None = None
    minimum_launch_tcb: int | None = None
    minimum_build: int = 0
    minimum_version: tuple[int, int] | str = (0, 0)
    permit_provisional_firmware: bool = False
    minimum_guest_svn: int = 0
    require_author_key: bool = False
    require_id_block: bool = False
    trusted_id_key_digests: frozenset[bytes] = field(default_factory=frozenset)
    trusted_author_key_digests: frozenset[bytes] = field(default_factory=frozenset)
    vmpl: int | None = None
    product_stepping: int | None = None

    def __post_init__(self) -> None:
        for name, (size, _, _) in _BYTE_FIELDS.items():
            value = getattr(self, name)
            if value is not None and len(value) != size:
                raise _bad(f"{name} must be {size} bytes, got {len(value)}", name)
        for name, bits in (
            ("guest_policy", 64),
            ("platform_info", 64),
            ("minimum_tcb", 64),
            ("minimum_launch_tcb", 64),
            ("minimum_build", 8),
            ("minimum_guest_svn", 32),
        ):
            value = getattr(self, name)
            if value is not None and not (0 <= value < 1 << bits):
                raise _bad(f"{name} {value} does not fit {bits} bits", name)
        if self.vmpl is not None and not 0 <= self.vmpl <= 3:
            raise _bad(f"vmpl {self.vmpl} is not 0-3", "vmpl")
        if isinstance(self.minimum_version, str):
            object.__setattr__(self, "minimum_version", parse_firmware_version(self.minimum_version))
        major, minor = self.minimum_version  # type: ignore[misc]
        if not (0 <= major <= 255 and 0 <= minor <= 255):
            raise _bad(f"minimum_version {self.minimum_version} is out of range", "minimum_version")
        for name in ("trusted_id_key_digests", "trusted_author_key_digests"):
            digests = frozenset(getattr(self, name))
            if any(len(d) != 48 for d in digests):
                raise _bad(f"{name} must hold 48-byte SHA-384 digests", name)
            object.__setattr__(self, name, digests)


def _fail(code: str, message: str, field_name: str, offset: int | None = None) -> VerificationError:
    return VerificationError(code, message, field=f"ATTESTATION_REPORT.{field_name}", offset=offset)


def _tcb_le(lower: TcbVersion | int, higher: TcbVersion) -> bool:
    low = (lower.raw if isinstance(lower, TcbVersion) else lower).to_bytes(8, "little")
    high = higher.raw.to_bytes(8, "little")
    return all(a <= b for a, b in zip(low, high))


def _check_policy(got: GuestPolicy, allowed: GuestPolicy) -> None:
    def fail(text: str) -> VerificationError:
        return _fail("snp.guest_policy_violation", text, "POLICY", 0x08)

    if (allowed.abi_major, allowed.abi_minor) > (got.abi_major, got.abi_minor):
        raise fail(
            f"guest policy ABI {got.abi_major}.{got.abi_minor} is below the required "
            f"{allowed.abi_major}.{allowed.abi_minor}"
        )
    for name, text in (
        ("migrate_ma", "a migration agent"),
        ("debug", "debugging"),
        ("smt", "SMT"),
        ("cxl_allow", "CXL"),
    ):
        if getattr(got, name) and not getattr(allowed, name):
            raise fail(f"the guest policy allows {text}, which the reference policy does not")
    for name, text in (
        ("single_socket", "single-socket"),
        ("mem_aes_256_xts", "AES-256-XTS"),
        ("rapl_dis", "RAPL disabled"),
        ("ciphertext_hiding", "ciphertext hiding"),
        ("page_swap_disable", "page swap disabled"),
    ):
        if getattr(allowed, name) and not getattr(got, name):
            raise fail(f"the reference policy requires {text}, which the guest policy does not")


def _check_platform(got: PlatformInfo, allowed: PlatformInfo) -> None:
    def fail(text: str) -> VerificationError:
        return _fail("snp.platform_info_violation", text, "PLATFORM_INFO", 0x40)

    for name, text in (("smt_en", "SMT"), ("tsme_en", "TSME"), ("tio_en", "SEV-TIO")):
        if getattr(got, name) and not getattr(allowed, name):
            raise fail(f"platform feature {text} is enabled, which the reference does not allow")
    for name, text in (
        ("ecc_en", "ECC memory"),
        ("rapl_dis", "RAPL disabled"),
        ("ciphertext_hiding_en", "ciphertext hiding"),
        ("alias_check_complete", "alias check"),
    ):
        if getattr(allowed, name) and not getattr(got, name):
            raise fail(f"the reference requires platform feature {text}, which the report lacks")


def check_reference_values(verified: VerifiedSnpReport, ref: SnpReferenceValues) -> None:
    """Raise :class:`VerificationError` for the first expectation the verified report misses."""
    r = verified.report
    for name, (_, spec, offset) in _BYTE_FIELDS.items():
        want = getattr(ref, name)
        if want is not None and not hmac.compare_digest(getattr(r, name), want):
            raise _fail(
                f"snp.{name}_mismatch",
                f"{spec} {getattr(r, name).hex()} is not the expected {want.hex()}",
                spec,
                offset,
            )
    if r.guest_svn < ref.minimum_guest_svn:
        raise _fail(
            "snp.guest_svn_too_low",
            f"GUEST_SVN {r.guest_svn} is below {ref.minimum_guest_svn}",
            "GUEST_SVN",
            0x04,
        )
    if ref.guest_policy is not None:
        _check_policy(r.policy, GuestPolicy.decode(ref.guest_policy))
    if ref.platform_info is not None:
        _check_platform(r.platform_info, PlatformInfo.decode(ref.platform_info))
    if ref.vmpl is not None and r.vmpl != ref.vmpl:
        raise _fail("snp.vmpl_mismatch", f"VMPL {r.vmpl} is not {ref.vmpl}", "VMPL", 0x30)

    # TCB ordering (go-sev-guest validateTcb).
    if ref.permit_provisional_firmware:
        if not _tcb_le(r.committed_tcb, r.current_tcb):
            raise _fail(
                "snp.provisional_firmware",
                f"COMMITTED_TCB {r.committed_tcb} exceeds CURRENT_TCB {r.current_tcb}",
                "COMMITTED_TCB",
                0x1E0,
            )
    elif r.committed_tcb.raw != r.current_tcb.raw:
        raise _fail(
            "snp.provisional_firmware",
            f"COMMITTED_TCB {r.committed_tcb} is not CURRENT_TCB "
            f"{r.current_tcb} (provisional firmware not permitted)",
            "COMMITTED_TCB",
            0x1E0,
        )
    if not _tcb_le(r.reported_tcb, r.current_tcb):
        raise _fail(
            "snp.tcb_mismatch",
            f"the certified REPORTED_TCB {r.reported_tcb} exceeds CURRENT_TCB {r.current_tcb}",
            "REPORTED_TCB",
            0x180,
        )
    if ref.minimum_tcb is not None and not _tcb_le(ref.minimum_tcb, r.reported_tcb):
        raise _fail(
            "snp.tcb_too_low",
            f"REPORTED_TCB {r.reported_tcb} is below the minimum 0x{ref.minimum_tcb:016x}",
            "REPORTED_TCB",
            0x180,
        )
    if ref.minimum_launch_tcb is not None and not _tcb_le(ref.minimum_launch_tcb, r.launch_tcb):
        raise _fail(
            "snp.launch_tcb_too_low",
            f"LAUNCH_TCB {r.launch_tcb} is below the minimum 0x{ref.minimum_launch_tcb:016x}",
            "LAUNCH_TCB",
            0x1F0,
        )

    # Firmware build and API version (go-sev-guest validateVersion).
    if r.current_build < ref.minimum_build:
        raise _fail(
            "snp.firmware_too_old",
            f"firmware build {r.current_build} is below {ref.minimum_build}",
            "CURRENT_BUILD",
            0x1E8,
        )
    want_major, want_minor = ref.minimum_version  # type: ignore[misc]
    if (r.current_major, r.current_minor) < (want_major, want_minor):
        raise _fail(
            "snp.firmware_too_old",
            f"firmware {r.current_major}.{r.current_minor} is below {want_major}.{want_minor}",
            "CURRENT_MAJOR",
            0x1EA,
        )
    committed = (r.committed_major, r.committed_minor, r.committed_build)
    current = (r.current_major, r.current_minor, r.current_build)
    if (committed > current) if ref.permit_provisional_firmware else (committed != current):
        raise _fail(
            "snp.provisional_firmware",
            f"committed firmware {committed} differs from current {current}",
            "COMMITTED_BUILD",
            0x1EC,
        )

    # ID block and author key.
    if ref.require_author_key and not r.signer_info.author_key_en:
        raise _fail(
            "snp.author_key_required",
            "AUTHOR_KEY_EN is 0: the VM was launched without an author key",
            "AUTHOR_KEY_EN",
            0x48,
        )
    if ref.require_id_block or ref.require_author_key:
        trusted = r.id_key_digest in ref.trusted_id_key_digests or (
            r.signer_info.author_key_en and r.author_key_digest in ref.trusted_author_key_digests
        )
        if not trusted:
            raise _fail(
                "snp.id_block_required",
                f"ID_KEY_DIGEST {r.id_key_digest.hex()} is not a trusted ID key "
                "and no trusted author key endorses it",
                "ID_KEY_DIGEST",
                0xE0,
            )

    if ref.product_stepping is not None:
        stepping = r.cpuid_step if r.cpuid_step is not None else verified.endorsement.product_stepping
        if stepping != ref.product_stepping:
            raise VerificationError(
                "snp.product_mismatch",
                f"expected product stepping {ref.product_stepping}, got {stepping}",
                field="ATTESTATION_REPORT.CPUID_STEP" if r.cpuid_step is not None else "VCEK.productName",
            )
