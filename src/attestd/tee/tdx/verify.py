"""Verify an Intel TDX DCAP quote (v4, v5) with its collateral, optionally with its CCEL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from attestd.tee.dcap.collateral import Collateral, CollateralStore
from attestd.tee.dcap.quote import Quote, TdReportBody
from attestd.tee.dcap.verify import VerifiedQuote, verify_quote
from attestd.tee.tdx.ccel import CcelLog, parse_ccel, verify_rtmrs

__all__ = ["verify_tdx_quote", "VerifiedTdQuote"]


@dataclass(frozen=True, slots=True)
class VerifiedTdQuote:
    """A verified TDX quote and, when a CCEL was given, the log whose replay equals RTMR0-3."""

    verified: VerifiedQuote
    ccel: CcelLog | None

    @property
    def body(self) -> TdReportBody:
        assert isinstance(self.verified.body, TdReportBody)
        return self.verified.body


def verify_tdx_quote(
    quote: bytes | Quote,
    collateral: Collateral | CollateralStore | None,
    *,
    trusted_root: x509.Certificate | bytes | str,
    at: datetime,
    ccel: bytes | CcelLog | None = None,
) -> VerifiedQuote | VerifiedTdQuote:
    """Verify a TDX quote at time ``at`` against ``trusted_root`` (the Intel SGX Root CA).

    Without ``ccel`` the result is a :class:`VerifiedQuote`. With ``ccel`` (the CCEL log area), its
    replay must equal the quote's RTMR0-3 (``tdx.rtmr_mismatch`` otherwise) and the result is a
    :class:`VerifiedTdQuote`. An SGX quote is rejected with ``dcap.tee_type_mismatch``.
    """
    v = verify_quote(quote, collateral, trusted_root=trusted_root, at=at, expected_tee="TDX")
    if ccel is None:
        return v
    log = ccel if isinstance(ccel, CcelLog) else parse_ccel(ccel)
    assert isinstance(v.body, TdReportBody)
    verify_rtmrs(log, v.body.rtmr)
    return VerifiedTdQuote(v, log)
