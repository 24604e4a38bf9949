"""PCR selections and the quote's PCR digest.

* :class:`PCRSelection` is ``TPMS_PCR_SELECTION`` (TPM 2.0 Library Part 2, 10.6.2): a hash algorithm
  (the bank) and a bitmap ``pcrSelect[sizeofSelect]`` in which bit ``j`` of octet ``i`` selects
  PCR ``8*i + j``.
* :class:`PCRSelectionList` is ``TPML_PCR_SELECTION`` (Part 2, 10.9.7): a ``UINT32 count`` and that
  many selections, in the order the TPM concatenates the PCRs.
* :func:`pcr_digest` is the value ``TPMS_QUOTE_INFO.pcrDigest`` must have: the hash, with the signing
  scheme's hash algorithm, of the selected PCR values concatenated in selection order (TPM 2.0
  Part 3, 18.4 TPM2_Quote; Part 1, 17.6.5).

PCR values supplied by callers are ``{bank: {index: value}}``; :func:`normalize_pcr_values` accepts
bank names (``"sha256"``) or ``TPM_ALG_ID`` integers, and values as bytes or hex strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from attestd.binary import Reader
from attestd.errors import EvidenceError, VerificationError
from attestd.tpm._wire import MAX_LIST, MAX_PCR_SELECT, reader, u16, u32
from attestd.tpm.alg import HASH_ALGS, HashAlg, hash_alg, hash_alg_by_name

__all__ = [
    "PCRSelection",
    "PCRSelectionList",
    "PcrValues",
    "normalize_pcr_values",
    "parse_pcr_selection_list",
    "pcr_digest",
    "selected_values",
]

#: ``{bank name: {PCR index: value}}``, e.g. ``{"sha256": {0: b"..."}}``.
PcrValues = dict[str, dict[int, bytes]]


@dataclass(frozen=True, slots=True)
class PCRSelection:
    """``TPMS_PCR_SELECTION`` (Part 2, 10.6.2): one bank and the PCRs selected in it."""

    #: ``hash``: the bank's ``TPM_ALG_ID``.
    hash: int
    #: selected PCR indexes, ascending (the order the TPM concatenates them).
    pcrs: tuple[int, ...]
    #: ``sizeofSelect``: octets in the bitmap (3 on PC Client TPMs with 24 PCRs).
    size_of_select: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "pcrs", tuple(sorted(set(self.pcrs))))
        if any(p < 0 or p >= 8 * self.size_of_select for p in self.pcrs):
            raise ValueError(f"PCR index out of range for sizeofSelect {self.size_of_select}")

    @property
    def bank(self) -> str:
        """Attestd bank name (``sha256``), or ``alg_0x....`` for an algorithm Attestd cannot hash."""
        alg = HASH_ALGS.get(self.hash)
        return alg.name if alg else f"alg_0x{self.hash:04x}"

    @property
    def bitmap(self) -> bytes:
        out = bytearray(self.size_of_select)
        for p in self.pcrs:
            out[p // 8] |= 1 << (p % 8)
        return bytes(out)

    def to_bytes(self) -> bytes:
        return u16(self.hash) + bytes([self.size_of_select]) + self.bitmap

    def to_json(self) -> dict[str, Any]:
        return {"bank": self.bank, "hash": self.hash, "pcrs": list(self.pcrs)}


@dataclass(frozen=True, slots=True)
class PCRSelectionList:
    """``TPML_PCR_SELECTION`` (Part 2, 10.9.7): the selections, in TPM order."""

    selections: tuple[PCRSelection, ...]

    def to_bytes(self) -> bytes:
        return u32(len(self.selections)) + b"".join(s.to_bytes() for s in self.selections)

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.selections]

    def as_dict(self) -> dict[str, tuple[int, ...]]:
        """``{bank: pcrs}``; a bank selected twice has its PCRs merged."""
        out: dict[str, set[int]] = {}
        for s in self.selections:
            out.setdefault(s.bank, set()).update(s.pcrs)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    def __str__(self) -> str:
        return "+".join(f"{s.bank}:{','.join(map(str, s.pcrs))}" for s in self.selections) or "(empty)"

    @classmethod
    def of(cls, banks: Mapping[str | int, Iterable[int]], *, size_of_select: int = 3) -> PCRSelectionList:
        """Build a selection from ``{bank: pcrs}`` in mapping order."""
        sels = []
        for bank, pcrs in banks.items():
            alg = bank_alg(bank)
            sels.append(PCRSelection(alg.alg_id, tuple(pcrs), size_of_select))
        return cls(tuple(sels))


def read_pcr_selection_list(r: Reader, field: str = "TPML_PCR_SELECTION") -> PCRSelectionList:
    """Read a ``TPML_PCR_SELECTION`` from ``r``."""
    count_offset = r.offset
    count = r.u32(f"{field}.count")
    if count > MAX_LIST:
        raise EvidenceError("tpm.length", f"{field} declares {count} selections, more than {MAX_LIST}",
                            field=f"{field}.count", offset=count_offset)
    sels = []
    for i in range(count):
        f = f"{field}.pcrSelections[{i}]"
        hash_id = r.u16(f"{f}.hash")
        size_offset = r.offset
        size = r.u8(f"{f}.sizeofSelect")
        if size > MAX_PCR_SELECT:
            raise EvidenceError("tpm.length", f"{f}.sizeofSelect is {size}, more than {MAX_PCR_SELECT}",
                                field=f"{f}.sizeofSelect", offset=size_offset)
        bitmap = r.bytes(size, f"{f}.pcrSelect")
        pcrs = tuple(8 * j + b for j, octet in enumerate(bitmap) for b in range(8) if octet >> b & 1)
        sels.append(PCRSelection(hash_id, pcrs, size))
    return PCRSelectionList(tuple(sels))


def parse_pcr_selection_list(data: bytes) -> PCRSelectionList:
    """Parse a whole buffer holding exactly one ``TPML_PCR_SELECTION``."""
    r = reader(data)
    out = read_pcr_selection_list(r)
    r.expect_end("TPML_PCR_SELECTION")
    return out


def bank_alg(bank: str | int | HashAlg) -> HashAlg:
    """The hash algorithm of a bank given by name, ``TPM_ALG_ID`` or :class:`HashAlg`."""
    if isinstance(bank, HashAlg):
        return bank
    if isinstance(bank, bool):
        raise EvidenceError("tpm.unsupported_alg", f"invalid bank {bank!r}", field="bank")
    if isinstance(bank, int):
        return hash_alg(bank, field="bank")
    if isinstance(bank, str):
        text = bank.strip()
        if text.isdigit() or text.lower().startswith("0x"):
            try:
                return hash_alg(int(text, 0), field="bank")
            except ValueError:
                pass
        return hash_alg_by_name(text)
    raise EvidenceError("tpm.unsupported_alg", f"invalid bank {bank!r}", field="bank")


def _value_bytes(value: Any, field: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        text = value.strip()
        if text[:2].lower() == "0x":
            text = text[2:]
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise EvidenceError("quote.pcrs_invalid", "PCR value is not hex", field=field) from None
    raise EvidenceError("quote.pcrs_invalid", "PCR value must be bytes or a hex string", field=field)


def normalize_pcr_values(pcrs: Mapping[Any, Mapping[Any, Any]]) -> PcrValues:
    """Canonical ``{bank name: {index: bytes}}`` from caller input, checking digest sizes.

    Errors are ``quote.pcrs_invalid`` (:class:`EvidenceError`): the supplied values are malformed.
    """
    if not isinstance(pcrs, Mapping):
        raise EvidenceError("quote.pcrs_invalid", "PCR values must map banks to {index: value}", field="pcrs")
    out: PcrValues = {}
    for bank, values in pcrs.items():
        try:
            alg = bank_alg(bank)
        except EvidenceError as err:
            raise EvidenceError("quote.pcrs_invalid", err.message, field=f"pcrs.{bank}") from None
        if not isinstance(values, Mapping):
            raise EvidenceError("quote.pcrs_invalid", f"bank {alg.name} must map PCR indexes to values",
                                field=f"pcrs.{alg.name}")
        dest = out.setdefault(alg.name, {})
        for key, value in values.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise EvidenceError("quote.pcrs_invalid", f"PCR index {key!r} is not an integer",
                                    field=f"pcrs.{alg.name}") from None
            if index < 0 or isinstance(key, bool):
                raise EvidenceError("quote.pcrs_invalid", f"PCR index {key!r} is invalid",
                                    field=f"pcrs.{alg.name}")
            raw = _value_bytes(value, f"pcrs.{alg.name}.{index}")
            if len(raw) != alg.digest_size:
                raise EvidenceError("quote.pcrs_invalid",
                                    f"{alg.name} PCR {index} has {len(raw)} bytes, expected {alg.digest_size}",
                                    field=f"pcrs.{alg.name}.{index}")
            dest[index] = raw
    return out


def selected_values(selection: PCRSelectionList, values: PcrValues, *, code_prefix: str = "quote") -> list[bytes]:
    """The supplied values of every selected PCR, in selection order.

    A selected PCR with no supplied value is ``<prefix>.pcr_missing`` (:class:`VerificationError`);
    a bank Attestd cannot hash is ``<prefix>.pcr_bank_unsupported``.
    """
    out = []
    for sel in selection.selections:
        alg = HASH_ALGS.get(sel.hash)
        if alg is None:
            raise VerificationError(f"{code_prefix}.pcr_bank_unsupported",
                                    f"quote selects PCRs of unsupported bank 0x{sel.hash:04x}",
                                    field="TPMS_QUOTE_INFO.pcrSelect")
        bank = values.get(alg.name, {})
        for index in sel.pcrs:
            if index not in bank:
                raise VerificationError(f"{code_prefix}.pcr_missing",
                                        f"quote selects {alg.name} PCR {index} but no value was supplied",
                                        field=f"pcrs.{alg.name}.{index}",
                                        details={"bank": alg.name, "pcr": index})
            out.append(bank[index])
    return out


def pcr_digest(selection: PCRSelectionList, values: PcrValues, hash: HashAlg | str | int) -> bytes:
    """``H(PCR[a] || PCR[b] || ...)`` over the selected values in selection order."""
    alg = bank_alg(hash)
    h = alg.new()
    for v in selected_values(selection, values):
        h.update(v)
    return h.digest()
