"""Claims: what verified TPM evidence says about a host, named as Azure Attestation names it.

The flow is one way - verify, then claims::

    from attestd.claims import verify_tpm_evidence, build_claims

    evidence = verify_tpm_evidence(ak=ak, quote=q, signature=s, nonce=n, pcrs=pcrs,
                                   eventlog=log_bytes, ima_log=ima_bytes)   # raises on any failure
    claims = build_claims(evidence)          # ClaimSet: typed sections + flat() for policies
    claims.uefi.databases["db"].certificates # typed
    claims.flat()["secureBootEnabled"]       # what a policy reads

:func:`build_claims` accepts only a :class:`VerifiedTpmEvidence`, which only the functions of
:mod:`attestd.claims.verify` make: :func:`verify_tpm_evidence` (a quote proves the PCRs),
:func:`verify_eventlog` (the caller vouches for the PCR values) and :func:`inspect_eventlog` (the log
read on its own; ``provenance="self-replay"``, for looking, never for deciding).

Sections: :mod:`~attestd.claims.uefi` (Secure Boot and its databases),
:mod:`~attestd.claims.bootchain` (boot applications, GRUB, kernel command line, DRTM),
:mod:`~attestd.claims.windows` (WBCL/SIPA boot configuration), :mod:`~attestd.claims.ima` (measured
files) and :mod:`~attestd.claims.azure` (the version 1.2 ``events`` and ``pcrs`` JSON claims).
docs/claims.md documents every claim.
"""

from attestd.claims.model import JSON_CLAIMS, ClaimSet, build_claims
from attestd.claims.verify import VerifiedTpmEvidence, inspect_eventlog, verify_eventlog, verify_tpm_evidence

__all__ = [
    "JSON_CLAIMS",
    "ClaimSet",
    "VerifiedTpmEvidence",
    "build_claims",
    "inspect_eventlog",
    "verify_eventlog",
    "verify_tpm_evidence",
]
