"""EV_EVENT_TAG data: TCG tagged events and Windows Boot Configuration Log (WBCL / SIPA) events.

``TCG_PCClientTaggedEventStruct`` (TCG PC Client Implementation Specification for Conventional
BIOS 1.21, 11.3.2.1; Microsoft wbcl.h)::

    UINT32 EventID;
    UINT32 EventDataSize;
    BYTE   EventData[EventDataSize];

Windows Boot Manager and winload log their boot configuration (PCR 12-14) as tagged events whose
``EventID`` is a SIPA event type from Microsoft's ``wbcl.h``: the top bits are flags
(``SIPAEVENTTYPE_NONMEASURED`` 0x80000000, ``SIPAEVENTTYPE_AGGREGATION`` 0x40000000), bits 16-19
the class (``SIPAEVENTTYPE_CONTAINER`` 0x00010000, ``..._INFORMATION``, ``..._OSPARAMETER``,
``..._LOADEDMODULE``, ``..._ELAM``, ``..._VBS`` ...) and the low word the event. A container's data
is a sequence of further ``{EventID, EventDataSize, EventData}`` records (nested containers such as
``SIPAEVENT_LOADEDMODULE_AGGREGATION`` hold one loaded driver each).

Other tagged events seen in logs: the Linux EFI stub (``INITRD_EVENT_TAG_ID`` 0x8F3B22EC "Linux
initrd", ``LOAD_OPTIONS_EVENT_TAG_ID`` 0x8F3B22ED) and systemd (``LOADER_CONF_EVENT_TAG_ID``
0xF5BC582A "loader.conf", ...), whose data is a description string.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

from attestd.binary import Reader
from attestd.eventlog.data.base import EventData, fail, reader, short_hex
from attestd.eventlog.data.text import detect_text, utf16_text

__all__ = [
    "SipaEvent",
    "SipaEventData",
    "TaggedEvent",
    "LoadedModule",
    "ElamDriver",
    "SIPA_NAMES",
    "sipa_name",
    "decode_event_tag",
    "parse_sipa_events",
    "WIN_HASH_ALGS",
]

NONMEASURED = 0x80000000
AGGREGATION = 0x40000000
CLASS_MASK = 0x000F0000
CONTAINER = 0x00010000
INFORMATION = 0x00020000
ERROR = 0x00030000
PREOSPARAMETER = 0x00040000
OSPARAMETER = 0x00050000
AUTHORITY = 0x00060000
LOADEDMODULE = 0x00070000
TRUSTPOINT = 0x00080000
ELAM = 0x00090000
VBS = 0x000A0000
KSR = 0x000B0000
DRTM = 0x000C0000

_MAX_DEPTH = 16

# value kinds
_BOOL, _U64BOOL, _U32, _U64, _UTF16, _BYTES, _INT = "bool", "u64bool", "u32", "u64", "utf16", "bytes", "int"

#: wbcl.h SIPA event ids: name and value kind.
SIPA_EVENTS: dict[int, tuple[str, str]] = {
    AGGREGATION | CONTAINER | 0x0001: ("SIPAEVENT_TRUSTBOUNDARY", "container"),
    AGGREGATION | CONTAINER | 0x0002: ("SIPAEVENT_ELAM_AGGREGATION", "container"),
    AGGREGATION | CONTAINER | 0x0003: ("SIPAEVENT_LOADEDMODULE_AGGREGATION", "container"),
    NONMEASURED | AGGREGATION | CONTAINER | 0x0004: ("SIPAEVENT_TRUSTPOINT_AGGREGATION", "container"),
    AGGREGATION | CONTAINER | 0x0005: ("SIPAEVENT_KSR_AGGREGATION", "container"),
    AGGREGATION | CONTAINER | 0x0006: ("SIPAEVENT_KSR_SIGNED_MEASUREMENT_AGGREGATION", "container"),
    ERROR | 0x0001: ("SIPAERROR_FIRMWAREFAILURE", _INT),
    NONMEASURED | ERROR | 0x0002: ("SIPAERROR_TPMFAILURE", _INT),
    ERROR | 0x0003: ("SIPAERROR_INTERNALFAILURE", _INT),
    NONMEASURED | ERROR | 0x0004: ("SIPAERROR_KSRFAILURE", _INT),
    ERROR | 0x0005: ("SIPAERROR_HYPERVISORFAILURE", _INT),
    INFORMATION | 0x0001: ("SIPAEVENT_INFORMATION", _BYTES),
    INFORMATION | 0x0002: ("SIPAEVENT_BOOTCOUNTER", _U64),
    INFORMATION | 0x0003: ("SIPAEVENT_TRANSFER_CONTROL", _U32),
    INFORMATION | 0x0004: ("SIPAEVENT_APPLICATION_RETURN", _INT),
    INFORMATION | 0x0005: ("SIPAEVENT_BITLOCKER_UNLOCK", _INT),
    INFORMATION | 0x0006: ("SIPAEVENT_EVENTCOUNTER", _U64),
    INFORMATION | 0x0007: ("SIPAEVENT_COUNTERID", _U64),
    INFORMATION | 0x0008: ("SIPAEVENT_MORBIT_NOT_CANCELABLE", _INT),
    INFORMATION | 0x0009: ("SIPAEVENT_APPLICATION_SVN", _INT),
    INFORMATION | 0x000A: ("SIPAEVENT_SVN_CHAIN_STATUS", _INT),
    INFORMATION | 0x000B: ("SIPAEVENT_MORBIT_API_STATUS", _INT),
    INFORMATION | 0x000C: ("SIPAEVENT_IDK_GENERATION_STATUS", _INT),
    PREOSPARAMETER | 0x0001: ("SIPAEVENT_BOOTDEBUGGING", _BOOL),
    PREOSPARAMETER | 0x0002: ("SIPAEVENT_BOOT_REVOCATION_LIST", _BYTES),
    OSPARAMETER | 0x0001: ("SIPAEVENT_OSKERNELDEBUG", _BOOL),
    OSPARAMETER | 0x0002: ("SIPAEVENT_CODEINTEGRITY", _BOOL),
    OSPARAMETER | 0x0003: ("SIPAEVENT_TESTSIGNING", _BOOL),
    OSPARAMETER | 0x0004: ("SIPAEVENT_DATAEXECUTIONPREVENTION", _U64BOOL),
    OSPARAMETER | 0x0005: ("SIPAEVENT_SAFEMODE", _BOOL),
    OSPARAMETER | 0x0006: ("SIPAEVENT_WINPE", _BOOL),
    OSPARAMETER | 0x0007: ("SIPAEVENT_PHYSICALADDRESSEXTENSION", _U64BOOL),
    OSPARAMETER | 0x0008: ("SIPAEVENT_OSDEVICE", _U32),
    OSPARAMETER | 0x0009: ("SIPAEVENT_SYSTEMROOT", _UTF16),
    OSPARAMETER | 0x000A: ("SIPAEVENT_HYPERVISOR_LAUNCH_TYPE", _INT),
    OSPARAMETER | 0x000B: ("SIPAEVENT_HYPERVISOR_PATH", _UTF16),
    OSPARAMETER | 0x000C: ("SIPAEVENT_HYPERVISOR_IOMMU_POLICY", _INT),
    OSPARAMETER | 0x000D: ("SIPAEVENT_HYPERVISOR_DEBUG", _BOOL),
    OSPARAMETER | 0x000E: ("SIPAEVENT_DRIVER_LOAD_POLICY", _U32),
    OSPARAMETER | 0x000F: ("SIPAEVENT_SI_POLICY", _BYTES),
    OSPARAMETER | 0x0010: ("SIPAEVENT_HYPERVISOR_MMIO_NX_POLICY", _INT),
    OSPARAMETER | 0x0011: ("SIPAEVENT_HYPERVISOR_MSR_FILTER_POLICY", _INT),
    OSPARAMETER | 0x0012: ("SIPAEVENT_VSM_LAUNCH_TYPE", _INT),
    OSPARAMETER | 0x0013: ("SIPAEVENT_OS_REVOCATION_LIST", _BYTES),
    OSPARAMETER | 0x0014: ("SIPAEVENT_SMT_STATUS", _INT),
    OSPARAMETER | 0x0020: ("SIPAEVENT_VSM_IDK_INFO", _BYTES),
    OSPARAMETER | 0x0021: ("SIPAEVENT_FLIGHTSIGNING", _BOOL),
    OSPARAMETER | 0x0022: ("SIPAEVENT_PAGEFILE_ENCRYPTION_ENABLED", _BOOL),
    OSPARAMETER | 0x0023: ("SIPAEVENT_VSM_IDKS_INFO", _BYTES),
    OSPARAMETER | 0x0024: ("SIPAEVENT_HIBERNATION_DISABLED", _BOOL),
    OSPARAMETER | 0x0025: ("SIPAEVENT_DUMPS_DISABLED", _BOOL),
    OSPARAMETER | 0x0026: ("SIPAEVENT_DUMP_ENCRYPTION_ENABLED", _BOOL),
    OSPARAMETER | 0x0027: ("SIPAEVENT_DUMP_ENCRYPTION_KEY_DIGEST", _BYTES),
    OSPARAMETER | 0x0028: ("SIPAEVENT_LSAISO_CONFIG", _U32),
    OSPARAMETER | 0x0029: ("SIPAEVENT_SBCP_INFO", _BYTES),
    OSPARAMETER | 0x0030: ("SIPAEVENT_HYPERVISOR_BOOT_DMA_PROTECTION", _BOOL),
    OSPARAMETER | 0x0031: ("SIPAEVENT_SI_POLICY_SIGNER", _BYTES),
    OSPARAMETER | 0x0032: ("SIPAEVENT_SI_POLICY_UPDATE_SIGNER", _BYTES),
    AUTHORITY | 0x0001: ("SIPAEVENT_NOAUTHORITY", _BYTES),
    AUTHORITY | 0x0002: ("SIPAEVENT_AUTHORITYPUBKEY", _BYTES),
    LOADEDMODULE | 0x0001: ("SIPAEVENT_FILEPATH", _UTF16),
    LOADEDMODULE | 0x0002: ("SIPAEVENT_IMAGESIZE", _U64),
    LOADEDMODULE | 0x0003: ("SIPAEVENT_HASHALGORITHMID", _U32),
    LOADEDMODULE | 0x0004: ("SIPAEVENT_AUTHENTICODEHASH", _BYTES),
    LOADEDMODULE | 0x0005: ("SIPAEVENT_AUTHORITYISSUER", _UTF16),
    LOADEDMODULE | 0x0006: ("SIPAEVENT_AUTHORITYSERIAL", _BYTES),
    LOADEDMODULE | 0x0007: ("SIPAEVENT_IMAGEBASE", _U64),
    LOADEDMODULE | 0x0008: ("SIPAEVENT_AUTHORITYPUBLISHER", _UTF16),
    LOADEDMODULE | 0x0009: ("SIPAEVENT_AUTHORITYSHA1THUMBPRINT", _BYTES),
    LOADEDMODULE | 0x000A: ("SIPAEVENT_IMAGEVALIDATED", _BOOL),
    LOADEDMODULE | 0x000B: ("SIPAEVENT_MODULE_SVN", _INT),
    LOADEDMODULE | 0x000C: ("SIPAEVENT_MODULE_PLUTON", _BYTES),
    LOADEDMODULE | 0x000D: ("SIPAEVENT_MODULE_ORIGINAL_FILENAME", _UTF16),
    LOADEDMODULE | 0x000E: ("SIPAEVENT_MODULE_VERSION", _BYTES),
    LOADEDMODULE | 0x000F: ("SIPAEVENT_PUBLISHER_OEMNAME", _UTF16),
    NONMEASURED | TRUSTPOINT | 0x0001: ("SIPAEVENT_QUOTE", _BYTES),
    NONMEASURED | TRUSTPOINT | 0x0002: ("SIPAEVENT_QUOTESIGNATURE", _BYTES),
    NONMEASURED | TRUSTPOINT | 0x0003: ("SIPAEVENT_AIKID", _BYTES),
    NONMEASURED | TRUSTPOINT | 0x0004: ("SIPAEVENT_AIKPUBDIGEST", _BYTES),
    ELAM | 0x0001: ("SIPAEVENT_ELAM_KEYNAME", _UTF16),
    ELAM | 0x0002: ("SIPAEVENT_ELAM_CONFIGURATION", _BYTES),
    ELAM | 0x0003: ("SIPAEVENT_ELAM_POLICY", _BYTES),
    ELAM | 0x0004: ("SIPAEVENT_ELAM_MEASURED", _BYTES),
    VBS | 0x0001: ("SIPAEVENT_VBS_VSM_REQUIRED", _BOOL),
    VBS | 0x0002: ("SIPAEVENT_VBS_SECUREBOOT_REQUIRED", _BOOL),
    VBS | 0x0003: ("SIPAEVENT_VBS_IOMMU_REQUIRED", _BOOL),
    VBS | 0x0004: ("SIPAEVENT_VBS_MMIO_NX_REQUIRED", _BOOL),
    VBS | 0x0005: ("SIPAEVENT_VBS_MSR_FILTERING_REQUIRED", _BOOL),
    VBS | 0x0006: ("SIPAEVENT_VBS_MANDATORY_ENFORCEMENT", _BOOL),
    VBS | 0x0007: ("SIPAEVENT_VBS_HVCI_POLICY", _INT),
    VBS | 0x0008: ("SIPAEVENT_VBS_MICROSOFT_BOOT_CHAIN_REQUIRED", _BOOL),
    VBS | 0x0009: ("SIPAEVENT_VBS_DUMP_USES_AMEROOT", _BOOL),
    VBS | 0x000A: ("SIPAEVENT_VBS_VSM_NOSECRETS_ENFORCED", _BOOL),
    KSR | 0x0001: ("SIPAEVENT_KSR_SIGNATURE", _BYTES),
    DRTM | 0x0001: ("SIPAEVENT_DRTM_STATE_AUTH", _BYTES),
    DRTM | 0x0002: ("SIPAEVENT_DRTM_SMM_LEVEL", _INT),
    DRTM | 0x0003: ("SIPAEVENT_DRTM_AMD_SMM_HASH", _BYTES),
    DRTM | 0x0004: ("SIPAEVENT_DRTM_AMD_SMM_SIGNER_KEY", _BYTES),
}
SIPA_NAMES: dict[int, str] = {k: v[0] for k, v in SIPA_EVENTS.items()}

_CLASS_NAMES = {
    CONTAINER: "CONTAINER",
    INFORMATION: "INFORMATION",
    ERROR: "ERROR",
    PREOSPARAMETER: "PREOSPARAMETER",
    OSPARAMETER: "OSPARAMETER",
    AUTHORITY: "AUTHORITY",
    LOADEDMODULE: "LOADEDMODULE",
    TRUSTPOINT: "TRUSTPOINT",
    ELAM: "ELAM",
    VBS: "VBS",
    KSR: "KSR",
    DRTM: "DRTM",
}

#: CAPI ALG_ID low byte -> hash name (SIPAEVENT_HASHALGORITHMID; wincrypt.h CALG_*)
WIN_HASH_ALGS = {0x02: "MD4", 0x03: "MD5", 0x04: "SHA1", 0x0C: "SHA256", 0x0D: "SHA384", 0x0E: "SHA512"}

#: tagged-event ids of the Linux EFI stub and systemd (drivers/firmware/efi/libstub/efistub.h,
#: systemd src/fundamental/tpm2-pcr.h)
TAG_NAMES = {
    0x8F3B22EC: "INITRD_EVENT_TAG_ID",
    0x8F3B22ED: "LOAD_OPTIONS_EVENT_TAG_ID",
    0xF5BC582A: "LOADER_CONF_EVENT_TAG_ID",
    0x6C46F751: "DEVICETREE_ADDON_EVENT_TAG_ID",
    0x49DFFE0F: "INITRD_ADDON_EVENT_TAG_ID",
    0xDAC08E1A: "UCODE_ADDON_EVENT_TAG_ID",
    0x13AED6DB: "UKI_PROFILE_EVENT_TAG_ID",
    0xD5CB7CBC: "SMBIOS_TYPE1_EVENT_TAG_ID",
}


def sipa_name(event_id: int) -> str:
    """The wbcl.h name of a SIPA event id, or ``SIPAEVENTTYPE_<CLASS>+0x....`` for unknown ones."""
    name = SIPA_NAMES.get(event_id)
    if name is not None:
        return name
    cls = _CLASS_NAMES.get(event_id & CLASS_MASK, f"0x{event_id & CLASS_MASK:05x}")
    return f"SIPAEVENTTYPE_{cls}+0x{event_id & 0xFFFF:04x}"


def is_container(event_id: int) -> bool:
    return event_id & CLASS_MASK == CONTAINER


@dataclass(frozen=True, slots=True)
class SipaEvent:
    """One SIPA record: id, name, raw data, decoded value (containers: ``children``)."""

    event_id: int
    name: str
    data: bytes
    #: bool / int / str / bytes / None (containers)
    value: Any
    children: tuple["SipaEvent", ...] = ()
    #: absolute offset of the record header
    offset: int = 0
    note: str | None = None

    @property
    def is_container(self) -> bool:
        return is_container(self.event_id)

    @property
    def measured(self) -> bool:
        return not self.event_id & NONMEASURED

    def walk(self) -> Iterator["SipaEvent"]:
        """This record and every nested one, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()

    def value_text(self) -> str:
        v = self.value
        if self.is_container:
            return f"{len(self.children)} events"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return v
        if isinstance(v, bytes):
            return short_hex(v)
        return ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.event_id, "name": self.name}
        if self.is_container:
            out["children"] = [c.to_json() for c in self.children]
        else:
            v = self.value
            out["value"] = v.hex() if isinstance(v, bytes) else v
            if not isinstance(v, bytes):
                out["data"] = self.data.hex()
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class LoadedModule:
    """A ``SIPAEVENT_LOADEDMODULE_AGGREGATION``: one driver or boot application Windows loaded."""

    file_path: str | None
    authenticode_hash: bytes | None
    hash_algorithm: str | None
    image_base: int | None
    image_size: int | None
    image_validated: bool | None
    authority_issuer: str | None
    authority_publisher: str | None
    authority_serial: bytes | None
    authority_sha1_thumbprint: bytes | None

    def to_json(self) -> dict[str, Any]:
        def h(b: bytes | None) -> str | None:
            return b.hex() if b is not None else None

        return {
            "file_path": self.file_path,
            "authenticode_hash": h(self.authenticode_hash),
            "hash_algorithm": self.hash_algorithm,
            "image_base": self.image_base,
            "image_size": self.image_size,
            "image_validated": self.image_validated,
            "authority_issuer": self.authority_issuer,
            "authority_publisher": self.authority_publisher,
            "authority_serial": h(self.authority_serial),
            "authority_sha1_thumbprint": h(self.authority_sha1_thumbprint),
        }


@dataclass(frozen=True, slots=True)
class ElamDriver:
    """A ``SIPAEVENT_ELAM_AGGREGATION``: an Early Launch Anti-Malware driver's measured config."""

    keyname: str | None
    measured: bytes | None
    configuration: bytes | None
    policy: bytes | None

    def to_json(self) -> dict[str, Any]:
        def h(b: bytes | None) -> str | None:
            return b.hex() if b is not None else None

        return {
            "keyname": self.keyname,
            "measured": h(self.measured),
            "configuration": h(self.configuration),
            "policy": h(self.policy),
        }


def _first(ev: SipaEvent, name: str) -> Any:
    for c in ev.children:
        if c.name == name:
            return c.value
    return None


def _module(ev: SipaEvent) -> LoadedModule:
    alg = _first(ev, "SIPAEVENT_HASHALGORITHMID")
    return LoadedModule(
        file_path=_first(ev, "SIPAEVENT_FILEPATH"),
        authenticode_hash=_first(ev, "SIPAEVENT_AUTHENTICODEHASH"),
        hash_algorithm=WIN_HASH_ALGS.get(alg & 0xFF, f"0x{alg:x}") if isinstance(alg, int) else None,
        image_base=_first(ev, "SIPAEVENT_IMAGEBASE"),
        image_size=_first(ev, "SIPAEVENT_IMAGESIZE"),
        image_validated=_first(ev, "SIPAEVENT_IMAGEVALIDATED"),
        authority_issuer=_first(ev, "SIPAEVENT_AUTHORITYISSUER"),
        authority_publisher=_first(ev, "SIPAEVENT_AUTHORITYPUBLISHER"),
        authority_serial=_first(ev, "SIPAEVENT_AUTHORITYSERIAL"),
        authority_sha1_thumbprint=_first(ev, "SIPAEVENT_AUTHORITYSHA1THUMBPRINT"),
    )


@dataclass(frozen=True, slots=True)
class SipaEventData(EventData):
    """Windows WBCL data of an EV_EVENT_TAG: the top-level SIPA record and its nested records."""

    kind: ClassVar[str] = "sipa"
    root: SipaEvent

    @property
    def events(self) -> tuple[SipaEvent, ...]:
        """Every record, depth first (the root first)."""
        return tuple(self.root.walk())

    def find(self, name: str) -> list[SipaEvent]:
        return [e for e in self.root.walk() if e.name == name]

    def values(self, name: str) -> list[Any]:
        return [e.value for e in self.find(name)]

    @property
    def loaded_modules(self) -> tuple[LoadedModule, ...]:
        return tuple(_module(e) for e in self.find("SIPAEVENT_LOADEDMODULE_AGGREGATION"))

    @property
    def elam_drivers(self) -> tuple[ElamDriver, ...]:
        return tuple(
            ElamDriver(
                _first(e, "SIPAEVENT_ELAM_KEYNAME"),
                _first(e, "SIPAEVENT_ELAM_MEASURED"),
                _first(e, "SIPAEVENT_ELAM_CONFIGURATION"),
                _first(e, "SIPAEVENT_ELAM_POLICY"),
            )
            for e in self.find("SIPAEVENT_ELAM_AGGREGATION")
        )

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{e.name}: {e.note}" for e in self.root.walk() if e.note)

    def summary(self) -> str:
        root = self.root
        if not root.is_container:
            return f"{root.name} = {root.value_text()}"
        leaves = [e for e in root.children if not e.is_container]
        parts = [f"{e.name.removeprefix('SIPAEVENT_')}={e.value_text()}" for e in leaves[:6]]
        mods = self.loaded_modules
        if mods:
            parts.append(f"{len(mods)} loaded modules")
        elam = self.elam_drivers
        if elam:
            parts.append("ELAM " + ", ".join(d.keyname or "?" for d in elam))
        more = len(leaves) - 6
        if more > 0:
            parts.append(f"+{more} more")
        return f"{root.name}: " + ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "event": self.root.to_json()}
        mods = self.loaded_modules
        if mods:
            out["loaded_modules"] = [m.to_json() for m in mods]
        elam = self.elam_drivers
        if elam:
            out["elam"] = [d.to_json() for d in elam]
        return out


@dataclass(frozen=True, slots=True)
class TaggedEvent(EventData):
    """A non-Windows ``TCG_PCClientTaggedEventStruct``: id (named when known) and data."""

    kind: ClassVar[str] = "tagged_event"
    event_id: int
    name: str | None
    data: bytes
    text: str | None

    def summary(self) -> str:
        label = self.name or f"0x{self.event_id:08x}"
        body = self.text if self.text is not None else f"{len(self.data)} bytes {short_hex(self.data)}"
        return f"{label}: {body}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "name": self.name,
            "data": self.data.hex(),
            "text": self.text,
        }


def _value(kind: str, data: bytes) -> tuple[Any, str | None]:
    n = len(data)
    if kind == _BOOL:
        if n == 1:
            return data[0] != 0, None
        return data, f"{n} bytes, expected 1"
    if kind == _U64BOOL:
        if n == 8:
            return int.from_bytes(data, "little") != 0, None
        return data, f"{n} bytes, expected 8"
    if kind == _U32:
        if n == 4:
            return int.from_bytes(data, "little"), None
        return data, f"{n} bytes, expected 4"
    if kind == _U64:
        if n == 8:
            return int.from_bytes(data, "little"), None
        return data, f"{n} bytes, expected 8"
    if kind == _INT:
        if n in (1, 2, 4, 8):
            return int.from_bytes(data, "little"), None
        return data, None
    if kind == _UTF16:
        return utf16_text(data), (None if n % 2 == 0 else "odd length UTF-16 string")
    return data, None


_HEADER = struct.Struct("<II")


def parse_sipa_events(r: Reader, depth: int = 0) -> tuple[SipaEvent, ...]:
    """Parse the SIPA records that fill the reader (a container's data)."""
    out = _records(r.data, r.pos, r.end, r.base, depth)
    r.pos = r.end
    return out


def _records(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[SipaEvent, ...]:
    """The SIPA records (UINT32 EventID, UINT32 EventDataSize, data) in ``data[pos:end]``; containers
    recursively. ``base`` makes offsets absolute. A Windows boot logs a thousand of them, so this
    reads headers with one ``struct`` call instead of a Reader per record."""
    if depth > _MAX_DEPTH:
        raise fail("sipa", f"SIPA containers nested deeper than {_MAX_DEPTH}", offset=base + pos)
    out = []
    append = out.append
    unpack = _HEADER.unpack_from
    names = SIPA_NAMES
    events = SIPA_EVENTS
    while pos < end:
        start = pos
        if end - pos < 8:
            raise fail("sipa", f"{end - pos} bytes left, a SIPA event header needs 8",
                       field="SIPA_EVENT.EventID", offset=base + start)
        event_id, size = unpack(data, pos)
        pos += 8
        if size > end - pos:
            raise fail("sipa", f"{sipa_name(event_id)} declares {size} bytes but only {end - pos} remain",
                       field="SIPA_EVENT.EventDataSize", offset=base + start + 4)
        body = data[pos : pos + size]
        name = names.get(event_id) or sipa_name(event_id)
        if event_id & CLASS_MASK == CONTAINER:
            append(SipaEvent(event_id, name, body, None, _records(data, pos, pos + size, base, depth + 1), base + start))
        else:
            spec = events.get(event_id)
            value, note = _value(spec[1] if spec is not None else _BYTES, body)
            append(SipaEvent(event_id, name, body, value, (), base + start, note))
        pos += size
    return tuple(out)


def decode_event_tag(data: bytes, *, base_offset: int = 0) -> EventData:
    """Decode ``TCG_PCClientTaggedEventStruct``: Windows SIPA records or another tagged event."""
    r = reader(data, base_offset)
    event_id = r.u32("TCG_PCClientTaggedEventStruct.EventID")
    size_off = r.offset
    size = r.u32("TCG_PCClientTaggedEventStruct.EventDataSize")
    if size != r.remaining:
        raise fail(
            "tagged_event",
            f"EventDataSize {size} does not match the {r.remaining} bytes of EventData",
            field="TCG_PCClientTaggedEventStruct.EventDataSize",
            offset=size_off,
        )
    if event_id in SIPA_NAMES or (is_container(event_id) and event_id & AGGREGATION):
        (root,) = _records(data, 0, len(data), base_offset, 0)
        return SipaEventData(root)
    body = r.rest()
    found = detect_text(body)
    return TaggedEvent(event_id, TAG_NAMES.get(event_id), body, found.text if found is not None else None)
