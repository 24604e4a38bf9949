"""UEFI variable events: UEFI_VARIABLE_DATA and the values of the variables firmware measures.

* ``UEFI_VARIABLE_DATA`` (TCG PFP 1.05, section 10.2.6 ``UEFI_VARIABLE_DATA`` structure):
  ``VariableName`` (EFI_GUID, the vendor GUID), ``UnicodeNameLength`` and ``VariableDataLength``
  (UINT64, in CHAR16 and bytes), ``UnicodeName`` (CHAR16[], no terminator) and ``VariableData``.
  It is the data of EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_BOOT, EV_EFI_VARIABLE_BOOT2 and
  EV_EFI_VARIABLE_AUTHORITY (PFP 10.4.4 "Measuring UEFI Variables").
* ``EFI_SIGNATURE_LIST`` / ``EFI_SIGNATURE_DATA`` (UEFI 2.10, section 32.4.1 "Signature Database"):
  the value of PK, KEK, db, dbx, dbt, dbr and shim's MokList*.
* ``EFI_LOAD_OPTION`` (UEFI 2.10, section 3.1.3 "Load Options"): Boot####, Driver####,
  SysPrep####, PlatformRecovery####.
* BootOrder/DriverOrder (UEFI 2.10, 3.3 "Globally Defined Variables": UINT16 array), the Secure Boot
  mode variables SecureBoot/SetupMode/AuditMode/DeployedMode (UINT8, UEFI 2.10 section 32.3) and
  shim's SbatLevel (text, shim SBAT.md).

Design choice for a malformed *value* of a known variable: a structural error in a signature list
or load option raises ``eventlog.data.signature_list`` / ``eventlog.data.load_option``. A Secure Boot
mode variable of the wrong size (arch-linux-workstation logs a zero-length ``SecureBoot``) is not an
error: it decodes to a :class:`BoolValue` with ``value=None`` and a warning, so a log view can show
``SecureBoot = <0 bytes> (expected 1)`` and a policy can treat it as "unknown".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from attestd.binary import Reader
from attestd.eventlog.data.base import EventData, fail, reader, short_hex
from attestd.eventlog.data.certs import Certificate, der_length
from attestd.eventlog.data.devicepath import DevicePath, parse_device_paths, render_device_paths
from attestd.eventlog.data.guids import (
    EFI_CERT_RSA2048_GUID,
    EFI_CERT_RSA2048_SHA1_GUID,
    EFI_CERT_RSA2048_SHA256_GUID,
    EFI_CERT_SHA1_GUID,
    EFI_CERT_SHA224_GUID,
    EFI_CERT_SHA256_GUID,
    EFI_CERT_SHA384_GUID,
    EFI_CERT_SHA512_GUID,
    EFI_CERT_X509_GUID,
    EFI_CERT_X509_SHA256_GUID,
    EFI_CERT_X509_SHA384_GUID,
    EFI_CERT_X509_SHA512_GUID,
    EFI_GLOBAL_VARIABLE,
    EFI_IMAGE_SECURITY_DATABASE_GUID,
    SHIM_LOCK_GUID,
    guid_name,
    read_guid,
)
from attestd.eventlog.data.text import detect_text, utf16_until_nul

__all__ = [
    "UefiVariable",
    "VariableValue",
    "BoolValue",
    "U16ListValue",
    "U16Value",
    "TextValue",
    "BytesValue",
    "SignatureDatabase",
    "SignatureList",
    "SignatureEntry",
    "LoadOption",
    "AuthorityValue",
    "decode_uefi_variable",
    "parse_signature_lists",
    "count_signatures",
    "read_uefi_variable",
    "VariableRecord",
    "parse_load_option",
]

#: largest name we accept, in CHAR16 (names are short; this only bounds hostile input)
_MAX_NAME_CHARS = 1 << 16

_HASH_TYPES = {
    EFI_CERT_SHA1_GUID: ("sha1", 20),
    EFI_CERT_SHA224_GUID: ("sha224", 28),
    EFI_CERT_SHA256_GUID: ("sha256", 32),
    EFI_CERT_SHA384_GUID: ("sha384", 48),
    EFI_CERT_SHA512_GUID: ("sha512", 64),
}
_X509_TBS_TYPES = {
    EFI_CERT_X509_SHA256_GUID: ("x509_sha256", 32),
    EFI_CERT_X509_SHA384_GUID: ("x509_sha384", 48),
    EFI_CERT_X509_SHA512_GUID: ("x509_sha512", 64),
}
_RSA_TYPES = {
    EFI_CERT_RSA2048_GUID: "rsa2048",
    EFI_CERT_RSA2048_SHA256_GUID: "rsa2048_sha256",
    EFI_CERT_RSA2048_SHA1_GUID: "rsa2048_sha1",
}


# -- values ----------------------------------------------------------------------------------


class VariableValue:
    """Base of decoded variable values (``UefiVariable.value``)."""

    __slots__ = ()
    kind: ClassVar[str] = "value"

    def summary(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class BoolValue(VariableValue):
    """A UINT8 Secure Boot mode variable (SecureBoot, SetupMode, AuditMode, DeployedMode).

    ``value`` is None when the data is not exactly one byte (see the module docstring).
    """

    kind: ClassVar[str] = "bool"
    raw: bytes
    value: int | None

    def summary(self) -> str:
        if self.value is None:
            return f"<{len(self.raw)} bytes> (expected 1)"
        state = {0: "disabled", 1: "enabled"}.get(self.value, "invalid")
        return f"{self.value} ({state})"

    def to_json(self) -> dict[str, Any]:
        enabled = None if self.value is None else self.value == 1
        return {"kind": self.kind, "value": self.value, "enabled": enabled}


@dataclass(frozen=True, slots=True)
class U16ListValue(VariableValue):
    """A UINT16 array (BootOrder, DriverOrder)."""

    kind: ClassVar[str] = "u16_list"
    values: tuple[int, ...]

    def summary(self) -> str:
        return ",".join(f"{v:04X}" for v in self.values) if self.values else "(empty)"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": list(self.values), "text": [f"{v:04X}" for v in self.values]}


@dataclass(frozen=True, slots=True)
class U16Value(VariableValue):
    """A single UINT16 (BootCurrent, BootNext, Timeout)."""

    kind: ClassVar[str] = "u16"
    value: int

    def summary(self) -> str:
        return f"{self.value:04X}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}


@dataclass(frozen=True, slots=True)
class TextValue(VariableValue):
    """A text value (shim's SbatLevel: CSV lines ``component,generation[,date]``)."""

    kind: ClassVar[str] = "text"
    text: str
    encoding: str

    def summary(self) -> str:
        lines = [ln for ln in self.text.splitlines() if ln]
        return "; ".join(lines) if lines else "(empty)"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "encoding": self.encoding}


@dataclass(frozen=True, slots=True)
class BytesValue(VariableValue):
    """A value Attestd does not interpret: the bytes."""

    kind: ClassVar[str] = "bytes"
    data: bytes

    def summary(self) -> str:
        return f"<{len(self.data)} bytes> {short_hex(self.data)}" if self.data else "<0 bytes>"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": len(self.data), "data": self.data.hex()}


@dataclass(frozen=True, slots=True)
class SignatureEntry:
    """One ``EFI_SIGNATURE_DATA``: owner GUID and either a certificate or a hash (or other data)."""

    owner: uuid.UUID
    #: ``"x509"``, ``"sha256"`` (etc.), ``"x509_sha256"`` (TBS hash + revocation time), ``"rsa2048"``...
    type: str
    certificate: Certificate | None = None
    digest: bytes | None = None
    data: bytes = b""

    @property
    def label(self) -> str:
        if self.certificate is not None:
            return self.certificate.name
        if self.digest is not None:
            return f"{self.type}:{self.digest.hex()[:16]}"
        return f"{self.type}:{short_hex(self.data, 8)}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"owner": str(self.owner), "type": self.type}
        name = guid_name(self.owner)
        if name:
            out["owner_name"] = name
        if self.certificate is not None:
            out["certificate"] = self.certificate.to_json()
        elif self.digest is not None:
            out["digest"] = self.digest.hex()
            if len(self.data) > len(self.digest):
                out["data"] = self.data.hex()
        else:
            out["data"] = self.data.hex()
        return out


@dataclass(frozen=True, slots=True)
class SignatureList:
    """One ``EFI_SIGNATURE_LIST`` (UEFI 2.10, 32.4.1): its type, header and signatures."""

    signature_type: uuid.UUID
    header: bytes
    signature_size: int
    entries: tuple[SignatureEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "signature_type": str(self.signature_type),
            "signature_type_name": guid_name(self.signature_type),
            "signature_size": self.signature_size,
            "header": self.header.hex(),
            "entries": [e.to_json() for e in self.entries],
        }


@dataclass(frozen=True, slots=True)
class SignatureDatabase(VariableValue):
    """A signature database value (PK, KEK, db, dbx, dbt, dbr, MokList...): its lists."""

    kind: ClassVar[str] = "signature_database"
    lists: tuple[SignatureList, ...]

    @property
    def entries(self) -> tuple[SignatureEntry, ...]:
        return tuple(e for sl in self.lists for e in sl.entries)

    @property
    def certificates(self) -> tuple[Certificate, ...]:
        return tuple(e.certificate for e in self.entries if e.certificate is not None)

    @property
    def digests(self) -> tuple[SignatureEntry, ...]:
        return tuple(e for e in self.entries if e.digest is not None)

    def summary(self) -> str:
        certs = self.certificates
        digests = self.digests
        others = len(self.entries) - len(certs) - len(digests)
        parts = []
        if certs:
            noun = "X509 cert" if len(certs) == 1 else "X509 certs"
            parts.append(f"{len(certs)} {noun} ({', '.join(c.name for c in certs)})")
        if digests:
            types = sorted({e.type for e in digests})
            parts.append(f"{len(digests)} {'/'.join(types)} hash{'es' if len(digests) != 1 else ''}")
        if others:
            parts.append(f"{others} other signature{'s' if others != 1 else ''}")
        return ", ".join(parts) if parts else "empty"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "certificates": len(self.certificates),
            "digests": len(self.digests),
            "lists": [sl.to_json() for sl in self.lists],
        }


@dataclass(frozen=True, slots=True)
class LoadOption(VariableValue):
    """``EFI_LOAD_OPTION`` (UEFI 2.10, 3.1.3): attributes, description, device paths, optional data."""

    kind: ClassVar[str] = "load_option"
    attributes: int
    file_path_list_length: int
    description: str
    file_paths: tuple[DevicePath, ...]
    optional_data: bytes

    @property
    def active(self) -> bool:
        """``LOAD_OPTION_ACTIVE`` (0x00000001)."""
        return bool(self.attributes & 0x1)

    @property
    def device_path(self) -> str:
        return render_device_paths(self.file_paths)

    def summary(self) -> str:
        flags = "" if self.active else " [inactive]"
        extra = f" +{len(self.optional_data)} bytes optional data" if self.optional_data else ""
        return f'"{self.description}" {self.device_path}{flags}{extra}'

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "attributes": self.attributes,
            "active": self.active,
            "description": self.description,
            "file_path_list_length": self.file_path_list_length,
            "device_path": self.device_path,
            "file_paths": [p.to_json() for p in self.file_paths],
            "optional_data": self.optional_data.hex(),
        }


@dataclass(frozen=True, slots=True)
class AuthorityValue(VariableValue):
    """The value of an EV_EFI_VARIABLE_AUTHORITY event: the db/MOK entry that authorised an image.

    Normally one ``EFI_SIGNATURE_DATA`` (UEFI 2.10 32.4.1; PFP 10.4.4): owner GUID + certificate
    (or hash). Older shim logs the bare DER certificate without owner GUID (``owner_missing``).
    """

    kind: ClassVar[str] = "authority"
    entry: SignatureEntry
    owner_missing: bool = False

    def summary(self) -> str:
        owner = "" if self.owner_missing else f" (owner {guid_name(self.entry.owner) or self.entry.owner})"
        return f"{self.entry.label}{owner}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "owner_missing": self.owner_missing, **self.entry.to_json()}


# -- UEFI_VARIABLE_DATA ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UefiVariable(EventData):
    """``UEFI_VARIABLE_DATA`` (TCG PFP 1.05, 10.2.6) with the decoded value of known variables."""

    kind: ClassVar[str] = "uefi_variable"
    vendor_guid: uuid.UUID
    name: str
    data: bytes
    value: VariableValue
    authority: bool = False
    notes: tuple[str, ...] = ()
    #: bytes after ``VariableData`` inside the event (a shim sizing bug); reported as a warning
    trailing: bytes = b""

    @property
    def warnings(self) -> tuple[str, ...]:
        out = list(self.notes)
        if isinstance(self.value, SignatureDatabase):
            out.extend(c.warning for c in self.value.certificates if c.warning)
        if isinstance(self.value, AuthorityValue) and self.value.entry.certificate is not None:
            if self.value.entry.certificate.warning:
                out.append(self.value.entry.certificate.warning)
        return tuple(out)

    @property
    def vendor_name(self) -> str | None:
        return guid_name(self.vendor_guid)

    def summary(self) -> str:
        return f"{self.name}: {self.value.summary()}" if not isinstance(self.value, BoolValue) else (
            f"{self.name} = {self.value.summary()}"
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "variable_name": str(self.vendor_guid),
            "vendor": self.vendor_name,
            "unicode_name": self.name,
            "variable_data_length": len(self.data),
            "value": self.value.to_json(),
        }
        if self.trailing:
            out["trailing"] = self.trailing.hex()
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


_BOOL_VARS = {"SecureBoot", "SetupMode", "AuditMode", "DeployedMode", "VendorKeys"}
_SIGDB_GLOBAL = {
    "PK", "KEK", "PKDefault", "KEKDefault", "dbDefault", "dbxDefault", "dbtDefault", "dbrDefault"
}
_SIGDB_SECURITY = {"db", "dbx", "dbt", "dbr"}
_SIGDB_SHIM = {"MokList", "MokListX", "MokListRT", "MokListXRT"}
_LOAD_OPTION = re.compile(r"^(Boot|Driver|SysPrep|PlatformRecovery)[0-9A-Fa-f]{4}$")


class VariableRecord(NamedTuple):
    """The members of ``UEFI_VARIABLE_DATA`` (PFP 1.05, 10.2.6) without the value decoded."""

    vendor_guid: uuid.UUID
    name: str
    data: bytes
    #: absolute offset of ``VariableData``
    data_offset: int
    trailing: bytes


def read_uefi_variable(data: bytes, *, base_offset: int = 0) -> VariableRecord:
    """Read ``UEFI_VARIABLE_DATA``'s header, name and data, leaving the value undecoded.

    Raises ``eventlog.data.truncated`` when the declared lengths run past the data.
    """
    r = reader(data, base_offset)
    vendor = read_guid(r, "UEFI_VARIABLE_DATA.VariableName")
    name_len_off = r.offset
    name_len = r.u64("UEFI_VARIABLE_DATA.UnicodeNameLength")
    data_len_off = r.offset
    data_len = r.u64("UEFI_VARIABLE_DATA.VariableDataLength")
    if name_len > _MAX_NAME_CHARS or name_len * 2 > r.remaining:
        raise fail(
            "truncated",
            f"UnicodeNameLength {name_len} CHAR16 exceeds the {r.remaining} bytes left",
            field="UEFI_VARIABLE_DATA.UnicodeNameLength",
            offset=name_len_off,
        )
    raw_name = r.bytes(name_len * 2, "UEFI_VARIABLE_DATA.UnicodeName")
    if data_len > r.remaining:
        raise fail(
            "truncated",
            f"VariableDataLength {data_len} exceeds the {r.remaining} bytes left",
            field="UEFI_VARIABLE_DATA.VariableDataLength",
            offset=data_len_off,
        )
    value_offset = r.offset
    value_data = r.bytes(data_len, "UEFI_VARIABLE_DATA.VariableData")
    trailing = r.rest()
    name = raw_name.decode("utf-16-le", "replace").rstrip("\0")
    return VariableRecord(vendor, name, value_data, value_offset, trailing)


def decode_uefi_variable(data: bytes, *, base_offset: int = 0, authority: bool = False) -> UefiVariable:
    """Decode ``UEFI_VARIABLE_DATA`` and, for known variables, its value.

    Raises ``eventlog.data.truncated`` when the declared lengths run past the data. Bytes after
    ``VariableData`` are kept in ``trailing`` with a warning: old shim releases log authority events
    whose event size is 6 bytes larger than the structure (sb_cert_eventlog, cos-85).
    """
    vendor, name, value_data, value_offset, trailing = read_uefi_variable(data, base_offset=base_offset)
    notes: list[str] = []
    if trailing:
        # shim < 15 sized its authority events 6 bytes too large (go-attestation issue #157 logs)
        notes.append(f"{len(trailing)} bytes after VariableData (ignored)")
    if authority:
        value = _authority_value(vendor, name, value_data, value_offset)
    else:
        value = _variable_value(vendor, name, value_data, value_offset, notes)
    return UefiVariable(vendor, name, value_data, value, authority, tuple(notes), trailing)


def _variable_value(
    vendor: uuid.UUID, name: str, data: bytes, offset: int, notes: list[str]
) -> VariableValue:
    if vendor == EFI_GLOBAL_VARIABLE and name in _BOOL_VARS:
        if len(data) != 1:
            notes.append(f"{name} data is {len(data)} bytes, expected 1")
            return BoolValue(data, None)
        return BoolValue(data, data[0])
    if (
        (vendor == EFI_GLOBAL_VARIABLE and name in _SIGDB_GLOBAL)
        or (vendor == EFI_IMAGE_SECURITY_DATABASE_GUID and name in _SIGDB_SECURITY)
        or (vendor == SHIM_LOCK_GUID and name in _SIGDB_SHIM)
    ):
        return SignatureDatabase(parse_signature_lists(data, base_offset=offset))
    if vendor == EFI_GLOBAL_VARIABLE and name in ("BootOrder", "DriverOrder", "SysPrepOrder"):
        if len(data) % 2:
            raise fail("boot_order", f"{name} has odd length {len(data)}", field=name, offset=offset)
        return U16ListValue(tuple(int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)))
    if vendor == EFI_GLOBAL_VARIABLE and name in ("BootCurrent", "BootNext", "Timeout") and len(data) == 2:
        return U16Value(int.from_bytes(data, "little"))
    if vendor == EFI_GLOBAL_VARIABLE and _LOAD_OPTION.match(name):
        return parse_load_option(data, base_offset=offset)
    if vendor == SHIM_LOCK_GUID and name in ("SbatLevel", "SbatLevelRT"):
        text = detect_text(data)
        if text is not None:
            return TextValue(text.text, text.encoding)
    return BytesValue(data)


def _authority_value(vendor: uuid.UUID, name: str, data: bytes, offset: int) -> VariableValue:
    """EV_EFI_VARIABLE_AUTHORITY value, in the shapes firmware and shim log."""
    if vendor == SHIM_LOCK_GUID and name in ("SbatLevel", "SbatLevelRT"):
        text = detect_text(data)
        if text is not None:
            return TextValue(text.text, text.encoding)
    # EFI_SIGNATURE_DATA: owner GUID + a DER certificate filling the rest
    if len(data) > 16 and der_length(data, 16) == len(data) - 16:
        owner = uuid.UUID(bytes_le=data[:16])
        return AuthorityValue(SignatureEntry(owner, "x509", Certificate.from_der(data[16:]), data=data[16:]))
    # shim before 15.3: the bare certificate, no owner GUID
    if der_length(data, 0) == len(data):
        return AuthorityValue(
            SignatureEntry(uuid.UUID(int=0), "x509", Certificate.from_der(data), data=data),
            owner_missing=True,
        )
    # EFI_SIGNATURE_DATA with a hash (an image authorised by its digest in db)
    if len(data) - 16 in (20, 28, 32, 48, 64):
        owner = uuid.UUID(bytes_le=data[:16])
        digest = data[16:]
        htype = {20: "sha1", 28: "sha224", 32: "sha256", 48: "sha384", 64: "sha512"}[len(digest)]
        return AuthorityValue(SignatureEntry(owner, htype, digest=digest, data=digest))
    return BytesValue(data)


# -- EFI_SIGNATURE_LIST ----------------------------------------------------------------------


def parse_signature_lists(data: bytes, *, base_offset: int = 0) -> tuple[SignatureList, ...]:
    """Parse a concatenation of ``EFI_SIGNATURE_LIST`` (UEFI 2.10, 32.4.1); empty data → ()."""
    r = reader(data, base_offset)
    lists: list[SignatureList] = []
    while not r.at_end():
        lists.append(_signature_list(r))
    return tuple(lists)


def count_signatures(data: bytes, *, base_offset: int = 0) -> int:
    """Number of ``EFI_SIGNATURE_DATA`` entries in signature lists, reading only the list headers
    (a dbx holds hundreds of hashes; counting them need not decode each). Same checks and errors
    as :func:`parse_signature_lists` for the list framing."""
    r = reader(data, base_offset)
    total = 0
    while not r.at_end():
        _, header_size, sig_size, count = _list_header(r)
        r.bytes(header_size + sig_size * count, "EFI_SIGNATURE_LIST.Signatures")
        total += count
    return total


def _list_header(r: Reader) -> tuple[uuid.UUID, int, int, int]:
    """An ``EFI_SIGNATURE_LIST`` header, checked: (SignatureType, header size, SignatureSize, count)."""
    start = r.offset
    if r.remaining < 28:
        raise fail(
            "signature_list",
            f"{r.remaining} bytes left, an EFI_SIGNATURE_LIST header needs 28",
            field="EFI_SIGNATURE_LIST",
            offset=start,
        )
    sig_type = read_guid(r, "EFI_SIGNATURE_LIST.SignatureType")
    list_size = r.u32("EFI_SIGNATURE_LIST.SignatureListSize")
    header_size = r.u32("EFI_SIGNATURE_LIST.SignatureHeaderSize")
    sig_size = r.u32("EFI_SIGNATURE_LIST.SignatureSize")
    if list_size < 28 or list_size - 28 > r.remaining:
        raise fail(
            "signature_list",
            f"SignatureListSize {list_size} is outside 28..{r.remaining + 28}",
            field="EFI_SIGNATURE_LIST.SignatureListSize",
            offset=start + 16,
        )
    body = list_size - 28
    if header_size > body:
        raise fail(
            "signature_list",
            f"SignatureHeaderSize {header_size} exceeds the list body of {body} bytes",
            field="EFI_SIGNATURE_LIST.SignatureHeaderSize",
            offset=start + 20,
        )
    sigs_len = body - header_size
    if sig_size < 16 or sigs_len % sig_size:
        raise fail(
            "signature_list",
            f"SignatureSize {sig_size} does not divide the {sigs_len} bytes of signatures "
            "(or is smaller than the 16-byte SignatureOwner)",
            field="EFI_SIGNATURE_LIST.SignatureSize",
            offset=start + 24,
        )
    return sig_type, header_size, sig_size, sigs_len // sig_size


def _signature_list(r: Reader) -> SignatureList:
    sig_type, header_size, sig_size, count = _list_header(r)
    header = r.bytes(header_size, "EFI_SIGNATURE_LIST.SignatureHeader")
    entries = []
    for _ in range(count):
        owner = read_guid(r, "EFI_SIGNATURE_DATA.SignatureOwner")
        payload = r.bytes(sig_size - 16, "EFI_SIGNATURE_DATA.SignatureData")
        entries.append(_signature_entry(sig_type, owner, payload))
    return SignatureList(sig_type, header, sig_size, tuple(entries))


def _signature_entry(sig_type: uuid.UUID, owner: uuid.UUID, payload: bytes) -> SignatureEntry:
    if sig_type == EFI_CERT_X509_GUID:
        # some firmware pads the certificate; use the DER length when it fits
        n = der_length(payload, 0)
        der = payload[:n] if n is not None and n <= len(payload) else payload
        return SignatureEntry(owner, "x509", Certificate.from_der(der), data=payload)
    if sig_type in _HASH_TYPES:
        name, size = _HASH_TYPES[sig_type]
        return SignatureEntry(owner, name, digest=payload[:size], data=payload)
    if sig_type in _X509_TBS_TYPES:
        name, size = _X509_TBS_TYPES[sig_type]
        return SignatureEntry(owner, name, digest=payload[:size], data=payload)
    if sig_type in _RSA_TYPES:
        return SignatureEntry(owner, _RSA_TYPES[sig_type], data=payload)
    return SignatureEntry(owner, guid_name(sig_type) or str(sig_type), data=payload)


# -- EFI_LOAD_OPTION -------------------------------------------------------------------------


def parse_load_option(data: bytes, *, base_offset: int = 0) -> LoadOption:
    """Parse ``EFI_LOAD_OPTION`` (UEFI 2.10, 3.1.3)."""
    r = reader(data, base_offset)
    attributes = r.u32("EFI_LOAD_OPTION.Attributes")
    fpl_off = r.offset
    fpl_len = r.u16("EFI_LOAD_OPTION.FilePathListLength")
    desc_off = r.offset
    description, used = utf16_until_nul(data[r.pos :])
    if used < 0:
        raise fail(
            "load_option",
            "EFI_LOAD_OPTION.Description has no CHAR16 NUL terminator",
            field="EFI_LOAD_OPTION.Description",
            offset=desc_off,
        )
    r.skip(used, "EFI_LOAD_OPTION.Description")
    if fpl_len > r.remaining:
        raise fail(
            "load_option",
            f"FilePathListLength {fpl_len} exceeds the {r.remaining} bytes left",
            field="EFI_LOAD_OPTION.FilePathListLength",
            offset=fpl_off,
        )
    fpl_base = r.offset
    fpl = r.bytes(fpl_len, "EFI_LOAD_OPTION.FilePathList")
    paths = parse_device_paths(fpl, base_offset=fpl_base)
    optional = r.rest()
    return LoadOption(attributes, fpl_len, description, paths, optional)
