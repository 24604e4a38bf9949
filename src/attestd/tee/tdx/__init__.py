"""Intel TDX DCAP: verify quotes v4/v5 (:func:`verify_tdx_quote`), replay the CCEL to RTMRs
(:mod:`attestd.tee.tdx.ccel`) and derive claims (:func:`tdx_claims`)."""

from attestd.tee.tdx.ccel import CcelLog, CcelTable, parse_ccel, parse_ccel_table, replay_rtmrs, verify_rtmrs
from attestd.tee.tdx.claims import tdx_claims
from attestd.tee.tdx.verify import VerifiedTdQuote, verify_tdx_quote

__all__ = ["verify_tdx_quote", "VerifiedTdQuote", "tdx_claims", "parse_ccel", "parse_ccel_table", "replay_rtmrs",
           "verify_rtmrs", "CcelLog", "CcelTable"]
