"""String-valued events: EV_IPL, EV_EFI_ACTION / EV_ACTION, EV_S_CRTM_VERSION, EV_POST_CODE, ...

* EV_IPL (TCG PFP 1.05, 10.4.1 Table 9; its content is defined by the boot loader): GRUB 2 logs
  ``grub_cmd: <command>`` and ``kernel_cmdline: <command line>`` (PCR 8) and file paths it read
  (PCR 9), ASCII with a trailing NUL; shim logs variable names (``MokList``) in PCR 14;
  systemd-boot and the systemd stub log UTF-16LE strings (kernel command line, PCR 12).
* EV_EFI_ACTION / EV_ACTION (PFP 10.4.1, 10.4.4): an ASCII string without terminator, e.g.
  ``Calling EFI Application from Boot Option``.
* EV_S_CRTM_VERSION (PFP 10.4.1): the S-CRTM version, a NUL-terminated CHAR16 string (some
  firmware logs a GUID or other binary value instead).
* EV_POST_CODE / EV_S_CRTM_CONTENTS / EV_CPU_MICROCODE / EV_PLATFORM_CONFIG_FLAGS: either a string
  (``ACPI DATA``, ``Boot Guard Measured S-CRTM``) or binary; blob-shaped data is handled in
  :mod:`attestd.eventlog.data.blobs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attestd.eventlog.data.base import EventData
from attestd.eventlog.data.text import DetectedText, detect_text, utf8_text

__all__ = ["TextEvent", "IplEvent", "decode_text_event", "decode_ipl", "grub_string", "GRUB_PREFIXES"]

#: EV_IPL prefixes GRUB 2 uses (grub-core/commands/tpm.c, grub-core/kern/efi/tpm.c)
GRUB_PREFIXES = ("grub_cmd", "kernel_cmdline", "grub_kernel_cmdline", "module_cmdline")


@dataclass(frozen=True, slots=True)
class TextEvent(EventData):
    """An event whose data is a string (EV_EFI_ACTION, EV_ACTION, EV_S_CRTM_VERSION, EV_POST_CODE...)."""

    kind: ClassVar[str] = "text"
    text: str
    encoding: str
    nul_terminated: bool = False

    def summary(self) -> str:
        return self.text if self.text else "(empty string)"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "encoding": self.encoding,
            "nul_terminated": self.nul_terminated,
        }


@dataclass(frozen=True, slots=True)
class IplEvent(EventData):
    """EV_IPL string. ``prefix``/``value`` split GRUB's ``grub_cmd: ...`` style strings."""

    kind: ClassVar[str] = "ipl"
    text: str
    encoding: str
    nul_terminated: bool
    #: ``grub_cmd``, ``kernel_cmdline``, ... or None for other strings (file paths, shim names)
    prefix: str | None
    #: text after ``<prefix>: `` (or the whole text when there is no prefix)
    value: str
    pcr: int | None = None

    @property
    def is_file(self) -> bool:
        """A file GRUB measured (PCR 9, no command prefix)."""
        return self.prefix is None and self.pcr == 9

    def summary(self) -> str:
        return self.text if self.text else "(empty string)"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "encoding": self.encoding,
            "nul_terminated": self.nul_terminated,
            "prefix": self.prefix,
            "value": self.value,
        }


def decode_text_event(data: bytes) -> TextEvent | None:
    """A :class:`TextEvent` if ``data`` is a string (see :func:`detect_text`), else None."""
    found = detect_text(data)
    if found is None:
        return None
    return TextEvent(found.text, found.encoding, found.nul_terminated)


_GRUB_PREFIXES_B = tuple(p.encode() for p in GRUB_PREFIXES)


def _split_prefix(text: str) -> tuple[str | None, str]:
    for p in GRUB_PREFIXES:
        # "grub_cmd: ..." (upstream GRUB) or "grub_cmd ..." (RHEL/Fedora GRUB before 2.06)
        if text.startswith(p + ": ") or text.startswith(p + " "):
            return p, text[len(p) :].removeprefix(":")[1:]
    return None, text


def grub_string(data: bytes) -> tuple[str, str, bool] | None:
    """``(prefix, value, nul_terminated)`` for GRUB's own strings (``grub_cmd: ...``,
    ``kernel_cmdline: ...``), read as UTF-8 without the detection other EV_IPL data needs (a boot
    logs dozens of them); None for anything else."""
    if not data.startswith(_GRUB_PREFIXES_B):
        return None
    found = utf8_text(data)
    if found is None:
        return None
    text = found[0]
    for p in GRUB_PREFIXES:
        if text.startswith(p):
            rest = text[len(p):]
            if rest.startswith(": "):
                return p, rest[2:], found[1]
            if rest.startswith(" "):
                return p, rest[1:], found[1]
    return None


def decode_ipl(data: bytes, *, pcr: int | None = None) -> IplEvent | None:
    """Decode EV_IPL text; None when the data is binary (the caller returns raw data)."""
    found: DetectedText | None = detect_text(data)
    if found is None:
        return None
    prefix, value = _split_prefix(found.text)
    return IplEvent(found.text, found.encoding, found.nul_terminated, prefix, value, pcr)
