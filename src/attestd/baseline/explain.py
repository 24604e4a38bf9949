"""Saying what an event means and how two events differ, on one line a person understands.

* :func:`meaning` - the decoded data of an event on one line (``SecureBoot = 1 (enabled)``,
  ``grub_cmd: linux /vmlinuz ...``, an image's device path), from :mod:`attestd.eventlog.data`.
* :func:`subject` - what an event is *about*, without its value: the UEFI variable
  (``UEFI_VARIABLE_DATA.VariableName``, TCG PFP 1.05 section 10.2.6), GRUB's EV_IPL prefix
  (``grub_cmd``, ``kernel_cmdline``), the device path of a ``UEFI_IMAGE_LOAD_EVENT`` (PFP 10.2.3)
  without its ``ImageLocationInMemory``. A changed event is paired with the expected one of the
  same type and subject.
* :func:`changed_message`, :func:`missing_message`, :func:`extra_message` - the lines of
  ``attestd baseline compare``, e.g.::

      PCR 8, event 44, EV_IPL: kernel command line changed: expected "/vmlinuz ... panic=-1"
      found "/vmlinuz ... panic=-1 init=/bin/sh" (added init=/bin/sh)
      PCR 7, event 4, EV_EFI_VARIABLE_DRIVER_CONFIG: SecureBoot changed: expected "1 (enabled)"
      found "0 (disabled)"
"""

from __future__ import annotations

from attestd.errors import EvidenceError
from attestd.eventlog import Event

__all__ = [
    "GRUB_LABELS",
    "changed_message",
    "extra_message",
    "meaning",
    "missing_message",
    "split_value",
    "subject",
    "where",
    "word_diff",
]

#: GRUB 2's EV_IPL prefixes (PCR 8; grub-core/commands/tpm.c) and how a message names them.
GRUB_LABELS = {"grub_cmd": "GRUB command", "kernel_cmdline": "kernel command line",
               "grub_kernel_cmdline": "kernel command line", "module_cmdline": "module command line"}
#: Event types whose data is ``UEFI_VARIABLE_DATA`` naming one variable (PFP 10.4.4).
_VARIABLE_TYPES = {"EV_EFI_VARIABLE_DRIVER_CONFIG", "EV_EFI_VARIABLE_BOOT", "EV_EFI_VARIABLE_BOOT2"}
_MAX_TEXT = 240


def meaning(event: Event) -> str:
    """The decoded content of ``event`` on one line (runs of white space become one space)."""
    try:
        text = event.decode().summary()
    except EvidenceError as err:
        return f"<undecodable: {err.code}>"
    return " ".join(text.split()) if ("\n" in text or "\t" in text or "  " in text) else text


def split_value(text: str) -> tuple[str | None, str]:
    """``("SecureBoot", "1 (enabled)")`` from ``SecureBoot = 1 (enabled)``; ``("grub_cmd", "linux ...")``
    from ``grub_cmd: linux ...``; ``(None, text)`` when the text names nothing."""
    for sep in (": ", " = "):
        head, found, tail = text.partition(sep)
        if found and head and " " not in head:
            return head, tail
    return None, text


def subject(text: str) -> str:
    """What an event is about without its value: ``SecureBoot``, ``grub_cmd``, an image's path."""
    head, _ = split_value(text)
    if head is not None:
        return head
    path, found, _ = text.rpartition(" [0x")  # ImageLoad: "<device path> [0xADDR+0xLEN]"
    return path if found else text


def word_diff(old: str, new: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Words of ``new`` not in ``old`` (added) and of ``old`` not in ``new`` (removed)."""
    a, b = old.split(), new.split()
    sa, sb = set(a), set(b)
    return tuple(w for w in b if w not in sa), tuple(w for w in a if w not in sb)


def short(text: str | None) -> str | None:
    if text is None or len(text) <= _MAX_TEXT:
        return text
    return text[: _MAX_TEXT - 1] + "…"


def where(pcr: int, event: int | None, etype: str | None, *, of_baseline: bool = False) -> str:
    num = "event ?" if event is None else f"event {event}" + (" of the baseline" if of_baseline else "")
    return f"PCR {pcr}, {num}, {etype}"


def changed_message(pcr: int, event: int, exp_type: str, exp_text: str, found_type: str, found_text: str,
                    bank: str, exp_digest: str | None, found_digest: str | None
                    ) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The line for an event in the place of an expected one, with the words added and removed
    (for GRUB commands and kernel command lines)."""
    etype = exp_type if exp_type == found_type else f"{exp_type} -> {found_type}"
    head = where(pcr, event, etype)
    old_key, old = split_value(exp_text)
    new_key, new = split_value(found_text)
    if exp_text == found_text:
        return (f'{head}: "{short(found_text)}" has other content '
                f"({bank} {(exp_digest or '?')[:16]}… expected, {(found_digest or '?')[:16]}… found)"), (), ()
    if old_key is not None and old_key == new_key and old_key in GRUB_LABELS:
        added, removed = word_diff(old, new)
        words = "; ".join(filter(None, [f"added {' '.join(added)}" if added else "",
                                        f"removed {' '.join(removed)}" if removed else ""]))
        what = f'{GRUB_LABELS[old_key]} changed: expected "{short(old)}" found "{short(new)}"'
        return f"{head}: {what}" + (f" ({words})" if words else ""), added, removed
    if old_key is not None and old_key == new_key and exp_type == found_type and exp_type in _VARIABLE_TYPES:
        return f'{head}: {old_key} changed: expected "{short(old)}" found "{short(new)}"', (), ()
    return f'{head}: changed: expected "{short(exp_text)}" found "{short(found_text)}"', (), ()


def missing_message(pcr: int, event: int, etype: str, text: str) -> str:
    return f'{where(pcr, event, etype, of_baseline=True)}: missing: expected "{short(text)}"'


def extra_message(pcr: int, event: int, etype: str, text: str) -> str:
    return f'{where(pcr, event, etype)}: not in the baseline: "{short(text)}"'
