"""EFI device paths and their UEFI text representation.

Wire format: UEFI 2.10 section 10.3 "Device Path Nodes": every node is ``EFI_DEVICE_PATH_PROTOCOL``
(``Type`` u8, ``SubType`` u8, ``Length`` u16 including this 4-byte header) followed by
node-specific data; an "End Entire Device Path" node (0x7F/0xFF) ends a path and an "End This
Instance" node (0x7F/0x01) separates instances of a multi-instance path.

Text: UEFI 2.10 section 10.6.1 "Device Path Text Representation" (and edk2's
``DevicePathToText``): ``PciRoot(0x0)/Pci(0x2,0x0)/HD(1,GPT,<guid>,0x800,0x100000)/\\EFI\\BOOT\\BOOTX64.EFI``.
File-path nodes print as the path itself; nodes without a text form print generically as
``Path(type,subtype,hexdata)``.
"""

from __future__ import annotations

import ipaddress
import struct
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from attestd.eventlog.data.base import fail, reader
from attestd.eventlog.data.text import utf16_text

__all__ = ["DevicePathNode", "DevicePath", "parse_device_paths", "parse_device_path", "render_device_paths"]

HARDWARE, ACPI, MESSAGING, MEDIA, BBS, END = 0x01, 0x02, 0x03, 0x04, 0x05, 0x7F
END_ENTIRE, END_INSTANCE = 0xFF, 0x01

_TYPE_NAMES = {
    HARDWARE: "hardware", ACPI: "acpi", MESSAGING: "messaging", MEDIA: "media", BBS: "bbs", END: "end"
}


@dataclass(frozen=True, slots=True)
class DevicePathNode:
    """One ``EFI_DEVICE_PATH_PROTOCOL`` node (UEFI 2.10, 10.3.1): type, subtype, data and its text."""

    type: int
    subtype: int
    data: bytes
    text: str
    #: absolute offset of the node header
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "type_name": _TYPE_NAMES.get(self.type, "unknown"),
            "subtype": self.subtype,
            "text": self.text,
            "data": self.data.hex(),
        }


@dataclass(frozen=True, slots=True)
class DevicePath:
    """One device path: its nodes up to (not including) the End Entire node, as UEFI text."""

    nodes: tuple[DevicePathNode, ...]
    #: False when the buffer ended without an End Entire Device Path node.
    terminated: bool = True

    @property
    def text(self) -> str:
        parts: list[str] = []
        out: list[str] = []
        for node in self.nodes:
            if node.type == END and node.subtype == END_INSTANCE:
                out.append("/".join(parts))
                parts = []
            else:
                parts.append(node.text)
        out.append("/".join(parts))
        return ",".join(out)

    def __str__(self) -> str:
        return self.text

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "terminated": self.terminated, "nodes": [n.to_json() for n in self.nodes]}


def render_device_paths(paths: tuple[DevicePath, ...]) -> str:
    """Text of several device paths (as in a load option's FilePathList), separated by ``;``."""
    return ";".join(p.text for p in paths)


def parse_device_path(data: bytes, *, base_offset: int = 0) -> DevicePath:
    """Parse exactly one device path filling ``data`` (an empty buffer is an empty path)."""
    paths = parse_device_paths(data, base_offset=base_offset)
    if not paths:
        return DevicePath((), terminated=False)
    if len(paths) > 1:
        # several paths in one buffer: keep them as instances of one path for display
        nodes: list[DevicePathNode] = []
        for i, p in enumerate(paths):
            if i:
                nodes.append(DevicePathNode(END, END_INSTANCE, b"", ",", p.nodes[0].offset if p.nodes else 0))
            nodes.extend(p.nodes)
        return DevicePath(tuple(nodes), paths[-1].terminated)
    return paths[0]


def parse_device_paths(data: bytes, *, base_offset: int = 0) -> tuple[DevicePath, ...]:
    """Parse every device path packed in ``data`` (UEFI 2.10, 3.1.3 ``FilePathList``).

    A node shorter than its 4-byte header or running past the buffer is an
    ``eventlog.data.device_path`` error. Zero bytes after the last End Entire node (padding some
    firmware adds) are ignored.
    """
    r = reader(data, base_offset)
    paths: list[DevicePath] = []
    nodes: list[DevicePathNode] = []
    while not r.at_end():
        if nodes == [] and not any(data[r.pos :]) and paths:
            break  # zero padding after a complete path
        start = r.offset
        ntype = r.u8("EFI_DEVICE_PATH_PROTOCOL.Type")
        subtype = r.u8("EFI_DEVICE_PATH_PROTOCOL.SubType")
        length = r.u16("EFI_DEVICE_PATH_PROTOCOL.Length")
        if length < 4:
            raise fail(
                "device_path",
                f"device path node length {length} is shorter than its 4-byte header",
                field="EFI_DEVICE_PATH_PROTOCOL.Length",
                offset=start + 2,
            )
        if length - 4 > r.remaining:
            raise fail(
                "device_path",
                f"device path node declares {length} bytes but only {r.remaining + 4} remain",
                field="EFI_DEVICE_PATH_PROTOCOL.Length",
                offset=start + 2,
            )
        body = r.bytes(length - 4, "EFI_DEVICE_PATH_PROTOCOL.Data")
        if ntype == END and subtype == END_ENTIRE:
            paths.append(DevicePath(tuple(nodes), True))
            nodes = []
            continue
        if ntype == END and subtype == END_INSTANCE:
            nodes.append(DevicePathNode(ntype, subtype, body, ",", start))
            continue
        nodes.append(DevicePathNode(ntype, subtype, body, node_text(ntype, subtype, body), start))
    if nodes:
        paths.append(DevicePath(tuple(nodes), False))
    return tuple(paths)


# -- node text ---------------------------------------------------------------------------------


def node_text(ntype: int, subtype: int, body: bytes) -> str:
    """UEFI text of one node; falls back to ``Path(type,subtype,hex)`` for unknown or short nodes."""
    fn = _RENDERERS.get((ntype, subtype))
    if fn is not None:
        try:
            text = fn(body)
        except (struct.error, IndexError, ValueError):
            text = None
        if text is not None:
            return text
    if ntype == MEDIA and subtype == 0x04:
        return _file_path(body)
    return f"Path({ntype},{subtype},{body.hex()})" if body else f"Path({ntype},{subtype})"


def _u(fmt: str, body: bytes, off: int = 0) -> tuple:
    return struct.unpack_from("<" + fmt, body, off)


def _guid(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=bytes(raw[:16])))


def _need(body: bytes, n: int) -> None:
    if len(body) < n:
        raise ValueError("short node")


def _vendor(prefix: str) -> Callable[[bytes], str]:
    def render(body: bytes) -> str:
        _need(body, 16)
        guid = _guid(body)
        rest = body[16:]
        return f"{prefix}({guid},{rest.hex()})" if rest else f"{prefix}({guid})"

    return render


def _pci(body: bytes) -> str:
    _need(body, 2)
    function, device = body[0], body[1]
    return f"Pci(0x{device:x},0x{function:x})"


def _memmap(body: bytes) -> str:
    _need(body, 20)
    mtype, start, end = _u("IQQ", body)
    return f"MemoryMapped(0x{mtype:x},0x{start:x},0x{end:x})"


_PNP = {
    0x0A03: "PciRoot",
    0x0A08: "PcieRoot",
    0x0604: "Floppy",
    0x0301: "Keyboard",
    0x0501: "Serial",
    0x0401: "ParallelPort",
}


def _eisa(hid: int) -> str:
    """EISA PNP id (``PNP0A03``) of a compressed HID whose low word is 0x41D0."""
    return f"PNP{hid >> 16:04X}"


def _acpi(body: bytes) -> str:
    _need(body, 8)
    hid, uid = _u("II", body)
    if hid & 0xFFFF == 0x41D0:
        name = _PNP.get(hid >> 16)
        if name is not None:
            return f"{name}(0x{uid:x})"
        return f"Acpi({_eisa(hid)},0x{uid:x})"
    return f"Acpi(0x{hid:08x},0x{uid:x})"


def _cstr(raw: bytes, pos: int) -> tuple[str, int]:
    end = raw.find(b"\0", pos)
    if end < 0:
        end = len(raw)
    return raw[pos:end].decode("ascii", "replace"), end + 1


def _acpi_ex(body: bytes) -> str:
    _need(body, 12)
    hid, uid, cid = _u("III", body)
    hidstr, pos = _cstr(body, 12)
    uidstr, pos = _cstr(body, pos)
    cidstr, pos = _cstr(body, pos)

    def eid(v: int) -> str:
        return _eisa(v) if v & 0xFFFF == 0x41D0 else f"0x{v:08x}"

    return f"AcpiEx({eid(hid)},{eid(cid)},0x{uid:x},{hidstr},{cidstr},{uidstr})"


def _acpi_adr(body: bytes) -> str:
    _need(body, 4)
    adrs = [f"0x{v:x}" for (v,) in struct.iter_unpack("<I", body[: len(body) - len(body) % 4])]
    return f"AcpiAdr({','.join(adrs)})"


def _atapi(body: bytes) -> str:
    _need(body, 4)
    ps, ms, lun = _u("BBH", body)
    return f"Ata({'Secondary' if ps else 'Primary'},{'Slave' if ms else 'Master'},0x{lun:x})"


def _scsi(body: bytes) -> str:
    _need(body, 4)
    pun, lun = _u("HH", body)
    return f"Scsi(0x{pun:x},0x{lun:x})"


def _fibre(body: bytes) -> str:
    _need(body, 20)
    _, wwn, lun = _u("IQQ", body)
    return f"Fibre(0x{wwn:x},0x{lun:x})"


def _i1394(body: bytes) -> str:
    _need(body, 12)
    _, guid = _u("IQ", body)
    return f"I1394({guid:016x})"


def _usb(body: bytes) -> str:
    _need(body, 2)
    return f"USB(0x{body[0]:x},0x{body[1]:x})"


def _usb_class(body: bytes) -> str:
    _need(body, 7)
    vid, pid, cls, sub, proto = _u("HHBBB", body)
    return f"UsbClass(0x{vid:x},0x{pid:x},0x{cls:x},0x{sub:x},0x{proto:x})"


def _usb_wwid(body: bytes) -> str:
    _need(body, 6)
    iface, vid, pid = _u("HHH", body)
    serial = utf16_text(body[6:])
    return f'UsbWwid(0x{vid:x},0x{pid:x},0x{iface:x},"{serial}")'


def _unit(body: bytes) -> str:
    _need(body, 1)
    return f"Unit(0x{body[0]:x})"


def _sata(body: bytes) -> str:
    _need(body, 6)
    hba, pm, lun = _u("HHH", body)
    return f"Sata(0x{hba:x},0x{pm:x},0x{lun:x})"


def _i2o(body: bytes) -> str:
    _need(body, 4)
    return f"I2O(0x{_u('I', body)[0]:x})"


def _mac(body: bytes) -> str:
    _need(body, 33)
    iftype = body[32]
    size = 6 if iftype in (0, 1) else 32
    return f"MAC({body[:size].hex()},0x{iftype:x})"


def _proto(p: int) -> str:
    return {6: "TCP", 17: "UDP"}.get(p, f"0x{p:x}")


def _ipv4(body: bytes) -> str:
    _need(body, 15)
    local = ipaddress.IPv4Address(body[0:4])
    remote = ipaddress.IPv4Address(body[4:8])
    _lport, _rport, proto, static = _u("HHHB", body, 8)
    text = f"IPv4({remote},{_proto(proto)},{'Static' if static else 'DHCP'},{local}"
    if len(body) >= 23:
        text += f",{ipaddress.IPv4Address(body[15:19])},{ipaddress.IPv4Address(body[19:23])}"
    return text + ")"


def _ipv6(body: bytes) -> str:
    _need(body, 38)
    local = ipaddress.IPv6Address(body[0:16])
    remote = ipaddress.IPv6Address(body[16:32])
    _lport, _rport, proto = _u("HHH", body, 32)
    origin_code = body[38] if len(body) > 38 else 0
    origin = {0: "Static", 1: "StatelessAutoConfigure"}.get(origin_code, "StatefulAutoConfigure")
    text = f"IPv6({remote},{_proto(proto)},{origin},{local}"
    if len(body) >= 56:
        text += f",{body[39]},{ipaddress.IPv6Address(body[40:56])}"
    return text + ")"


def _uart(body: bytes) -> str:
    _need(body, 15)
    _, baud, databits, parity, stop = _u("IQBBB", body)
    p = {0: "D", 1: "N", 2: "E", 3: "O", 4: "M", 5: "S"}.get(parity, f"0x{parity:x}")
    s = {0: "D", 1: "1", 2: "1.5", 3: "2"}.get(stop, f"0x{stop:x}")
    b = "DEFAULT" if baud == 0 else str(baud)
    d = "DEFAULT" if databits == 0 else str(databits)
    return f"Uart({b},{d},{p},{s})"


_VENMSG_TERMINALS = {
    "e0c14753-f9be-11d2-9a0c-0090273fc14d": "VenPcAnsi()",
    "dfa66065-b419-11d3-9a2d-0090273fc14d": "VenVt100()",
    "7baec70b-57e0-4c76-8e87-2f9e28088343": "VenVt100Plus()",
    "ad15a0d6-8bec-4acf-a073-d01de77e2d88": "VenUtf8()",
}


def _venmsg(body: bytes) -> str:
    _need(body, 16)
    named = _VENMSG_TERMINALS.get(_guid(body))
    if named is not None and len(body) == 16:
        return named
    return _vendor("VenMsg")(body)


def _vlan(body: bytes) -> str:
    _need(body, 2)
    return f"Vlan({_u('H', body)[0]})"


def _nvme(body: bytes) -> str:
    _need(body, 12)
    nsid = _u("I", body)[0]
    eui = body[4:12]
    return f"NVMe(0x{nsid:x},{'-'.join(f'{b:02X}' for b in reversed(eui))})"


def _uri(body: bytes) -> str:
    text = body.rstrip(b"\0").decode("ascii", "replace")
    return f"Uri({text})"


def _ufs(body: bytes) -> str:
    _need(body, 2)
    return f"UFS(0x{body[0]:x},0x{body[1]:x})"


def _sd(body: bytes) -> str:
    _need(body, 1)
    return f"SD(0x{body[0]:x})"


def _emmc(body: bytes) -> str:
    _need(body, 1)
    return f"eMMC(0x{body[0]:x})"


def _wifi(body: bytes) -> str:
    text = body.rstrip(b"\0").decode("ascii", "replace")
    return f"Wi-Fi({text})"


def _iscsi(body: bytes) -> str:
    _need(body, 18)
    proto, options, lun, tpgt = _u("HHQH", body)
    name = body[18:].rstrip(b"\0").decode("ascii", "replace")
    return f"iSCSI({name},0x{tpgt:x},0x{lun:016x},0x{options:x},0x{proto:x})"


def _hd(body: bytes) -> str:
    _need(body, 38)
    part, start, size = _u("IQQ", body)
    sig = body[20:36]
    sigtype = body[37]
    if sigtype == 1:
        return f"HD({part},MBR,0x{_u('I', sig)[0]:08x},0x{start:x},0x{size:x})"
    if sigtype == 2:
        return f"HD({part},GPT,{_guid(sig)},0x{start:x},0x{size:x})"
    return f"HD({part},{sigtype},0,0x{start:x},0x{size:x})"


def _cdrom(body: bytes) -> str:
    _need(body, 20)
    entry, start, size = _u("IQQ", body)
    return f"CDROM(0x{entry:x},0x{start:x},0x{size:x})"


def _file_path(body: bytes) -> str:
    return utf16_text(body)


def _media_protocol(body: bytes) -> str:
    _need(body, 16)
    return f"Media({_guid(body)})"


def _fvfile(body: bytes) -> str:
    _need(body, 16)
    return f"FvFile({_guid(body)})"


def _fv(body: bytes) -> str:
    _need(body, 16)
    return f"Fv({_guid(body)})"


def _offset(body: bytes) -> str:
    _need(body, 20)
    _, start, end = _u("IQQ", body)
    return f"Offset(0x{start:x},0x{end:x})"


def _ramdisk(body: bytes) -> str:
    _need(body, 34)
    start, end = _u("QQ", body)
    guid = _guid(body[16:32])
    instance = _u("H", body, 32)[0]
    return f"RamDisk(0x{start:x},0x{end:x},{instance},{guid})"


_BBS_TYPES = {1: "Floppy", 2: "HD", 3: "CDROM", 4: "PCMCIA", 5: "USB", 6: "Network"}


def _bbs(body: bytes) -> str:
    _need(body, 4)
    dtype, flags = _u("HH", body)
    desc = body[4:].split(b"\0", 1)[0].decode("ascii", "replace")
    return f"BBS({_BBS_TYPES.get(dtype, f'0x{dtype:x}')},{desc},0x{flags:x})"


def _ctrl(body: bytes) -> str:
    _need(body, 4)
    return f"Ctrl(0x{_u('I', body)[0]:x})"


def _pccard(body: bytes) -> str:
    _need(body, 1)
    return f"PcCard(0x{body[0]:x})"


_RENDERERS: dict[tuple[int, int], Callable[[bytes], str]] = {
    (HARDWARE, 0x01): _pci,
    (HARDWARE, 0x02): _pccard,
    (HARDWARE, 0x03): _memmap,
    (HARDWARE, 0x04): _vendor("VenHw"),
    (HARDWARE, 0x05): _ctrl,
    (ACPI, 0x01): _acpi,
    (ACPI, 0x02): _acpi_ex,
    (ACPI, 0x03): _acpi_adr,
    (MESSAGING, 0x01): _atapi,
    (MESSAGING, 0x02): _scsi,
    (MESSAGING, 0x03): _fibre,
    (MESSAGING, 0x04): _i1394,
    (MESSAGING, 0x05): _usb,
    (MESSAGING, 0x06): _i2o,
    (MESSAGING, 0x0A): _venmsg,
    (MESSAGING, 0x0B): _mac,
    (MESSAGING, 0x0C): _ipv4,
    (MESSAGING, 0x0D): _ipv6,
    (MESSAGING, 0x0E): _uart,
    (MESSAGING, 0x0F): _usb_class,
    (MESSAGING, 0x10): _usb_wwid,
    (MESSAGING, 0x11): _unit,
    (MESSAGING, 0x12): _sata,
    (MESSAGING, 0x13): _iscsi,
    (MESSAGING, 0x14): _vlan,
    (MESSAGING, 0x17): _nvme,
    (MESSAGING, 0x18): _uri,
    (MESSAGING, 0x19): _ufs,
    (MESSAGING, 0x1A): _sd,
    (MESSAGING, 0x1C): _wifi,
    (MESSAGING, 0x1D): _emmc,
    (MEDIA, 0x01): _hd,
    (MEDIA, 0x02): _cdrom,
    (MEDIA, 0x03): _vendor("VenMedia"),
    (MEDIA, 0x04): _file_path,
    (MEDIA, 0x05): _media_protocol,
    (MEDIA, 0x06): _fvfile,
    (MEDIA, 0x07): _fv,
    (MEDIA, 0x08): _offset,
    (MEDIA, 0x09): _ramdisk,
    (BBS, 0x01): _bbs,
}
