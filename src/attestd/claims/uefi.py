"""UEFI Secure Boot claims: the Secure Boot state, its key databases and who authorised each image.

Read from verified events only (TCG PC Client PFP 1.05):

* PCR 7, EV_EFI_VARIABLE_DRIVER_CONFIG (PFP 10.4.4, 3.3.4.8): ``SecureBoot``, ``PK``, ``KEK`` (vendor
  EFI_GLOBAL_VARIABLE) and ``db``, ``dbx``, ``dbt``, ``dbr`` (EFI_IMAGE_SECURITY_DATABASE_GUID), plus
  ``SetupMode``/``AuditMode``/``DeployedMode`` where the firmware measures them. A variable measured
  under another vendor GUID is a different variable and is ignored.
* PCR 7, EV_EFI_VARIABLE_AUTHORITY (PFP 10.4.4): the ``EFI_SIGNATURE_DATA`` (db or MOK entry) that
  authorised each image, and shim's ``SbatLevel``.
* PCR 14, EV_IPL (shim): ``MokList``, ``MokListX``, ``MokListTrusted``; the data is the variable name
  and the event digest is the hash of the variable's content, so the digest identifies the list.
* PCR 1, EV_EFI_VARIABLE_BOOT / BOOT2: ``BootOrder`` and ``Boot####`` load options.

Secure Boot latches *off*: if ``SecureBoot`` was ever measured with a value other than 1, it is
reported disabled. ``secure_boot_enforced`` additionally needs a non-empty PK and the platform
not in Setup or Audit mode (UEFI 2.10, 32.3).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from attestd.eventlog.constants import EventType
from attestd.eventlog.data import (
    AuthorityValue,
    LoadOption,
    SignatureEntry,
    TextValue,
    U16ListValue,
    UefiVariable,
)
from attestd.eventlog.data.guids import EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE_GUID
from attestd.eventlog.data.uefi import count_signatures, parse_signature_lists, read_uefi_variable

__all__ = ["Authority", "BootOption", "CertificateClaim", "DigestClaim", "SignatureDb", "UefiClaims", "uefi_claims"]

E = EventType
_CONFIG_VARS = {
    "SecureBoot": EFI_GLOBAL_VARIABLE,
    "SetupMode": EFI_GLOBAL_VARIABLE,
    "AuditMode": EFI_GLOBAL_VARIABLE,
    "DeployedMode": EFI_GLOBAL_VARIABLE,
    "PK": EFI_GLOBAL_VARIABLE,
    "KEK": EFI_GLOBAL_VARIABLE,
    "db": EFI_IMAGE_SECURITY_DATABASE_GUID,
    "dbx": EFI_IMAGE_SECURITY_DATABASE_GUID,
    "dbt": EFI_IMAGE_SECURITY_DATABASE_GUID,
    "dbr": EFI_IMAGE_SECURITY_DATABASE_GUID,
}
_MOK_NAMES = ("MokList", "MokListX", "MokListTrusted")
_BOOT_TYPES = (int(E.EV_EFI_VARIABLE_BOOT), int(E.EV_EFI_VARIABLE_BOOT2))
_BOOT_OPTION = re.compile(r"^Boot[0-9A-Fa-f]{4}$")


@dataclass(frozen=True, slots=True)
class CertificateClaim:
    """An X.509 certificate in a signature database (``EFI_CERT_X509_GUID`` entry)."""

    subject: str | None
    issuer: str | None
    subject_cn: str | None
    sha256: str
    owner: str

    @property
    def name(self) -> str:
        return self.subject_cn or self.subject or f"sha256:{self.sha256[:16]}"

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "issuer": self.issuer, "commonName": self.subject_cn,
                "sha256": self.sha256, "owner": self.owner}


@dataclass(frozen=True, slots=True)
class DigestClaim:
    """A hash entry (``EFI_CERT_SHA256_GUID`` and friends): type and value."""

    type: str
    digest: str
    owner: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "digest": self.digest, "owner": self.owner}


def _entry_claim(entry: SignatureEntry) -> CertificateClaim | DigestClaim | None:
    owner = str(entry.owner).upper()
    if entry.certificate is not None:
        c = entry.certificate
        return CertificateClaim(c.subject, c.issuer, c.subject_cn, c.sha256, owner)
    if entry.digest is not None:
        return DigestClaim(entry.type, entry.digest.hex(), owner)
    return None


@dataclass(eq=False)
class SignatureDb:
    """One measured signature database (PK, KEK, db, dbx...): its certificates and hashes.

    ``sha256`` is the SHA-256 of the variable's data: two hosts with the same database content
    have the same value whatever the certificates are. The entries are decoded on first use (a
    dbx holds hundreds of hashes that most attestations never look at); ``count`` reads only the
    list headers.
    """

    name: str
    event: int
    data: bytes = field(repr=False)
    data_offset: int = field(default=0, repr=False)
    _entries: tuple[tuple[CertificateClaim, ...], tuple[DigestClaim, ...]] | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def count(self) -> int:
        return count_signatures(self.data, base_offset=self.data_offset)

    def _decoded(self) -> tuple[tuple[CertificateClaim, ...], tuple[DigestClaim, ...]]:
        if self._entries is None:
            certs: list[CertificateClaim] = []
            digests: list[DigestClaim] = []
            for sl in parse_signature_lists(self.data, base_offset=self.data_offset):
                for entry in sl.entries:
                    claim = _entry_claim(entry)
                    if isinstance(claim, CertificateClaim):
                        certs.append(claim)
                    elif isinstance(claim, DigestClaim):
                        digests.append(claim)
            self._entries = (tuple(certs), tuple(digests))
        return self._entries

    @property
    def certificates(self) -> tuple[CertificateClaim, ...]:
        return self._decoded()[0]

    @property
    def digests(self) -> tuple[DigestClaim, ...]:
        return self._decoded()[1]

    @property
    def certificate_names(self) -> list[str]:
        return [c.name for c in self.certificates]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "sha256": self.sha256, "certificates": [c.to_json() for c in self.certificates],
                "digests": [d.to_json() for d in self.digests]}


@dataclass(frozen=True, slots=True)
class Authority:
    """An EV_EFI_VARIABLE_AUTHORITY: the database entry that verified an image (``source`` is the
    variable it came from: ``db``, ``MokListRT``, shim's ``Shim`` vendor certificate...)."""

    event: int
    source: str
    certificate: CertificateClaim | None
    digest: DigestClaim | None

    @property
    def name(self) -> str:
        if self.certificate is not None:
            return self.certificate.name
        if self.digest is not None:
            return f"{self.digest.type}:{self.digest.digest}"
        return self.source

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "source": self.source, "name": self.name,
                "certificate": self.certificate.to_json() if self.certificate else None,
                "digest": self.digest.to_json() if self.digest else None}


@dataclass(frozen=True, slots=True)
class BootOption:
    """A measured ``Boot####`` load option (UEFI 2.10, 3.1.3)."""

    number: int
    event: int
    description: str
    device_path: str
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {"number": f"{self.number:04X}", "event": self.event, "description": self.description,
                "devicePath": self.device_path, "active": self.active}


@dataclass(frozen=True, slots=True)
class UefiClaims:
    """What the verified PCR 1, 7 and 14 events say about UEFI Secure Boot."""

    secure_boot: bool | None
    secure_boot_event: int | None
    setup_mode: bool | None
    audit_mode: bool | None
    deployed_mode: bool | None
    databases: dict[str, SignatureDb]
    authorities: tuple[Authority, ...]
    sbat_level: str | None
    mok_digests: dict[str, str]
    boot_order: tuple[int, ...] | None
    #: the measured ``Boot####`` events; :attr:`boot_options` decodes them when asked
    boot_option_events: tuple[Any, ...] = ()

    @property
    def boot_options(self) -> tuple[BootOption, ...]:
        out = []
        for e in self.boot_option_events:
            var = e.decode()
            if isinstance(var, UefiVariable) and isinstance(var.value, LoadOption):
                lo = var.value
                out.append(BootOption(int(var.name[4:], 16), e.index, lo.description, lo.device_path, lo.active))
        return tuple(out)

    @property
    def secure_boot_enforced(self) -> bool:
        pk = self.databases.get("PK")
        return (self.secure_boot is True and pk is not None and bool(pk.certificates)
                and self.setup_mode is not True and self.audit_mode is not True)

    def database(self, name: str) -> SignatureDb | None:
        return self.databases.get(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "secureBoot": self.secure_boot,
            "secureBootEvent": self.secure_boot_event,
            "secureBootEnforced": self.secure_boot_enforced,
            "setupMode": self.setup_mode,
            "auditMode": self.audit_mode,
            "deployedMode": self.deployed_mode,
            "databases": {k: v.to_json() for k, v in self.databases.items()},
            "authorities": [a.to_json() for a in self.authorities],
            "sbatLevel": self.sbat_level,
            "mokDigests": dict(self.mok_digests),
            "bootOrder": [f"{n:04X}" for n in self.boot_order] if self.boot_order is not None else None,
            "bootOptions": [o.to_json() for o in self.boot_options],
        }


def _flag(values: list[int | None]) -> bool | None:
    """A mode flag measured one or more times: None if never, else True only if always 1."""
    if not values:
        return None
    return all(v == 1 for v in values)


def _pick_digest(digests: dict[str, bytes]) -> str:
    for bank in ("sha256", "sha384", "sha512", "sha1"):
        if bank in digests:
            return f"{bank}:{digests[bank].hex()}"
    return ""


def uefi_claims(events: Iterable[Any]) -> UefiClaims:
    """UEFI claims from the events of verified PCRs (see the module docstring)."""
    modes: dict[str, list[int | None]] = {"SecureBoot": [], "SetupMode": [], "AuditMode": [], "DeployedMode": []}
    secure_boot_event = None
    databases: dict[str, SignatureDb] = {}
    authorities: list[Authority] = []
    sbat = None
    mok: dict[str, str] = {}
    boot_order = None
    options: list[Any] = []
    config_type = int(E.EV_EFI_VARIABLE_DRIVER_CONFIG)
    authority_type = int(E.EV_EFI_VARIABLE_AUTHORITY)
    ipl_type = int(E.EV_IPL)
    for e in events:
        et, pcr = e.event_type, e.pcr
        if et == config_type and pcr == 7:
            # the header only: signature databases are decoded when (and if) someone reads them
            var = read_uefi_variable(e.data, base_offset=e.data_offset)
            name = var.name
            if _CONFIG_VARS.get(name) != var.vendor_guid:
                continue
            if name in modes:
                value = var.data[0] if len(var.data) == 1 else None
                modes[name].append(value)
                if name == "SecureBoot" and (secure_boot_event is None or value != 1):
                    secure_boot_event = e.index
            else:
                databases[name] = SignatureDb(name, e.index, var.data, var.data_offset)
        elif et == authority_type and pcr == 7:
            var = e.decode()
            if not isinstance(var, UefiVariable):
                continue
            if isinstance(var.value, TextValue) and var.name == "SbatLevel":
                sbat = var.value.text.strip("\0").strip()
            elif isinstance(var.value, AuthorityValue):
                claim = _entry_claim(var.value.entry)
                authorities.append(Authority(e.index, var.name,
                                             claim if isinstance(claim, CertificateClaim) else None,
                                             claim if isinstance(claim, DigestClaim) else None))
        elif et == ipl_type and pcr == 14:
            name = e.data.rstrip(b"\0").decode("ascii", "replace")
            if name in _MOK_NAMES:
                mok[name] = _pick_digest(e.digests)
        elif et in _BOOT_TYPES and pcr == 1:
            var = read_uefi_variable(e.data, base_offset=e.data_offset)
            if var.vendor_guid != EFI_GLOBAL_VARIABLE:
                continue
            if var.name == "BootOrder":
                order = e.decode().value
                if isinstance(order, U16ListValue):
                    boot_order = order.values
            elif _BOOT_OPTION.match(var.name):
                options.append(e)
    sb = modes["SecureBoot"]
    return UefiClaims(
        secure_boot=None if not sb else all(v == 1 for v in sb),
        secure_boot_event=secure_boot_event,
        setup_mode=_flag(modes["SetupMode"]),
        audit_mode=_flag(modes["AuditMode"]),
        deployed_mode=_flag(modes["DeployedMode"]),
        databases=databases,
        authorities=tuple(authorities),
        sbat_level=sbat,
        mok_digests=mok,
        boot_order=boot_order,
        boot_option_events=tuple(options),
    )

