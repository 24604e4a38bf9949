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
from attestd.ima.entry import EntryBuilder, ImaEntry, make_entry
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


def parse_binary(
    data: bytes, *, first_index: int = 0, big_endian: bool | None = None, _fast: bool = True
) -> tuple[list[ImaEntry], bool]:
    """Parse a binary measurement list; return its entries and whether it was big endian.

    Hot path: once the general code has accepted an entry of a two-field template whose fields are
    a digest with algorithm (``d-ng`` / ``d-ngv2``) and a string (``n-ng``) - ``ima-ng``,
    ``ima-ngv2`` - the following entries with the same template name and digest-field length are
    read with one precompiled ``struct`` unpack (pcr, template hash, name length, name, template data
    length, digest field length, digest field, name field length). An entry is taken on that path only
    when every check of the general code is known to pass for it (same template name, PCR in range,
    lengths consistent, digest field starting with an already validated ``<algo>:\\0`` prefix, name
    NUL-terminated without inner NUL); anything else - other templates, other digests, malformed
    entries - goes through the general code, which raises exactly the same errors as before.
    ``_fast=False`` (tests only) parses every entry with the general code.
    """
    if big_endian is None:
        big_endian = detect_big_endian(data)
    order = ">" if big_endian else "<"
    u32 = struct.Struct(order + "I").unpack_from
    head = struct.Struct(order + "I20sI").unpack_from
    n = len(data)
    pos = 0
    index = first_index
    entries: list[ImaEntry] = []
    append = entries.append
    templates: dict[bytes, tuple[TemplateDescriptor, tuple]] = {}
    dng_match = DIGEST_NG_PREFIX.match
    dngv2_match = DIGEST_NGV2_PREFIX.match
    builder, entry_cls = EntryBuilder, ImaEntry
    max_pcr = MAX_PCR_INDEX

    # Fast-path state, armed by the general code (see the docstring). ``fast_size`` is the number of
    # bytes the unpack reads (n + 1: path off); ``fast_body`` the offset of the template data.
    fast_unpack = None
    fast_size = n + 1
    fast_name = b""
    fast_nl = fast_f1 = fast_f1len = fast_body = -1
    fast_structs: dict[tuple[int, int], object] = {}
    fast_prefix = b""
    fast_desc = None
    fast_ok = _fast and type(data) is bytes  # struct gives bytes: keep slices of other buffers as before

    while pos < n:
        # -- fast path ------------------------------------------------------------------------
        if pos + fast_size <= n:
            pcr, template_hash, name_len, tname, tlen, f1len, f1, f2len = fast_unpack(data, pos)
            tstart = pos + fast_body
            tend = tstart + tlen
            if (
                tname == fast_name
                and name_len == fast_nl
                and pcr <= max_pcr
                and f1len == fast_f1len
                and tlen == f2len + fast_f1
                and tend <= n
                and f1.startswith(fast_prefix)
            ):
                f2 = data[tend - f2len : tend]
                if f2.find(0) == f2len - 1 and f2len:
                    e = builder()
                    e.index = index
                    e.offset = pos
                    e.pcr = pcr
                    e.template_hash = template_hash
                    e.template = fast_desc
                    e.fields = (f1, f2)
                    e.template_data = data[tstart:tend]
                    e.__class__ = entry_cls
                    append(e)
                    index += 1
                    pos = tend
                    continue

        # -- general code -----------------------------------------------------------------------
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
            # Arm the fast path for entries like this one: a validated non-empty digest field
            # (code 1/2) followed by a validated string field (code 3), nothing else.
            if (
                fast_ok
                and len(checks) == 2
                and checks[0][1] in (1, 2)
                and checks[1][1] == 3
                and fields[0]
                and (tname != fast_name or len(fields[0]) != fast_f1 - 8)
            ):
                f1 = fields[0]
                f1len = len(f1)
                fast_unpack = fast_structs.get((name_len, f1len))
                if fast_unpack is None:
                    fast_unpack = fast_structs[name_len, f1len] = struct.Struct(
                        f"{order}I20sI{name_len}sII{f1len}sI").unpack_from
                fast_size = 28 + name_len + 4 + 4 + f1len + 4
                fast_body = 28 + name_len + 4
                fast_name = tname
                fast_nl = name_len
                fast_f1len = f1len
                fast_f1 = f1len + 8
                # The validated '<algo>:\0' (or '<type>:<algo>:\0') prefix: the algorithm names
                # cannot contain NUL, so it ends at the first NUL. A field that starts with it matches
                # the same (anchored, deterministic) pattern.
                fast_prefix = f1[: f1.find(b"\0") + 1]
                fast_desc = desc
        append(make_entry(index, start, pcr, template_hash, desc, fields, tdata))
        index += 1
    return entries, big_endian
