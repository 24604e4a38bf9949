"""TCG PC Client firmware event logs: parse, replay, verify against PCRs, explain.

Entry points::

    log = attestd.eventlog.parse(data)          # EventLog; raises only EvidenceError
    log.events                                  # [Event]: index, pcr, event_type, digests, data, offset
    log.replay()                                # {"sha256": {0: b"...", ...}, ...}
    log.compare(pcrs) / log.verify(pcrs)        # ReplayReport; verify raises eventlog.replay_mismatch

See :mod:`attestd.eventlog.parser` (formats), :mod:`attestd.eventlog.replay` (replay rules, digest
checks) and :mod:`attestd.eventlog.quirks` (known firmware quirks).
"""

from attestd.eventlog.model import AlgorithmSize, Event, EventLog, LogFormat, LogWarning, PcrValues, SpecIdEvent
from attestd.eventlog.parser import parse
from attestd.eventlog.quirks import QUIRKS, Quirk
from attestd.eventlog.replay import AppliedQuirk, PcrCheck, ReplayReport, ReplayWarning, normalize_pcrs

__all__ = [
    "parse",
    "EventLog",
    "Event",
    "SpecIdEvent",
    "LogWarning",
    "AlgorithmSize",
    "LogFormat",
    "PcrValues",
    "ReplayReport",
    "PcrCheck",
    "ReplayWarning",
    "AppliedQuirk",
    "Quirk",
    "QUIRKS",
    "normalize_pcrs",
]
