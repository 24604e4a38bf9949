"""``TPMS_ATTEST``: the structure a TPM signs for quotes, certifications and audits.

TPM 2.0 Library Part 2, 10.12 "Attestation Structures" and 10.11 "Clock/Counter Structures"::

    TPMS_ATTEST {
        TPM_GENERATED    magic;            // TPM_GENERATED_VALUE (Part 2, 6.2)
        TPMI_ST_ATTEST   type;             // selects TPMU_ATTEST
        TPM2B_NAME       qualifiedSigner;  // qualified Name of the signing key
        TPM2B_DATA       extraData;        // caller's qualifyingData (the nonce)
        TPMS_CLOCK_INFO  clockInfo;        // clock, resetCount, restartCount, safe
        UINT64           firmwareVersion;  // vendor-specific
        TPMU_ATTEST      attested;         // TPMS_QUOTE_INFO, TPMS_CERTIFY_INFO, ...
    }

:func:`parse_attest` is pure and strict: the whole buffer must be one ``TPMS_ATTEST``; any other
input raises :class:`~attestd.errors.EvidenceError` (``tpm.truncated``, ``tpm.length``,
``tpm.trailing_data``, ``tpm.attest_type`` for an unknown ``type``). It does *not* judge the magic;
:mod:`attestd.tpm.verify` does, with a verification error code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from attestd.binary import Reader
from attestd.errors import EvidenceError
from attestd.tpm._wire import MAX_DATA, MAX_DIGEST, MAX_NAME, reader, tpm2b, u16, u32, u64
from attestd.tpm.constants import TPM_GENERATED_VALUE, TPM_ST
from attestd.tpm.pcr import PCRSelectionList, read_pcr_selection_list

__all__ = [
    "Attest",
    "AttestHeader",
    "CertifyInfo",
    "ClockInfo",
    "CommandAuditInfo",
    "CreationInfo",
    "NVCertifyInfo",
    "NVDigestCertifyInfo",
    "QuoteInfo",
    "SessionAuditInfo",
    "TimeAttestInfo",
    "parse_attest",
    "parse_attest_header",
]

#: largest ``TPM2B_MAX_NV_BUFFER`` (``MAX_NV_BUFFER_SIZE`` is 1024 in the reference implementation).
_MAX_NV_BUFFER = 2048


@dataclass(frozen=True, slots=True)
class ClockInfo:
    """``TPMS_CLOCK_INFO`` (Part 2, 10.11).

    ``clock`` (ms the TPM has been powered, never goes back while ``safe``), ``resetCount``
    (incremented on every TPM Reset), ``restartCount`` (TPM Restart / Resume since the last Reset),
    ``safe`` (``TPMI_YES_NO``: no ``clock`` value reported before may have been larger).
    """

    clock: int
    reset_count: int
    restart_count: int
    safe: bool

    def to_bytes(self) -> bytes:
        return u64(self.clock) + u32(self.reset_count) + u32(self.restart_count) + bytes([int(self.safe)])

    def to_json(self) -> dict[str, Any]:
        return {"clock": self.clock, "resetCount": self.reset_count, "restartCount": self.restart_count,
                "safe": self.safe}


@dataclass(frozen=True, slots=True)
class QuoteInfo:
    """``TPMS_QUOTE_INFO`` (Part 2, 10.12): ``pcrSelect`` and ``pcrDigest``."""

    pcr_select: PCRSelectionList
    pcr_digest: bytes

    def to_bytes(self) -> bytes:
        return self.pcr_select.to_bytes() + tpm2b(self.pcr_digest)

    def to_json(self) -> dict[str, Any]:
        return {"pcrSelect": self.pcr_select.to_json(), "pcrDigest": self.pcr_digest.hex()}


@dataclass(frozen=True, slots=True)
class CertifyInfo:
    """``TPMS_CERTIFY_INFO`` (Part 2, 10.12): the certified object's ``name`` and ``qualifiedName``."""

    name: bytes
    qualified_name: bytes

    def to_bytes(self) -> bytes:
        return tpm2b(self.name) + tpm2b(self.qualified_name)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name.hex(), "qualifiedName": self.qualified_name.hex()}


@dataclass(frozen=True, slots=True)
class CreationInfo:
    """``TPMS_CREATION_INFO`` (Part 2, 10.12): ``objectName`` and ``creationHash``.

    ``creationHash`` is the hash, with the object's nameAlg, of the ``TPMS_CREATION_DATA`` that
    TPM2_Create returned for the object (TPM 2.0 Part 3, 18.3 TPM2_CertifyCreation).
    """

    object_name: bytes
    creation_hash: bytes

    def to_bytes(self) -> bytes:
        return tpm2b(self.object_name) + tpm2b(self.creation_hash)

    def to_json(self) -> dict[str, Any]:
        return {"objectName": self.object_name.hex(), "creationHash": self.creation_hash.hex()}


@dataclass(frozen=True, slots=True)
class TimeAttestInfo:
    """``TPMS_TIME_ATTEST_INFO`` (Part 2, 10.12) with its ``TPMS_TIME_INFO`` (10.11)."""

    time: int
    clock_info: ClockInfo
    firmware_version: int

    def to_bytes(self) -> bytes:
        return u64(self.time) + self.clock_info.to_bytes() + u64(self.firmware_version)

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "clockInfo": self.clock_info.to_json(),
                "firmwareVersion": self.firmware_version}


@dataclass(frozen=True, slots=True)
class CommandAuditInfo:
    """``TPMS_COMMAND_AUDIT_INFO`` (Part 2, 10.12)."""

    audit_counter: int
    digest_alg: int
    audit_digest: bytes
    command_digest: bytes

    def to_bytes(self) -> bytes:
        return u64(self.audit_counter) + u16(self.digest_alg) + tpm2b(self.audit_digest) + tpm2b(self.command_digest)

    def to_json(self) -> dict[str, Any]:
        return {"auditCounter": self.audit_counter, "digestAlg": self.digest_alg,
                "auditDigest": self.audit_digest.hex(), "commandDigest": self.command_digest.hex()}


@dataclass(frozen=True, slots=True)
class SessionAuditInfo:
    """``TPMS_SESSION_AUDIT_INFO`` (Part 2, 10.12)."""

    exclusive_session: bool
    session_digest: bytes

    def to_bytes(self) -> bytes:
        return bytes([int(self.exclusive_session)]) + tpm2b(self.session_digest)

    def to_json(self) -> dict[str, Any]:
        return {"exclusiveSession": self.exclusive_session, "sessionDigest": self.session_digest.hex()}


@dataclass(frozen=True, slots=True)
class NVCertifyInfo:
    """``TPMS_NV_CERTIFY_INFO`` (Part 2, 10.12)."""

    index_name: bytes
    offset: int
    nv_contents: bytes

    def to_bytes(self) -> bytes:
        return tpm2b(self.index_name) + u16(self.offset) + tpm2b(self.nv_contents)

    def to_json(self) -> dict[str, Any]:
        return {"indexName": self.index_name.hex(), "offset": self.offset, "nvContents": self.nv_contents.hex()}


@dataclass(frozen=True, slots=True)
class NVDigestCertifyInfo:
    """``TPMS_NV_DIGEST_CERTIFY_INFO`` (Part 2, 10.12)."""

    index_name: bytes
    nv_digest: bytes

    def to_bytes(self) -> bytes:
        return tpm2b(self.index_name) + tpm2b(self.nv_digest)

    def to_json(self) -> dict[str, Any]:
        return {"indexName": self.index_name.hex(), "nvDigest": self.nv_digest.hex()}


Attested = Union[QuoteInfo, CertifyInfo, CreationInfo, TimeAttestInfo, CommandAuditInfo, SessionAuditInfo,
                 NVCertifyInfo, NVDigestCertifyInfo]


@dataclass(frozen=True, slots=True)
class AttestHeader:
    """The leading ``magic`` and ``type`` members of ``TPMS_ATTEST`` (Part 2, 10.12)."""

    magic: int
    type: int


@dataclass(frozen=True, slots=True)
class Attest:
    """``TPMS_ATTEST`` (Part 2, 10.12). ``attested`` is the ``TPMU_ATTEST`` member ``type`` selects."""

    magic: int
    type: int
    qualified_signer: bytes
    extra_data: bytes
    clock_info: ClockInfo
    firmware_version: int
    attested: Attested

    @property
    def is_tpm_generated(self) -> bool:
        return self.magic == TPM_GENERATED_VALUE

    @property
    def type_name(self) -> str:
        try:
            return "TPM_ST_" + TPM_ST(self.type).name
        except ValueError:
            return f"0x{self.type:04x}"

    def to_bytes(self) -> bytes:
        return (u32(self.magic) + u16(self.type) + tpm2b(self.qualified_signer) + tpm2b(self.extra_data)
                + self.clock_info.to_bytes() + u64(self.firmware_version) + self.attested.to_bytes())

    def to_json(self) -> dict[str, Any]:
        return {
            "magic": f"0x{self.magic:08x}",
            "type": self.type_name,
            "qualifiedSigner": self.qualified_signer.hex(),
            "extraData": self.extra_data.hex(),
            "clockInfo": self.clock_info.to_json(),
            "firmwareVersion": f"0x{self.firmware_version:016x}",
            "attested": self.attested.to_json(),
        }


def read_clock_info(r: Reader, field: str = "TPMS_CLOCK_INFO") -> ClockInfo:
    clock = r.u64(f"{field}.clock")
    reset = r.u32(f"{field}.resetCount")
    restart = r.u32(f"{field}.restartCount")
    safe_offset = r.offset
    safe = r.u8(f"{field}.safe")
    if safe > 1:
        raise EvidenceError("tpm.value", f"{field}.safe is {safe}, not TPMI_YES_NO",
                            field=f"{field}.safe", offset=safe_offset)
    return ClockInfo(clock, reset, restart, bool(safe))


def _yes_no(r: Reader, field: str) -> bool:
    off = r.offset
    v = r.u8(field)
    if v > 1:
        raise EvidenceError("tpm.value", f"{field} is {v}, not TPMI_YES_NO", field=field, offset=off)
    return bool(v)


def _read_attested(r: Reader, st: int) -> Attested:
    if st == TPM_ST.ATTEST_QUOTE:
        sel = read_pcr_selection_list(r, "TPMS_QUOTE_INFO.pcrSelect")
        return QuoteInfo(sel, r.sized(2, "TPMS_QUOTE_INFO.pcrDigest", max_length=MAX_DIGEST))
    if st == TPM_ST.ATTEST_CERTIFY:
        return CertifyInfo(r.sized(2, "TPMS_CERTIFY_INFO.name", max_length=MAX_NAME),
                           r.sized(2, "TPMS_CERTIFY_INFO.qualifiedName", max_length=MAX_NAME))
    if st == TPM_ST.ATTEST_CREATION:
        return CreationInfo(r.sized(2, "TPMS_CREATION_INFO.objectName", max_length=MAX_NAME),
                            r.sized(2, "TPMS_CREATION_INFO.creationHash", max_length=MAX_DIGEST))
    if st == TPM_ST.ATTEST_TIME:
        time = r.u64("TPMS_TIME_ATTEST_INFO.time.time")
        ci = read_clock_info(r, "TPMS_TIME_ATTEST_INFO.time.clockInfo")
        return TimeAttestInfo(time, ci, r.u64("TPMS_TIME_ATTEST_INFO.firmwareVersion"))
    if st == TPM_ST.ATTEST_COMMAND_AUDIT:
        return CommandAuditInfo(r.u64("TPMS_COMMAND_AUDIT_INFO.auditCounter"),
                                r.u16("TPMS_COMMAND_AUDIT_INFO.digestAlg"),
                                r.sized(2, "TPMS_COMMAND_AUDIT_INFO.auditDigest", max_length=MAX_DIGEST),
                                r.sized(2, "TPMS_COMMAND_AUDIT_INFO.commandDigest", max_length=MAX_DIGEST))
    if st == TPM_ST.ATTEST_SESSION_AUDIT:
        return SessionAuditInfo(_yes_no(r, "TPMS_SESSION_AUDIT_INFO.exclusiveSession"),
                                r.sized(2, "TPMS_SESSION_AUDIT_INFO.sessionDigest", max_length=MAX_DIGEST))
    if st == TPM_ST.ATTEST_NV:
        return NVCertifyInfo(r.sized(2, "TPMS_NV_CERTIFY_INFO.indexName", max_length=MAX_NAME),
                             r.u16("TPMS_NV_CERTIFY_INFO.offset"),
                             r.sized(2, "TPMS_NV_CERTIFY_INFO.nvContents", max_length=_MAX_NV_BUFFER))
    if st == TPM_ST.ATTEST_NV_DIGEST:
        return NVDigestCertifyInfo(r.sized(2, "TPMS_NV_DIGEST_CERTIFY_INFO.indexName", max_length=MAX_NAME),
                                   r.sized(2, "TPMS_NV_DIGEST_CERTIFY_INFO.nvDigest", max_length=MAX_DIGEST))
    raise EvidenceError("tpm.attest_type", f"unknown TPMS_ATTEST type 0x{st:04x}", field="TPMS_ATTEST.type",
                        offset=4)


def parse_attest_header(data: bytes) -> AttestHeader:
    """Read only ``magic`` and ``type`` (so a verifier can reject a foreign structure by name)."""
    r = reader(data)
    return AttestHeader(r.u32("TPMS_ATTEST.magic"), r.u16("TPMS_ATTEST.type"))


def parse_attest(data: bytes) -> Attest:
    """Parse a buffer holding exactly one ``TPMS_ATTEST`` (e.g. ``tpm2_quote -m`` output).

    A ``TPM2B_ATTEST`` (with its leading size) is not accepted here; strip the size first.
    """
    r = reader(data)
    magic = r.u32("TPMS_ATTEST.magic")
    st = r.u16("TPMS_ATTEST.type")
    signer = r.sized(2, "TPMS_ATTEST.qualifiedSigner", max_length=MAX_NAME)
    extra = r.sized(2, "TPMS_ATTEST.extraData", max_length=MAX_DATA)
    clock = read_clock_info(r, "TPMS_ATTEST.clockInfo")
    fw = r.u64("TPMS_ATTEST.firmwareVersion")
    attested = _read_attested(r, st)
    r.expect_end("TPMS_ATTEST")
    return Attest(magic, st, signer, extra, clock, fw, attested)
