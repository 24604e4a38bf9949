"""TCB evaluation: platform TCB level, TDX module identity, QE identity, merged status.

The rules are those of Intel's Quote Verification Library (QVL,
SGXDataCenterAttestationPrimitives ``QuoteVerification/QVL``, ``QuoteVerifier::verify`` and
``TcbLevelCheck``), restated from "Intel SGX ECDSA Quote Library API" Appendix "TCB Status
Determination" and "Intel TDX DCAP Quoting Library API" section 2.3.3 "TCB Level Matching":

1. The TCB Info's FMSPC and PCE-ID must equal the PCK certificate's; its ``id`` must be the quote's
   TEE type ("SGX" or "TDX").
2. Platform level: the first ``tcbLevels`` entry (Intel publishes them highest first) such that
   every SGX TCB Comp SVN of the PCK certificate is >= the level's ``sgxtcbcomponents`` SVN, the PCK
   PCESVN is >= ``pcesvn`` and, for TDX, every TEE_TCB_SVN byte of the TD report is >=
   ``tdxtcbcomponents`` SVN - skipping bytes 0 and 1 when TEE_TCB_SVN[1] (the TDX module major
   version) is non-zero, since those are then judged by the module identity. No level matches:
   ``dcap.tcb_no_match`` ("no matching TCB level found").
3. TDX module (TCB Info v3): MRSIGNERSEAM must equal ``tdxModule.mrsigner`` and SEAMATTRIBUTES must
   match ``attributes`` under ``attributesMask``. When TEE_TCB_SVN[1] > 0 and
   ``tdxModuleIdentities`` exist, the identity ``TDX_<TEE_TCB_SVN[1] as 2 hex digits>`` supplies
   signer/attributes and its first level with ``isvsvn`` <= TEE_TCB_SVN[0] gives the module status.
4. QE identity: MRSIGNER and ISVPRODID equal, MISCSELECT and ATTRIBUTES equal under their masks;
   the first level with ``isvsvn`` <= the QE's ISVSVN gives the QE status.
5. Merge (QVL ``convergeTcbStatus``): a module or QE status of OutOfDate turns UpToDate /
   SWHardeningNeeded into OutOfDate and ConfigurationNeeded / ConfigurationAndSWHardeningNeeded into
   OutOfDateConfigurationNeeded; Revoked makes the result Revoked; otherwise the platform status
   stands. Advisory IDs are the union (platform, then module, then QE), without duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from attestd.errors import VerificationError
from attestd.tee.dcap.pck import PckExtensions
from attestd.tee.dcap.quote import EnclaveReportBody, TdReportBody
from attestd.tee.dcap.tcbinfo import EnclaveIdentity, ModuleTcbLevel, TcbInfo, TcbLevel, TcbStatus

__all__ = ["TcbEvaluation", "evaluate_tcb", "match_platform_level", "match_tdx_module", "match_qe_identity",
           "converge"]

S = TcbStatus


@dataclass(frozen=True, slots=True)
class TcbEvaluation:
    """The outcome of TCB evaluation for one quote."""

    status: TcbStatus
    advisory_ids: tuple[str, ...]
    platform_status: TcbStatus
    platform_advisory_ids: tuple[str, ...]
    tcb_date: datetime
    qe_status: TcbStatus
    qe_advisory_ids: tuple[str, ...]
    qe_tcb_date: datetime
    tdx_module_id: str | None
    tdx_module_status: TcbStatus | None
    tdx_module_advisory_ids: tuple[str, ...]
    tcb_evaluation_data_number: int

    def to_json(self) -> dict:
        return {
            "status": self.status.value,
            "advisory_ids": list(self.advisory_ids),
            "platform_status": self.platform_status.value,
            "platform_advisory_ids": list(self.platform_advisory_ids),
            "tcb_date": self.tcb_date.isoformat(),
            "qe_status": self.qe_status.value,
            "qe_advisory_ids": list(self.qe_advisory_ids),
            "qe_tcb_date": self.qe_tcb_date.isoformat(),
            "tdx_module_id": self.tdx_module_id,
            "tdx_module_status": self.tdx_module_status.value if self.tdx_module_status else None,
            "tdx_module_advisory_ids": list(self.tdx_module_advisory_ids),
            "tcb_evaluation_data_number": self.tcb_evaluation_data_number,
        }


def converge(platform: TcbStatus, other: TcbStatus) -> TcbStatus:
    """Merge a QE or TDX module status into the platform status (QVL ``convergeTcbStatus``)."""
    if other == S.OUT_OF_DATE:
        if platform in (S.UP_TO_DATE, S.SW_HARDENING_NEEDED):
            return S.OUT_OF_DATE
        if platform in (S.CONFIGURATION_NEEDED, S.CONFIGURATION_AND_SW_HARDENING_NEEDED):
            return S.OUT_OF_DATE_CONFIGURATION_NEEDED
    if other == S.REVOKED:
        return S.REVOKED
    return platform


def match_platform_level(tcb_info: TcbInfo, pck: PckExtensions, tee_tcb_svn: bytes | None) -> TcbLevel:
    """Step 2: the platform's TCB level, or ``dcap.tcb_no_match``."""
    skip = 2 if tee_tcb_svn is not None and tee_tcb_svn[1] > 0 else 0
    for level in tcb_info.tcb_levels:
        if pck.pce_svn < level.pce_svn:
            continue
        if any(have < want.svn for have, want in zip(pck.tcb_components, level.sgx_components)):
            continue
        if tcb_info.is_tdx:
            if tee_tcb_svn is None or level.tdx_components is None:
                continue
            if any(tee_tcb_svn[i] < level.tdx_components[i].svn for i in range(skip, 16)):
                continue
        return level
    raise VerificationError(
        "dcap.tcb_no_match",
        f"{tcb_info.id} TCB info failed TCB status check: no matching TCB level found "
        f"(FMSPC {tcb_info.fmspc.hex()}, PCESVN {pck.pce_svn}, SGX TCB components {list(pck.tcb_components)}"
        + (f", TEE_TCB_SVN {tee_tcb_svn.hex()}" if tee_tcb_svn is not None else "") + ")",
        field="tcbInfo.tcbLevels",
    )


def _masked_eq(a: bytes, b: bytes, mask: bytes) -> bool:
    return all((x & m) == (y & m) for x, y, m in zip(a, b, mask))


def match_tdx_module(tcb_info: TcbInfo, body: TdReportBody) -> tuple[str | None, ModuleTcbLevel | None]:
    """Step 3: check the TDX module identity; returns (identity id, its matched level) or (None, None)."""
    if tcb_info.tdx_module is None:
        return None, None
    expected = tcb_info.tdx_module
    mrsigner, attributes, mask = expected.mrsigner, expected.attributes, expected.attributes_mask
    ident = None
    version = body.tee_tcb_svn[1]
    if version > 0 and tcb_info.tdx_module_identities:
        want = f"TDX_{version:02X}"
        ident = next((i for i in tcb_info.tdx_module_identities if i.id.upper() == want), None)
        if ident is None:
            raise VerificationError("dcap.tdx_module_no_match",
                                    f"no TDX module identity {want} in the TCB info",
                                    field="tcbInfo.tdxModuleIdentities")
        mrsigner, attributes, mask = ident.mrsigner, ident.attributes, ident.attributes_mask
    if body.mr_signer_seam != mrsigner:
        raise VerificationError("dcap.tdx_module_mismatch",
                                f"MRSIGNERSEAM {body.mr_signer_seam.hex()} is not the TDX module signer "
                                f"{mrsigner.hex()}", field="TD Quote Body.MRSIGNERSEAM")
    if not _masked_eq(body.seam_attributes, attributes, mask):
        raise VerificationError("dcap.tdx_module_mismatch",
                                f"SEAMATTRIBUTES {body.seam_attributes.hex()} do not match {attributes.hex()} "
                                f"under mask {mask.hex()}", field="TD Quote Body.SEAMATTRIBUTES")
    if ident is None:
        return None, None
    isvsvn = body.tee_tcb_svn[0]
    for level in ident.tcb_levels:
        if isvsvn >= level.isvsvn:
            return ident.id, level
    raise VerificationError("dcap.tdx_module_no_match",
                            f"TDX module {ident.id} ISVSVN {isvsvn} is below every TCB level of its identity",
                            field="tcbInfo.tdxModuleIdentities.tcbLevels")


def match_qe_identity(qe: EnclaveReportBody, identity: EnclaveIdentity) -> ModuleTcbLevel:
    """Step 4: the QE report against the QE identity; returns the matched QE TCB level."""
    if qe.mr_signer != identity.mrsigner:
        raise VerificationError("dcap.qe_identity_mismatch",
                                f"QE MRSIGNER {qe.mr_signer.hex()} is not {identity.mrsigner.hex()}",
                                field="QE Report.MRSIGNER")
    if qe.isv_prod_id != identity.isvprodid:
        raise VerificationError("dcap.qe_identity_mismatch",
                                f"QE ISVPRODID {qe.isv_prod_id} is not {identity.isvprodid}",
                                field="QE Report.ISVPRODID")
    if (qe.misc_select & identity.miscselect_mask) != (identity.miscselect & identity.miscselect_mask):
        raise VerificationError("dcap.qe_identity_mismatch",
                                f"QE MISCSELECT {qe.misc_select:08x} does not match {identity.miscselect:08x} "
                                f"under mask {identity.miscselect_mask:08x}", field="QE Report.MISCSELECT")
    if not _masked_eq(qe.attributes, identity.attributes, identity.attributes_mask):
        raise VerificationError("dcap.qe_identity_mismatch",
                                f"QE ATTRIBUTES {qe.attributes.hex()} do not match {identity.attributes.hex()} "
                                f"under mask {identity.attributes_mask.hex()}", field="QE Report.ATTRIBUTES")
    for level in identity.tcb_levels:
        if qe.isv_svn >= level.isvsvn:
            return level
    raise VerificationError("dcap.qe_tcb_no_match",
                            f"QE ISVSVN {qe.isv_svn} is below every TCB level of the {identity.id} identity",
                            field="QE Report.ISVSVN")


def _union(*groups: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for g in groups:
        for a in g:
            if a not in out:
                out.append(a)
    return tuple(out)


def evaluate_tcb(
    tcb_info: TcbInfo,
    qe_identity: EnclaveIdentity,
    pck: PckExtensions,
    qe_report: EnclaveReportBody,
    body: EnclaveReportBody | TdReportBody,
) -> TcbEvaluation:
    """Steps 1-5 for one quote. The inputs must already be verified (signatures, chains, times)."""
    tdx = isinstance(body, TdReportBody)
    want_id, want_qe = ("TDX", "TD_QE") if tdx else ("SGX", "QE")
    if tcb_info.id != want_id:
        raise VerificationError("dcap.collateral_mismatch",
                                f"{'TDX' if tdx else 'SGX'} quote with {tcb_info.id} TCB info", field="tcbInfo.id")
    if qe_identity.id != want_qe:
        raise VerificationError("dcap.collateral_mismatch",
                                f"{'TDX' if tdx else 'SGX'} quote with {qe_identity.id} identity",
                                field="enclaveIdentity.id")
    if tcb_info.fmspc != pck.fmspc:
        raise VerificationError("dcap.collateral_mismatch",
                                f"TCB info is for FMSPC {tcb_info.fmspc.hex()}, the PCK certificate has "
                                f"{pck.fmspc.hex()}", field="tcbInfo.fmspc")
    if tcb_info.pce_id != pck.pce_id:
        raise VerificationError("dcap.collateral_mismatch",
                                f"TCB info is for PCE-ID {tcb_info.pce_id.hex()}, the PCK certificate has "
                                f"{pck.pce_id.hex()}", field="tcbInfo.pceId")
    qe_level = match_qe_identity(qe_report, qe_identity)
    tee_tcb_svn = body.tee_tcb_svn if isinstance(body, TdReportBody) else None
    level = match_platform_level(tcb_info, pck, tee_tcb_svn)
    module_id = None
    module_level = None
    if isinstance(body, TdReportBody):
        module_id, module_level = match_tdx_module(tcb_info, body)
    status = level.tcb_status
    if module_level is not None:
        status = converge(status, module_level.tcb_status)
    status = converge(status, qe_level.tcb_status)
    return TcbEvaluation(
        status=status,
        advisory_ids=_union(level.advisory_ids, module_level.advisory_ids if module_level else (),
                            qe_level.advisory_ids),
        platform_status=level.tcb_status,
        platform_advisory_ids=level.advisory_ids,
        tcb_date=level.tcb_date,
        qe_status=qe_level.tcb_status,
        qe_advisory_ids=qe_level.advisory_ids,
        qe_tcb_date=qe_level.tcb_date,
        tdx_module_id=module_id,
        tdx_module_status=module_level.tcb_status if module_level else None,
        tdx_module_advisory_ids=module_level.advisory_ids if module_level else (),
        tcb_evaluation_data_number=min(tcb_info.tcb_evaluation_data_number, qe_identity.tcb_evaluation_data_number),
    )
