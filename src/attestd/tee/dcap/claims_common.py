"""Claim helpers shared by the SGX and TDX claim sets (runtime-data binding, collateral hashes)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from attestd.errors import VerificationError
from attestd.tee.dcap.verify import VerifiedQuote

__all__ = ["b64url", "check_runtime_data", "collateral_hashes", "tcb_claims"]


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 4648 section 5), as Azure Attestation encodes binary claims."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def check_runtime_data(report_data: bytes, runtime_data: bytes, *, code: str) -> None:
    """Azure's binding: the first 32 bytes of the report data are SHA-256(runtime data).

    (Azure Attestation, "Attest an SGX enclave": ``runtimeData`` "SHA256 hash of the runtime data
    is expected in the first 32 bytes of the report data"; the MAA recording in the corpus obeys it.)
    """
    digest = hashlib.sha256(runtime_data).digest()
    if report_data[:32] != digest:
        raise VerificationError(code, f"report data {report_data[:32].hex()} is not SHA-256 of the runtime data "
                                f"({digest.hex()})", field="REPORTDATA",
                                details={"report_data": report_data.hex(), "runtime_data_sha256": digest.hex()})


def collateral_hashes(v: VerifiedQuote) -> dict[str, str]:
    """``x-ms-sgx-collateral``-style hashes (hex SHA-256) of the quote and the collateral it was
    verified with. Attestd's preimages: the quote structure; the signed TCB Info / QE Identity
    bodies; the issuer chains as received (PEM); the Root CA CRL (DER)."""
    out = {"quotehash": v.quote_hash.hex()}
    c = v.collateral
    if c is not None:
        out.update({
            "qeidcertshash": hashlib.sha256(c.qe_identity_issuer_chain_raw).hexdigest(),
            "qeidcrlhash": hashlib.sha256(c.root_ca_crl_raw).hexdigest(),
            "qeidhash": hashlib.sha256(c.qe_identity.signed_body).hexdigest(),
            "tcbinfocertshash": hashlib.sha256(c.tcb_info_issuer_chain_raw).hexdigest(),
            "tcbinfocrlhash": hashlib.sha256(c.root_ca_crl_raw).hexdigest(),
            "tcbinfohash": hashlib.sha256(c.tcb_info.signed_body).hexdigest(),
        })
    return dict(sorted(out.items()))


def tcb_claims(v: VerifiedQuote) -> dict[str, Any]:
    """``attester_tcb_status`` and friends (Azure TDX EAT profile names), only when evaluated."""
    if v.tcb is None:
        return {}
    t = v.tcb
    out: dict[str, Any] = {
        "attester_tcb_status": t.status.value,
        "attester_advisory_ids": list(t.advisory_ids),
        "attester_tcb_date": t.tcb_date.isoformat().replace("+00:00", "Z"),
        "attester_tcb_evaluation_data_number": t.tcb_evaluation_data_number,
        "attester_fmspc": v.fmspc.hex(),
    }
    return out
