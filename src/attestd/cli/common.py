"""What every CLI command shares: reading inputs and reporting typed errors the same way.

An :class:`~attestd.errors.AttestdError` becomes one line on stderr::

    error: eventlog.truncated: needs 32 bytes for digest but only 7 remain (field TCG_PCR_EVENT2.digests, offset 4121)

and exit status 2. Exit status 1 is reserved for "evaluated, and the answer is no" (a replay that
matches no prefix, a denied policy), 0 for success.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, TypeVar

import typer

from attestd.errors import AttestdError, EvidenceError

__all__ = ["EXIT_ERROR", "EXIT_NO", "guarded", "read_input", "parse_hex", "fail"]

EXIT_NO = 1
EXIT_ERROR = 2

F = TypeVar("F", bound=Callable)


def fail(err: AttestdError) -> "typer.Exit":
    """Print ``err`` as the one-line CLI error and return the Exit to raise."""
    sys.stderr.write(f"error: {err}\n")
    return typer.Exit(EXIT_ERROR)


def guarded(fn: F) -> F:
    """Decorator for command functions: typed errors become one stderr line and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AttestdError as err:
            raise fail(err) from None

    return wrapper  # type: ignore[return-value]


def read_input(path: Path | str, field: str = "file") -> bytes:
    """Read a whole input file, or stdin for ``-``; I/O problems are typed errors too."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise EvidenceError("input.not_found", f"no such file: {path}", field=field) from None
    except IsADirectoryError:
        raise EvidenceError("input.unreadable", f"is a directory: {path}", field=field) from None
    except OSError as exc:
        raise EvidenceError("input.unreadable", f"cannot read {path}: {exc.strerror}", field=field) from None


def parse_hex(value: str, field: str, *, code: str = "input.hex") -> bytes:
    """Bytes from a hex option value (``0x`` prefix and surrounding space allowed)."""
    text = value.strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise EvidenceError(code, f"--{field} is not hexadecimal: {value!r}", field=field) from None
