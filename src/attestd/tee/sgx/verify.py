"""Verify an Intel SGX DCAP quote (v3; or v5 with an SGX body) with its collateral."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509

from attestd.tee.dcap.collateral import Collateral, CollateralStore
from attestd.tee.dcap.quote import Quote
from attestd.tee.dcap.verify import VerifiedQuote, verify_quote

__all__ = ["verify_sgx_quote"]


def verify_sgx_quote(
    quote: bytes | Quote,
    collateral: Collateral | CollateralStore | None,
    *,
    trusted_root: x509.Certificate | bytes | str,
    at: datetime,
) -> VerifiedQuote:
    """Verify an SGX quote at time ``at`` against ``trusted_root`` (the Intel SGX Root CA).

    See :mod:`attestd.tee.dcap.verify` for the checks and error codes. A TDX quote is rejected with
    ``dcap.tee_type_mismatch``. Pass ``collateral=None`` explicitly to skip revocation and TCB checks.
    """
    return verify_quote(quote, collateral, trusted_root=trusted_root, at=at, expected_tee="SGX")
