"""Confidential-computing guests (TEEs): hardware reports, their endorsements and their claims.

One sub-package per technology (``snp`` for AMD SEV-SNP, ``tdx``, ``sgx``, ``dcap`` for Intel), plus
small carriers that wrap a hardware report (``azure_hcl`` for Azure's HCL report). Parsers raise only
:class:`~attestd.errors.EvidenceError`; verifiers raise :class:`~attestd.errors.VerificationError`
and hand out claims only after everything verified.
"""
