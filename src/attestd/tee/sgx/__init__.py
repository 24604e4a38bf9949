"""Intel SGX DCAP: verify quotes (:func:`verify_sgx_quote`) and derive claims (:func:`sgx_claims`)."""

from attestd.tee.sgx.claims import sgx_claims
from attestd.tee.sgx.verify import verify_sgx_quote

__all__ = ["verify_sgx_quote", "sgx_claims"]
