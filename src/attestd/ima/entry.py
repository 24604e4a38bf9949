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


def _fast_constructor():
    """``ImaEntry(...)`` without the frozen-dataclass ``__init__`` overhead.

    A frozen slotted dataclass's generated ``__init__`` calls ``object.__setattr__`` per field,
    which costs ~2 us per entry - as much as the hashing a replay needs. Parsers build entries
    through this function instead: it stores the same slots through their descriptors, so the
    result is an ordinary, immutable ``ImaEntry`` (equal to one made by ``ImaEntry(...)``).
    """
    slots = ImaEntry.__dataclass_fields__
    setters = [ImaEntry.__dict__[name].__set__ for name in slots]
    s0, s1, s2, s3, s4, s5, s6 = setters
    new = object.__new__
    cls = ImaEntry

    def make(index, offset, pcr, template_hash, template, fields, template_data) -> ImaEntry:
        e = new(cls)
        s0(e, index)
        s1(e, offset)
        s2(e, pcr)
        s3(e, template_hash)
        s4(e, template)
        s5(e, fields)
        s6(e, template_data)
        return e

    return make


make_entry = _fast_constructor()
