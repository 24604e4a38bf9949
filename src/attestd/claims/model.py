"""The claim set: typed sections built from verified evidence, and the flat view policies read.

:func:`build_claims` takes a :class:`~attestd.claims.verify.VerifiedTpmEvidence` and nothing else,
so claims can only come from evidence that passed verification. It reads only the events of
verified PCRs and decodes only the event types a claim needs, so it stays well under a
millisecond for a typical log.

:meth:`ClaimSet.flat` is what :mod:`attestd.policy` evaluates: Azure Attestation's TPM claim names
(``secureBootEnabled``, ``aikValidated``, ...) plus Attestd's Linux additions in the same style
(``bootApplications``, ``kernelCommandLine``, ...). A list value is a *set* of claims of that type.
The version 1.2 JSON claims ``events``, ``pcrs`` and ``ima`` cost more to build; they are made on
demand: ``flat(types)`` builds them only when ``types`` names them (``types=None``: everything).
docs/claims.md lists every claim.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Collection

from attestd.claims.azure import events_claim, pcrs_claim
from attestd.claims.bootchain import BootChainClaims, bootchain_claims
from attestd.claims.ima import ImaClaims, ima_claims
from attestd.claims.uefi import UefiClaims, uefi_claims
from attestd.claims.verify import VerifiedTpmEvidence
from attestd.claims.windows import WindowsClaims, windows_claims

__all__ = ["JSON_CLAIMS", "ClaimSet", "build_claims"]

#: claims built on demand (see :meth:`ClaimSet.flat`)
JSON_CLAIMS = frozenset({"events", "pcrs", "ima"})


@dataclass(frozen=True, eq=False)
class ClaimSet:
    """Claims about one host, each section ``None`` when the evidence had nothing for it."""

    evidence: VerifiedTpmEvidence = field(repr=False)
    uefi: UefiClaims | None
    boot: BootChainClaims | None
    windows: WindowsClaims | None
    ima: ImaClaims | None
    _flat: dict[str, Any] = field(repr=False, default_factory=dict)
    _json: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def provenance(self) -> str:
        return self.evidence.provenance

    def json_claim(self, name: str) -> dict[str, Any] | None:
        """One of the version 1.2 JSON claims (``events``, ``pcrs``, ``ima``), built once."""
        if name in self._json:
            return self._json[name]
        ev = self.evidence
        value: dict[str, Any] | None
        if name == "events":
            value = events_claim(ev.events) if ev.eventlog is not None else None
        elif name == "pcrs":
            value = pcrs_claim(ev.pcrs) if ev.pcrs else None
        elif name == "ima":
            value = None if self.ima is None else {"Measurements": [
                {"Index": m.index, "Path": m.path, "Digest": m.digest, "Template": m.template,
                 **({"Signature": m.signature} if m.signature is not None else {})}
                for m in self.ima.measurements]}
        else:
            raise KeyError(name)
        self._json[name] = value
        return value

    def flat(self, types: Collection[str] | None = None) -> dict[str, Any]:
        """``{claim type: value}`` for policy evaluation; JSON claims only if ``types`` asks
        (``None`` = all). A list value is a set of claims of that type."""
        out = dict(self._flat)
        for name in JSON_CLAIMS:
            if types is None or name in types:
                value = self.json_claim(name)
                if value is not None:
                    out[name] = value
        return out

    def to_json(self) -> dict[str, Any]:
        """Every section as JSON (the ``attestd claims --json`` output)."""
        ev = self.evidence
        return {
            "provenance": ev.provenance,
            "verifiedPcrs": sorted(ev.verified_pcrs),
            "unverifiedPcrs": list(ev.unverified_pcrs),
            "claims": dict(self._flat),
            "uefi": self.uefi.to_json() if self.uefi else None,
            "bootChain": self.boot.to_json() if self.boot else None,
            "windows": self.windows.to_json() if self.windows else None,
            "ima": self.ima.to_json() if self.ima else None,
            "warnings": list(ev.warnings),
        }


def _aik_pub_hash(ev: VerifiedTpmEvidence) -> str | None:
    if ev.ak is None:
        return None
    return base64.b64encode(hashlib.sha256(ev.ak.spki_der()).digest()).decode("ascii")


def _sha256_digest(digests: dict[str, str]) -> str | None:
    return digests.get("sha256") or digests.get("sha1")


def _flatten(ev: VerifiedTpmEvidence, log_claims: dict[str, Any] | None, ima: ImaClaims | None) -> dict[str, Any]:
    out: dict[str, Any] = {"tpmVersion": ev.tpm_version, "aikValidated": ev.ak_validated}
    pub = _aik_pub_hash(ev)
    if pub is not None:
        out["aikPubHash"] = pub
    if log_claims:
        # a copy of each list: the event log's claims may be shared with later attestations
        out.update({k: list(v) if isinstance(v, list) else v for k, v in log_claims.items()})
    if ima is not None:
        out["imaMeasurementCount"] = len(ima.measurements)
        out["imaViolations"] = ima.violations
        out["imaSignedFiles"] = ima.signed
        if ima.boot_aggregate is not None:
            out["imaBootAggregate"] = ima.boot_aggregate
    return out


def _log_claims(uefi: UefiClaims | None, boot: BootChainClaims | None, win: WindowsClaims | None
                ) -> dict[str, Any]:
    """The flat claims the event log's sections give."""
    out: dict[str, Any] = {}
    if uefi is not None:
        out["secureBootEnabled"] = uefi.secure_boot is True
        out["secureBootEnforced"] = uefi.secure_boot_enforced
        for var, claim in (("PK", "secureBootPk"), ("KEK", "secureBootKek"), ("db", "secureBootDb"),
                           ("dbx", "secureBootDbx")):
            db = uefi.databases.get(var)
            if db is None:
                continue
            if var != "dbx" and db.certificates:
                out[claim] = db.certificate_names
            out[claim + "Sha256"] = db.sha256
        dbx = uefi.databases.get("dbx")
        if dbx is not None:
            out["secureBootDbxCount"] = dbx.count
        if uefi.authorities:
            out["secureBootAuthorities"] = list(dict.fromkeys(a.name for a in uefi.authorities))
        if uefi.sbat_level is not None:
            out["shimSbatLevel"] = uefi.sbat_level
        for name, digest in uefi.mok_digests.items():
            out[name[0].lower() + name[1:] + "Digest"] = digest
        if uefi.boot_order is not None:
            out["bootOrder"] = ",".join(f"{n:04X}" for n in uefi.boot_order)
    if boot is not None:
        kinds = boot.boot_application_kinds
        if kinds:
            out["bootApplications"] = kinds
            out["bootApplicationDigests"] = list(dict.fromkeys(
                d for d in (_sha256_digest(a.digests) for a in boot.applications) if d))
        if boot.kernel_command_line_raw is not None:
            out["kernelCommandLine"] = boot.kernel_command_line or ""
            if boot.kernel_parameters:
                out["kernelParameters"] = list(dict.fromkeys(boot.kernel_parameters))
            if boot.kernel_image_path:
                out["kernelImagePath"] = boot.kernel_image_path
        if boot.kernel_debugging_disabled is not None:
            out["kernelDebuggingDisabled"] = boot.kernel_debugging_disabled
        if boot.kernel is not None:
            out["kernelDigest"] = _sha256_digest(boot.kernel.digests)
        if boot.initrd is not None:
            out["initrdDigest"] = _sha256_digest(boot.initrd.digests)
        if boot.grub_commands:
            out["grubCommands"] = list(dict.fromkeys(c.command for c in boot.grub_commands))
        out["drtmLaunched"] = boot.drtm_launched
        out["exitBootServices"] = boot.exit_boot_services
    if win is not None:
        for key, value in win.azure().items():
            if key == "drtmLaunched":
                out[key] = bool(value) or out.get(key, False)
            elif value is not None:
                out[key] = value
    return out


def build_claims(evidence: VerifiedTpmEvidence) -> ClaimSet:
    """Claims from verified evidence (and only from it)."""
    if not isinstance(evidence, VerifiedTpmEvidence):
        raise TypeError("build_claims takes the VerifiedTpmEvidence that verify_tpm_evidence returns")
    uefi = boot = win = ima = log_flat = None
    if evidence.eventlog is not None:
        proof = evidence.log_proof
        if proof is not None and proof.claims is not None:
            # read from the same log's events and verified PCRs before (see attestd.claims.logcache)
            uefi, boot, win, log_flat = proof.claims
        else:
            events = evidence.events
            uefi = uefi_claims(events)
            boot = bootchain_claims(events)
            win = windows_claims(events)
            log_flat = _log_claims(uefi, boot, win)
            if proof is not None:
                proof.claims = (uefi, boot, win, log_flat)
    if evidence.ima is not None:
        ima = ima_claims(evidence.ima, evidence.ima_verified)
    flat = _flatten(evidence, log_flat, ima)
    return ClaimSet(evidence, uefi, boot, win, ima, flat)
