"""Secrets sealed to a host's TPM and to the PCR values it attested: a TPM2 duplication blob.

The server builds, in software, what TPM2_Duplicate would produce for a sealed data object, with
the host's EK as the new parent (TPM 2.0 Library Part 1, 23.3 "Protected Storage Hierarchy
duplication" and 27.7 "Sealed data objects"; Part 3, 13.3 TPM2_Import):

* the object: a ``TPM_ALG_KEYEDHASH`` ``TPMT_PUBLIC`` with no signing or decryption scheme,
  ``userWithAuth`` clear (only its policy opens it), ``fixedTPM``/``fixedParent`` clear (it was
  "duplicated"), ``noDA``, ``authPolicy`` = the PolicyPCR digest of the attested PCRs, and
  ``unique`` = H(seedValue || data) (Part 1, 27.7.4);
* its ``TPMT_SENSITIVE``: empty authValue, a random obfuscation ``seedValue``, the data;
* the outer wrapper: a seed protected to the EK with the label ``"DUPLICATE"``, the
  ``TPM2B_SENSITIVE`` CFB-encrypted under ``KDFa(seed, "STORAGE", Name)`` and an outer HMAC
  (:func:`attestd.tpm.credential.protect_to_parent`, the same construction as MakeCredential).
  No inner wrapper (``symmetricAlg`` TPM_ALG_NULL at Import).

Only the TPM that holds that EK can Import it, and it unseals only inside a policy session whose
PolicyPCR matches - the same host after one covered PCR changed cannot, nor can any other TPM.

``PolicyPCR`` (Part 3, 23.7): ``policyDigest' = H(policyDigest || TPM_CC_PolicyPCR ||
TPML_PCR_SELECTION || H(selected PCR values in selection order))`` starting from zeros.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestd.errors import EvidenceError
from attestd.tpm._wire import tpm2b, u16, u32
from attestd.tpm.alg import TPM_ALG, hash_alg_by_name
from attestd.tpm.credential import protect_to_parent, storage_parent

__all__ = ["TPM_CC_POLICY_PCR", "SealedBlob", "pcr_selection_bytes", "policy_pcr_digest", "seal_to_ek"]

TPM_CC_POLICY_PCR = 0x0000017F
#: TPMA_OBJECT bits (Part 2, 8.3): noDA
_NO_DA = 0x00000400
_MAX_SEALED = 128  # MAX_SYM_DATA (Part 2, 10.4.1 TPM2B_SENSITIVE_DATA)
_DUPLICATE = b"DUPLICATE\x00"


@dataclass(frozen=True)
class SealedBlob:
    """What the agent imports: ``TPM2B_PUBLIC``, ``TPM2B_PRIVATE`` (the duplicate) and
    ``TPM2B_ENCRYPTED_SECRET`` (the seed), plus the PCR selection the policy covers."""

    public: bytes
    duplicate: bytes
    encrypted_seed: bytes
    selection: dict[str, tuple[int, ...]]
    policy_digest: bytes

    def to_json(self) -> dict[str, Any]:
        import base64

        return {"public": base64.b64encode(self.public).decode(), "duplicate": base64.b64encode(self.duplicate).decode(),
                "encryptedSeed": base64.b64encode(self.encrypted_seed).decode(),
                "pcrSelection": {b: list(p) for b, p in self.selection.items()},
                "policyDigest": self.policy_digest.hex()}


def pcr_selection_bytes(selection: Mapping[str, Any]) -> bytes:
    """``TPML_PCR_SELECTION`` (Part 2, 10.9.7): count, then per bank hash alg, sizeofSelect (3), bitmap."""
    out = u32(len(selection))
    for bank, pcrs in selection.items():
        alg = hash_alg_by_name(bank)
        bitmap = bytearray(3)
        for p in pcrs:
            if not 0 <= int(p) < 24:
                raise EvidenceError("seal.pcr", f"PCR {p} is outside 0..23", field="pcrs")
            bitmap[int(p) // 8] |= 1 << (int(p) % 8)
        out += u16(alg.alg_id) + bytes([3]) + bytes(bitmap)
    return out


def policy_pcr_digest(pcrs: Mapping[str, Mapping[int, bytes]], name_alg: str = "sha256") -> bytes:
    """The policy digest of one TPM2_PolicyPCR over ``pcrs`` (``{bank: {index: value}}``)."""
    h = hash_alg_by_name(name_alg)
    selection = {bank: sorted(values) for bank, values in pcrs.items()}
    concat = b"".join(bytes(pcrs[bank][i]) for bank in selection for i in selection[bank])
    pcr_digest = h.digest(concat)
    return h.digest(bytes(h.digest_size) + u32(TPM_CC_POLICY_PCR) + pcr_selection_bytes(selection) + pcr_digest)


def seal_to_ek(ek_public: Any, data: bytes, pcrs: Mapping[str, Mapping[int, bytes]]) -> SealedBlob:
    """A duplication blob of a sealed ``data`` object for the TPM holding ``ek_public``, openable
    only while ``pcrs`` hold those values (see the module docstring)."""
    data = bytes(data)
    if not 0 < len(data) <= _MAX_SEALED:
        raise EvidenceError("seal.size", f"sealed data is 1..{_MAX_SEALED} bytes, not {len(data)}", field="data")
    if not pcrs or not any(pcrs.values()):
        raise EvidenceError("seal.pcrs", "a sealed secret must be bound to at least one PCR", field="pcrs")
    parent = storage_parent(ek_public)
    policy = policy_pcr_digest(pcrs)
    seed_value = os.urandom(32)
    unique = hashlib.sha256(seed_value + data).digest()
    public_area = (u16(TPM_ALG.KEYEDHASH) + u16(TPM_ALG.SHA256) + u32(_NO_DA) + tpm2b(policy)
                   + u16(TPM_ALG.NULL) + tpm2b(unique))
    name = u16(TPM_ALG.SHA256) + hashlib.sha256(public_area).digest()
    sensitive = u16(TPM_ALG.KEYEDHASH) + tpm2b(b"") + tpm2b(seed_value) + tpm2b(data)
    duplicate, encrypted_seed = protect_to_parent(parent, _DUPLICATE, name, tpm2b(sensitive))
    selection = {bank: tuple(sorted(values)) for bank, values in pcrs.items()}
    return SealedBlob(tpm2b(public_area), duplicate, encrypted_seed, selection, policy)
