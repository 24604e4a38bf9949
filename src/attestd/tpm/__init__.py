"""TPM 2.0 structures and verification (verifier side).

Parsing (pure; only :class:`~attestd.errors.EvidenceError`):

* :func:`parse_attest` - ``TPMS_ATTEST`` (quote, certify, creation, time, audit, NV);
* :func:`parse_signature` - ``TPMT_SIGNATURE`` (RSASSA, RSAPSS, ECDSA, ...);
* :func:`parse_public` / :func:`parse_public_2b` / :func:`parse_public_any` - ``TPMT_PUBLIC`` /
  ``TPM2B_PUBLIC`` with :attr:`Public.name` and :meth:`Public.public_key`;
* :func:`parse_pcr_selection_list` - ``TPML_PCR_SELECTION``;
* :func:`parse_creation_data` - ``TPMS_CREATION_DATA``;
* :func:`parse_gotpm_attestation` - go-tpm-tools' protobuf ``attest.Attestation``;
* :func:`parse_pcr_file` - PCR values as JSON or tpm2-tools YAML.

Verification (:class:`~attestd.errors.VerificationError` with stable codes, see
:mod:`attestd.tpm.verify`): :func:`verify_quote` (stable entry point), :func:`verify_certify`,
:func:`verify_certify_creation`, :func:`verify_signature`, :func:`check_ak_attributes`.

EK certificates (:mod:`attestd.tpm.ekcert`): :func:`load_ek_certificate` (PEM, DER, DER with NV
padding), :func:`verify_ek_chain` (strict path to manufacturer roots, raw-TBS signatures),
:func:`check_ek_matches`.

Credential activation, verifier side: :func:`make_credential`, :func:`encode_tpm2_tools_credential`,
:func:`kdfa`, :func:`kdfe`.
"""

from attestd.tpm.alg import TPM_ALG, HashAlg, hash_alg, hash_alg_by_name
from attestd.tpm.attest import (
    Attest,
    CertifyInfo,
    ClockInfo,
    CommandAuditInfo,
    CreationInfo,
    NVCertifyInfo,
    NVDigestCertifyInfo,
    QuoteInfo,
    SessionAuditInfo,
    TimeAttestInfo,
    parse_attest,
)
from attestd.tpm.constants import TPM_ECC_CURVE, TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT
from attestd.tpm.creation import CreationData, parse_creation_data
from attestd.tpm.credential import (
    Credential,
    encode_tpm2_tools_credential,
    make_credential,
    parse_tpm2_tools_credential,
)
from attestd.tpm.ekcert import check_ek_matches, load_ek_certificate, verify_ek_chain
from attestd.tpm.gotpm import GoTpmAttestation, GoTpmQuote, parse_gotpm_attestation
from attestd.tpm.kdf import kdfa, kdfe
from attestd.tpm.pcr import (
    PCRSelection,
    PCRSelectionList,
    PcrValues,
    normalize_pcr_values,
    parse_pcr_selection_list,
    pcr_digest,
)
from attestd.tpm.pcrfile import parse_pcr_file
from attestd.tpm.public import (
    ECCParms,
    ECCPoint,
    KeyedHashParms,
    Public,
    RSAParms,
    Scheme,
    SigningKey,
    SymCipherParms,
    SymDefObject,
    ek_public_from_key,
    load_signing_key,
    parse_public,
    parse_public_2b,
    parse_public_any,
)
from attestd.tpm.signature import Signature, parse_signature
from attestd.tpm.verify import (
    CertifyResult,
    CreationResult,
    QuoteResult,
    check_ak_attributes,
    verify_certify,
    verify_certify_creation,
    verify_quote,
    verify_signature,
)

__all__ = [
    "load_ek_certificate",
    "verify_ek_chain",
    "check_ek_matches",
    "TPMA_OBJECT",
    "TPM_ALG",
    "TPM_ECC_CURVE",
    "TPM_GENERATED_VALUE",
    "TPM_ST",
    "Attest",
    "CertifyInfo",
    "CertifyResult",
    "ClockInfo",
    "CommandAuditInfo",
    "CreationData",
    "CreationInfo",
    "CreationResult",
    "Credential",
    "ECCParms",
    "ECCPoint",
    "GoTpmAttestation",
    "GoTpmQuote",
    "HashAlg",
    "KeyedHashParms",
    "NVCertifyInfo",
    "NVDigestCertifyInfo",
    "PCRSelection",
    "PCRSelectionList",
    "PcrValues",
    "Public",
    "QuoteInfo",
    "QuoteResult",
    "RSAParms",
    "Scheme",
    "SessionAuditInfo",
    "Signature",
    "SigningKey",
    "SymCipherParms",
    "SymDefObject",
    "TimeAttestInfo",
    "check_ak_attributes",
    "ek_public_from_key",
    "encode_tpm2_tools_credential",
    "hash_alg",
    "hash_alg_by_name",
    "kdfa",
    "kdfe",
    "load_signing_key",
    "make_credential",
    "normalize_pcr_values",
    "parse_attest",
    "parse_creation_data",
    "parse_gotpm_attestation",
    "parse_pcr_file",
    "parse_pcr_selection_list",
    "parse_public",
    "parse_public_2b",
    "parse_public_any",
    "parse_signature",
    "parse_tpm2_tools_credential",
    "pcr_digest",
    "verify_certify",
    "verify_certify_creation",
    "verify_quote",
    "verify_signature",
]
