"""SGX claims, named as Azure Attestation names them for SGX enclaves.

Azure Attestation "Claim sets" ("Incoming claims specific to SGX attestation"): ``x-ms-sgx-is-debuggable``
(bool), ``x-ms-sgx-product-id`` (int), ``x-ms-sgx-mrenclave`` / ``x-ms-sgx-mrsigner`` (hex),
``x-ms-sgx-svn`` (int), ``x-ms-sgx-ehd`` (enclave held data = the runtime data, base64url),
``x-ms-sgx-report-data`` (hex, 64 bytes), ``x-ms-sgx-collateral`` (hashes), KSS fields
``x-ms-sgx-config-id`` / ``x-ms-sgx-config-svn`` / ``x-ms-sgx-isv-extended-product-id`` /
``x-ms-sgx-isv-family-id``, and ``x-ms-attestation-type`` = ``sgx``. Values come only from a
:class:`~attestd.tee.dcap.verify.VerifiedQuote`. TCB results use the ``attester_*`` names of
Azure's TDX EAT profile, since Azure defines none for SGX.
"""

from __future__ import annotations

from typing import Any

from attestd.tee.dcap.claims_common import b64url, check_runtime_data, collateral_hashes, tcb_claims
from attestd.tee.dcap.quote import EnclaveReportBody
from attestd.tee.dcap.verify import VerifiedQuote

__all__ = ["sgx_claims"]


def sgx_claims(verified: VerifiedQuote, *, runtime_data: bytes | None = None) -> dict[str, Any]:
    """Claims of a verified SGX quote. ``runtime_data`` (enclave held data) must hash into the
    first 32 bytes of the report data (``sgx.runtime_data_mismatch`` otherwise)."""
    body = verified.body
    if not isinstance(body, EnclaveReportBody) or verified.tee != "SGX":
        raise TypeError("sgx_claims needs a verified SGX quote")
    claims: dict[str, Any] = {
        "x-ms-attestation-type": "sgx",
        "x-ms-sgx-is-debuggable": body.debug,
        "x-ms-sgx-mrenclave": body.mr_enclave.hex(),
        "x-ms-sgx-mrsigner": body.mr_signer.hex(),
        "x-ms-sgx-product-id": body.isv_prod_id,
        "x-ms-sgx-svn": body.isv_svn,
        "x-ms-sgx-report-data": body.report_data.hex(),
        "x-ms-sgx-config-id": body.config_id.hex(),
        "x-ms-sgx-config-svn": body.config_svn,
        "x-ms-sgx-isv-extended-product-id": body.isv_ext_prod_id.hex(),
        "x-ms-sgx-isv-family-id": body.isv_family_id.hex(),
        "x-ms-sgx-collateral": collateral_hashes(verified),
    }
    if runtime_data is not None:
        check_runtime_data(body.report_data, runtime_data, code="sgx.runtime_data_mismatch")
        claims["x-ms-sgx-ehd"] = b64url(runtime_data)
    claims.update(tcb_claims(verified))
    return claims
