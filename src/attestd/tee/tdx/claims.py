"""TDX claims per Azure Attestation's "EAT profile for Intel Trust Domain Extensions (TDX)".

TDX claims (Intel TDX DCAP Quoting Library API A.3.2 "TD Quote Body" fields, hex strings):
``tdx_mrsignerseam``, ``tdx_mrseam``, ``tdx_mrtd``, ``tdx_rtmr0``..``tdx_rtmr3``, ``tdx_mrconfigid``,
``tdx_mrowner``, ``tdx_mrownerconfig``, ``tdx_report_data`` (128 hex characters), ``tdx_seam_attributes``,
``tdx_td_attributes``, ``tdx_xfam``, ``tdx_tee_tcb_svn``, ``tdx_seamsvn`` (number: TEE_TCB_SVN bytes 0-1,
the TDX module SVN, little-endian) and the TDATTRIBUTES flags ``tdx_td_attributes_debug`` (bit 0),
``tdx_td_attributes_septve_disable`` (bit 28), ``tdx_td_attributes_protection_keys`` (PKS, bit 30),
``tdx_td_attributes_key_locker`` (KL, bit 31), ``tdx_td_attributes_perfmon`` (bit 63) as booleans.
A v1.5 body adds ``tdx_tee_tcb_svn2`` and ``tdx_mrservicetd``.

EAT claims: ``eat_profile``, ``dbgstat`` ("enabled" for a debug TD, else "disabled-since-boot"),
``intuse`` ("generic"). Microsoft claims: ``attester_tcb_status``, ``attester_advisory_ids``,
``attester_type`` ("TDX"), ``x-ms-attestation-type`` ("tdxvm"), and ``x-ms-runtime`` (the runtime
data when it is a JSON object, bound by SHA-256 into the first 32 bytes of the report data).
Values come only from a :class:`~attestd.tee.dcap.verify.VerifiedQuote`.
"""

from __future__ import annotations

import json
from typing import Any

from attestd.tee.dcap.claims_common import check_runtime_data, collateral_hashes, tcb_claims
from attestd.tee.dcap.quote import TdReportBody
from attestd.tee.dcap.verify import VerifiedQuote

__all__ = ["tdx_claims", "td_attributes_flags", "EAT_PROFILE"]

EAT_PROFILE = "https://aka.ms/maa-eat-profile-tdxvm"

_FLAGS = {"debug": 0, "septve_disable": 28, "protection_keys": 30, "key_locker": 31, "perfmon": 63}


def td_attributes_flags(td_attributes: bytes) -> dict[str, bool]:
    """The named TDATTRIBUTES bits (TDX Module ABI, "TDATTRIBUTES")."""
    v = int.from_bytes(td_attributes, "little")
    return {name: bool(v >> bit & 1) for name, bit in _FLAGS.items()}


def tdx_claims(verified: VerifiedQuote, *, runtime_data: bytes | None = None) -> dict[str, Any]:
    """Claims of a verified TDX quote; see the module docstring."""
    b = verified.body
    if not isinstance(b, TdReportBody) or verified.tee != "TDX":
        raise TypeError("tdx_claims needs a verified TDX quote")
    claims: dict[str, Any] = {
        "eat_profile": EAT_PROFILE,
        "intuse": "generic",
        "dbgstat": "enabled" if b.debug else "disabled-since-boot",
        "attester_type": "TDX",
        "x-ms-attestation-type": "tdxvm",
        "tdx_mrsignerseam": b.mr_signer_seam.hex(),
        "tdx_mrseam": b.mr_seam.hex(),
        "tdx_mrtd": b.mr_td.hex(),
        "tdx_rtmr0": b.rtmr[0].hex(),
        "tdx_rtmr1": b.rtmr[1].hex(),
        "tdx_rtmr2": b.rtmr[2].hex(),
        "tdx_rtmr3": b.rtmr[3].hex(),
        "tdx_mrconfigid": b.mr_config_id.hex(),
        "tdx_mrowner": b.mr_owner.hex(),
        "tdx_mrownerconfig": b.mr_owner_config.hex(),
        "tdx_report_data": b.report_data.hex(),
        "tdx_seam_attributes": b.seam_attributes.hex(),
        "tdx_td_attributes": b.td_attributes.hex(),
        "tdx_xfam": b.xfam.hex(),
        "tdx_tee_tcb_svn": b.tee_tcb_svn.hex(),
        "tdx_seamsvn": int.from_bytes(b.tee_tcb_svn[:2], "little"),
        "x-ms-tdx-collateral": collateral_hashes(verified),
    }
    for name, value in td_attributes_flags(b.td_attributes).items():
        claims[f"tdx_td_attributes_{name}"] = value
    if b.tee_tcb_svn2 is not None:
        claims["tdx_tee_tcb_svn2"] = b.tee_tcb_svn2.hex()
    if b.mr_servicetd is not None:
        claims["tdx_mrservicetd"] = b.mr_servicetd.hex()
    if runtime_data is not None:
        check_runtime_data(b.report_data, runtime_data, code="tdx.runtime_data_mismatch")
        try:
            parsed = json.loads(runtime_data.rstrip(b"\0"))
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, dict):
            claims["x-ms-runtime"] = parsed
    claims.update(tcb_claims(verified))
    if verified.tcb is not None and verified.tcb.tdx_module_id is not None:
        claims["attester_tdx_module_id"] = verified.tcb.tdx_module_id
    return claims
