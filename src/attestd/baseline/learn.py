"""Learning a baseline from a known-good host's event log (and IMA log).

Every extended event is recorded under its PCR, in log order: event number, type name (TCG PFP
1.05 section 10.4.1 Table 9), the digest of every bank (``TCG_PCR_EVENT2.Digests``, PFP 10.2.2)
and the decoded data on one line. EV_NO_ACTION events (PFP 10.4.5) are not extended into any PCR
and are left out.

From an IMA list, the baseline records every measured file (the ``n-ng`` file name) with the file
digests seen for it (the ``d-ng`` field, ``sha256:<hex>``; the template hash for templates without
one). IMA's ``boot_aggregate`` entry is left out: it is a hash of PCRs 0-9, which the event log
comparison already covers event by event (and which must change when an allowance lets a boot
event differ).

Learn only from logs you trust: ones that replayed to a verified quote from that host.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterator
from typing import Any

from attestd.baseline.explain import meaning
from attestd.baseline.model import Allowances, Baseline, ExpectedEvent, ImaBaseline
from attestd.eventlog import EventLog
from attestd.ima import ImaEntry, ImaLog

__all__ = ["NOT_MEASURED", "ima_files", "learn"]

NOT_MEASURED = 3  # EV_NO_ACTION (PFP 10.4.5): never extended, so never part of a baseline
BOOT_AGGREGATE = "boot_aggregate"


def ima_files(ima: ImaLog) -> Iterator[tuple[str, str, ImaEntry]]:
    """``(path, "algo:hex" digest, entry)`` of every measured file, each (path, digest) once.

    Violations (a zero template hash) and ``boot_aggregate`` are skipped.
    """
    seen: set[tuple[str, str]] = set()
    for entry in ima.entries:
        path = entry.filename
        if path is None or path == BOOT_AGGREGATE or entry.is_violation:
            continue
        digest = entry.digest
        value = str(digest) if digest is not None else "template:" + entry.template_hash.hex()
        if (path, value) not in seen:
            seen.add((path, value))
            yield path, value, entry


def learn(log: EventLog, *, ima: ImaLog | None = None, name: str | None = None,
          allowances: Allowances | None = None, ima_allow_changed: tuple[str, ...] = (),
          ima_allow_new: bool = False) -> Baseline:
    """The baseline of a known-good ``log`` (and IMA list).

    ``allowances`` defaults to none (see :mod:`attestd.baseline.model`, :data:`~attestd.baseline.PRESETS`);
    ``ima_allow_changed`` (path globs) and ``ima_allow_new`` go into the IMA section.
    """
    pcrs: dict[int, list[ExpectedEvent]] = {}
    for e in log.events:
        if e.event_type == NOT_MEASURED:
            continue
        pcrs.setdefault(e.pcr, []).append(
            ExpectedEvent(e.pcr, e.index, e.type_name, {b: d.hex() for b, d in e.digests.items()}, meaning(e)))
    source: dict[str, Any] = {"eventlogSha256": hashlib.sha256(log.raw).hexdigest(), "events": len(log)}
    ima_base = None
    if ima is not None:
        files: dict[str, list[str]] = {}
        for path, digest, _ in ima_files(ima):
            files.setdefault(path, []).append(digest)
        ima_base = ImaBaseline({p: tuple(d) for p, d in files.items()}, tuple(ima_allow_changed), ima_allow_new)
        source["imaEntries"] = len(ima.entries)
    return Baseline(
        pcrs={p: tuple(v) for p, v in pcrs.items()},
        allowances=allowances or Allowances(),
        ima=ima_base,
        name=name,
        created_at=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        source=source,
    )
