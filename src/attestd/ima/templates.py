"""IMA template descriptors and template fields.

Source: the kernel's ``Documentation/security/IMA-templates.rst`` and
``security/integrity/ima/ima_template.c`` / ``ima_template_lib.c``.

A *template descriptor* has a name and a format: field identifiers separated by ``|``
(``ima-sig`` = ``d-ng|n-ng|sig``). Each field's data (``struct ima_field_data``) is stored by the
kernel in one of these encodings (``enum data_formats``):

* ``d`` (DATA_FMT_DIGEST): the raw digest, at most 20 bytes (MD5/SHA-1).
* ``d-ng``, ``d-modsig`` (DATA_FMT_DIGEST_WITH_ALGO): ``<hash_algo_name> ':' '\\0' <digest>``.
* ``d-ngv2`` (DATA_FMT_DIGEST_WITH_TYPE_AND_ALGO): ``<"ima"|"verity"> ':' <hash_algo_name> ':' '\\0' <digest>``.
* ``n``, ``n-ng``, ``xattrnames`` (DATA_FMT_STRING): the string followed by one NUL.
* ``sig``, ``buf``, ``modsig``, ``evmsig``, ``xattrlengths``, ``xattrvalues`` (DATA_FMT_HEX): raw bytes,
  shown as hex in the ASCII list.
* ``iuid``, ``igid`` (``unsigned int``, 4 bytes) and ``imode`` (``u16``) (DATA_FMT_UINT): little
  endian in the canonical format, shown in decimal in the ASCII list.

Optional fields (``sig`` when the file has no signature, ``buf``, ``d-modsig``/``modsig`` without an
appended signature, ...) have length 0; the ASCII list then shows an empty token.

A template that is not built in appears in the list under its format string (``ima_measurements_show``
writes ``template_desc->fmt`` when the descriptor has no name, e.g. after ``ima_template_fmt=``), so a
name made of known field ids separated by ``|`` is understood; any other unknown name is an
``ima.unknown_template`` error.
"""

from __future__ import annotations

import binascii
import re
import struct
from dataclasses import dataclass
from enum import Enum

from attestd.errors import EvidenceError

__all__ = [
    "FieldKind",
    "TemplateDescriptor",
    "BUILTIN_TEMPLATES",
    "FIELD_KINDS",
    "lookup_template",
    "check_field",
    "may_be_empty",
    "DIGEST_NG_PREFIX",
    "DIGEST_NGV2_PREFIX",
    "field_from_ascii",
    "field_to_ascii",
    "IMA_EVENT_NAME_LEN_MAX",
    "IMA_TEMPLATE_NUM_FIELDS_MAX",
    "MAX_TEMPLATE_NAME_LEN",
]

#: ``IMA_EVENT_NAME_LEN_MAX`` (ima.h): the legacy ``n`` field is at most 255 characters and is
#: hashed zero-padded to 256 bytes.
IMA_EVENT_NAME_LEN_MAX = 255
#: ``IMA_TEMPLATE_NUM_FIELDS_MAX`` (ima.h).
IMA_TEMPLATE_NUM_FIELDS_MAX = 15
#: ``IMA_TEMPLATE_FIELD_ID_MAX_LEN`` (ima.h).
IMA_TEMPLATE_FIELD_ID_MAX_LEN = 16
#: ``MAX_TEMPLATE_NAME_LEN`` (ima_template.c), the longest template name the kernel restores.
MAX_TEMPLATE_NAME_LEN = len("d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode") + 1


class FieldKind(Enum):
    """How a field's data is encoded (``enum data_formats`` plus the UINT widths)."""

    DIGEST = "digest"  # d
    DIGEST_NG = "digest_ng"  # d-ng, d-modsig
    DIGEST_NGV2 = "digest_ngv2"  # d-ngv2
    STRING = "string"  # n, n-ng, xattrnames
    HEX = "hex"  # sig, buf, modsig, evmsig, xattrlengths, xattrvalues
    UINT32 = "uint32"  # iuid, igid
    UINT16 = "uint16"  # imode


#: ``supported_fields[]`` of ima_template.c with their encodings.
FIELD_KINDS: dict[str, FieldKind] = {
    "d": FieldKind.DIGEST,
    "n": FieldKind.STRING,
    "d-ng": FieldKind.DIGEST_NG,
    "d-ngv2": FieldKind.DIGEST_NGV2,
    "n-ng": FieldKind.STRING,
    "sig": FieldKind.HEX,
    "buf": FieldKind.HEX,
    "d-modsig": FieldKind.DIGEST_NG,
    "modsig": FieldKind.HEX,
    "evmsig": FieldKind.HEX,
    "iuid": FieldKind.UINT32,
    "igid": FieldKind.UINT32,
    "imode": FieldKind.UINT16,
    "xattrnames": FieldKind.STRING,
    "xattrlengths": FieldKind.HEX,
    "xattrvalues": FieldKind.HEX,
}

#: ``builtin_templates[]`` of ima_template.c.
BUILTIN_TEMPLATES: dict[str, str] = {
    "ima": "d|n",
    "ima-ng": "d-ng|n-ng",
    "ima-sig": "d-ng|n-ng|sig",
    "ima-ngv2": "d-ngv2|n-ng",
    "ima-sigv2": "d-ngv2|n-ng|sig",
    "ima-buf": "d-ng|n-ng|buf",
    "ima-modsig": "d-ng|n-ng|sig|d-modsig|modsig",
    "evm-sig": "d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode",
}

# Fields that may legitimately be empty (length 0); "n"/"n-ng" always carry at least the NUL.
_MAY_BE_EMPTY = frozenset(
    {"sig", "buf", "d-modsig", "modsig", "evmsig", "iuid", "igid", "imode", "xattrnames", "xattrlengths",
     "xattrvalues"}
)


@dataclass(frozen=True, slots=True)
class TemplateDescriptor:
    """``struct ima_template_desc``: a template name and its field ids."""

    name: str
    fmt: str
    field_ids: tuple[str, ...]
    kinds: tuple[FieldKind, ...]

    @property
    def is_legacy(self) -> bool:
        """The original ``ima`` template: no length prefixes, name hashed padded to 256 bytes."""
        return self.name == "ima"

    def index(self, field_id: str) -> int | None:
        try:
            return self.field_ids.index(field_id)
        except ValueError:
            return None


def _descriptor(name: str, fmt: str) -> TemplateDescriptor:
    ids = tuple(fmt.split("|"))
    return TemplateDescriptor(name, fmt, ids, tuple(FIELD_KINDS[i] for i in ids))


_CACHE: dict[bytes, TemplateDescriptor] = {n.encode(): _descriptor(n, f) for n, f in BUILTIN_TEMPLATES.items()}
for _n, _f in BUILTIN_TEMPLATES.items():
    _CACHE.setdefault(_f.encode(), _CACHE[_n.encode()])


def lookup_template(name: bytes, *, offset: int | None = None) -> TemplateDescriptor:
    """Resolve a template name as written in the list (``lookup_template_desc`` + custom formats)."""
    desc = _CACHE.get(name)
    if desc is not None:
        return desc
    shown = name[:80].decode("ascii", "backslashreplace")
    if len(name) >= MAX_TEMPLATE_NAME_LEN or not name.isascii():
        raise EvidenceError("ima.unknown_template", f"unknown IMA template {shown!r}",
                            field="template_name", offset=offset)
    text = name.decode("ascii")
    ids = text.split("|")
    unknown = [i for i in ids if i not in FIELD_KINDS]
    if unknown or len(ids) > IMA_TEMPLATE_NUM_FIELDS_MAX:
        why = f"unknown field id {unknown[0]!r}" if unknown else "too many fields"
        raise EvidenceError(
            "ima.unknown_template",
            f"unknown IMA template {shown!r}: neither a built-in template nor a template format ({why})",
            field="template_name",
            offset=offset,
        )
    if "d" in ids or "n" in ids:
        # 'd'/'n' only exist in the legacy 'ima' template, whose binary layout has no length prefixes;
        # the kernel never writes them in a custom format list it can restore.
        if len(ids) > 1 and text != "d|n":
            raise EvidenceError("ima.unknown_template", f"template format {text!r} mixes legacy fields",
                                field="template_name", offset=offset)
    desc = _descriptor(text, text)
    if len(_CACHE) < 256:
        _CACHE[name] = desc
    return desc


# -- field validation (binary) ------------------------------------------------------------------
_ALGO = rb"[!-9;-~]{1,63}"
DIGEST_NG_PREFIX = re.compile(_ALGO + rb":\x00")
DIGEST_NGV2_PREFIX = re.compile(_ALGO + rb":" + _ALGO + rb":\x00")


def may_be_empty(field_id: str) -> bool:
    """Whether a field may have length 0 (optional data such as an absent signature)."""
    return field_id in _MAY_BE_EMPTY


def check_field(field_id: str, kind: FieldKind, data: bytes) -> str | None:
    """Return why ``data`` is not a valid encoding of ``field_id``, or None when it is."""
    if not data:
        return None if field_id in _MAY_BE_EMPTY else "is empty"
    if kind is FieldKind.DIGEST_NG or kind is FieldKind.DIGEST_NGV2:
        match = DIGEST_NG_PREFIX.match if kind is FieldKind.DIGEST_NG else DIGEST_NGV2_PREFIX.match
        return None if match(data) is not None else "lacks a valid '<algo>:\\0' prefix"
    if kind is FieldKind.STRING:
        return None if data.find(b"\0") == len(data) - 1 else "is not a NUL-terminated string"
    if kind is FieldKind.DIGEST:
        return None if len(data) <= 64 else "is longer than a digest"
    if kind is FieldKind.UINT32:
        return None if len(data) in (2, 4) else "is not a 16 or 32-bit integer"
    if kind is FieldKind.UINT16:
        return None if len(data) == 2 else "is not a 16-bit integer"
    return None


# -- ASCII (ascii_runtime_measurements) ---------------------------------------------------------
def _unhex(token: bytes, field_id: str) -> bytes:
    try:
        return binascii.unhexlify(token)
    except (binascii.Error, ValueError):
        raise ValueError(f"{field_id} is not hexadecimal") from None


def field_from_ascii(field_id: str, kind: FieldKind, token: bytes) -> bytes:
    """Field data from its ASCII token (inverse of ``ima_show_template_data_ascii``).

    Raises ValueError with a message; the caller turns it into an EvidenceError with the offset.
    """
    if kind is FieldKind.STRING:
        if not token and field_id == "xattrnames":
            return b""
        if b"\0" in token:
            raise ValueError(f"{field_id} contains NUL")
        return token + b"\0"
    if not token:
        if field_id in _MAY_BE_EMPTY:
            return b""
        raise ValueError(f"{field_id} is empty")
    if kind is FieldKind.HEX or kind is FieldKind.DIGEST:
        return _unhex(token, field_id)
    if kind is FieldKind.DIGEST_NG or kind is FieldKind.DIGEST_NGV2:
        prefix, sep, digest = token.rpartition(b":")
        want = 1 if kind is FieldKind.DIGEST_NGV2 else 0
        data = prefix + b":\0" + _unhex(digest, field_id)
        if not sep or (DIGEST_NGV2_PREFIX if want else DIGEST_NG_PREFIX).match(data) is None:
            raise ValueError(f"{field_id} is not '<algo>:<hex digest>'")
        return data
    # UINT
    if not token.isdigit() or len(token) > 10:
        raise ValueError(f"{field_id} is not a decimal integer")
    value = int(token)
    width = 2 if kind is FieldKind.UINT16 else 4
    if value >= 1 << (8 * width):
        raise ValueError(f"{field_id} does not fit in {width} bytes")
    return value.to_bytes(width, "little")


def field_to_ascii(kind: FieldKind, data: bytes, *, big_endian: bool = False) -> bytes:
    """The ASCII token the kernel shows for a field (``ima_show_template_data_ascii``)."""
    if not data:
        return b""
    if kind is FieldKind.STRING:
        return data.rstrip(b"\0")
    if kind is FieldKind.HEX or kind is FieldKind.DIGEST:
        return binascii.hexlify(data)
    if kind is FieldKind.DIGEST_NG or kind is FieldKind.DIGEST_NGV2:
        nul = data.find(b"\0")
        return data[:nul] + binascii.hexlify(data[nul + 1 :])
    fmt = {2: "H", 4: "I", 8: "Q"}.get(len(data))
    if fmt is None:
        return b""
    (value,) = struct.unpack((">" if big_endian else "<") + fmt, data)
    return str(value).encode()
