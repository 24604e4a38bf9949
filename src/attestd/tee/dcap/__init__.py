"""Intel DCAP (SGX quote v3, TDX quote v4/v5): parsing, PCK chains and CRLs, collateral, TCB evaluation.

Entry points for users are :func:`attestd.tee.sgx.verify_sgx_quote` and
:func:`attestd.tee.tdx.verify_tdx_quote`; this package holds the shared machinery::

    parse_quote(data) -> Quote                          # raises only EvidenceError (dcap.*)
    Collateral.from_qvl_json(...) / Collateral.from_pcs(...) / CollateralStore.from_dir(path)
    verify_quote(data, collateral, trusted_root=..., at=...) -> VerifiedQuote
"""

from attestd.tee.dcap.collateral import Collateral, CollateralStore
from attestd.tee.dcap.pck import PckCertChain, PckExtensions, load_trusted_root, parse_pck_extensions
from attestd.tee.dcap.quote import (
    BodyType,
    EnclaveReportBody,
    Quote,
    QuoteHeader,
    TdReportBody,
    TeeType,
    parse_quote,
)
from attestd.tee.dcap.tcb import TcbEvaluation, evaluate_tcb
from attestd.tee.dcap.tcbinfo import EnclaveIdentity, TcbInfo, TcbStatus, parse_enclave_identity, parse_tcb_info
from attestd.tee.dcap.verify import VerifiedQuote, verify_collateral, verify_quote

__all__ = [
    "parse_quote", "Quote", "QuoteHeader", "EnclaveReportBody", "TdReportBody", "BodyType", "TeeType",
    "Collateral", "CollateralStore", "TcbInfo", "EnclaveIdentity", "TcbStatus", "parse_tcb_info",
    "parse_enclave_identity", "PckCertChain", "PckExtensions", "parse_pck_extensions", "load_trusted_root",
    "TcbEvaluation", "evaluate_tcb", "VerifiedQuote", "verify_quote", "verify_collateral",
]
