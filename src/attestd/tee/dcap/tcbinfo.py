"""Intel PCS "TCB Info" (v2, v3) and "Enclave Identity" (v2) JSON, typed.

Intel SGX and Intel TDX PCS API specification (Intel "Provisioning Certification Service for ECDSA
Attestation", API v3/v4):

* "TCB Info V2" (SGX, ``tcbInfo.version`` 2: ``tcb.sgxtcbcomp01svn``..``sgxtcbcomp16svn``,
  ``pcesvn``) and "TCB Info V3" (``version`` 3, ``id`` "SGX" or "TDX": ``tcb.sgxtcbcomponents[16]``,
  ``pcesvn``, ``tdxtcbcomponents[16]``; TDX adds ``tdxModule`` and ``tdxModuleIdentities``).
* "Enclave Identity V2" (``enclaveIdentity``: ``id`` QE / QVE / TD_QE, ``miscselect``,
  ``miscselectMask``, ``attributes``, ``attributesMask``, ``mrsigner``, ``isvprodid``,
  ``tcbLevels[{tcb{isvsvn}, tcbDate, tcbStatus, advisoryIDs}]``).

The body that Intel signs is the exact text of the inner ``tcbInfo`` / ``enclaveIdentity`` object
as served (ECDSA P-256 over SHA-256, signature hex-encoded r||s, outside the object). This module
keeps those exact bytes (:attr:`TcbInfo.signed_body`) and never re-serialises. Parsing raises only
:class:`~attestd.errors.EvidenceError` (``dcap.collateral_malformed``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from attestd.errors import EvidenceError

__all__ = [
    "TcbStatus",
    "TcbComponent",
    "TcbLevel",
    "TdxModule",
    "TdxModuleIdentity",
    "ModuleTcbLevel",
    "TcbInfo",
    "EnclaveIdentity",
    "parse_tcb_info",
    "parse_enclave_identity",
    "split_signed_json",
]

_CODE = "dcap.collateral_malformed"


class TcbStatus(str, Enum):
    """``tcbStatus`` values of TCB Info and Enclave Identity levels (PCS API)."""

    UP_TO_DATE = "UpToDate"
    SW_HARDENING_NEEDED = "SWHardeningNeeded"
    CONFIGURATION_NEEDED = "ConfigurationNeeded"
    CONFIGURATION_AND_SW_HARDENING_NEEDED = "ConfigurationAndSWHardeningNeeded"
    OUT_OF_DATE = "OutOfDate"
    OUT_OF_DATE_CONFIGURATION_NEEDED = "OutOfDateConfigurationNeeded"
    REVOKED = "Revoked"

    def __str__(self) -> str:  # claims and messages use Intel's spelling
        return self.value


def _err(message: str, field: str) -> EvidenceError:
    return EvidenceError(_CODE, message, field=field)


def split_signed_json(text: bytes | str, key: str, *, field: str) -> tuple[bytes, str, dict]:
    """From a PCS response ``{"<key>": {...}, "signature": "<hex>"}`` return the exact bytes of the
    ``<key>`` object, the signature hex and the decoded object.

    The raw bytes are located with :meth:`json.JSONDecoder.raw_decode` at the top level, so key
    order and whitespace do not matter and nothing is re-serialised.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _err(f"{field} is not UTF-8: {exc}", field) from None
    dec = json.JSONDecoder()
    n = len(text)

    def ws(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    raw: dict[str, tuple[int, int, Any]] = {}
    try:
        i = ws(0)
        if i >= n or text[i] != "{":
            raise _err(f"{field} is not a JSON object", field)
        i = ws(i + 1)
        while i < n and text[i] != "}":
            k, i = dec.raw_decode(text, i)
            i = ws(i)
            if i >= n or text[i] != ":" or not isinstance(k, str):
                raise _err(f"{field}: malformed JSON object", field)
            i = ws(i + 1)
            start = i
            v, i = dec.raw_decode(text, i)
            raw[k] = (start, i, v)
            i = ws(i)
            if i < n and text[i] == ",":
                i = ws(i + 1)
        if i >= n or ws(i + 1) != n:
            raise _err(f"{field}: malformed JSON object (or trailing data)", field)
    except json.JSONDecodeError as exc:
        raise _err(f"{field} is not valid JSON: {exc.msg} at {exc.pos}", field) from None
    if key not in raw or "signature" not in raw:
        raise _err(f"{field} must have '{key}' and 'signature' members", field)
    start, end, obj = raw[key]
    sig = raw["signature"][2]
    if not isinstance(obj, dict) or not isinstance(sig, str):
        raise _err(f"{field}: '{key}' must be an object and 'signature' a string", field)
    return text[start:end].encode("utf-8"), sig, obj


# -- typed getters ------------------------------------------------------------------------------


def _get(obj: dict, name: str, typ: type | tuple[type, ...], field: str, *, optional: bool = False) -> Any:
    if name not in obj:
        if optional:
            return None
        raise _err(f"{field} has no '{name}'", f"{field}.{name}")
    v = obj[name]
    if typ is int and isinstance(v, bool) or not isinstance(v, typ):
        raise _err(f"{field}.{name} has the wrong JSON type", f"{field}.{name}")
    return v


def _int(obj: dict, name: str, field: str, *, optional: bool = False, lo: int = 0, hi: int = 0xFFFF) -> Any:
    v = _get(obj, name, int, field, optional=optional)
    if v is not None and not lo <= v <= hi:
        raise _err(f"{field}.{name} = {v} is out of range", f"{field}.{name}")
    return v


def _hex(obj: dict, name: str, field: str, size: int, *, optional: bool = False) -> bytes | None:
    v = _get(obj, name, str, field, optional=optional)
    if v is None:
        return None
    try:
        b = bytes.fromhex(v)
    except ValueError:
        raise _err(f"{field}.{name} is not hex", f"{field}.{name}") from None
    if len(b) != size:
        raise _err(f"{field}.{name} must be {size} bytes, got {len(b)}", f"{field}.{name}")
    return b


def _time(obj: dict, name: str, field: str) -> datetime:
    v = _get(obj, name, str, field)
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        raise _err(f"{field}.{name} is not an ISO 8601 date: {v!r}", f"{field}.{name}") from None
    if t.tzinfo is None:
        raise _err(f"{field}.{name} has no time zone: {v!r}", f"{field}.{name}")
    return t


def _status(obj: dict, field: str) -> TcbStatus:
    v = _get(obj, "tcbStatus", str, field)
    try:
        return TcbStatus(v)
    except ValueError:
        raise _err(f"{field}.tcbStatus {v!r} is not a known TCB status", f"{field}.tcbStatus") from None


def _advisories(obj: dict, field: str) -> tuple[str, ...]:
    v = _get(obj, "advisoryIDs", list, field, optional=True)
    if v is None:
        return ()
    if not all(isinstance(a, str) for a in v):
        raise _err(f"{field}.advisoryIDs must be strings", f"{field}.advisoryIDs")
    return tuple(v)


# -- TCB Info -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcbComponent:
    """One entry of ``sgxtcbcomponents`` / ``tdxtcbcomponents`` (TCB Info v3)."""

    svn: int
    category: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class TcbLevel:
    """One ``tcbLevels`` entry of TCB Info (v2 / v3)."""

    sgx_components: tuple[TcbComponent, ...]
    pce_svn: int
    tdx_components: tuple[TcbComponent, ...] | None
    tcb_date: datetime
    tcb_status: TcbStatus
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TdxModule:
    """``tdxModule`` (TCB Info v3, TDX): the expected MRSIGNERSEAM and SEAMATTRIBUTES under a mask."""

    mrsigner: bytes
    attributes: bytes
    attributes_mask: bytes


@dataclass(frozen=True, slots=True)
class ModuleTcbLevel:
    """A ``tdxModuleIdentities[].tcbLevels`` entry: ``tcb.isvsvn`` -> status."""

    isvsvn: int
    tcb_date: datetime
    tcb_status: TcbStatus
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TdxModuleIdentity:
    """A ``tdxModuleIdentities`` entry (TCB Info v3, TDX), e.g. id ``TDX_01`` for module version 1."""

    id: str
    mrsigner: bytes
    attributes: bytes
    attributes_mask: bytes
    tcb_levels: tuple[ModuleTcbLevel, ...]


@dataclass(frozen=True, slots=True)
class TcbInfo:
    """A TCB Info structure with the exact bytes Intel signed and the signature (raw r||s)."""

    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    fmspc: bytes
    pce_id: bytes
    tcb_type: int
    tcb_evaluation_data_number: int
    tdx_module: TdxModule | None
    tdx_module_identities: tuple[TdxModuleIdentity, ...]
    tcb_levels: tuple[TcbLevel, ...]
    signed_body: bytes
    signature: bytes

    @property
    def is_tdx(self) -> bool:
        return self.id == "TDX"


def _components(obj: dict, name: str, field: str) -> tuple[TcbComponent, ...]:
    comps = _get(obj, name, list, field)
    if len(comps) != 16:
        raise _err(f"{field}.{name} must have 16 entries, has {len(comps)}", f"{field}.{name}")
    out = []
    for i, c in enumerate(comps):
        f = f"{field}.{name}[{i}]"
        if not isinstance(c, dict):
            raise _err(f"{f} must be an object", f)
        out.append(TcbComponent(_int(c, "svn", f, hi=255), _get(c, "category", str, f, optional=True),
                                _get(c, "type", str, f, optional=True)))
    return tuple(out)


def _tcb_level(obj: Any, field: str, version: int, tdx: bool) -> TcbLevel:
    if not isinstance(obj, dict):
        raise _err(f"{field} must be an object", field)
    tcb = _get(obj, "tcb", dict, field)
    tf = f"{field}.tcb"
    if version == 2:
        sgx = tuple(TcbComponent(_int(tcb, f"sgxtcbcomp{i:02d}svn", tf, hi=255)) for i in range(1, 17))
    else:
        sgx = _components(tcb, "sgxtcbcomponents", tf)
    pce_svn = _int(tcb, "pcesvn", tf)
    tdx_comps = _components(tcb, "tdxtcbcomponents", tf) if tdx else None
    return TcbLevel(sgx, pce_svn, tdx_comps, _time(obj, "tcbDate", field), _status(obj, field),
                    _advisories(obj, field))


def _module_levels(obj: dict, field: str) -> tuple[ModuleTcbLevel, ...]:
    out = []
    for i, lv in enumerate(_get(obj, "tcbLevels", list, field)):
        f = f"{field}.tcbLevels[{i}]"
        if not isinstance(lv, dict):
            raise _err(f"{f} must be an object", f)
        tcb = _get(lv, "tcb", dict, f)
        out.append(ModuleTcbLevel(_int(tcb, "isvsvn", f"{f}.tcb"), _time(lv, "tcbDate", f), _status(lv, f),
                                  _advisories(lv, f)))
    return tuple(out)


def parse_tcb_info(signed_body: bytes, signature_hex: str, *, field: str = "tcbInfo") -> TcbInfo:
    """Parse the signed ``tcbInfo`` object (exact bytes) and its hex r||s signature."""
    try:
        obj = json.loads(signed_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _err(f"{field} is not valid JSON: {exc}", field) from None
    if not isinstance(obj, dict):
        raise _err(f"{field} must be a JSON object", field)
    sig = _signature(signature_hex, field)
    version = _int(obj, "version", field)
    if version not in (2, 3):
        raise _err(f"{field}.version {version} is not supported (2 or 3)", f"{field}.version")
    tid = _get(obj, "id", str, field, optional=True) or "SGX"
    if tid not in ("SGX", "TDX") or (tid == "TDX" and version < 3):
        raise _err(f"{field}.id {tid!r} with version {version} is not supported", f"{field}.id")
    tdx = tid == "TDX"
    module = None
    identities: tuple[TdxModuleIdentity, ...] = ()
    if tdx:
        m = _get(obj, "tdxModule", dict, field, optional=True)
        if m is not None:
            mf = f"{field}.tdxModule"
            module = TdxModule(_hex(m, "mrsigner", mf, 48), _hex(m, "attributes", mf, 8),  # type: ignore[arg-type]
                               _hex(m, "attributesMask", mf, 8))  # type: ignore[arg-type]
        ids = _get(obj, "tdxModuleIdentities", list, field, optional=True) or []
        out = []
        for i, ident in enumerate(ids):
            f = f"{field}.tdxModuleIdentities[{i}]"
            if not isinstance(ident, dict):
                raise _err(f"{f} must be an object", f)
            out.append(TdxModuleIdentity(_get(ident, "id", str, f), _hex(ident, "mrsigner", f, 48),  # type: ignore
                                         _hex(ident, "attributes", f, 8), _hex(ident, "attributesMask", f, 8),
                                         _module_levels(ident, f)))
        identities = tuple(out)
    levels = tuple(_tcb_level(lv, f"{field}.tcbLevels[{i}]", version, tdx)
                   for i, lv in enumerate(_get(obj, "tcbLevels", list, field)))
    return TcbInfo(
        id=tid,
        version=version,
        issue_date=_time(obj, "issueDate", field),
        next_update=_time(obj, "nextUpdate", field),
        fmspc=_hex(obj, "fmspc", field, 6),  # type: ignore[arg-type]
        pce_id=_hex(obj, "pceId", field, 2),  # type: ignore[arg-type]
        tcb_type=_int(obj, "tcbType", field, optional=True) or 0,
        tcb_evaluation_data_number=_int(obj, "tcbEvaluationDataNumber", field, hi=2**32 - 1),
        tdx_module=module,
        tdx_module_identities=identities,
        tcb_levels=levels,
        signed_body=bytes(signed_body),
        signature=sig,
    )


def _signature(signature_hex: str, field: str) -> bytes:
    try:
        sig = bytes.fromhex(signature_hex)
    except (ValueError, TypeError):
        raise _err(f"{field} signature is not hex", f"{field}.signature") from None
    if len(sig) != 64:
        raise _err(f"{field} signature must be 64 bytes (r||s), got {len(sig)}", f"{field}.signature")
    return sig


# -- Enclave Identity ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnclaveIdentity:
    """Enclave Identity v2 (QE, QVE or TD_QE) with its signed bytes and raw r||s signature."""

    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    tcb_evaluation_data_number: int
    miscselect: int
    miscselect_mask: int
    attributes: bytes
    attributes_mask: bytes
    mrsigner: bytes
    isvprodid: int
    tcb_levels: tuple[ModuleTcbLevel, ...]
    signed_body: bytes
    signature: bytes


def parse_enclave_identity(signed_body: bytes, signature_hex: str, *,
                           field: str = "enclaveIdentity") -> EnclaveIdentity:
    """Parse the signed ``enclaveIdentity`` object (exact bytes) and its hex r||s signature."""
    try:
        obj = json.loads(signed_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _err(f"{field} is not valid JSON: {exc}", field) from None
    if not isinstance(obj, dict):
        raise _err(f"{field} must be a JSON object", field)
    sig = _signature(signature_hex, field)
    version = _int(obj, "version", field)
    if version != 2:
        raise _err(f"{field}.version {version} is not supported (2)", f"{field}.version")
    eid = _get(obj, "id", str, field)
    if eid not in ("QE", "QVE", "TD_QE"):
        raise _err(f"{field}.id {eid!r} is not QE, QVE or TD_QE", f"{field}.id")
    misc = _hex(obj, "miscselect", field, 4)
    misc_mask = _hex(obj, "miscselectMask", field, 4)
    return EnclaveIdentity(
        id=eid,
        version=version,
        issue_date=_time(obj, "issueDate", field),
        next_update=_time(obj, "nextUpdate", field),
        tcb_evaluation_data_number=_int(obj, "tcbEvaluationDataNumber", field, hi=2**32 - 1),
        # miscselect is printed as the big-endian hex of the 32-bit value
        miscselect=int.from_bytes(misc, "big"),  # type: ignore[arg-type]
        miscselect_mask=int.from_bytes(misc_mask, "big"),  # type: ignore[arg-type]
        attributes=_hex(obj, "attributes", field, 16),  # type: ignore[arg-type]
        attributes_mask=_hex(obj, "attributesMask", field, 16),  # type: ignore[arg-type]
        mrsigner=_hex(obj, "mrsigner", field, 32),  # type: ignore[arg-type]
        isvprodid=_int(obj, "isvprodid", field),
        tcb_levels=_module_levels(obj, field),
        signed_body=bytes(signed_body),
        signature=sig,
    )
