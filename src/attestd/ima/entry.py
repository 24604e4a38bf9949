"""One entry of an IMA runtime measurement list.

Source: ``struct ima_template_entry`` (security/integrity/ima/ima.h) as shown by
``ima_measurements_show`` / ``ima_ascii_measurements_show`` (ima_fs.c), and the template hash of
``ima_calc_field_array_hash_tfm`` (ima_crypto.c):

* templates other than ``ima``: ``H( for each field: u32 len || data )`` - exactly the
  ``template_data`` bytes of the binary list;
* the legacy ``ima`` template: ``H( d || n zero-padded to IMA_EVENT_NAME_LEN_MAX + 1 = 256 bytes )``.

The template hash in the list is the SHA-1 one (``digests[ima_sha1_idx]``); an all-zero template
hash marks a *violation* (ToMToU / open-writers), for which the kernel extends 0xFF... instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from attestd.ima.templates import FieldKind, TemplateDescriptor

__all__ = ["ImaEntry", "FileDigest", "ZERO_TEMPLATE_HASH"]

ZERO_TEMPLATE_HASH = bytes(20)


@dataclass(frozen=True, slots=True)
class FileDigest:
    """A ``d``/``d-ng``/``d-ngv2``/``d-modsig`` field: algorithm name and digest bytes."""

    algo: str
    digest: bytes
    #: ``"ima"`` or ``"verity"`` for ``d-ngv2``; None otherwise.
    digest_type: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.digest_type}:" if self.digest_type else ""
        return f"{prefix}{self.algo}:{self.digest.hex()}"


def _decode_digest(kind: FieldKind, data: bytes) -> FileDigest | None:
    if not data:
        return None
    if kind is FieldKind.DIGEST:
        # Legacy 'd': MD5 (16 bytes) or SHA-1 (20 bytes), no algorithm recorded.
        return FileDigest("md5" if len(data) == 16 else "sha1", data)
    nul = data.find(b"\0")
    prefix = data[: nul - 1].decode("ascii")
    digest = data[nul + 1 :]
    if kind is FieldKind.DIGEST_NGV2:
        dtype, _, algo = prefix.partition(":")
        return FileDigest(algo, digest, dtype)
    return FileDigest(prefix, digest)


@dataclass(frozen=True, slots=True)
class ImaEntry:
    """One measurement: PCR, SHA-1 template hash, template and its field data."""

    #: position in the list (0 = first entry, normally ``boot_aggregate``), absolute when the
    #: list was parsed as a continuation (``first_index``).
    index: int
    #: byte offset of the entry (binary) or of its line (ASCII) in the parsed input.
    offset: int
    pcr: int
    #: the logged SHA-1 template hash (20 bytes; all zero for a violation).
    template_hash: bytes
    template: TemplateDescriptor
    #: each field's data as the kernel stores it (``template_data[i].data``), see templates.py.
    fields: tuple[bytes, ...]
    #: the bytes the template hash is computed over (see the module docstring).
    template_data: bytes

    @property
    def template_name(self) -> str:
        """The template name as logged (a template format string for custom templates)."""
        return self.template.name

    # -- classification -----------------------------------------------------------------------
    @property
    def is_violation(self) -> bool:
        return self.template_hash == ZERO_TEMPLATE_HASH

    def template_digest(self, hashlib_name: str = "sha1") -> bytes:
        """The template digest for a bank: ``H(template_data)`` (what non-SHA-1 banks extend)."""
        return hashlib.new(hashlib_name, self.template_data).digest()

    @property
    def template_hash_ok(self) -> bool:
        """True when the logged template hash is SHA-1 over the template data (or a violation)."""
        return self.is_violation or hashlib.sha1(self.template_data).digest() == self.template_hash

    # -- field access -------------------------------------------------------------------------
    def field(self, field_id: str) -> bytes | None:
        """Raw data of a field by id, or None when the template has no such field."""
        i = self.template.index(field_id)
        return None if i is None else self.fields[i]

    @property
    def digest(self) -> FileDigest | None:
        """The file (or buffer) digest: the first of ``d-ngv2``, ``d-ng``, ``d`` in the template."""
        for fid in ("d-ngv2", "d-ng", "d"):
            i = self.template.index(fid)
            if i is not None:
                return _decode_digest(self.template.kinds[i], self.fields[i])
        return None

    @property
    def modsig_digest(self) -> FileDigest | None:
        i = self.template.index("d-modsig")
        return None if i is None else _decode_digest(FieldKind.DIGEST_NG, self.fields[i])

    @property
    def name(self) -> bytes | None:
        """The event name (``n-ng`` / ``n``) as raw bytes, without the NUL."""
        for fid in ("n-ng", "n"):
            i = self.template.index(fid)
            if i is not None:
                return self.fields[i][:-1]
        return None

    @property
    def filename(self) -> str | None:
        """The event name as text (non-UTF-8 bytes shown as ``\\xNN``)."""
        raw = self.name
        return None if raw is None else raw.decode("utf-8", "backslashreplace")

    def _optional(self, field_id: str) -> bytes | None:
        data = self.field(field_id)
        return data if data else None

    @property
    def signature(self) -> bytes | None:
        """The ``sig`` field: the file's security.ima xattr (a digital signature), if recorded."""
        return self._optional("sig")

    @property
    def buf(self) -> bytes | None:
        """The ``buf`` field of ``ima-buf`` entries (a key, kexec command line, critical data)."""
        return self._optional("buf")

    @property
    def modsig(self) -> bytes | None:
        """The ``modsig`` field: the file's appended (PKCS#7) signature, if recorded."""
        return self._optional("modsig")


class EntryBuilder:
    """A mutable stand-in with exactly the slots of :class:`ImaEntry`, for the parsers' hot loops.

    A frozen slotted dataclass's generated ``__init__`` calls ``object.__setattr__`` per field, and
    even storing through the slot descriptors costs ~0.7 us per entry - more than half the hashing a
    replay needs. A parser instead creates an ``EntryBuilder``, stores the seven slots with ordinary
    (specialised, fast) attribute stores and then sets ``__class__ = ImaEntry``: the two classes have
    the same slot layout, so the object becomes an ordinary, immutable ``ImaEntry``, equal to one made
    by ``ImaEntry(...)``. Never hand out an ``EntryBuilder`` itself.
    """

    __slots__ = tuple(ImaEntry.__dataclass_fields__)


def _check_builder() -> None:
    # Fails at import (not silently at parse time) if the layouts ever stop being compatible.
    b = EntryBuilder()
    for name in EntryBuilder.__slots__:
        setattr(b, name, name)
    b.__class__ = ImaEntry  # TypeError if the slot layouts differ
    if type(b) is not ImaEntry or any(getattr(b, n) != n for n in EntryBuilder.__slots__):
        raise RuntimeError("EntryBuilder does not match the ImaEntry slot layout")


_check_builder()


def make_entry(index, offset, pcr, template_hash, template, fields, template_data) -> ImaEntry:
    """``ImaEntry(...)`` without the frozen-dataclass ``__init__`` overhead (see :class:`EntryBuilder`)."""
    e = EntryBuilder()
    e.index = index
    e.offset = offset
    e.pcr = pcr
    e.template_hash = template_hash
    e.template = template
    e.fields = fields
    e.template_data = template_data
    e.__class__ = ImaEntry
    return e
