"""Typed decoding of TCG PC Client firmware event data.

Entry point::

    decode(event_type, data, *, pcr=None, base_offset=0) -> EventData

``EventData`` subclasses are frozen dataclasses with ``summary()`` (one table line such as
``SecureBoot = 1 (enabled)``, ``db: 2 X509 certs (...)``, ``grub_cmd: linux /vmlinuz ...`` or a
UEFI device path) and ``to_json()``. Opaque or unknown event types decode to
:class:`RawEventData`. Malformed data raises :class:`~attestd.errors.EvidenceError` with code
``eventlog.data.<what>`` (``truncated``, ``trailing_data``, ``device_path``, ``signature_list``,
``load_option``, ``sipa``, ``tagged_event``, ``gpt``, ``handoff_tables``, ...) and the absolute offset
``base_offset`` + position. Decoding is pure and never raises anything else.

Event types and their structures (TCG PFP 1.05 section 10.4.1 Table 9 and section 10.2):

====================================================  =============================================
EV_EFI_VARIABLE_DRIVER_CONFIG / _BOOT / _BOOT2         :class:`UefiVariable` (UEFI_VARIABLE_DATA)
EV_EFI_VARIABLE_AUTHORITY                              :class:`UefiVariable` with an authority value
EV_EFI_BOOT_SERVICES_APPLICATION / _DRIVER,            :class:`ImageLoad` (UEFI_IMAGE_LOAD_EVENT)
EV_EFI_RUNTIME_SERVICES_DRIVER
EV_IPL                                                 :class:`IplEvent` (text) or raw
EV_EFI_ACTION, EV_ACTION, EV_EFI_HCRTM_EVENT           :class:`TextEvent`
EV_S_CRTM_VERSION                                      :class:`TextEvent` (CHAR16) or raw
EV_S_CRTM_CONTENTS, EV_POST_CODE, EV_POST_CODE2        :class:`FirmwareBlob`, :class:`TextEvent` or raw
EV_EFI_PLATFORM_FIRMWARE_BLOB / BLOB2                  :class:`FirmwareBlob`
EV_EFI_HANDOFF_TABLES / TABLES2                        :class:`HandoffTables`
EV_EFI_GPT_EVENT / GPT_EVENT2                          :class:`GptEvent` (UEFI_GPT_DATA)
EV_SEPARATOR                                           :class:`Separator`
EV_EVENT_TAG                                           :class:`SipaEventData` (Windows) / :class:`TaggedEvent`
EV_NO_ACTION                                           :class:`NoActionEvent` or raw
anything else                                          :class:`RawEventData`
====================================================  =============================================
"""

from __future__ import annotations

from attestd.eventlog.constants import EventType
from attestd.eventlog.data.base import PREFIX, EventData, RawEventData
from attestd.eventlog.data.blobs import (
    ConfigurationTable,
    FirmwareBlob,
    HandoffTables,
    NoActionEvent,
    Separator,
    decode_blob,
    decode_blob2,
    decode_handoff_tables,
    decode_handoff_tables2,
    decode_no_action,
    decode_separator,
)
from attestd.eventlog.data.certs import Certificate
from attestd.eventlog.data.devicepath import DevicePath, DevicePathNode, parse_device_path, parse_device_paths
from attestd.eventlog.data.gpt import GptEvent, GptHeader, GptPartition, decode_gpt
from attestd.eventlog.data.guids import KNOWN_GUIDS, guid_name
from attestd.eventlog.data.image import ImageLoad, decode_image_load
from attestd.eventlog.data.sipa import (
    ElamDriver,
    LoadedModule,
    SipaEvent,
    SipaEventData,
    TaggedEvent,
    decode_event_tag,
)
from attestd.eventlog.data.strings import IplEvent, TextEvent, decode_ipl, decode_text_event
from attestd.eventlog.data.uefi import (
    AuthorityValue,
    BoolValue,
    BytesValue,
    LoadOption,
    SignatureDatabase,
    SignatureEntry,
    SignatureList,
    TextValue,
    U16ListValue,
    U16Value,
    UefiVariable,
    VariableValue,
    decode_uefi_variable,
    parse_load_option,
    parse_signature_lists,
)
from attestd.errors import EvidenceError

__all__ = [
    "decode",
    "EventData",
    "RawEventData",
    "UefiVariable",
    "VariableValue",
    "BoolValue",
    "U16ListValue",
    "U16Value",
    "TextValue",
    "BytesValue",
    "SignatureDatabase",
    "SignatureList",
    "SignatureEntry",
    "AuthorityValue",
    "LoadOption",
    "Certificate",
    "ImageLoad",
    "DevicePath",
    "DevicePathNode",
    "IplEvent",
    "TextEvent",
    "FirmwareBlob",
    "HandoffTables",
    "ConfigurationTable",
    "Separator",
    "NoActionEvent",
    "GptEvent",
    "GptHeader",
    "GptPartition",
    "SipaEventData",
    "SipaEvent",
    "LoadedModule",
    "ElamDriver",
    "TaggedEvent",
    "KNOWN_GUIDS",
    "guid_name",
    "parse_device_path",
    "parse_device_paths",
    "parse_signature_lists",
    "parse_load_option",
]

E = EventType

_VARIABLE_TYPES = {E.EV_EFI_VARIABLE_DRIVER_CONFIG, E.EV_EFI_VARIABLE_BOOT, E.EV_EFI_VARIABLE_BOOT2}
_IMAGE_TYPES = {
    E.EV_EFI_BOOT_SERVICES_APPLICATION,
    E.EV_EFI_BOOT_SERVICES_DRIVER,
    E.EV_EFI_RUNTIME_SERVICES_DRIVER,
}
_TEXT_TYPES = {E.EV_EFI_ACTION, E.EV_ACTION, E.EV_EFI_HCRTM_EVENT}
_TEXT_OR_BLOB_TYPES = {E.EV_POST_CODE, E.EV_S_CRTM_CONTENTS}
_TEXT_OR_RAW_TYPES = {E.EV_S_CRTM_VERSION, E.EV_CPU_MICROCODE}


def decode(event_type: int, data: bytes, *, pcr: int | None = None, base_offset: int = 0) -> EventData:
    """Decode the data of one event by its type; see the module docstring for the mapping."""
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise EvidenceError(f"{PREFIX}.type", f"expected bytes, got {type(data).__name__}", field="event")
        data = bytes(data)
    et = int(event_type)
    if et in _VARIABLE_TYPES:
        return decode_uefi_variable(data, base_offset=base_offset)
    if et == E.EV_EFI_VARIABLE_AUTHORITY:
        return decode_uefi_variable(data, base_offset=base_offset, authority=True)
    if et in _IMAGE_TYPES:
        return decode_image_load(data, base_offset=base_offset)
    if et == E.EV_IPL:
        ipl = decode_ipl(data, pcr=pcr)
        return ipl if ipl is not None else RawEventData(data, "binary EV_IPL data")
    if et in _TEXT_TYPES:
        text = decode_text_event(data)
        return text if text is not None else RawEventData(data, "not text")
    if et in _TEXT_OR_BLOB_TYPES:
        text = decode_text_event(data) if data else None
        if text is not None:
            return text
        if len(data) == 16:
            return decode_blob(data, base_offset=base_offset)
        return RawEventData(data, "opaque")
    if et == E.EV_POST_CODE2:
        text = decode_text_event(data) if data else None
        if text is not None:
            return text
        try:
            return decode_blob2(data, base_offset=base_offset)
        except EvidenceError:
            return RawEventData(data, "opaque")
    if et in _TEXT_OR_RAW_TYPES:
        text = decode_text_event(data)
        return text if text is not None else RawEventData(data, "not text")
    if et == E.EV_EFI_PLATFORM_FIRMWARE_BLOB:
        return decode_blob(data, base_offset=base_offset)
    if et == E.EV_EFI_PLATFORM_FIRMWARE_BLOB2:
        return decode_blob2(data, base_offset=base_offset)
    if et == E.EV_EFI_HANDOFF_TABLES:
        return decode_handoff_tables(data, base_offset=base_offset)
    if et == E.EV_EFI_HANDOFF_TABLES2:
        return decode_handoff_tables2(data, base_offset=base_offset)
    if et in (E.EV_EFI_GPT_EVENT, E.EV_EFI_GPT_EVENT2):
        return decode_gpt(data, base_offset=base_offset)
    if et == E.EV_SEPARATOR:
        return decode_separator(data)
    if et == E.EV_EVENT_TAG:
        return decode_event_tag(data, base_offset=base_offset)
    if et == E.EV_NO_ACTION:
        na = decode_no_action(data, base_offset=base_offset)
        return na if na is not None else RawEventData(data, "unknown EV_NO_ACTION payload")
    if et in _KNOWN_TYPES:
        return RawEventData(data, "opaque")
    return RawEventData(data, "unknown event type")


_KNOWN_TYPES = {int(t) for t in EventType}
