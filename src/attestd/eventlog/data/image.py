"""UEFI_IMAGE_LOAD_EVENT: the data of EV_EFI_BOOT_SERVICES_APPLICATION/DRIVER and RUNTIME_SERVICES_DRIVER.

TCG PFP 1.05, section 10.2.3 ``UEFI_IMAGE_LOAD_EVENT`` (PFP 10.4.2 for when it is logged)::

    UEFI_PHYSICAL_ADDRESS ImageLocationInMemory;   // UINT64
    UINT64                ImageLengthInMemory;
    UINT64                ImageLinkTimeAddress;
    UINT64                LengthOfDevicePath;
    UEFI_DEVICE_PATH      DevicePath[LengthOfDevicePath];
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attestd.eventlog.data.base import EventData, fail, reader
from attestd.eventlog.data.devicepath import HARDWARE, MEDIA, DevicePath, parse_device_path

__all__ = ["ImageLoad", "decode_image_load"]


@dataclass(frozen=True, slots=True)
class ImageLoad(EventData):
    """``UEFI_IMAGE_LOAD_EVENT`` (PFP 1.05, 10.2.3)."""

    kind: ClassVar[str] = "image_load"
    image_location_in_memory: int
    image_length_in_memory: int
    image_link_time_address: int
    length_of_device_path: int
    device_path: DevicePath
    trailing: bytes = b""

    @property
    def warnings(self) -> tuple[str, ...]:
        if self.trailing:
            return (f"{len(self.trailing)} bytes after the device path (ignored)",)
        return ()

    @property
    def load_source_hint(self) -> str | None:
        """``"PciMmioSource"`` for an image read from a PCI device's option ROM.

        That is a device path with a PCI node followed by a relative-offset-range media node
        (UEFI 2.10, 10.3.5.8), as go-attestation's ``DriverLoadSourceHints`` classifies it.
        """
        seen_pci = False
        for node in self.device_path.nodes:
            if node.type == HARDWARE and node.subtype == 0x01:
                seen_pci = True
            elif seen_pci and node.type == MEDIA and node.subtype == 0x08:
                return "PciMmioSource"
        return None

    def summary(self) -> str:
        path = self.device_path.text or "(no device path)"
        return f"{path} [0x{self.image_location_in_memory:x}+0x{self.image_length_in_memory:x}]"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "image_location_in_memory": self.image_location_in_memory,
            "image_length_in_memory": self.image_length_in_memory,
            "image_link_time_address": self.image_link_time_address,
            "length_of_device_path": self.length_of_device_path,
            "device_path": self.device_path.text,
            "device_path_nodes": [n.to_json() for n in self.device_path.nodes],
        }
        if self.load_source_hint:
            out["load_source_hint"] = self.load_source_hint
        if self.trailing:
            out["trailing"] = self.trailing.hex()
        return out


def decode_image_load(data: bytes, *, base_offset: int = 0) -> ImageLoad:
    r = reader(data, base_offset)
    location = r.u64("UEFI_IMAGE_LOAD_EVENT.ImageLocationInMemory")
    length = r.u64("UEFI_IMAGE_LOAD_EVENT.ImageLengthInMemory")
    link = r.u64("UEFI_IMAGE_LOAD_EVENT.ImageLinkTimeAddress")
    dp_len_off = r.offset
    dp_len = r.u64("UEFI_IMAGE_LOAD_EVENT.LengthOfDevicePath")
    if dp_len > r.remaining:
        raise fail(
            "truncated",
            f"LengthOfDevicePath {dp_len} exceeds the {r.remaining} bytes left",
            field="UEFI_IMAGE_LOAD_EVENT.LengthOfDevicePath",
            offset=dp_len_off,
        )
    dp_off = r.offset
    raw = r.bytes(dp_len, "UEFI_IMAGE_LOAD_EVENT.DevicePath")
    path = parse_device_path(raw, base_offset=dp_off)
    return ImageLoad(location, length, link, dp_len, path, r.rest())
