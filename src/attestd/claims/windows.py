"""Windows boot configuration claims from a verified WBCL (the SIPA records of PCR 12, 13, 14).

Windows Boot Manager and winload log their configuration as ``EV_EVENT_TAG`` events whose data is
a tree of SIPA records (wbcl.h, ``SIPAEVENT_*``; decoded by
:mod:`attestd.eventlog.data.sipa`): PCR 12 holds the early-boot ("trust boundary") settings and
module hashes, PCR 13 the modules winload loaded with their paths and signers, PCR 14 the
authorities. :func:`windows_claims` reads them from events of PCRs that were already verified
against a quote; it never verifies anything itself.

Two rules decide a boolean that was measured more than once (several trust boundaries, a resume):

* settings that **weaken** security latch *on* if ever set: boot debugging, OS kernel debugging,
  hypervisor debugging, test signing, flight signing, safe mode, WinPE. A record whose value is
  not a clean ``false`` (wrong size, garbage) counts as set;
* settings that **strengthen** it latch *off* if ever unset: code integrity, DEP, VBS, HVCI, IOMMU
  / DMA protection. They are ``True`` only if measured and every measurement says so, ``False`` if
  any says otherwise, ``None`` if never measured.

:meth:`WindowsClaims.azure` maps them to Azure Attestation's claim names. An unmeasured setting
never asserts security: ``codeIntegrityEnabled`` is ``false`` when code integrity was not
measured, ``bootDebuggingDisabled`` is ``true`` only because boot debugging was measured
disabled... see the table in docs/claims.md.

Semantics follow Microsoft's wbcl.h and go-attestation's ``ParseWinEvents`` (BitLocker unlocks
from PCR 12 only - PCR 13 repeats them; loaded modules merged by Authenticode hash, PCR 12 giving
the image base and PCR 13 the path and signer; ``TRANSFER_CONTROL`` = 1 means winload ran, i.e.
a cold boot rather than a resume).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from attestd.eventlog.constants import EventType
from attestd.eventlog.data import SipaEventData
from attestd.eventlog.data.sipa import SipaEvent

__all__ = ["ElamClaim", "WindowsClaims", "WindowsModule", "windows_claims"]

_TAG = int(EventType.EV_EVENT_TAG)
_WBCL_PCRS = (12, 13, 14)

#: weakening settings: SIPA name -> WindowsClaims field
_WEAKENING = {
    "SIPAEVENT_BOOTDEBUGGING": "boot_debugging",
    "SIPAEVENT_OSKERNELDEBUG": "kernel_debugging",
    "SIPAEVENT_HYPERVISOR_DEBUG": "hypervisor_debugging",
    "SIPAEVENT_TESTSIGNING": "test_signing",
    "SIPAEVENT_FLIGHTSIGNING": "flight_signing",
    "SIPAEVENT_SAFEMODE": "safe_mode",
    "SIPAEVENT_WINPE": "winpe",
}
#: strengthening settings: SIPA name -> (field, predicate on the value)
_STRENGTHENING = {
    "SIPAEVENT_CODEINTEGRITY": ("code_integrity", lambda v: v is True),
    "SIPAEVENT_DATAEXECUTIONPREVENTION": ("dep", lambda v: v is True),
    # VsmLaunchType: 0 off, 1 auto (VBS launched)
    "SIPAEVENT_VSM_LAUNCH_TYPE": ("vbs", lambda v: type(v) is int and v != 0),
    "SIPAEVENT_VBS_VSM_REQUIRED": ("vbs_required", lambda v: v is True),
    # HVCI policy: non-zero when hypervisor-enforced code integrity is on
    "SIPAEVENT_VBS_HVCI_POLICY": ("hvci", lambda v: type(v) is int and v != 0),
    "SIPAEVENT_VBS_IOMMU_REQUIRED": ("iommu_required", lambda v: v is True),
    # HypervisorIommuPolicy: 0 default (off), non-zero enabled
    "SIPAEVENT_HYPERVISOR_IOMMU_POLICY": ("iommu_policy", lambda v: type(v) is int and v != 0),
    "SIPAEVENT_HYPERVISOR_BOOT_DMA_PROTECTION": ("boot_dma_protection", lambda v: v is True),
}
_AGGREGATES = frozenset({"SIPAEVENT_LOADEDMODULE_AGGREGATION", "SIPAEVENT_ELAM_AGGREGATION"})
_FLAG_FIELDS = tuple(_WEAKENING.values()) + tuple(f for f, _ in _STRENGTHENING.values())


@dataclass(frozen=True, slots=True)
class WindowsModule:
    """A driver or boot application Windows loaded (``SIPAEVENT_LOADEDMODULE_AGGREGATION``)."""

    authenticode_hash: str
    hash_algorithm: str | None
    file_path: str | None
    image_base: tuple[int, ...]
    image_size: int | None
    image_validated: bool | None
    authority_issuer: str | None
    authority_publisher: str | None
    authority_serial: str | None
    authority_sha1_thumbprint: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "authenticodeHash": self.authenticode_hash,
            "hashAlgorithm": self.hash_algorithm,
            "filePath": self.file_path,
            "imageBase": list(self.image_base),
            "imageSize": self.image_size,
            "imageValidated": self.image_validated,
            "authorityIssuer": self.authority_issuer,
            "authorityPublisher": self.authority_publisher,
            "authoritySerial": self.authority_serial,
            "authoritySha1Thumbprint": self.authority_sha1_thumbprint,
        }


@dataclass(frozen=True, slots=True)
class ElamClaim:
    """An Early Launch Anti-Malware driver's measured registry values (``SIPAEVENT_ELAM_AGGREGATION``)."""

    keyname: str
    measured: str | None
    configuration: str | None
    policy: str | None

    def to_json(self) -> dict[str, Any]:
        return {"keyname": self.keyname, "measured": self.measured, "configuration": self.configuration,
                "policy": self.policy}


@dataclass(frozen=True)
class WindowsClaims:
    """Windows boot configuration. Booleans are ``None`` when never measured; ``sources`` maps each
    boolean to the event numbers whose records decided it (for explanations: "event 14")."""

    boot_debugging: bool | None = None
    kernel_debugging: bool | None = None
    hypervisor_debugging: bool | None = None
    test_signing: bool | None = None
    flight_signing: bool | None = None
    safe_mode: bool | None = None
    winpe: bool | None = None
    code_integrity: bool | None = None
    dep: bool | None = None
    vbs: bool | None = None
    vbs_required: bool | None = None
    hvci: bool | None = None
    hvci_policy: int | None = None
    iommu_required: bool | None = None
    iommu_policy: bool | None = None
    boot_dma_protection: bool | None = None
    drtm: bool = False
    cold_boot: bool | None = None
    boot_count: int | None = None
    bitlocker_unlocks: tuple[int, ...] = ()
    elam: tuple[ElamClaim, ...] = ()
    modules: tuple[WindowsModule, ...] = ()
    sources: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def iommu(self) -> bool | None:
        """DMA protection through the IOMMU: VBS requires it, or the hypervisor's IOMMU policy or
        boot DMA protection is on (each of them latched off if ever measured off)."""
        values = [v for v in (self.iommu_required, self.iommu_policy, self.boot_dma_protection) if v is not None]
        return any(values) if values else None

    def azure(self) -> dict[str, Any]:
        """Azure Attestation's claim names (and Attestd's Windows additions), see docs/claims.md."""
        return {
            "bootDebuggingDisabled": self.boot_debugging is False,
            "osKernelDebuggingDisabled": self.kernel_debugging is False,
            "hypervisorDebuggingDisabled": self.hypervisor_debugging is not True,
            "testSigningDisabled": self.test_signing is False,
            "flightSigningNotEnabled": self.flight_signing is not True,
            "notSafeMode": self.safe_mode is False,
            "notWinPE": self.winpe is False,
            "codeIntegrityEnabled": self.code_integrity is True,
            "depEnabled": self.dep is True,
            "vbsEnabled": self.vbs is True or (self.vbs is None and self.vbs_required is True),
            "hvciEnabled": self.hvci is True,
            "iommuEnabled": self.iommu is True,
            "drtmLaunched": self.drtm,
            "elamDriverLoaded": bool(self.elam),
            "elamDrivers": [e.keyname for e in self.elam],
            "bitlockerUnlocks": list(self.bitlocker_unlocks),
            "bootCount": self.boot_count,
            "coldBoot": self.cold_boot,
            "loadedModuleHashes": [m.authenticode_hash for m in self.modules],
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {f: getattr(self, f) for f in _FLAG_FIELDS}
        out = {_camel(k): v for k, v in out.items()}
        out.update({
            "hvciPolicy": self.hvci_policy,
            "iommu": self.iommu,
            "drtm": self.drtm,
            "coldBoot": self.cold_boot,
            "bootCount": self.boot_count,
            "bitlockerUnlocks": list(self.bitlocker_unlocks),
            "elam": [e.to_json() for e in self.elam],
            "loadedModules": [m.to_json() for m in self.modules],
            "sources": {_camel(k): list(v) for k, v in self.sources.items()},
        })
        return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def _hex(value: Any) -> str | None:
    return value.hex() if isinstance(value, (bytes, bytearray)) else None


def _child(ev: SipaEvent, name: str) -> Any:
    for c in ev.children:
        if c.name == name:
            return c.value
    return None


class _Builder:
    def __init__(self) -> None:
        self.flags: dict[str, bool | None] = {f: None for f in _FLAG_FIELDS}
        self.sources: dict[str, list[int]] = {}
        self.hvci_policy: int | None = None
        self.drtm = False
        self.cold_boot: bool | None = None
        self.boot_count: int | None = None
        self.bitlocker: list[int] = []
        self.elam: dict[str, ElamClaim] = {}
        self.modules: dict[str, dict[str, Any]] = {}

    def _note(self, name: str, index: int) -> None:
        seen = self.sources.setdefault(name, [])
        if index not in seen:
            seen.append(index)

    def walk(self, ev: SipaEvent, pcr: int, index: int) -> None:
        """Record ``ev`` and, for a trust boundary or other container, its records (aggregations
        of one module or ELAM driver are read whole by :meth:`record`)."""
        self.record(ev, pcr, index)
        if ev.children and ev.name not in _AGGREGATES:
            for child in ev.children:
                self.walk(child, pcr, index)

    def record(self, ev: SipaEvent, pcr: int, index: int) -> None:
        name = ev.name
        value = ev.value
        weak = _WEAKENING.get(name)
        if weak is not None:
            self.flags[weak] = bool(self.flags[weak]) or value is not False
            self._note(weak, index)
            return
        strong = _STRENGTHENING.get(name)
        if strong is not None:
            fname, ok = strong
            good = ok(value)
            self.flags[fname] = good if self.flags[fname] is None else (self.flags[fname] and good)
            self._note(fname, index)
            if name == "SIPAEVENT_VBS_HVCI_POLICY" and type(value) is int:
                self.hvci_policy = value
            return
        if name.startswith("SIPAEVENT_DRTM_"):
            self.drtm = True
            self._note("drtm", index)
        elif name == "SIPAEVENT_BOOTCOUNTER" and type(value) is int:
            self.boot_count = value
        elif name == "SIPAEVENT_TRANSFER_CONTROL" and type(value) is int:
            self.cold_boot = value == 1
        elif name == "SIPAEVENT_BITLOCKER_UNLOCK" and pcr == 12:
            self.bitlocker.append(value if type(value) is int else int.from_bytes(ev.data[:8], "little"))
        elif name == "SIPAEVENT_ELAM_AGGREGATION":
            key = _child(ev, "SIPAEVENT_ELAM_KEYNAME")
            if isinstance(key, str):
                self.elam[key] = ElamClaim(key, _hex(_child(ev, "SIPAEVENT_ELAM_MEASURED")),
                                           _hex(_child(ev, "SIPAEVENT_ELAM_CONFIGURATION")),
                                           _hex(_child(ev, "SIPAEVENT_ELAM_POLICY")))
        elif name == "SIPAEVENT_LOADEDMODULE_AGGREGATION":
            self._module(ev)

    def _module(self, ev: SipaEvent) -> None:
        digest = _hex(_child(ev, "SIPAEVENT_AUTHENTICODEHASH"))
        if digest is None:
            return
        entry = self.modules.setdefault(digest, {"image_base": []})
        base = _child(ev, "SIPAEVENT_IMAGEBASE")
        if type(base) is int and base not in entry["image_base"]:
            entry["image_base"].append(base)
        alg = _child(ev, "SIPAEVENT_HASHALGORITHMID")
        for key, value in (
            ("file_path", _child(ev, "SIPAEVENT_FILEPATH")),
            ("image_size", _child(ev, "SIPAEVENT_IMAGESIZE")),
            ("image_validated", _child(ev, "SIPAEVENT_IMAGEVALIDATED")),
            ("authority_issuer", _child(ev, "SIPAEVENT_AUTHORITYISSUER")),
            ("authority_publisher", _child(ev, "SIPAEVENT_AUTHORITYPUBLISHER")),
            ("authority_serial", _hex(_child(ev, "SIPAEVENT_AUTHORITYSERIAL"))),
            ("authority_sha1_thumbprint", _hex(_child(ev, "SIPAEVENT_AUTHORITYSHA1THUMBPRINT"))),
            ("hash_algorithm", _HASH_ALGS.get(alg & 0xFF, f"0x{alg:x}") if type(alg) is int else None),
        ):
            if value is not None:
                entry[key] = value

    def build(self) -> WindowsClaims:
        modules = tuple(
            WindowsModule(
                authenticode_hash=h, hash_algorithm=m.get("hash_algorithm"), file_path=m.get("file_path"),
                image_base=tuple(m["image_base"]), image_size=m.get("image_size"),
                image_validated=m.get("image_validated"), authority_issuer=m.get("authority_issuer"),
                authority_publisher=m.get("authority_publisher"), authority_serial=m.get("authority_serial"),
                authority_sha1_thumbprint=m.get("authority_sha1_thumbprint"))
            for h, m in self.modules.items())
        return WindowsClaims(
            **self.flags, hvci_policy=self.hvci_policy, drtm=self.drtm, cold_boot=self.cold_boot,
            boot_count=self.boot_count, bitlocker_unlocks=tuple(self.bitlocker), elam=tuple(self.elam.values()),
            modules=modules, sources={k: tuple(v) for k, v in self.sources.items()})


#: CALG_* low byte (wincrypt.h) of SIPAEVENT_HASHALGORITHMID
_HASH_ALGS = {0x02: "md4", 0x03: "md5", 0x04: "sha1", 0x0C: "sha256", 0x0D: "sha384", 0x0E: "sha512"}


def windows_claims(events: Sequence[Any] | Iterable[Any]) -> WindowsClaims | None:
    """Windows claims from the events of verified PCRs; ``None`` when there is no SIPA data (a
    Linux log costs one comparison per event)."""
    builder: _Builder | None = None
    for e in events:
        if e.event_type != _TAG or e.pcr not in _WBCL_PCRS:
            continue
        data = e.decode()
        if not isinstance(data, SipaEventData):
            continue
        if builder is None:
            builder = _Builder()
        builder.walk(data.root, e.pcr, e.index)
    return builder.build() if builder is not None else None
