"""Time helpers for the DCAP tests (a uniquely named module: test folders are not packages)."""

from __future__ import annotations

from datetime import datetime, timezone


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
