"""Text found in event data: CHAR16 (UTF-16LE) strings and encoding detection.

UEFI strings are ``CHAR16`` (UCS-2, UEFI 2.10 section 2.3.1) and usually NUL terminated. Event
strings whose encoding the spec leaves open (EV_IPL, EV_POST_CODE, EV_S_CRTM_VERSION, tagged event
descriptions) are ASCII/UTF-8 from GRUB and shim and UTF-16LE from systemd-boot and firmware, with
or without a terminating NUL; :func:`detect_text` tells them apart without guessing on binary data.
Decoding never raises: unpaired surrogates become U+FFFD.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["utf16_until_nul", "utf16_text", "DetectedText", "detect_text", "is_printable", "utf8_text"]


def utf16_until_nul(raw: bytes) -> tuple[str, int]:
    """Decode a NUL-terminated CHAR16 string at the start of ``raw``.

    Returns the text and the number of bytes consumed including the terminator, or ``-1`` when no
    terminator was found (the whole even-length prefix was decoded).
    """
    n = len(raw) - (len(raw) % 2)
    for i in range(0, n, 2):
        if raw[i] == 0 and raw[i + 1] == 0:
            return raw[:i].decode("utf-16-le", "replace"), i + 2
    return raw[:n].decode("utf-16-le", "replace"), -1


def utf16_text(raw: bytes) -> str:
    """Decode CHAR16 text of known length, dropping trailing NULs (odd final byte ignored)."""
    n = len(raw) - (len(raw) % 2)
    text = raw[:n].decode("utf-16-le", "replace")
    return text.rstrip("\0")


_COMMON_WHITESPACE = str.maketrans("", "", "\t\r\n")


def is_printable(text: str) -> bool:
    """True when every character is printable or common whitespace (tab, CR, LF)."""
    return text.isprintable() or text.translate(_COMMON_WHITESPACE).isprintable()


@dataclass(frozen=True, slots=True)
class DetectedText:
    """A string recovered from event bytes: its text, encoding and whether it ended in NUL."""

    text: str
    #: ``"ascii"``, ``"utf-8"`` or ``"utf-16le"``
    encoding: str
    nul_terminated: bool


def detect_text(data: bytes) -> DetectedText | None:
    """Return the text of ``data`` if it is a (possibly NUL-terminated) string, else None.

    UTF-16LE is chosen only when the length is even and either the data ends in a CHAR16 NUL or
    every high byte is zero (plain ASCII in UTF-16), and the decoded text is printable. Otherwise
    strict UTF-8 (which includes ASCII) with a single optional trailing NUL, printable. Embedded
    NULs, control characters or invalid encodings mean "not text" (None).
    """
    if not data:
        return DetectedText("", "ascii", False)
    n = len(data)
    if n % 2 == 0 and n >= 2:
        found = _utf16(data)
        if found is not None:
            return found
    elif n >= 5 and data[-1] == 0 and data[-2] == 0:
        # systemd-boot < 251 measured UTF-16 strings with a one-byte NUL (2*strlen + 1 bytes)
        found = _utf16(data[:-1])
        if found is not None and found.encoding == "utf-16le":
            return DetectedText(found.text, found.encoding, True)
    found_utf8 = utf8_text(data)
    if found_utf8 is None:
        return None
    text, nul = found_utf8
    return DetectedText(text, "ascii" if text.isascii() else "utf-8", nul)


def utf8_text(data: bytes) -> tuple[str, bool] | None:
    """``(text, nul_terminated)`` when ``data`` is printable strict UTF-8 with at most one
    trailing NUL, else None (the UTF-8 half of :func:`detect_text`, for callers that know the
    string is not UTF-16)."""
    nul = data.endswith(b"\0")
    try:
        text = (data[:-1] if nul else data).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\0" in text or not is_printable(text):
        return None
    return text, nul


def _utf16(data: bytes) -> DetectedText | None:
    """UTF-16LE reading of even-length ``data`` if it is clearly UTF-16 text (see detect_text)."""
    n = len(data)
    ends_nul16 = data[-2:] == b"\0\0"
    high_zero = not any(data[1::2])
    if not (ends_nul16 or high_zero):
        return None
    body = data[:-2] if ends_nul16 else data
    while len(body) >= 2 and body[-2:] == b"\0\0":  # extra CHAR16 NUL padding
        body = body[:-2]
    try:
        text = body.decode("utf-16-le")
    except UnicodeDecodeError:
        return None
    if "\0" in text or not is_printable(text) or not (text or ends_nul16):
        return None
    # a lone ASCII char followed by NUL ("a\0") is more likely UTF-8 with a NUL
    if n == 2 and data[1] == 0 and not ends_nul16:
        return None
    return DetectedText(text, "utf-16le", ends_nul16)
