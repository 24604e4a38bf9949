"""Registry of known firmware/OS event-log quirks that explain a replay mismatch.

A quirk is a documented, named reason why a genuine log does not replay to the TPM's PCRs. Every
quirk here:

* names the one PCR it may touch (:attr:`Quirk.pcr`);
* has a :attr:`Quirk.precondition` over the log that must hold before it may be tried;
* only ever *appends* measurements it describes exactly (event type and data, whose digest per bank
  is the hash of the data, PFP 10.4.1 for EV_EFI_ACTION);
* is used only by :meth:`attestd.eventlog.EventLog.compare`/``verify`` for a bank/PCR whose plain
  replay does not match the expected value, and only when the replay *with* it then matches;
* is reported whenever it is applied (``ReplayReport.quirks_applied`` and a warning).

A mismatch is never accepted silently: without a quirk that satisfies all of the above the PCR is
reported as a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from attestd.eventlog.constants import EventType

if TYPE_CHECKING:  # pragma: no cover
    from attestd.eventlog.model import EventLog

__all__ = ["Quirk", "QUIRKS", "quirk_by_name"]


@dataclass(frozen=True, slots=True)
class Quirk:
    """One known quirk: measurements that were extended into :attr:`pcr` but are missing from the log."""

    name: str
    title: str
    #: which firmware / software produces it
    affects: str
    #: public reference (spec section, upstream issue or code)
    reference: str
    pcr: int
    #: ``(event type, event data)`` of each measurement extended after the PCR's last logged event
    appended: tuple[tuple[int, bytes], ...]
    #: must be true for the log before the quirk may be tried
    precondition: Callable[["EventLog"], bool]
    #: human description of the precondition, printed by explanations
    precondition_text: str


_EBS_INVOCATION = b"Exit Boot Services Invocation"
_EBS_SUCCESS = b"Exit Boot Services Returned with Success"
_EBS_FAILURE = b"Exit Boot Services Returned with Failure"
_EV_EFI_ACTION = int(EventType.EV_EFI_ACTION)


def _ebs_not_logged(log: "EventLog") -> bool:
    """A UEFI log with PCR5 events and no logged ExitBootServices action in PCR5."""
    has_pcr5 = False
    uefi = log.spec_id is not None
    for e in log.events:
        if e.event_type & 0x80000000:
            uefi = True
        if e.pcr == 5 and e.event_type != EventType.EV_NO_ACTION:
            has_pcr5 = True
            if e.event_type == _EV_EFI_ACTION and e.data.startswith(b"Exit Boot Services"):
                return False
    return uefi and has_pcr5


_EBS_REFERENCE = (
    "TCG PC Client PFP, PCR[5] usage: the EV_EFI_ACTION strings 'Exit Boot Services Invocation' and "
    "'Exit Boot Services Returned with Success|Failure'; go-attestation attest/eventlog_workarounds.go (PR #153); the events are logged after the OS "
    "loader called GetEventLog and land in the EFI_TCG2_FINAL_EVENTS_TABLE, which Linux before 5.3 did not "
    "append to binary_bios_measurements"
)
_EBS_AFFECTS = "UEFI firmware with an OS that does not append the TCG2 Final Events Table (e.g. Linux < 5.3)"
_EBS_PRECONDITION = (
    "UEFI log with PCR5 events and no EV_EFI_ACTION 'Exit Boot Services ...' logged in PCR5"
)

QUIRKS: tuple[Quirk, ...] = (
    Quirk(
        name="ebs-not-logged",
        title="ExitBootServices extended but not logged (Invocation + Success)",
        affects=_EBS_AFFECTS,
        reference=_EBS_REFERENCE,
        pcr=5,
        appended=((_EV_EFI_ACTION, _EBS_INVOCATION), (_EV_EFI_ACTION, _EBS_SUCCESS)),
        precondition=_ebs_not_logged,
        precondition_text=_EBS_PRECONDITION,
    ),
    Quirk(
        name="ebs-failure-not-logged",
        title="ExitBootServices extended but not logged (Invocation + Failure)",
        affects=_EBS_AFFECTS,
        reference=_EBS_REFERENCE,
        pcr=5,
        appended=((_EV_EFI_ACTION, _EBS_INVOCATION), (_EV_EFI_ACTION, _EBS_FAILURE)),
        precondition=_ebs_not_logged,
        precondition_text=_EBS_PRECONDITION,
    ),
    Quirk(
        name="ebs-failure-retry-not-logged",
        title="ExitBootServices extended but not logged (Invocation + Failure + Success)",
        affects=_EBS_AFFECTS,
        reference=_EBS_REFERENCE,
        pcr=5,
        appended=(
            (_EV_EFI_ACTION, _EBS_INVOCATION),
            (_EV_EFI_ACTION, _EBS_FAILURE),
            (_EV_EFI_ACTION, _EBS_SUCCESS),
        ),
        precondition=_ebs_not_logged,
        precondition_text=_EBS_PRECONDITION,
    ),
)


def quirk_by_name(name: str) -> Quirk:
    for q in QUIRKS:
        if q.name == name:
            return q
    raise KeyError(name)
