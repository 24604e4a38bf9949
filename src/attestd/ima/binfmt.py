"""Parser for the binary list, ``/sys/kernel/security/ima/binary_runtime_measurements``.

Source: ``ima_measurements_show`` (security/integrity/ima/ima_fs.c) and
``ima_show_template_data_binary`` (ima_template_lib.c). Each entry is::

    u32   pcr                     PCR index
    u8    digest[20]              SHA-1 template hash (all zero: violation)
    u32   template_name_len
    char  template_name[template_name_len]          (no NUL)
    u32   template_data_len       (absent for the legacy "ima" template)
    u8    template_data[template_data_len]
          = for each field: u32 field_len || field data   (ima_parse_buf layout)

The legacy ``ima`` template instead writes ``d`` without a length (20 bytes) followed by
``u32 len || name`` without its NUL (IMA_SHOW_BINARY_NO_FIELD_LEN / _OLD_STRING_FMT).

Integers are little endian: the *canonical* format (``ima_canonical_fmt``) and the native order of
x86/arm64. A big-endian host without ``ima_canonical_fmt`` writes them big endian; this parser detects
that from the first PCR index and supports it (:attr:`ImaLog.byte_order` says ``"big"``). Template
hashes stay valid because the kernel hashes the lengths in the same order it shows them.
"""

from __future__ import annotations

import struct

from attestd.errors import EvidenceError
from attestd.ima.entry import ImaEntry, make_entry
from attestd.ima.templates import (
    IMA_EVENT_NAME_LEN_MAX,
    MAX_TEMPLATE_NAME_LEN,
    TemplateDescriptor,
    DIGEST_NG_PREFIX,
    DIGEST_NGV2_PREFIX,
    FieldKind,
    check_field,
    lookup_template,
    may_be_empty,
)

__all__ = ["parse_binary", "detect_big_endian", "MAX_PCR_INDEX"]

#: PCR indices a policy may name: ``INVALID_PCR`` in ima_policy.c rejects >= 64.
MAX_PCR_INDEX = 63
_LEGACY_DIGEST_LEN = 20  # TPM_DIGEST_SIZE: 'd' of the 'ima' template
_CHECK_CODE = {FieldKind.HEX: 0, FieldKind.DIGEST_NG: 1, FieldKind.DIGEST_NGV2: 2, FieldKind.STRING: 3}


def detect_big_endian(data: bytes) -> bool:
    """True for a list written big endian (non-canonical, big-endian host)."""
    if len(data) < 4:
        return False
    (le,) = struct.unpack_from("<I", data, 0)
    if le <= MAX_PCR_INDEX:
        return False
    (be,) = struct.unpack_from(">I", data, 0)
    if be <= MAX_PCR_INDEX:
        return True
    raise EvidenceError(
        "ima.pcr_index",
        f"first entry names PCR {le} (little endian) / {be} (big endian): not an IMA binary list",
        field="ima_template_entry.pcr",
        offset=0,
    )


def _trunc(field: str, need: int, have: int, offset: int) -> EvidenceError:
    return EvidenceError(
        "ima.truncated",
        f"needs {need} bytes for {field} but only {max(have, 0)} remain",
        field=field,
        offset=offset,
    )


def parse_binary(data: bytes, *, first_index: int = 0, big_endian: bool | None = None) -> tuple[list[ImaEntry], bool]:
    """Parse a binary measurement list; return its entries and whether it was big endian."""
    if big_endian is None:
        big_endian = detect_big_endian(data)
    u32 = struct.Struct(">I" if big_endian else "<I").unpack_from
    head = struct.Struct(">I20sI" if big_endian else "<I20sI").unpack_from
    n = len(data)
    pos = 0
    index = first_index
    entries: list[ImaEntry] = []
    append = entries.append
    templates: dict[bytes, tuple[TemplateDescriptor, tuple]] = {}
    new_entry = make_entry
    dng_match = DIGEST_NG_PREFIX.match
    dngv2_match = DIGEST_NGV2_PREFIX.match

    while pos < n:
        start = pos
        if pos + 28 > n:
            names = ("ima_template_entry.pcr", "ima_template_entry.digest", "template_name_len")
            field = names[0] if n - pos < 4 else names[1] if n - pos < 24 else names[2]
            raise _trunc(field, 28, n - pos, start)
        pcr, template_hash, name_len = head(data, pos)
        if pcr > MAX_PCR_INDEX:
            raise EvidenceError("ima.pcr_index", f"entry {index} names PCR {pcr}",
                                field="ima_template_entry.pcr", offset=pos)
        pos += 28
        if name_len == 0 or name_len >= MAX_TEMPLATE_NAME_LEN:
            raise EvidenceError("ima.length", f"template name length {name_len} is out of range",
                                field="template_name_len", offset=pos - 4)
        if pos + name_len > n:
            raise _trunc("template_name", name_len, n - pos, pos)
        tname = data[pos : pos + name_len]
        known = templates.get(tname)
        if known is None:
            d = lookup_template(tname, offset=pos)
            known = templates[tname] = (d, tuple((f, _CHECK_CODE.get(k, 4), k, may_be_empty(f))
                                                 for f, k in zip(d.field_ids, d.kinds)))
        desc, checks = known
        pos += name_len

        if desc.name == "ima":
            if pos + _LEGACY_DIGEST_LEN + 4 > n:
                raise _trunc("d", _LEGACY_DIGEST_LEN + 4, n - pos, pos)
            digest = data[pos : pos + _LEGACY_DIGEST_LEN]
            (flen,) = u32(data, pos + _LEGACY_DIGEST_LEN)
            pos += _LEGACY_DIGEST_LEN + 4
            if flen > IMA_EVENT_NAME_LEN_MAX:
                raise EvidenceError("ima.length", f"legacy event name length {flen} exceeds 255",
                                    field="n.len", offset=pos - 4)
            if pos + flen > n:
                raise _trunc("n", flen, n - pos, pos)
            fname = data[pos : pos + flen]
            if b"\0" in fname:
                raise EvidenceError("ima.bad_field", "legacy event name contains NUL", field="n", offset=pos)
            pos += flen
            fields = (digest, fname + b"\0")
            tdata = digest + fname + bytes(IMA_EVENT_NAME_LEN_MAX + 1 - flen)
        else:
            if pos + 4 > n:
                raise _trunc("template_data_len", 4, n - pos, pos)
            (tlen,) = u32(data, pos)
            pos += 4
            if pos + tlen > n:
                raise _trunc("template_data", tlen, n - pos, pos)
            tend = pos + tlen
            tdata = data[pos:tend]
            fl = []
            for fid, code, kind, empty_ok in checks:
                if pos + 4 > tend:
                    raise EvidenceError("ima.field_count",
                                        f"template data ends before field {fid} of {desc.name}",
                                        field=f"template_data.{fid}", offset=pos)
                (flen,) = u32(data, pos)
                pos += 4
                fend = pos + flen
                if fend > tend:
                    raise EvidenceError("ima.field_length",
                                        f"field {fid} declares {flen} bytes, more than the template data holds",
                                        field=f"template_data.{fid}.len", offset=pos - 4)
                fdata = data[pos:fend]
                # Field checks inlined (no Python call per field): this loop runs once per field.
                if code == 1:
                    bad = dng_match(fdata) is None and (flen or not empty_ok)
                elif code == 3:
                    bad = fdata.find(b"\0") != flen - 1 if flen else not empty_ok
                elif code == 0:
                    bad = False
                elif code == 2:
                    bad = dngv2_match(fdata) is None and (flen or not empty_ok)
                else:
                    bad = check_field(fid, kind, fdata) is not None
                if bad:
                    why = check_field(fid, kind, fdata) or "is malformed"
                    raise EvidenceError("ima.bad_field", f"field {fid} {why}",
                                        field=f"template_data.{fid}", offset=pos)
                fl.append(fdata)
                pos = fend
            if pos != tend:
                raise EvidenceError("ima.trailing_data",
                                    f"{tend - pos} bytes after the last field of template {desc.name}",
                                    field="template_data", offset=pos)
            fields = tuple(fl)
        append(new_entry(index, start, pcr, template_hash, desc, fields, tdata))
        index += 1
    return entries, big_endian

