"""AMD SEV-SNP attestation reports, verified offline.

* :mod:`.report` - pure parser for ATTESTATION_REPORT v2-v5 (AMD 56860);
* :mod:`.certs` - VCEK/VLEK extensions (AMD 57230) and the VCEK -> ASK -> ARK chain;
* :mod:`.verify` - :func:`verify_snp_report`, the only way to claims;
* :mod:`.claims` - Azure Attestation claim names;
* :mod:`.validate` - reference values (go-sev-guest ``validate`` semantics);
* :mod:`.azure` - Azure's ``AttestSevSnpVm`` request.
"""

from attestd.tee.snp.azure import (
    AzureSnpRequest,
    AzureSnpResult,
    parse_azure_snp_request,
    verify_azure_snp_request,
)
from attestd.tee.snp.certs import EndorsementKeyInfo, VerifiedChain, load_certificates, verify_chain
from attestd.tee.snp.report import (
    AttestationReport,
    GuestPolicy,
    PlatformInfo,
    ProductLine,
    SignerInfo,
    SigningKey,
    TcbVersion,
    parse_report,
)
from attestd.tee.snp.validate import SnpReferenceValues, check_reference_values
from attestd.tee.snp.verify import VerifiedSnpReport, verify_snp_report

__all__ = [
    "AttestationReport",
    "AzureSnpRequest",
    "AzureSnpResult",
    "EndorsementKeyInfo",
    "GuestPolicy",
    "PlatformInfo",
    "ProductLine",
    "SignerInfo",
    "SigningKey",
    "SnpReferenceValues",
    "TcbVersion",
    "VerifiedChain",
    "VerifiedSnpReport",
    "check_reference_values",
    "load_certificates",
    "parse_azure_snp_request",
    "parse_report",
    "verify_azure_snp_request",
    "verify_chain",
    "verify_snp_report",
]
