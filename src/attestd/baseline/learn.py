"""Learning a baseline from a known-good host's event log (and IMA log)."""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

from attestd.baseline.model import Allowances, Baseline, ExpectedEvent, ImaBaseline
from attestd.errors import EvidenceError
from attestd.eventlog import Event, EventLog
from attestd.ima import ImaLog

__all__ = ["NOT_MEASURED", "learn", "meaning"]

NOT_MEASURED = 3  # EV_NO_ACTION: never extended, so never part of a baseline


def meaning(event: Event) -> str:
    """The decoded content of an event on one line (what a person compares)."""
    try:
        text = event.decode().summary()
    except EvidenceError as err:
        return f"<undecodable: {err.code}>"
    return " ".join(text.split()) if ("\n" in text or "\t" in text) else text


def learn(log: EventLog, *, ima: ImaLog | None = None, name: str | None = None,
          allowances: Allowances | None = None, ima_allow_changed: tuple[str, ...] = (),
          ima_allow_new: bool = False) -> Baseline:
    """The baseline of a known-good ``log``: every measured event per PCR, with its digests and
    meaning. Learn only from a log you trust (one that replayed to a quote from that host)."""
    pcrs: dict[int, list[ExpectedEvent]] = {}
    for e in log.events:
        if e.event_type == NOT_MEASURED:
            continue
        pcrs.setdefault(e.pcr, []).append(
            ExpectedEvent(e.pcr, e.index, e.type_name, {b: d.hex() for b, d in e.digests.items()}, meaning(e)))
    ima_base = None
    if ima is not None:
        files: dict[str, list[str]] = {}
        for entry in ima.entries:
            path = entry.filename
            if path is None or entry.is_violation:
                continue
            digest = entry.digest
            seen = files.setdefault(path, [])
            value = str(digest) if digest is not None else entry.template_hash.hex()
            if value not in seen:
                seen.append(value)
        ima_base = ImaBaseline({p: tuple(d) for p, d in files.items()}, tuple(ima_allow_changed), ima_allow_new)
    source: dict[str, Any] = {"eventlogSha256": hashlib.sha256(log.raw).hexdigest(), "events": len(log)}
    return Baseline(
        pcrs={p: tuple(v) for p, v in pcrs.items()},
        allowances=allowances or Allowances(),
        ima=ima_base,
        name=name,
        created_at=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        source=source,
    )
