"""Windows boot configuration claims from a verified WBCL (the SIPA records of PCRs 12-14, 19, 20).

Windows Boot Manager and winload log their configuration as ``EV_EVENT_TAG`` events whose data is
a ``TCG_PCClientTaggedEventStruct`` holding a tree of SIPA records (Microsoft ``wbcl.h``:
``UINT32 EventID, UINT32 EventDataSize, data``; containers such as ``SIPAEVENT_TRUSTBOUNDARY``
nest further records). Boot Manager's and winload's trust boundaries go to PCR 12 (settings,
module hashes) and PCR 13 (modules with their paths and signers), the authorities to PCR 14; a
System Guard (DRTM) launch logs its trust boundaries to PCRs 19 and 20, as Microsoft's Azure
Attestation policies read them. Each PCR's boot phase ends with its ``EV_SEPARATOR`` ("WBCL").

:func:`windows_claims` takes the events of an event log that was **already verified** against
quoted PCR values (:func:`attestd.claims.verify_tpm_evidence` passes only the events of verified
PCRs); it never verifies anything itself, and it trusts nothing outside the WBCL PCRs: a SIPA
record extended into another PCR (which any software can extend) is ignored. It returns ``None``
when the log has no Windows SIPA data, i.e. for every Linux log.

Rules, following go-attestation's ``ParseWinEvents`` (attest/win_events.go) and Microsoft's Azure
Attestation TPM policy samples:

* settings that **weaken** security latch *on* if any record ever sets them: boot debugging, OS
  kernel debugging, hypervisor debugging, test signing, flight signing, safe mode, WinPE. A record
  whose value is not a clean one-byte ``false`` (wrong size, any non-zero byte) counts as set;
* settings that **strengthen** it latch *off* if any record ever unsets them: code integrity, DEP,
  VBS (launch type, VSM required, mandatory enforcement), HVCI, IOMMU required, boot DMA
  protection. They are ``True`` only if measured and every measurement says so, ``False`` if any
  says otherwise (a malformed value included), ``None`` if never measured;
* records logged **after** a PCR's WBCL separator come from the running OS, not from the boot
  path. They can still latch a weakening setting on or a strengthening one off (they can only make
  the verdict worse), but never make anything look secure, and they add no modules, ELAM drivers,
  BitLocker unlocks, counters or transfer controls (go-attestation ignores them altogether). Their
  event numbers are in :attr:`WindowsClaims.post_boot_events`;
* BitLocker unlocks come from PCR 12 (and 19) only: PCR 13 repeats them (go-attestation; Azure's
  sample reads PCR 12/19). Loaded modules are merged by Authenticode hash: PCR 12 gives the hash
  and image base, PCR 13 the path, size and signer. ``TRANSFER_CONTROL`` = 1 means Boot Manager
  started winload (a cold boot), 2 winresume (a resume from hibernation).

Typed values are ``None`` when never measured; ``sources`` maps every setting to the numbers of
the events whose records measured it and ``decided_by`` to the one event that decided the value,
so an explanation can cite "event 14".

Flat claims (:meth:`WindowsClaims.azure`), the names Azure Attestation documents for TPM
attestation (policy version 1.0 incoming claims, and the claims its TPM/HealthAttestation sample
policies derive from the WBCL) plus a few Attestd additions in the same style. **A claim that
asserts security is** ``false`` **when the setting was not measured** (Azure's sample policy does
the same for the claims it derives, except ``notSafeMode``/``notWinPE``, which it makes ``true``
when unmeasured; Attestd is stricter). ``None`` values are left out of the flat claim set.

==================================  =======  ==================================================
claim                               type     meaning (SIPA records, wbcl.h ``SIPAEVENT_*``)
==================================  =======  ==================================================
``bootDebuggingDisabled``           bool     ``BOOTDEBUGGING`` measured and never set.
``osKernelDebuggingDisabled``       bool     ``OSKERNELDEBUG`` measured and never set.
``hypervisorDebuggingDisabled``     bool     ``HYPERVISOR_DEBUG`` measured and never set, or not
                                             measured because no hypervisor was launched
                                             (``HYPERVISOR_LAUNCH_TYPE`` measured, always 0, and
                                             ``VSM_LAUNCH_TYPE`` never non-zero): without a
                                             hypervisor there is no hypervisor debugger.
``testSigningDisabled``             bool     ``TESTSIGNING`` measured and never set.
``flightSigningNotEnabled``         bool     ``FLIGHTSIGNING`` measured and never set.
``notSafeMode``                     bool     ``SAFEMODE`` measured and never set.
``notWinPE``                        bool     ``WINPE`` measured and never set.
``codeIntegrityEnabled``            bool     ``CODEINTEGRITY`` measured and always true.
``depEnabled``                      bool     ``DATAEXECUTIONPREVENTION`` measured and always
                                             non-zero (go-attestation's ``DEPEnabled``).
``depPolicy``                       int      the last ``DATAEXECUTIONPREVENTION`` value (Azure
                                             sample; left out when not measured).
``vbsEnabled``                      bool     virtualization-based security: ``VSM_LAUNCH_TYPE``
                                             measured and always non-zero or, when the launch
                                             type was not measured, ``VBS_VSM_REQUIRED`` measured
                                             and always true. (Azure's sample reads
                                             ``VBS_VSM_REQUIRED``/``MANDATORY_ENFORCEMENT`` only;
                                             both are in the typed section.)
``hvciEnabled``                     bool     ``VBS_HVCI_POLICY`` measured with bit 0
                                             (HypervisorEnforcedCodeIntegrityEnable) always set,
                                             and ``vbsEnabled``.
``iommuEnabled``                    bool     DMA protection through the IOMMU:
                                             ``VBS_IOMMU_REQUIRED`` (Azure's definition) or
                                             ``HYPERVISOR_BOOT_DMA_PROTECTION`` (Kernel DMA
                                             Protection) measured and always true.
``drtmLaunched``                    bool     a ``DRTM_*`` record (System Guard Secure Launch) in
                                             the boot phase. The claims engine ORs it with the
                                             DRTM PCRs (17/18); the ``DRTM_STATE_AUTH``
                                             signature is not checked.
``elamDriverLoaded``                bool     at least one Early Launch Anti-Malware driver's
                                             configuration was measured (``ELAM_AGGREGATION``
                                             with a key name).
``elamDrivers``                     set      their key names (e.g. ``Windows Defender``).
``windowsDefenderElamDriverLoaded`` bool     Azure sample's ``WindowsDefenderElamDriverLoaded``:
                                             a validated loaded module
                                             ``\\Windows\\System32\\drivers\\[wd\\]WdBoot.sys``
                                             (without the sample's ``@ != null`` bug, which is
                                             true for an empty list).
``bitlockerUnlocks``                set      ``BITLOCKER_UNLOCK`` flags (``FVEB_UNLOCK_FLAG_*``)
                                             of each unlock, PCR 12/19.
``bitlockerEnabled``                bool     Azure sample: some unlock has non-zero flags.
``bitlockerEnabledValue``           int      Azure sample: the first non-zero unlock flags.
``bootCount``                       int      ``BOOTCOUNTER`` (TPM monotonic boot counter).
``coldBoot``                        bool     ``TRANSFER_CONTROL`` = 1: winload ran (not a resume).
``bootMgrSvn``                      int      Azure sample: the first ``APPLICATION_SVN`` in PCR 12
                                             (Boot Manager's security version number).
``bootRevListInfo``                 string   hex of the first ``BOOT_REVOCATION_LIST`` (Azure
                                             sample, there base64url).
``osRevListInfo``                   string   hex of the first ``OS_REVOCATION_LIST``.
``codeIntegrityPolicy``             set      hex of each ``SI_POLICY`` (WDAC policy) record.
``loadedModules``                   set      one JSON object per module Windows loaded:
                                             ``filePath``, ``authenticodeHash`` (hex),
                                             ``hashAlgorithm``, ``imageValidated``,
                                             ``authorityIssuer``, ``authorityPublisher``,
                                             ``authoritySerial``, ``authoritySha1Thumbprint``,
                                             ``imageBase``, ``imageSize``.
``loadedModuleHashes``              set      their Authenticode hashes (hex).
==================================  =======  ==================================================

Malformed SIPA framing raises the event data decoder's :class:`~attestd.errors.EvidenceError`
(``eventlog.data.sipa`` / ``eventlog.data.tagged_event``): the records are walked here directly
(building the decoder's full record tree costs about 3 ms for the 43 KB GCP WBCL, this walk about
1.3 ms; a Linux log costs microseconds), and any framing problem is handed to :meth:`Event.decode`,
which raises the same error the decoder always raises.
"""

from __future__ import annotations

import struct
from codecs import utf_16_le_decode as _utf16_le_decode
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from attestd.eventlog.constants import EventType
from attestd.eventlog.data.base import fail
from attestd.eventlog.data.sipa import AGGREGATION, CLASS_MASK, CONTAINER, DRTM, SIPA_NAMES
from attestd.eventlog.model import Event

__all__ = [
    "BITLOCKER_UNLOCK_FLAGS",
    "TRANSFER_CONTROL_NAMES",
    "WBCL_PCRS",
    "ElamClaim",
    "RevocationList",
    "WindowsClaims",
    "WindowsModule",
    "windows_claims",
]

_TAG = int(EventType.EV_EVENT_TAG)
_SEPARATOR = int(EventType.EV_SEPARATOR)

#: PCRs Windows logs SIPA records to: 12-14 (static root), 19-20 (System Guard / DRTM)
WBCL_PCRS = frozenset({12, 13, 14, 19, 20})
#: PCRs whose BITLOCKER_UNLOCK / APPLICATION_SVN records count (13 and 20 repeat them)
_FIRST_PCRS = frozenset({12, 19})

#: ``SIPAEVENT_TRANSFER_CONTROL`` values: the application Boot Manager handed control to (1 and 2
#: as go-attestation reads them; the other names as Microsoft's TCGLogTools decodes them)
TRANSFER_CONTROL_NAMES = {0: "NONE", 1: "OSLOADER", 2: "RESUME", 3: "MSUTILITY", 4: "NOSIGCHECK",
                          5: "HYPERVISOR", 0xFFFFFFFF: "UNKNOWN"}
#: wbcl.h ``FVEB_UNLOCK_FLAG_*``: how BitLocker unlocked a volume
BITLOCKER_UNLOCK_FLAGS = {0x001: "CACHED", 0x002: "MEDIA", 0x004: "TPM", 0x010: "PIN", 0x020: "EXTERNAL",
                          0x040: "RECOVERY", 0x080: "PASSPHRASE", 0x100: "NBP", 0x200: "AUK_OSFVEINFO"}
#: wincrypt.h ``CALG_*`` low byte of ``SIPAEVENT_HASHALGORITHMID``
_HASH_ALGS = {0x02: "md4", 0x03: "md5", 0x04: "sha1", 0x0C: "sha256", 0x0D: "sha384", 0x0E: "sha512"}
#: TPM_ALG_ID of a revocation list digest (wbcl.h ``WBCL_DIGEST_ALG_ID_*``)
_TPM_ALGS = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384", 0x000D: "sha512", 0x0012: "sm3_256",
             0x0027: "sha3_256", 0x0028: "sha3_384", 0x0029: "sha3_512"}
_DEFENDER_ELAM = frozenset({"\\windows\\system32\\drivers\\wdboot.sys",
                            "\\windows\\system32\\drivers\\wd\\wdboot.sys"})

# wbcl.h SIPA event ids
_LOADEDMODULE_AGGREGATION = 0x40010003
_ELAM_AGGREGATION = 0x40010002
_FILEPATH, _IMAGESIZE, _HASHALGORITHMID, _AUTHENTICODEHASH = 0x70001, 0x70002, 0x70003, 0x70004
_AUTHORITYISSUER, _AUTHORITYSERIAL, _IMAGEBASE, _AUTHORITYPUBLISHER = 0x70005, 0x70006, 0x70007, 0x70008
_AUTHORITYSHA1THUMBPRINT, _IMAGEVALIDATED, _MODULE_SVN = 0x70009, 0x7000A, 0x7000B
_ELAM_KEYNAME, _ELAM_CONFIGURATION, _ELAM_POLICY, _ELAM_MEASURED = 0x90001, 0x90002, 0x90003, 0x90004

# leaf kinds
(_WEAK, _STRONG_BOOL, _STRONG_U64, _STRONG_NONZERO, _STRONG_BIT0, _HV_LAUNCH, _RAW_INT, _BOOTCOUNTER,
 _TRANSFER, _BITLOCKER, _APP_SVN, _BOOT_REVLIST, _OS_REVLIST, _SI_POLICY, _SYSTEMROOT, _DRTM) = range(16)

#: SIPA id -> (kind, WindowsClaims field)
_LEAVES: dict[int, tuple[int, str]] = {
    0x00040001: (_WEAK, "boot_debugging"),          # SIPAEVENT_BOOTDEBUGGING
    0x00050001: (_WEAK, "kernel_debugging"),        # SIPAEVENT_OSKERNELDEBUG
    0x0005000D: (_WEAK, "hypervisor_debugging"),    # SIPAEVENT_HYPERVISOR_DEBUG
    0x00050003: (_WEAK, "test_signing"),            # SIPAEVENT_TESTSIGNING
    0x00050021: (_WEAK, "flight_signing"),          # SIPAEVENT_FLIGHTSIGNING
    0x00050005: (_WEAK, "safe_mode"),               # SIPAEVENT_SAFEMODE
    0x00050006: (_WEAK, "winpe"),                   # SIPAEVENT_WINPE
    0x00050002: (_STRONG_BOOL, "code_integrity"),   # SIPAEVENT_CODEINTEGRITY
    0x00050004: (_STRONG_U64, "dep"),               # SIPAEVENT_DATAEXECUTIONPREVENTION (UINT64)
    0x00050012: (_STRONG_NONZERO, "vbs"),           # SIPAEVENT_VSM_LAUNCH_TYPE (0 = off)
    0x000A0001: (_STRONG_BOOL, "vbs_required"),     # SIPAEVENT_VBS_VSM_REQUIRED
    0x000A0006: (_STRONG_BOOL, "vbs_mandatory"),    # SIPAEVENT_VBS_MANDATORY_ENFORCEMENT
    0x000A0007: (_STRONG_BIT0, "hvci"),             # SIPAEVENT_VBS_HVCI_POLICY
    0x000A0003: (_STRONG_BOOL, "iommu_required"),   # SIPAEVENT_VBS_IOMMU_REQUIRED
    0x00050030: (_STRONG_BOOL, "boot_dma_protection"),  # SIPAEVENT_HYPERVISOR_BOOT_DMA_PROTECTION
    0x0005000A: (_HV_LAUNCH, "hypervisor_launch_type"),  # SIPAEVENT_HYPERVISOR_LAUNCH_TYPE (0 = off)
    0x0005000C: (_RAW_INT, "hypervisor_iommu_policy"),   # SIPAEVENT_HYPERVISOR_IOMMU_POLICY
    0x00020002: (_BOOTCOUNTER, "boot_counter"),     # SIPAEVENT_BOOTCOUNTER
    0x00020003: (_TRANSFER, "transfer_control"),    # SIPAEVENT_TRANSFER_CONTROL
    0x00020005: (_BITLOCKER, "bitlocker_unlocks"),  # SIPAEVENT_BITLOCKER_UNLOCK
    0x00020009: (_APP_SVN, "boot_manager_svn"),     # SIPAEVENT_APPLICATION_SVN
    0x00040002: (_BOOT_REVLIST, "boot_revocation_list"),  # SIPAEVENT_BOOT_REVOCATION_LIST
    0x00050013: (_OS_REVLIST, "os_revocation_list"),      # SIPAEVENT_OS_REVOCATION_LIST
    0x0005000F: (_SI_POLICY, "si_policies"),        # SIPAEVENT_SI_POLICY
    0x00050009: (_SYSTEMROOT, "system_root"),       # SIPAEVENT_SYSTEMROOT
    0x000C0001: (_DRTM, "drtm"),                    # SIPAEVENT_DRTM_STATE_AUTH
    0x000C0002: (_DRTM, "drtm"),                    # SIPAEVENT_DRTM_SMM_LEVEL
    0x000C0003: (_DRTM, "drtm"),                    # SIPAEVENT_DRTM_AMD_SMM_HASH
    0x000C0004: (_DRTM, "drtm"),                    # SIPAEVENT_DRTM_AMD_SMM_SIGNER_KEY
}
#: the raw integer kept beside a strengthening flag: flag field -> raw field
_RAW_OF = {"dep": "dep_policy", "vbs": "vsm_launch_type", "hvci": "hvci_policy"}

_WEAKENING = ("boot_debugging", "kernel_debugging", "hypervisor_debugging", "test_signing", "flight_signing",
              "safe_mode", "winpe")
_STRENGTHENING = ("code_integrity", "dep", "vbs", "vbs_required", "vbs_mandatory", "hvci", "iommu_required",
                  "boot_dma_protection")
_RAW_INTS = ("dep_policy", "vsm_launch_type", "hvci_policy", "hypervisor_launch_type", "hypervisor_iommu_policy")

_HDR = struct.Struct("<II")
#: SIPA container nesting the decoder accepts (attestd.eventlog.data.sipa._MAX_DEPTH)
_MAX_DEPTH = 16


def _hex(b: bytes | None) -> str | None:
    return b.hex() if b is not None else None


def _int(b: bytes) -> int | None:
    """A SIPA integer of 1, 2, 4 or 8 bytes (little endian), else None."""
    return int.from_bytes(b, "little") if len(b) in (1, 2, 4, 8) else None


def _utf16(b: bytes) -> str:
    """CHAR16 text without its trailing NULs (an odd final byte ignored), as the decoder reads it."""
    return _utf16_le_decode(b if not len(b) & 1 else b[:-1], "replace", True)[0].rstrip("\0")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


# ------------------------------------------------------------------------------------------------
# typed claims


@dataclass(frozen=True, slots=True)
class WindowsModule:
    """A driver or boot application Windows loaded: one ``SIPAEVENT_LOADEDMODULE_AGGREGATION``, or
    several with the same Authenticode hash merged (PCR 12 gives hash and image base, PCR 13 the
    path, size and signer). Hashes, serials and thumbprints are lowercase hex."""

    #: ``SIPAEVENT_AUTHENTICODEHASH`` (hex), the PE image's Authenticode digest
    authenticode_hash: str | None
    #: ``SIPAEVENT_HASHALGORITHMID`` (``CALG_*``) as ``sha256``, ``sha1``, ...
    hash_algorithm: str | None
    #: ``SIPAEVENT_FILEPATH``, e.g. ``\\Windows\\System32\\drivers\\vioscsi.sys``
    file_path: str | None
    #: ``SIPAEVENT_IMAGEBASE``: every address the image was loaded at
    image_base: tuple[int, ...]
    #: ``SIPAEVENT_IMAGESIZE``
    image_size: int | None
    #: ``SIPAEVENT_IMAGEVALIDATED``: the loader validated the signature (false if any record says not)
    image_validated: bool | None
    #: ``SIPAEVENT_AUTHORITYISSUER``: issuer of the signing certificate
    authority_issuer: str | None
    #: ``SIPAEVENT_AUTHORITYPUBLISHER``: subject of the signing certificate
    authority_publisher: str | None
    #: ``SIPAEVENT_AUTHORITYSERIAL`` (hex)
    authority_serial: str | None
    #: ``SIPAEVENT_AUTHORITYSHA1THUMBPRINT`` (hex)
    authority_sha1_thumbprint: str | None
    #: ``SIPAEVENT_MODULE_SVN``
    module_svn: int | None
    #: events whose records describe this module
    events: tuple[int, ...]

    def azure(self) -> dict[str, Any]:
        """The module as one ``loadedModules`` claim value."""
        return {
            "filePath": self.file_path,
            "authenticodeHash": self.authenticode_hash,
            "hashAlgorithm": self.hash_algorithm,
            "imageValidated": self.image_validated,
            "authorityIssuer": self.authority_issuer,
            "authorityPublisher": self.authority_publisher,
            "authoritySerial": self.authority_serial,
            "authoritySha1Thumbprint": self.authority_sha1_thumbprint,
            "imageBase": list(self.image_base),
            "imageSize": self.image_size,
        }

    def to_json(self) -> dict[str, Any]:
        out = self.azure()
        out["moduleSvn"] = self.module_svn
        out["events"] = list(self.events)
        return out


@dataclass(frozen=True, slots=True)
class ElamClaim:
    """An Early Launch Anti-Malware driver's measured registry values (``SIPAEVENT_ELAM_AGGREGATION``:
    ``ELAM_KEYNAME``, ``ELAM_MEASURED``, ``ELAM_CONFIGURATION``, ``ELAM_POLICY``; values hex)."""

    keyname: str
    measured: str | None
    configuration: str | None
    policy: str | None
    event: int

    def to_json(self) -> dict[str, Any]:
        return {"keyname": self.keyname, "measured": self.measured, "configuration": self.configuration,
                "policy": self.policy, "event": self.event}


@dataclass(frozen=True, slots=True)
class RevocationList:
    """``SIPAEVENT_BOOT_REVOCATION_LIST`` / ``OS_REVOCATION_LIST`` (wbcl.h
    ``SIPAEVENT_REVOCATION_LIST_PAYLOAD``: FILETIME CreationTime, UINT32 DigestLength, UINT16
    HashAlgID, Digest): which revocation list (dbx-like boot/OS revocation data) Windows applied."""

    raw: bytes
    event: int

    @property
    def creation_time(self) -> datetime | None:
        if len(self.raw) < 14:
            return None
        ticks = int.from_bytes(self.raw[:8], "little")
        try:
            return datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=ticks // 10)
        except OverflowError:
            return None

    @property
    def hash_algorithm(self) -> str | None:
        if len(self.raw) < 14:
            return None
        alg = int.from_bytes(self.raw[12:14], "little")
        return _TPM_ALGS.get(alg, f"0x{alg:04x}")

    @property
    def digest(self) -> str | None:
        if len(self.raw) < 14:
            return None
        n = int.from_bytes(self.raw[8:12], "little")
        return self.raw[14 : 14 + n].hex() if 14 + n <= len(self.raw) else None

    def to_json(self) -> dict[str, Any]:
        t = self.creation_time
        return {"creationTime": t.isoformat().replace("+00:00", "Z") if t else None,
                "hashAlgorithm": self.hash_algorithm, "digest": self.digest, "raw": self.raw.hex(),
                "event": self.event}


@dataclass(frozen=True)
class WindowsClaims:
    """Windows boot configuration from the WBCL of a verified log (see the module docstring).

    Booleans are ``None`` when never measured. Weakening settings (``boot_debugging`` ...
    ``winpe``) latch on; strengthening ones (``code_integrity`` ... ``boot_dma_protection``) latch
    off. ``sources[field]`` lists the events whose records measured a field, ``decided_by[field]``
    the event that decided its value.
    """

    # -- weaken security when set: latch on (wbcl.h SIPAEVENTTYPE_PREOSPARAMETER / _OSPARAMETER)
    #: ``SIPAEVENT_BOOTDEBUGGING``: Boot Manager / boot application debugging (bcdedit /bootdebug)
    boot_debugging: bool | None = None
    #: ``SIPAEVENT_OSKERNELDEBUG``: the OS kernel debugger (bcdedit /debug)
    kernel_debugging: bool | None = None
    #: ``SIPAEVENT_HYPERVISOR_DEBUG``: the hypervisor debugger (bcdedit /set hypervisordebug on)
    hypervisor_debugging: bool | None = None
    #: ``SIPAEVENT_TESTSIGNING``: test-signed code allowed (bcdedit /set testsigning on)
    test_signing: bool | None = None
    #: ``SIPAEVENT_FLIGHTSIGNING``: Windows Insider (flight) signed code allowed (bcdedit /set flightsigning on)
    flight_signing: bool | None = None
    #: ``SIPAEVENT_SAFEMODE``: booted into safe mode
    safe_mode: bool | None = None
    #: ``SIPAEVENT_WINPE``: booted into Windows PE
    winpe: bool | None = None
    # -- strengthen security when set: latch off
    #: ``SIPAEVENT_CODEINTEGRITY``: kernel-mode code integrity enforced
    code_integrity: bool | None = None
    #: ``SIPAEVENT_DATAEXECUTIONPREVENTION`` non-zero: NX / DEP on
    dep: bool | None = None
    #: ``SIPAEVENT_VSM_LAUNCH_TYPE`` non-zero: virtual secure mode (VBS) is launched
    vbs: bool | None = None
    #: ``SIPAEVENT_VBS_VSM_REQUIRED``: VBS required (boot fails without it)
    vbs_required: bool | None = None
    #: ``SIPAEVENT_VBS_MANDATORY_ENFORCEMENT``
    vbs_mandatory: bool | None = None
    #: ``SIPAEVENT_VBS_HVCI_POLICY`` bit 0: hypervisor-enforced code integrity (memory integrity)
    hvci: bool | None = None
    #: ``SIPAEVENT_VBS_IOMMU_REQUIRED``: VBS requires the IOMMU (Azure's ``iommuEnabled``)
    iommu_required: bool | None = None
    #: ``SIPAEVENT_HYPERVISOR_BOOT_DMA_PROTECTION``: Kernel DMA Protection from boot
    boot_dma_protection: bool | None = None
    # -- raw values (last boot-phase measurement)
    #: ``SIPAEVENT_DATAEXECUTIONPREVENTION`` value (Azure's ``depPolicy``)
    dep_policy: int | None = None
    #: ``SIPAEVENT_VSM_LAUNCH_TYPE`` value (0 off, non-zero launched)
    vsm_launch_type: int | None = None
    #: ``SIPAEVENT_VBS_HVCI_POLICY`` value
    hvci_policy: int | None = None
    #: ``SIPAEVENT_HYPERVISOR_LAUNCH_TYPE`` value (BCD hypervisorlaunchtype: 0 off, 1 auto)
    hypervisor_launch_type: int | None = None
    #: ``SIPAEVENT_HYPERVISOR_IOMMU_POLICY`` value (reported, not interpreted)
    hypervisor_iommu_policy: int | None = None
    #: a hypervisor may have run: a non-zero ``HYPERVISOR_LAUNCH_TYPE`` or ``VSM_LAUNCH_TYPE`` (latches on)
    hypervisor_launched: bool | None = None
    #: a ``SIPAEVENT_DRTM_*`` record (System Guard Secure Launch) in the boot phase
    drtm: bool = False
    # -- boot
    #: the last ``SIPAEVENT_TRANSFER_CONTROL`` (see :data:`TRANSFER_CONTROL_NAMES`)
    transfer_control: int | None = None
    #: ``SIPAEVENT_BOOTCOUNTER``: the TPM monotonic boot counter (first value)
    boot_counter: int | None = None
    #: the first ``SIPAEVENT_APPLICATION_SVN`` in PCR 12/19: Boot Manager's security version
    boot_manager_svn: int | None = None
    #: ``SIPAEVENT_BITLOCKER_UNLOCK`` flags of each unlock (PCR 12/19; see :data:`BITLOCKER_UNLOCK_FLAGS`)
    bitlocker_unlocks: tuple[int, ...] = ()
    #: ``SIPAEVENT_SYSTEMROOT``, e.g. ``\\Windows``
    system_root: str | None = None
    #: the first ``SIPAEVENT_BOOT_REVOCATION_LIST``
    boot_revocation_list: RevocationList | None = None
    #: the first ``SIPAEVENT_OS_REVOCATION_LIST``
    os_revocation_list: RevocationList | None = None
    #: every distinct ``SIPAEVENT_SI_POLICY`` (code integrity / WDAC policy) record, hex
    si_policies: tuple[str, ...] = ()
    #: ``SIPAEVENT_ELAM_AGGREGATION`` per driver key name (last one wins, as in go-attestation)
    elam_drivers: tuple[ElamClaim, ...] = ()
    #: ``SIPAEVENT_LOADEDMODULE_AGGREGATION`` merged by Authenticode hash, in first-seen order
    loaded_modules: tuple[WindowsModule, ...] = ()
    # -- provenance
    #: events carrying SIPA data in the boot phase (before their PCR's separator)
    boot_events: tuple[int, ...] = ()
    #: events carrying SIPA data after their PCR's WBCL separator (only able to weaken)
    post_boot_events: tuple[int, ...] = ()
    #: field -> events whose records measured it
    sources: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: field -> the event that decided its value
    decided_by: Mapping[str, int] = field(default_factory=dict)
    #: irregularities worth a human's attention (conflicting counters, records without a key name)
    notes: tuple[str, ...] = ()

    # -- derived --------------------------------------------------------------------------------
    @property
    def cold_boot(self) -> bool | None:
        """``TRANSFER_CONTROL`` = 1 (Boot Manager started winload); ``None`` if not measured."""
        return None if self.transfer_control is None else self.transfer_control == 1

    @property
    def resumed(self) -> bool | None:
        """``TRANSFER_CONTROL`` = 2 (Boot Manager started winresume: resume from hibernation)."""
        return None if self.transfer_control is None else self.transfer_control == 2

    @property
    def iommu(self) -> bool | None:
        """DMA protection through the IOMMU: ``iommu_required`` or ``boot_dma_protection`` (each
        latched off on its own) is true; ``None`` if neither was measured."""
        a, b = self.iommu_required, self.boot_dma_protection
        if a is None and b is None:
            return None
        return a is True or b is True

    @property
    def vbs_enabled(self) -> bool:
        """VBS launched (``VSM_LAUNCH_TYPE`` always non-zero) or, launch type not measured,
        required (``VBS_VSM_REQUIRED`` always true)."""
        if self.vbs is not None:
            return self.vbs
        return self.vbs_required is True

    @property
    def hypervisor_debugging_disabled(self) -> bool:
        """``HYPERVISOR_DEBUG`` measured off, or no hypervisor launched at all."""
        if self.hypervisor_debugging is not None:
            return self.hypervisor_debugging is False
        return self.hypervisor_launched is False

    @property
    def windows_defender_elam_loaded(self) -> bool:
        """A validated ``WdBoot.sys`` (Windows Defender's ELAM driver) among the loaded modules."""
        return any(m.image_validated is True and (m.file_path or "").lower() in _DEFENDER_ELAM
                   for m in self.loaded_modules)

    # compatibility names
    @property
    def boot_count(self) -> int | None:
        return self.boot_counter

    @property
    def modules(self) -> tuple[WindowsModule, ...]:
        return self.loaded_modules

    @property
    def elam(self) -> tuple[ElamClaim, ...]:
        return self.elam_drivers

    # -- outputs --------------------------------------------------------------------------------
    def azure(self) -> dict[str, Any]:
        """The flat Azure-style claims (table in the module docstring); ``None`` = not measured."""
        vbs = self.vbs_enabled
        unlocks = self.bitlocker_unlocks
        first_unlock = next((u for u in unlocks if u != 0), None)
        return {
            "bootDebuggingDisabled": self.boot_debugging is False,
            "osKernelDebuggingDisabled": self.kernel_debugging is False,
            "hypervisorDebuggingDisabled": self.hypervisor_debugging_disabled,
            "testSigningDisabled": self.test_signing is False,
            "flightSigningNotEnabled": self.flight_signing is False,
            "notSafeMode": self.safe_mode is False,
            "notWinPE": self.winpe is False,
            "codeIntegrityEnabled": self.code_integrity is True,
            "depEnabled": self.dep is True,
            "depPolicy": self.dep_policy,
            "vbsEnabled": vbs,
            "hvciEnabled": vbs and self.hvci is True,
            "iommuEnabled": self.iommu is True,
            "drtmLaunched": self.drtm,
            "elamDriverLoaded": bool(self.elam_drivers),
            "elamDrivers": [d.keyname for d in self.elam_drivers],
            "windowsDefenderElamDriverLoaded": self.windows_defender_elam_loaded,
            "bitlockerUnlocks": list(unlocks),
            "bitlockerEnabled": first_unlock is not None,
            "bitlockerEnabledValue": first_unlock,
            "bootCount": self.boot_counter,
            "coldBoot": self.cold_boot,
            "bootMgrSvn": self.boot_manager_svn,
            "bootRevListInfo": self.boot_revocation_list.raw.hex() if self.boot_revocation_list else None,
            "osRevListInfo": self.os_revocation_list.raw.hex() if self.os_revocation_list else None,
            "codeIntegrityPolicy": list(self.si_policies),
            "loadedModules": [m.azure() for m in self.loaded_modules],
            "loadedModuleHashes": [m.authenticode_hash for m in self.loaded_modules if m.authenticode_hash],
        }

    def azure_sources(self) -> dict[str, tuple[int, ...]]:
        """Azure claim name -> the events its value was derived from (for explanations)."""
        s = self.sources

        def of(*names: str) -> tuple[int, ...]:
            return tuple(sorted({i for n in names for i in s.get(n, ())}))

        hv = ("hypervisor_debugging",) if self.hypervisor_debugging is not None else (
            "hypervisor_launch_type", "vbs")
        out = {
            "bootDebuggingDisabled": of("boot_debugging"),
            "osKernelDebuggingDisabled": of("kernel_debugging"),
            "hypervisorDebuggingDisabled": of(*hv),
            "testSigningDisabled": of("test_signing"),
            "flightSigningNotEnabled": of("flight_signing"),
            "notSafeMode": of("safe_mode"),
            "notWinPE": of("winpe"),
            "codeIntegrityEnabled": of("code_integrity"),
            "depEnabled": of("dep"),
            "depPolicy": of("dep"),
            "vbsEnabled": of("vbs", "vbs_required"),
            "hvciEnabled": of("hvci", "vbs", "vbs_required"),
            "iommuEnabled": of("iommu_required", "boot_dma_protection"),
            "drtmLaunched": of("drtm"),
            "elamDriverLoaded": tuple(sorted({d.event for d in self.elam_drivers})),
            "elamDrivers": tuple(sorted({d.event for d in self.elam_drivers})),
            "windowsDefenderElamDriverLoaded": tuple(sorted({
                i for m in self.loaded_modules if (m.file_path or "").lower() in _DEFENDER_ELAM for i in m.events})),
            "bitlockerUnlocks": of("bitlocker_unlocks"),
            "bitlockerEnabled": of("bitlocker_unlocks"),
            "bitlockerEnabledValue": of("bitlocker_unlocks"),
            "bootCount": of("boot_counter"),
            "coldBoot": of("transfer_control"),
            "bootMgrSvn": of("boot_manager_svn"),
            "bootRevListInfo": (self.boot_revocation_list.event,) if self.boot_revocation_list else (),
            "osRevListInfo": (self.os_revocation_list.event,) if self.os_revocation_list else (),
            "codeIntegrityPolicy": of("si_policies"),
            "loadedModules": tuple(sorted({i for m in self.loaded_modules for i in m.events})),
        }
        out["loadedModuleHashes"] = out["loadedModules"]
        return out

    def to_json(self) -> dict[str, Any]:
        """The typed section as JSON: camelCase keys, hashes hex."""
        out: dict[str, Any] = {_camel(f): getattr(self, f) for f in _WEAKENING + _STRENGTHENING + _RAW_INTS}
        tc = self.transfer_control
        unlocks = self.bitlocker_unlocks
        out.update({
            "iommu": self.iommu,
            "hypervisorLaunched": self.hypervisor_launched,
            "drtm": self.drtm,
            "transferControl": tc,
            "transferControlName": None if tc is None else TRANSFER_CONTROL_NAMES.get(tc, f"0x{tc:08x}"),
            "coldBoot": self.cold_boot,
            "bootCounter": self.boot_counter,
            "bootManagerSvn": self.boot_manager_svn,
            "bitlockerUnlocks": list(unlocks),
            "bitlockerUnlockFlags": [_unlock_flags(u) for u in unlocks],
            "systemRoot": self.system_root,
            "bootRevocationList": self.boot_revocation_list.to_json() if self.boot_revocation_list else None,
            "osRevocationList": self.os_revocation_list.to_json() if self.os_revocation_list else None,
            "siPolicies": list(self.si_policies),
            "elam": [d.to_json() for d in self.elam_drivers],
            "loadedModules": [m.to_json() for m in self.loaded_modules],
            "bootEvents": list(self.boot_events),
            "postBootEvents": list(self.post_boot_events),
            "sources": {_camel(k): list(v) for k, v in self.sources.items()},
            "decidedBy": {_camel(k): v for k, v in self.decided_by.items()},
            "notes": list(self.notes),
        })
        return out


def _unlock_flags(value: int) -> list[str]:
    names = [name for bit, name in BITLOCKER_UNLOCK_FLAGS.items() if value & bit]
    rest = value & ~sum(BITLOCKER_UNLOCK_FLAGS)
    if rest:
        names.append(f"0x{rest:x}")
    return names or ["NONE"]


# ------------------------------------------------------------------------------------------------
# the walk


class _Malformed(Exception):
    """SIPA framing the decoder rejects: :meth:`Event.decode` raises the canonical error."""


class _State:
    """Accumulates one log's WBCL; ``index``/``pcr``/``post`` describe the event being read."""

    __slots__ = (
        "app_svn",
        "bitlocker",
        "boot_counter",
        "decided",
        "drtm",
        "elam",
        "flags",
        "hv_launched",
        "index",
        "modules",
        "notes",
        "pcr",
        "post",
        "raw",
        "revlists",
        "si_policies",
        "sources",
        "system_root",
        "transfer",
    )

    def __init__(self) -> None:
        self.flags: dict[str, bool | None] = dict.fromkeys(_WEAKENING + _STRENGTHENING)
        self.raw: dict[str, int | None] = dict.fromkeys(_RAW_INTS)
        self.sources: dict[str, list[int]] = {}
        self.decided: dict[str, int] = {}
        self.hv_launched: bool | None = None
        self.drtm = False
        self.transfer: int | None = None
        self.boot_counter: int | None = None
        self.app_svn: int | None = None
        self.bitlocker: list[int] = []
        self.system_root: str | None = None
        self.revlists: dict[int, RevocationList] = {}
        self.si_policies: dict[str, None] = {}
        self.elam: dict[str, ElamClaim] = {}
        self.modules: dict[Any, tuple[dict[int, bytes], list[int], list[bytes], list[bytes]]] = {}
        self.notes: list[str] = []
        self.index = 0
        self.pcr = 0
        self.post = False

    def _source(self, name: str) -> None:
        seen = self.sources.get(name)
        if seen is None:
            self.sources[name] = [self.index]
        elif seen[-1] != self.index:
            seen.append(self.index)

    # -- records --------------------------------------------------------------------------------
    def walk(self, data: bytes, pos: int, end: int, depth: int) -> None:
        """Read the records in ``data[pos:end]`` (a container's data, or the tagged event itself at
        depth 0), with the framing checks of :func:`attestd.eventlog.data.sipa._records`."""
        if depth > _MAX_DEPTH:
            raise _Malformed
        unpack = _HDR.unpack_from
        leaves = _LEAVES
        while pos < end:
            if end - pos < 8:
                raise _Malformed
            eid, size = unpack(data, pos)
            start = pos + 8
            pos = start + size
            if pos > end:
                raise _Malformed
            if eid & CLASS_MASK == CONTAINER:
                if eid == _LOADEDMODULE_AGGREGATION:
                    self.aggregate(data, start, pos, depth + 1, module=True)
                elif eid == _ELAM_AGGREGATION:
                    self.aggregate(data, start, pos, depth + 1, module=False)
                else:
                    self.walk(data, start, pos, depth + 1)
                continue
            leaf = leaves.get(eid)
            if leaf is not None:
                self.leaf(leaf[0], leaf[1], data[start:pos])
            elif eid & CLASS_MASK == DRTM:
                self.leaf(_DRTM, "drtm", b"")

    def aggregate(self, data: bytes, pos: int, end: int, depth: int, *, module: bool) -> None:
        """One loaded module or ELAM driver: its direct records, first of each id wins (nested
        containers are read as records of their own)."""
        if depth > _MAX_DEPTH:
            raise _Malformed
        unpack = _HDR.unpack_from
        fields: dict[int, bytes] = {}
        while pos < end:
            if end - pos < 8:
                raise _Malformed
            eid, size = unpack(data, pos)
            start = pos + 8
            pos = start + size
            if pos > end:
                raise _Malformed
            if eid & CLASS_MASK == CONTAINER:
                self.walk(data, start - 8, pos, depth)
            elif eid not in fields:
                fields[eid] = data[start:pos]
        if self.post:
            return
        if module:
            self.module(fields)
        else:
            self.elam_driver(fields)

    def leaf(self, kind: int, name: str, b: bytes) -> None:
        flags = self.flags
        if kind == _WEAK:
            on = not (len(b) == 1 and b[0] == 0)
            if self.post and not on:
                return  # after the boot path: may only make things worse
            cur = flags[name]
            if cur is None or (on and not cur):
                flags[name] = on
                self.decided[name] = self.index
            self._source(name)
            return
        if kind <= _STRONG_BIT0:  # strengthening
            value: int | None = None
            if kind == _STRONG_BOOL:
                good = len(b) == 1 and b[0] != 0
            elif kind == _STRONG_U64:
                value = int.from_bytes(b, "little") if len(b) == 8 else None
                good = value is not None and value != 0
            else:
                value = _int(b)
                good = value is not None and (value & 1 == 1 if kind == _STRONG_BIT0 else value != 0)
            if name == "vbs" and value != 0:
                self._hypervisor_may_run()  # a VSM launch (or garbage) means a hypervisor may run
            cur = flags[name]
            if self.post:
                if good:
                    return  # after the boot path: may only make things worse
                if cur is not False:
                    flags[name] = False
                    self.decided[name] = self.index
            else:
                if cur is None or (cur and not good):
                    flags[name] = good
                    self.decided[name] = self.index
                raw = _RAW_OF.get(name)
                if raw is not None and value is not None:
                    self.raw[raw] = value
            self._source(name)
            return
        if kind == _HV_LAUNCH:
            value = _int(b)
            if not self.post and value is not None:
                self.raw[name] = value
            if value is None or value != 0:
                self._hypervisor_may_run()
            elif self.hv_launched is None and not self.post:
                self.hv_launched = False
                self.decided.setdefault("hypervisor_launched", self.index)
            self._source(name)
            return
        if self.post:
            return  # informational records count from the boot path only
        if kind == _RAW_INT:
            value = _int(b)
            if value is not None:
                self.raw[name] = value
        elif kind == _BOOTCOUNTER:
            value = _int(b)
            if value is None:
                return
            if self.boot_counter is None:
                self.boot_counter = value
                self.decided[name] = self.index
            elif value != self.boot_counter:
                self.notes.append(f"event {self.index}: BOOTCOUNTER {value} differs from {self.boot_counter}")
        elif kind == _TRANSFER:
            value = _int(b)
            if value is None:
                return
            self.transfer = value
            self.decided[name] = self.index
        elif kind == _BITLOCKER:
            if self.pcr not in _FIRST_PCRS:
                return
            self.bitlocker.append(int.from_bytes(b[:8], "little"))
        elif kind == _APP_SVN:
            if self.pcr not in _FIRST_PCRS or self.app_svn is not None:
                return
            value = _int(b)
            if value is None:
                return
            self.app_svn = value
            self.decided[name] = self.index
        elif kind == _BOOT_REVLIST or kind == _OS_REVLIST:
            if kind in self.revlists:
                return
            self.revlists[kind] = RevocationList(b, self.index)
        elif kind == _SI_POLICY:
            self.si_policies[b.hex()] = None
        elif kind == _SYSTEMROOT:
            self.system_root = _utf16(b)
        elif kind == _DRTM:
            if not self.drtm:
                self.decided[name] = self.index
            self.drtm = True
        self._source(name)

    def _hypervisor_may_run(self) -> None:
        if self.hv_launched is not True:
            self.hv_launched = True
            self.decided["hypervisor_launched"] = self.index

    def module(self, f: dict[int, bytes]) -> None:
        """Merge one module aggregation into the module with the same Authenticode hash: later
        records win, image bases accumulate, ``IMAGEVALIDATED`` latches off. Values are converted
        once, in :meth:`build`."""
        digest = f.get(_AUTHENTICODEHASH)
        key: Any = digest if digest is not None else len(self.modules)  # no hash: a module of its own
        m = self.modules.get(key)
        if m is None:
            self.modules[key] = m = ({}, [self.index], [], [])
        fields, events, bases, validated = m
        if events[-1] != self.index:
            events.append(self.index)
        b = f.get(_IMAGEBASE)
        if b is not None:
            bases.append(b)
        b = f.get(_IMAGEVALIDATED)
        if b is not None:
            validated.append(b)
        fields.update(f)

    def elam_driver(self, f: dict[int, bytes]) -> None:
        name = f.get(_ELAM_KEYNAME)
        if name is None:
            self.notes.append(f"event {self.index}: ELAM_AGGREGATION without ELAM_KEYNAME ignored")
            return
        key = _utf16(name)
        self.elam[key] = ElamClaim(key, _hex(f.get(_ELAM_MEASURED)), _hex(f.get(_ELAM_CONFIGURATION)),
                                   _hex(f.get(_ELAM_POLICY)), self.index)

    # -- result ---------------------------------------------------------------------------------
    def build(self, boot_events: list[int], post_events: list[int]) -> WindowsClaims:
        modules = tuple(_module(*m) for m in self.modules.values())
        return WindowsClaims(
            **self.flags, **self.raw, hypervisor_launched=self.hv_launched, drtm=self.drtm,
            transfer_control=self.transfer, boot_counter=self.boot_counter, boot_manager_svn=self.app_svn,
            bitlocker_unlocks=tuple(self.bitlocker), system_root=self.system_root,
            boot_revocation_list=self.revlists.get(_BOOT_REVLIST), os_revocation_list=self.revlists.get(_OS_REVLIST),
            si_policies=tuple(self.si_policies), elam_drivers=tuple(self.elam.values()), loaded_modules=modules,
            boot_events=tuple(boot_events), post_boot_events=tuple(post_events),
            sources={k: tuple(v) for k, v in self.sources.items()}, decided_by=dict(self.decided),
            notes=tuple(self.notes))


def _module(f: dict[int, bytes], events: list[int], bases: list[bytes], validated: list[bytes]) -> WindowsModule:
    """A :class:`WindowsModule` from the merged records of :meth:`_State.module`."""
    get = f.get
    alg = get(_HASHALGORITHMID)
    alg_id = int.from_bytes(alg, "little") if alg is not None and len(alg) == 4 else None
    size = get(_IMAGESIZE)
    path, issuer, publisher = get(_FILEPATH), get(_AUTHORITYISSUER), get(_AUTHORITYPUBLISHER)
    serial, thumb, svn = get(_AUTHORITYSERIAL), get(_AUTHORITYSHA1THUMBPRINT), get(_MODULE_SVN)
    return WindowsModule(
        authenticode_hash=_hex(get(_AUTHENTICODEHASH)),
        hash_algorithm=None if alg_id is None else _HASH_ALGS.get(alg_id & 0xFF, f"0x{alg_id:x}"),
        file_path=None if path is None else _utf16(path),
        image_base=tuple(dict.fromkeys(int.from_bytes(b, "little") for b in bases if len(b) == 8)),
        image_size=int.from_bytes(size, "little") if size is not None and len(size) == 8 else None,
        image_validated=all(len(b) == 1 and b[0] != 0 for b in validated) if validated else None,
        authority_issuer=None if issuer is None else _utf16(issuer),
        authority_publisher=None if publisher is None else _utf16(publisher),
        authority_serial=_hex(serial), authority_sha1_thumbprint=_hex(thumb),
        module_svn=None if svn is None else _int(svn), events=tuple(events))


def _is_sipa(event_id: int) -> bool:
    """The decoder's test (``decode_event_tag``): a wbcl.h id, or an aggregation container."""
    return event_id in SIPA_NAMES or (event_id & CLASS_MASK == CONTAINER and bool(event_id & AGGREGATION))


def _raise_decoder_error(event: Event) -> None:
    """Let the event data decoder raise its error for framing this module found malformed."""
    event.decode()
    raise fail("sipa", f"event {event.index}: malformed SIPA records", field="SIPA_EVENT")


def windows_claims(events: Iterable[Event]) -> WindowsClaims | None:
    """Windows boot claims from the events of an **already verified** event log (only events of
    PCRs whose replay matched a quote); ``None`` when the log has no Windows SIPA data.

    Only ``EV_EVENT_TAG`` events of the WBCL PCRs (:data:`WBCL_PCRS`) are read, so a Linux log
    costs one comparison per event. Raises :class:`~attestd.errors.EvidenceError` when SIPA
    framing is malformed (the error :meth:`Event.decode` raises).
    """
    state: _State | None = None
    separated: set[int] = set()
    boot_events: list[int] = []
    post_events: list[int] = []
    wbcl = WBCL_PCRS
    for e in events:
        etype = e.event_type
        if etype == _TAG:
            pcr = e.pcr
            if pcr not in wbcl:
                continue
            data = e.data
            n = len(data)
            if n < 8:
                _raise_decoder_error(e)
            eid, size = _HDR.unpack_from(data, 0)
            if size != n - 8:
                _raise_decoder_error(e)
            if not _is_sipa(eid):
                continue
            if state is None:
                state = _State()
            state.index = e.index
            state.pcr = pcr
            state.post = post = pcr in separated
            (post_events if post else boot_events).append(e.index)
            try:
                state.walk(data, 0, n, 0)
            except _Malformed:
                _raise_decoder_error(e)
        elif etype == _SEPARATOR and e.pcr in wbcl:
            separated.add(e.pcr)
    return state.build(boot_events, post_events) if state is not None else None
