"""``TPMS_CREATION_DATA``: what TPM2_Create/CreatePrimary report about an object's creation.

TPM 2.0 Library Part 2, 15.1 ``TPMS_CREATION_DATA``::

    TPMS_CREATION_DATA {
        TPML_PCR_SELECTION  pcrSelect;            // PCRs included in pcrDigest
        TPM2B_DIGEST        pcrDigest;            // their digest, with the object's nameAlg
        TPMA_LOCALITY       locality;             // locality at creation
        TPM_ALG_ID          parentNameAlg;
        TPM2B_NAME          parentName;
        TPM2B_NAME          parentQualifiedName;
        TPM2B_DATA          outsideInfo;          // caller data bound at creation
    }

TPM2_CertifyCreation signs ``creationHash = H_nameAlg(TPMS_CREATION_DATA)`` inside a
``TPMS_CREATION_INFO`` (see :mod:`attestd.tpm.attest`). go-attestation ships it as ``CreateData``.
:func:`parse_creation_data` accepts the bare structure or a ``TPM2B_CREATION_DATA`` (15.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attestd.errors import EvidenceError
from attestd.tpm._wire import MAX_DATA, MAX_DIGEST, MAX_NAME, reader, tpm2b, u16
from attestd.tpm.pcr import PCRSelectionList, read_pcr_selection_list

__all__ = ["CreationData", "parse_creation_data"]


@dataclass(frozen=True, slots=True)
class CreationData:
    """``TPMS_CREATION_DATA`` (Part 2, 15.1)."""

    pcr_select: PCRSelectionList
    pcr_digest: bytes
    locality: int
    parent_name_alg: int
    parent_name: bytes
    parent_qualified_name: bytes
    outside_info: bytes

    def to_bytes(self) -> bytes:
        return (self.pcr_select.to_bytes() + tpm2b(self.pcr_digest) + bytes([self.locality])
                + u16(self.parent_name_alg) + tpm2b(self.parent_name) + tpm2b(self.parent_qualified_name)
                + tpm2b(self.outside_info))

    def to_json(self) -> dict[str, Any]:
        return {"pcrSelect": self.pcr_select.to_json(), "pcrDigest": self.pcr_digest.hex(),
                "locality": self.locality, "parentNameAlg": self.parent_name_alg,
                "parentName": self.parent_name.hex(), "parentQualifiedName": self.parent_qualified_name.hex(),
                "outsideInfo": self.outside_info.hex()}


def _read(data: bytes, base: int) -> CreationData:
    r = reader(data, base=base)
    f = "TPMS_CREATION_DATA"
    sel = read_pcr_selection_list(r, f"{f}.pcrSelect")
    out = CreationData(
        sel,
        r.sized(2, f"{f}.pcrDigest", max_length=MAX_DIGEST),
        r.u8(f"{f}.locality"),
        r.u16(f"{f}.parentNameAlg"),
        r.sized(2, f"{f}.parentName", max_length=MAX_NAME),
        r.sized(2, f"{f}.parentQualifiedName", max_length=MAX_NAME),
        r.sized(2, f"{f}.outsideInfo", max_length=MAX_DATA),
    )
    r.expect_end(f)
    return out


def parse_creation_data(data: bytes) -> CreationData:
    """Parse a ``TPMS_CREATION_DATA``, or a ``TPM2B_CREATION_DATA`` whose size matches the buffer."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EvidenceError("tpm.type", f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) >= 2 and int.from_bytes(data[:2], "big") == len(data) - 2:
        try:
            return _read(data[2:], 2)
        except EvidenceError:  # not a TPM2B after all: try the bare structure
            pass
    return _read(data, 0)
