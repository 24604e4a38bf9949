"""Parser for the ASCII list, ``/sys/kernel/security/ima/ascii_runtime_measurements``.

Source: ``ima_ascii_measurements_show`` (security/integrity/ima/ima_fs.c) and
``ima_show_template_data_ascii`` (ima_template_lib.c). Each line is::

    "%2d " pcr  <40 hex: SHA-1 template hash>  " " template_name  { " " field }*  "\\n"

with one space *before every field*, so an empty field (``sig`` of an unsigned file) leaves a
trailing space. Field tokens are decoded back to the kernel's field data (templates.py), from which
the template data - and so the template hash and the digests of other banks - is rebuilt exactly.

Event names with spaces: kernels since 5.13 replace spaces with ``_`` in string fields; older
kernels did not, so when a line has more tokens than the template has fields and the template has
one name field, the extra tokens are joined back into the name with single spaces. Empty lines and
``\\r\\n`` line ends are accepted; leading spaces (``%2d`` of single-digit PCRs) are skipped.
"""

from __future__ import annotations

import binascii
import struct

from attestd.errors import EvidenceError
from attestd.ima.binfmt import MAX_PCR_INDEX
from attestd.ima.entry import ImaEntry, make_entry
from attestd.ima.templates import (
    IMA_EVENT_NAME_LEN_MAX,
    TemplateDescriptor,
    field_from_ascii,
    lookup_template,
)

__all__ = ["parse_ascii", "looks_like_ascii"]

_LEN = struct.Struct("<I").pack
_HEX = frozenset(b"0123456789abcdefABCDEF")


def looks_like_ascii(data: bytes) -> bool:
    """True when ``data`` starts like an ASCII measurement line: ``<pcr> <40 hex> ``."""
    head = data[:64].lstrip(b" ")
    parts = head.split(b" ", 2)
    return (
        len(parts) == 3
        and parts[0].isdigit()
        and len(parts[0]) <= 2
        and len(parts[1]) == 40
        and all(c in _HEX for c in parts[1])
    )


def _error(code: str, message: str, field: str, offset: int, line: int) -> EvidenceError:
    return EvidenceError(code, f"line {line}: {message}", field=field, offset=offset, details={"line": line})


def _split_fields(desc: TemplateDescriptor, rest: bytes | None) -> list[bytes] | None:
    k = len(desc.field_ids)
    toks = [] if rest is None else rest.split(b" ")
    if len(toks) == k:
        return toks
    if len(toks) > k:
        names = [i for i, f in enumerate(desc.field_ids) if f in ("n-ng", "n")]
        if len(names) != 1:
            return None
        i, extra = names[0], len(toks) - k
        return toks[:i] + [b" ".join(toks[i : i + extra + 1])] + toks[i + extra + 1 :]
    # Fewer tokens: trailing empty fields whose separator spaces were stripped.
    return toks + [b""] * (k - len(toks))


def parse_ascii(data: bytes, *, first_index: int = 0) -> list[ImaEntry]:
    entries: list[ImaEntry] = []
    templates: dict[bytes, TemplateDescriptor] = {}
    index = first_index
    offset = 0
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        line_offset = offset
        offset += len(raw) + 1
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line.strip(b" "):
            continue
        parts = line.lstrip(b" ").split(b" ", 3)
        if len(parts) < 3:
            raise _error("ima.ascii.syntax", "expected '<pcr> <template hash> <template name> <fields>'",
                         "line", line_offset, lineno)
        pcr_s, hash_s, tname = parts[0], parts[1], parts[2]
        rest = parts[3] if len(parts) == 4 else None
        if not pcr_s.isdigit() or len(pcr_s) > 2 or int(pcr_s) > MAX_PCR_INDEX:
            raise _error("ima.pcr_index", f"bad PCR index {pcr_s[:8]!r}", "ima_template_entry.pcr",
                         line_offset, lineno)
        if len(hash_s) != 40:
            raise _error("ima.ascii.syntax", "template hash is not 40 hex digits", "ima_template_entry.digest",
                         line_offset, lineno)
        try:
            template_hash = binascii.unhexlify(hash_s)
        except (binascii.Error, ValueError):
            raise _error("ima.ascii.syntax", "template hash is not hexadecimal", "ima_template_entry.digest",
                         line_offset, lineno) from None
        desc = templates.get(tname)
        if desc is None:
            try:
                desc = templates[tname] = lookup_template(tname, offset=line_offset)
            except EvidenceError as err:
                raise _error(err.code, err.message, "template_name", line_offset, lineno) from None
        toks = _split_fields(desc, rest)
        if toks is None:
            raise _error("ima.ascii.field_count", f"more fields than template {desc.name} has",
                         "template_data", line_offset, lineno)
        fields = []
        for fid, kind, tok in zip(desc.field_ids, desc.kinds, toks):
            try:
                fields.append(field_from_ascii(fid, kind, tok))
            except ValueError as exc:
                raise _error("ima.bad_field", str(exc), f"template_data.{fid}", line_offset, lineno) from None
        if desc.is_legacy:
            digest, name = fields[0], fields[1][:-1]
            if len(digest) > 20 or len(name) > IMA_EVENT_NAME_LEN_MAX:
                raise _error("ima.length", "legacy 'ima' digest or name too long", "template_data",
                             line_offset, lineno)
            tdata = digest + name + bytes(IMA_EVENT_NAME_LEN_MAX + 1 - len(name))
        else:
            tdata = b"".join(_LEN(len(f)) + f for f in fields)
        entries.append(
            make_entry(index, line_offset, int(pcr_s), template_hash, desc, tuple(fields), tdata)
        )
        index += 1
    return entries
