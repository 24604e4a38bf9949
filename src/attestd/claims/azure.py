"""The version 1.2 JSON claims ``events`` and ``pcrs``, shaped as Azure Attestation shows them.

``events``: ``{"Events": [{"EventSeq", "PcrIndex", "EventTypeString", "Digests", "ProcessedData"}]}``
for every event of a verified PCR (EV_NO_ACTION records are not measurements and are left out).
``EventSeq`` is the event's number in the log (``tpm2_eventlog``'s ``EventNum``; the Spec ID
header is 0). ``ProcessedData`` by event type:

==============================================  ==================================================
UEFI variables (DRIVER_CONFIG, BOOT, BOOT2,      ``VariableGuid`` (upper-case canonical GUID),
AUTHORITY; UEFI_VARIABLE_DATA, PFP 10.2.6)       ``UnicodeName``, ``VariableData`` (base64url, no
                                                 padding: SecureBoot = 1 is ``"AQ"``)
EV_EFI_BOOT_SERVICES_APPLICATION / DRIVER,       ``ImageLocationInMemory``, ``ImageLengthInMemory``,
EV_EFI_RUNTIME_SERVICES_DRIVER (PFP 10.2.3)      ``ImageLinkTimeAddress``, ``LengthOfDevicePath``,
                                                 ``DevicePath`` (UEFI text form)
EV_EVENT_TAG with Windows SIPA data (wbcl.h)     one key per record, ``SIPAEVENT_`` becoming
                                                 ``EVENT_`` (``EVENT_TRUSTBOUNDARY`` ->
                                                 ``EVENT_CODEINTEGRITY``...); containers are
                                                 objects, ``EVENT_LOADEDMODULE_AGGREGATION`` and
                                                 ``EVENT_ELAM_AGGREGATION`` lists of objects,
                                                 ``EVENT_BITLOCKER_UNLOCK`` ``{"Value": flags}``,
                                                 byte values hex
EV_IPL, EV_EFI_ACTION, other text events         ``String``
EV_SEPARATOR                                     ``Value`` (hex)
anything else                                    ``Data`` (base64url)
==============================================  ==================================================

With this shape Azure's documented version 1.2 recipes (``secureBootEnabled`` from
``Events[?EventTypeString == 'EV_EFI_VARIABLE_DRIVER_CONFIG' && ProcessedData.VariableGuid ==
'8BE4DF61-93CA-11D2-AA0D-00E098032B8C']``, code integrity from ``EVENT_TRUSTBOUNDARY``) run unchanged.

``pcrs``: ``{"PCRs": [{"Index": n, "Digests": {"SHA1": hex, "SHA256": hex}}]}`` with the quoted
values only, lower-case hex.
"""

from __future__ import annotations

import base64
from typing import Any, Iterable, Mapping

from attestd.errors import EvidenceError
from attestd.eventlog.constants import EventType
from attestd.eventlog.data import (
    ImageLoad,
    IplEvent,
    Separator,
    SipaEvent,
    SipaEventData,
    TextEvent,
    UefiVariable,
)

__all__ = ["b64url", "events_claim", "pcrs_claim", "processed_data"]

_NO_ACTION = int(EventType.EV_NO_ACTION)
_LIST_CONTAINERS = {"EVENT_LOADEDMODULE_AGGREGATION", "EVENT_ELAM_AGGREGATION"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _bank_key(bank: str) -> str:
    return bank.upper()


def _sipa_value(ev: SipaEvent) -> Any:
    if ev.is_container:
        return _sipa_children(ev.children)
    v = ev.value
    if ev.name == "SIPAEVENT_BITLOCKER_UNLOCK":
        return {"Value": v if isinstance(v, int) else int.from_bytes(ev.data, "little")}
    if isinstance(v, bytes):
        return v.hex()
    if v is None:
        return ev.data.hex()
    return v


def _sipa_children(children: Iterable[SipaEvent]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in children:
        key = c.name.removeprefix("SIPA")
        value = _sipa_value(c)
        if key in _LIST_CONTAINERS:
            out.setdefault(key, []).append(value)
        elif key in out:
            prev = out[key]
            out[key] = (prev if isinstance(prev, list) else [prev]) + [value]
        else:
            out[key] = value
    return out


def processed_data(event: Any) -> dict[str, Any]:
    """``ProcessedData`` of one event (see the module docstring); undecodable data is ``Data``."""
    try:
        decoded = event.decode()
    except EvidenceError:
        return {"Data": b64url(event.data)}
    if isinstance(decoded, UefiVariable):
        return {"VariableGuid": str(decoded.vendor_guid).upper(), "UnicodeName": decoded.name,
                "VariableData": b64url(decoded.data)}
    if isinstance(decoded, ImageLoad):
        return {
            "ImageLocationInMemory": decoded.image_location_in_memory,
            "ImageLengthInMemory": decoded.image_length_in_memory,
            "ImageLinkTimeAddress": decoded.image_link_time_address,
            "LengthOfDevicePath": decoded.length_of_device_path,
            "DevicePath": decoded.device_path.text,
        }
    if isinstance(decoded, SipaEventData):
        return _sipa_children((decoded.root,))
    if isinstance(decoded, (IplEvent, TextEvent)):
        return {"String": decoded.text}
    if isinstance(decoded, Separator):
        return {"Value": decoded.value.hex()}
    return {"Data": b64url(event.data)}


def events_claim(events: Iterable[Any]) -> dict[str, Any]:
    """The ``events`` claim for ``events`` (the caller passes the events of verified PCRs only)."""
    out = []
    for e in events:
        if e.event_type == _NO_ACTION:
            continue
        out.append({
            "EventSeq": e.index,
            "PcrIndex": e.pcr,
            "EventTypeString": e.type_name,
            "Digests": {_bank_key(b): d.hex() for b, d in e.digests.items()},
            "ProcessedData": processed_data(e),
        })
    return {"Events": out}


def pcrs_claim(pcrs: Mapping[str, Mapping[int, bytes]]) -> dict[str, Any]:
    """The ``pcrs`` claim: every quoted PCR with its value in each quoted bank."""
    indices = sorted({i for values in pcrs.values() for i in values})
    return {"PCRs": [
        {"Index": i, "Digests": {_bank_key(b): v[i].hex() for b, v in sorted(pcrs.items()) if i in v}}
        for i in indices
    ]}
