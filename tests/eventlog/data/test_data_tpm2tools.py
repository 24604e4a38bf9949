"""Decoded fields against tpm2-tools' expected ``tpm2_eventlog`` output (../shared/corpus/tpm2-tools).

Wherever tpm2_eventlog decodes a field (UEFI variable names and GUIDs, lengths, BootOrder bytes,
load options, image-load events and their device paths, firmware blobs, EV_IPL/EV_EFI_ACTION
strings, GPT headers and partitions), Attestd's value must be the same. Device paths differ only in
spelling: tpm2-tools prints efivar's text (``File(\\X)``, ``FvVol()``, ``SCSI(1,0)``, ``USB(11,0)``,
``MAC(..,1)``) where Attestd prints UEFI 2.10 10.6 text (``\\X``, ``Fv()``, ``Scsi(0x1,0x0)``...);
:func:`_efivar_to_uefi` maps one to the other. efivar's IPv4 text is known broken
(``IPv4(0.0.0.00.0.0.0,0,0)``) and is compared on the nodes before it only.
"""

from __future__ import annotations

import re

import pytest
import yaml

from attestd.eventlog import parse
from attestd.eventlog.constants import EventType as E
from attestd.eventlog.data import (
    FirmwareBlob,
    GptEvent,
    ImageLoad,
    IplEvent,
    LoadOption,
    SignatureDatabase,
    TextEvent,
    UefiVariable,
    decode,
)

CASES = [
    ("event-bootorder.bin.yaml", "tpm2-tools/event-bootorder.bin"),
    ("event-postcode.bin.yaml", "tpm2-tools/event-postcode.bin"),
    ("event-sd-boot-fedora37.bin.yaml", "tpm2-tools/event-sd-boot-fedora37.bin"),
    ("event-uefi-sha1-log.bin.yaml", "tpm2-tools/event-uefi-sha1-log.bin"),
    ("event-uefivar.bin.yaml", "tpm2-tools/event-uefivar.bin"),
    ("event-uefiaction.bin.yaml", "tpm2-tools/event-uefiaction.bin"),
    ("event-gce-ubuntu-2104-log.bin.yaml", "go-tpm-tools/ubuntu-2104-no-dbx.bin"),
]


def _plain(node):
    if isinstance(node, yaml.MappingNode):
        return [(k.value, _plain(v)) for k, v in node.value]
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v) for v in node.value]
    return node.value


def _events(text: str) -> list[dict]:
    """Events of tpm2_eventlog YAML; the SHA1-format output repeats keys in one mapping."""
    top = dict(_plain(yaml.compose(text)))
    raw = top["events"]
    if raw and isinstance(raw[0], tuple):
        out: list[dict] = []
        for key, value in raw:
            if key == "PCRIndex":
                out.append({})
            out[-1][key] = value
        return out
    return [dict(e) for e in raw]


def _efivar_to_uefi(text: str) -> str:
    text = re.sub(r"(?<![A-Za-z])File\(([^)]*)\)", r"\1", text)
    text = text.replace("FvVol(", "Fv(")
    text = re.sub(r"SCSI\((\d+),(\d+)\)", lambda m: f"Scsi({int(m[1]):#x},{int(m[2]):#x})", text)
    text = re.sub(r"USB\((\d+),(\d+)\)", lambda m: f"USB({int(m[1]):#x},{int(m[2]):#x})", text)
    text = re.sub(r"MAC\(([0-9a-f]+),(\d+)\)", lambda m: f"MAC({m[1]},{int(m[2]):#x})", text)
    return text


def _same_path(ours: str, theirs: str) -> None:
    theirs = _efivar_to_uefi(theirs)
    if "IPv4(" in theirs:
        ours, theirs = ours.split("IPv4(")[0], theirs.split("IPv4(")[0]
    assert ours == theirs


def _int(v: str) -> int:
    return int(v, 0)


@pytest.mark.parametrize("yaml_name,log_name", CASES)
def test_fields_match_tpm2_eventlog(corpus, yaml_name, log_name):
    expected = _events((corpus / "tpm2-tools" / yaml_name).read_text())
    log = parse((corpus / log_name).read_bytes())
    assert len(expected) == len(log.events)
    checked = 0
    for ev, want in zip(log.events, expected):
        assert want["EventType"] == ev.type_name
        got = decode(ev.event_type, ev.data, pcr=ev.pcr, base_offset=ev.data_offset)
        event = want.get("Event")
        fields = dict(event) if isinstance(event, list) else None
        if isinstance(got, UefiVariable):
            assert fields["VariableName"] == str(got.vendor_guid)
            assert fields["UnicodeName"] == got.name
            assert _int(fields["UnicodeNameLength"]) == len(got.name)
            assert _int(fields["VariableDataLength"]) == len(got.data)
            vd = fields.get("VariableData")
            if isinstance(vd, str):
                assert vd == got.data.hex()
            elif isinstance(vd, list) and vd and isinstance(vd[0], list):  # EFI_SIGNATURE_LISTs
                assert isinstance(got.value, SignatureDatabase)
                assert len(vd) == len(got.value.lists)
                for sl_want, sl_got in zip(vd, got.value.lists):
                    sl_want = dict(sl_want)
                    assert sl_want["SignatureType"] == str(sl_got.signature_type)
                    assert _int(sl_want["SignatureSize"]) == sl_got.signature_size
                    keys = [dict(k) for k in sl_want["Keys"]]
                    assert [(k["SignatureOwner"], k["SignatureData"]) for k in keys] == [
                        (str(e.owner), e.data.hex()) for e in sl_got.entries
                    ]
            elif isinstance(vd, list) and got.name == "BootOrder":
                assert vd == [f"Boot{v:04X}" for v in got.value.values]
            elif isinstance(vd, list) and got.name == "SbatLevel":
                assert dict(vd)["String"] == got.value.text
            elif isinstance(vd, list) and got.name == "SecureBoot":
                # tpm2_eventlog prints Enabled: No for a zero-length value; Attestd: None + warning
                assert (dict(vd)["Enabled"] == "Yes") == (got.value.value == 1)
            elif isinstance(vd, list):
                opt = dict(vd)
                assert isinstance(got.value, LoadOption)
                assert opt["Description"] == got.value.description
                assert _int(opt["FilePathListLength"]) == got.value.file_path_list_length
                assert (opt["Enabled"] == "Yes") == got.value.active
                _same_path(got.value.device_path, opt["DevicePath"])
            checked += 1
        elif isinstance(got, ImageLoad) and fields is not None:
            assert _int(fields["ImageLocationInMemory"]) == got.image_location_in_memory
            assert _int(fields["ImageLengthInMemory"]) == got.image_length_in_memory
            assert _int(fields["ImageLinkTimeAddress"]) == got.image_link_time_address
            assert _int(fields["LengthOfDevicePath"]) == got.length_of_device_path
            _same_path(got.device_path.text, fields["DevicePath"])
            checked += 1
        elif isinstance(got, FirmwareBlob) and fields is not None:
            assert _int(fields["BlobBase"]) == got.blob_base
            assert _int(fields["BlobLength"]) == got.blob_length
            checked += 1
        elif isinstance(got, IplEvent) and got.encoding == "ascii" and fields is not None:
            assert fields["String"] == got.text + ("\0" if got.nul_terminated else "")
            checked += 1
        elif isinstance(got, TextEvent) and ev.event_type == E.EV_EFI_ACTION:
            assert event == got.text
            checked += 1
        elif isinstance(got, GptEvent) and fields is not None:
            header = dict(fields["Header"])
            assert header["DiskGUID"] == str(got.header.disk_guid)
            assert _int(header["HeaderCRC32"]) == got.header.header_crc32
            assert _int(header["LastUsableLBA"]) == got.header.last_usable_lba
            assert _int(fields["NumberOfPartitions"]) == len(got.partitions)
            for p_want, p_got in zip(fields["Partitions"], got.partitions):
                p_want = dict(p_want)
                assert p_want["PartitionTypeGUID"] == str(p_got.partition_type_guid)
                assert p_want["UniquePartitionGUID"] == str(p_got.unique_partition_guid)
                assert _int(p_want["StartingLBA"]) == p_got.starting_lba
                assert _int(p_want["EndingLBA"]) == p_got.ending_lba
                assert p_want["PartitionName"] == p_got.partition_name
            checked += 1
    assert checked >= 1


def test_boot_order_values_match_the_bytes(corpus):
    log = parse((corpus / "tpm2-tools" / "event-bootorder.bin").read_bytes())
    (bo,) = [d for e in log.events if isinstance(d := e.decode(), UefiVariable) and d.name == "BootOrder"]
    assert bo.data.hex() == "010000000200"  # tpm2_eventlog's VariableData
    assert bo.value.values == (1, 0, 2)
    assert bo.summary() == "BootOrder: 0001,0000,0002"
