"""PCR values from files: Attestd JSON and the YAML tpm2-tools prints.

Accepted inputs (:func:`parse_pcr_file`):

* JSON ``{"sha256": {"0": "hex", ...}, ...}`` - the shape of the ``"pcrs"`` value of
  ``attestd eventlog replay --json`` - or any JSON object carrying that under ``"pcrs"``;
* the YAML ``tpm2_pcrread`` prints, and the ``pcrs:`` block of ``tpm2_quote``'s output::

      sha256:
        0 : 0x3D458CFE55CC03EA1F443F1562BEEC8DF51C75E14A9FCF9A7234A13F198E7969
        16: 0x...

  Only this subset is read (a bank name alone on a line, then ``index : hex`` lines), on purpose:
  a general YAML 1.1 loader turns ``0x...`` into an integer and loses the leading zero bytes.

Errors are ``quote.pcrs_invalid`` (:class:`~attestd.errors.EvidenceError`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from attestd.errors import EvidenceError
from attestd.tpm.alg import HASH_ALGS
from attestd.tpm.pcr import PcrValues, normalize_pcr_values

__all__ = ["parse_pcr_file", "parse_tpm2_tools_pcrs"]

_BANKS = {a.name for a in HASH_ALGS.values()} | {"sm3"}
_BANK_LINE = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_]+)\s*:\s*$")
_VALUE_LINE = re.compile(r"^\s*(\d{1,3})\s*:\s*(?:0x|0X)?([0-9A-Fa-f]+)\s*$")
_KEY_LINE = re.compile(r"^\s*(?:-\s*)?[^\s:]+\s*:")


def _invalid(message: str, field: str = "pcrs") -> EvidenceError:
    return EvidenceError("quote.pcrs_invalid", message, field=field)


def parse_tpm2_tools_pcrs(text: str) -> PcrValues:
    """The PCR banks in tpm2-tools YAML output (``tpm2_pcrread``, ``tpm2_quote``)."""
    found: dict[str, dict[str, str]] = {}
    bank: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _BANK_LINE.match(line)
        if m:
            name = m.group(1).lower()
            bank = name if name in _BANKS else None
            if bank is not None:
                found.setdefault(bank, {})
            continue
        m = _VALUE_LINE.match(line)
        if m and bank is not None:
            found[bank][m.group(1)] = m.group(2)
            continue
        if _KEY_LINE.match(line):
            bank = None
    found = {k: v for k, v in found.items() if v}
    if not found:
        raise _invalid("no PCR values found (expected tpm2_pcrread-style YAML or JSON)")
    return normalize_pcr_values(found)


def _from_json(doc: Any) -> PcrValues:
    if isinstance(doc, dict):
        keys = [str(k).lower() for k in doc]
        if keys and all(k in _BANKS for k in keys):
            return normalize_pcr_values(doc)
        if "pcrs" in doc:
            return _from_json(doc["pcrs"])
    raise _invalid('JSON PCR values must be {"bank": {"index": "hex"}} or carry that under "pcrs"')


def parse_pcr_file(data: bytes | str) -> PcrValues:
    """PCR values from JSON or tpm2-tools YAML (see the module docstring)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("PCR file is not UTF-8 text") from None
    elif isinstance(data, str):
        text = data
    else:
        raise _invalid(f"expected bytes or text, got {type(data).__name__}")
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise _invalid(f"PCR file is not valid JSON: {exc}") from None
        return _from_json(doc)
    return parse_tpm2_tools_pcrs(text)
