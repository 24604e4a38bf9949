"""Boot chain claims: what ran, in what order, with which command line.

From verified events only (TCG PC Client PFP 1.05 section 3.3.4 for the PCR usage):

* PCR 4, EV_EFI_BOOT_SERVICES_APPLICATION (PFP 10.4.2, ``UEFI_IMAGE_LOAD_EVENT``): every boot
  application with its Authenticode digest per bank and device path. Each is classified by its file
  name (``shim``, ``grub``, ``systemd-boot``, ``mokmanager``, ``fallback``, ``windows-boot-manager``,
  ``uki``, ``kernel``). An image without a file path was loaded from memory: after GRUB's ``linux``
  command or right after GRUB it is the ``kernel`` (shim's ``LoadImage`` of the kernel GRUB read); right after shim it is
  ``grub`` (shim's second stage); from a firmware volume it is a ``firmware-application``. A
  removable-media ``BOOTX64.EFI`` followed by GRUB is shim (how Debian and others install the
  fallback path).
* PCR 2 (and 0), EV_EFI_BOOT_SERVICES_DRIVER / EV_EFI_RUNTIME_SERVICES_DRIVER: UEFI drivers
  (option ROMs).
* PCR 8, EV_IPL (GRUB 2, ``grub-core/commands/tpm.c``): ``grub_cmd:`` every command GRUB ran,
  ``kernel_cmdline:`` the kernel command line (its first word is the kernel image path).
* PCR 9, EV_IPL: every file GRUB read (grub.cfg, kernel, initrd) with its digest; EV_EVENT_TAG
  with the Linux EFI stub's ``INITRD_EVENT_TAG_ID`` / ``LOAD_OPTIONS_EVENT_TAG_ID``.
* PCR 11 and 12 (systemd-stub, UKI): the measured PE sections and the command line; PCR 8 EV_IPL
  after systemd-boot (before v251 it measured the command line there).
* EV_SEPARATOR per PCR (PFP 10.4.1), EV_EFI_ACTION "Exit Boot Services Invocation" (PCR 5), and any
  event in PCR 17/18 (the dynamic root of trust: Intel TXT / AMD SKINIT / System Guard).

``kernel_debugging_disabled`` is false when the command line enables a kernel debugger:
``kgdboc=``, ``kgdbwait``, ``kgdbcon``, ``kgdbdbgp=``, ``ekgdboc=`` or ``kdb=`` (Linux
Documentation/process/debugging/kgdb.rst). It is ``None`` when no command line was measured.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Iterable

from attestd.eventlog.constants import EventType
from attestd.eventlog.data import ImageLoad, IplEvent, TaggedEvent
from attestd.eventlog.data.blobs import decode_separator
from attestd.eventlog.data.devicepath import MEDIA
from attestd.eventlog.data.strings import grub_string

__all__ = [
    "KERNEL_DEBUG_PARAMETERS",
    "BootApplication",
    "BootChainClaims",
    "GrubCommand",
    "MeasuredFile",
    "bootchain_claims",
]

E = EventType
KERNEL_DEBUG_PARAMETERS = ("kgdboc", "kgdbwait", "kgdbcon", "kgdbdbgp", "ekgdboc", "kdb")
_APP = int(E.EV_EFI_BOOT_SERVICES_APPLICATION)
_DRIVERS = (int(E.EV_EFI_BOOT_SERVICES_DRIVER), int(E.EV_EFI_RUNTIME_SERVICES_DRIVER))
_IPL = int(E.EV_IPL)
_TAG = int(E.EV_EVENT_TAG)
_SEPARATOR = int(E.EV_SEPARATOR)
_ACTION = int(E.EV_EFI_ACTION)


def _hex_digests(digests: dict[str, bytes]) -> dict[str, str]:
    return {bank: d.hex() for bank, d in digests.items()}


@dataclass(frozen=True, slots=True)
class BootApplication:
    """An EV_EFI_BOOT_SERVICES_APPLICATION (or driver) event, classified."""

    event: int
    pcr: int
    kind: str
    device_path: str
    file_path: str | None
    #: Authenticode digest per bank (PFP 10.4.2: the PE/COFF image digest)
    digests: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "pcr": self.pcr, "kind": self.kind, "devicePath": self.device_path,
                "filePath": self.file_path, "digests": dict(self.digests)}


@dataclass(frozen=True, slots=True)
class MeasuredFile:
    """A file a boot loader read and measured (GRUB: PCR 9), or the initrd the EFI stub measured."""

    event: int
    path: str
    digests: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "path": self.path, "digests": dict(self.digests)}


@dataclass(frozen=True, slots=True)
class GrubCommand:
    event: int
    command: str

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "command": self.command}


@dataclass(frozen=True, slots=True)
class BootChainClaims:
    applications: tuple[BootApplication, ...]
    drivers: tuple[BootApplication, ...]
    grub_commands: tuple[GrubCommand, ...]
    files: tuple[MeasuredFile, ...]
    #: the measured kernel command line as logged (``kernel_cmdline:`` value, or the stub's)
    kernel_command_line_raw: str | None
    kernel_command_line_event: int | None
    kernel: MeasuredFile | None
    initrd: MeasuredFile | None
    uki_measurements: tuple[MeasuredFile, ...]
    #: PCR -> meaning of each EV_SEPARATOR (``normal``, ``error``, ``wbcl``, ``other``)
    separators: dict[int, tuple[str, ...]]
    exit_boot_services: bool
    drtm_events: int
    _split: tuple[str | None, str | None] = field(default=(None, None), repr=False)

    @property
    def kernel_image_path(self) -> str | None:
        return self._split[0]

    @property
    def kernel_command_line(self) -> str | None:
        """The kernel's parameters: the measured command line without the kernel image path."""
        return self._split[1]

    @property
    def kernel_parameters(self) -> tuple[str, ...]:
        """The parameters as the kernel splits them: at spaces outside double quotes, quotes
        removed (``next_arg`` in lib/cmdline.c); backslashes are not escapes."""
        return _parameters(self.kernel_command_line)

    @property
    def kernel_debugging_disabled(self) -> bool | None:
        if self.kernel_command_line_raw is None:
            return None
        for p in self.kernel_parameters:
            key = p.split("=", 1)[0]
            if key in KERNEL_DEBUG_PARAMETERS:
                return False
        return True

    @property
    def boot_application_kinds(self) -> list[str]:
        out: list[str] = []
        for a in self.applications:
            if a.kind not in out:
                out.append(a.kind)
        return out

    @property
    def drtm_launched(self) -> bool:
        return self.drtm_events > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "applications": [a.to_json() for a in self.applications],
            "drivers": [d.to_json() for d in self.drivers],
            "grubCommands": [c.to_json() for c in self.grub_commands],
            "files": [f.to_json() for f in self.files],
            "kernelCommandLine": self.kernel_command_line,
            "kernelCommandLineMeasured": self.kernel_command_line_raw,
            "kernelCommandLineEvent": self.kernel_command_line_event,
            "kernelImagePath": self.kernel_image_path,
            "kernelDebuggingDisabled": self.kernel_debugging_disabled,
            "kernel": self.kernel.to_json() if self.kernel else None,
            "initrd": self.initrd.to_json() if self.initrd else None,
            "ukiMeasurements": [m.to_json() for m in self.uki_measurements],
            "separators": {str(k): list(v) for k, v in sorted(self.separators.items())},
            "exitBootServices": self.exit_boot_services,
            "drtmEvents": self.drtm_events,
        }


def _file_node(image: ImageLoad) -> str | None:
    path = None
    for node in image.device_path.nodes:
        if node.type == MEDIA and node.subtype == 0x04:
            path = node.text
    return path


def _classify(file_path: str | None, device_path: str, previous: str | None, linux_seen: bool) -> str:
    if file_path is None:
        if device_path.startswith("Fv(") or "FvFile(" in device_path:
            return "firmware-application"
        if linux_seen or previous == "grub":
            return "kernel"  # what GRUB loaded (after its `linux` command, when GRUB measures commands)
        if previous in ("shim", "bootloader"):
            return "grub"  # shim's second stage (DEFAULT_LOADER grubx64.efi), loaded from memory
        return "application"
    name = file_path.replace("/", "\\").rsplit("\\", 1)[-1].lower()
    if "shim" in name:
        return "shim"
    if "grub" in name:
        return "grub"
    if name.startswith("systemd-boot"):
        return "systemd-boot"
    if name.startswith("mm") and name.endswith(".efi"):
        return "mokmanager"
    if name.startswith("fb") and name.endswith(".efi"):
        return "fallback"
    if name == "bootmgfw.efi":
        return "windows-boot-manager"
    if name.startswith(("vmlinuz", "vmlinux", "bzimage")):
        return "kernel"
    if "\\efi\\linux\\" in file_path.replace("/", "\\").lower():
        return "uki"
    if name.startswith("boot") and name.endswith(".efi"):
        return "bootloader"
    return "application"


@functools.lru_cache(maxsize=256)
def _parameters(line: str | None) -> tuple[str, ...]:
    if not line:
        return ()
    if '"' not in line:
        return tuple(line.split())
    out: list[str] = []
    token: list[str] = []
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch.isspace() and not quoted:
            if token:
                out.append("".join(token))
                token = []
        else:
            token.append(ch)
    if token:
        out.append("".join(token))
    return tuple(out)


def _split_cmdline(raw: str | None) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    text = raw.strip()
    first, _, rest = text.partition(" ")
    if first.startswith(("/", "(")) and "=" not in first:
        return first, rest.strip()
    return None, text


def _command_path(command: str, verb: str) -> str | None:
    """The first path argument of a GRUB ``linux``/``initrd`` command."""
    parts = command.split()
    if not parts or parts[0] not in (verb, verb + "efi", verb + "16"):
        return None
    for p in parts[1:]:
        if not p.startswith("-"):
            return p
    return None


def bootchain_claims(events: Iterable[Any]) -> BootChainClaims:
    """Boot chain claims from the events of verified PCRs (see the module docstring)."""
    apps: list[BootApplication] = []
    drivers: list[BootApplication] = []
    commands: list[GrubCommand] = []
    files: list[MeasuredFile] = []
    uki: list[MeasuredFile] = []
    separators: dict[int, list[str]] = {}
    cmdline = None
    cmdline_event = None
    stub_cmdline = None
    stub_initrd = None
    exit_bs = False
    drtm = 0
    kernel_paths: list[str] = []
    initrd_paths: list[str] = []
    for e in events:
        et, pcr = e.event_type, e.pcr
        if pcr in (17, 18):
            drtm += 1
        if et == _APP and pcr == 4:
            image = e.decode()
            if not isinstance(image, ImageLoad):
                continue
            fp = _file_node(image)
            dp = image.device_path.text
            kind = _classify(fp, dp, apps[-1].kind if apps else None, bool(kernel_paths))
            apps.append(BootApplication(e.index, pcr, kind, dp, fp, _hex_digests(e.digests)))
        elif et in _DRIVERS:
            image = e.decode()
            if isinstance(image, ImageLoad):
                drivers.append(BootApplication(e.index, pcr, "driver", image.device_path.text, _file_node(image),
                                               _hex_digests(e.digests)))
        elif et == _IPL and pcr in (8, 9, 11, 12):
            grub = grub_string(e.data) if pcr == 8 else None
            if grub is not None:
                prefix, value, _ = grub
                if prefix == "grub_cmd":
                    commands.append(GrubCommand(e.index, value))
                    if value.startswith("linux"):
                        path = _command_path(value, "linux")
                        if path:
                            kernel_paths.append(path)
                    elif value.startswith("initrd"):
                        path = _command_path(value, "initrd")
                        if path:
                            initrd_paths.append(path)
                elif prefix in ("kernel_cmdline", "grub_kernel_cmdline"):
                    cmdline, cmdline_event = value, e.index
                continue
            ipl = e.decode()
            if not isinstance(ipl, IplEvent):
                continue
            if pcr == 8 and ipl.prefix is None and stub_cmdline is None and any(
                    a.kind == "systemd-boot" for a in apps):
                stub_cmdline = (ipl.text, e.index)  # systemd-boot before v251 measured it into PCR 8
            elif pcr == 9 and ipl.prefix is None:
                files.append(MeasuredFile(e.index, ipl.text, _hex_digests(e.digests)))
            elif pcr == 11:
                uki.append(MeasuredFile(e.index, ipl.text, _hex_digests(e.digests)))
            elif pcr == 12 and stub_cmdline is None:
                stub_cmdline = (ipl.text, e.index)
        elif et == _TAG and pcr == 9:
            tagged = e.decode()
            if isinstance(tagged, TaggedEvent):
                if tagged.name == "INITRD_EVENT_TAG_ID":
                    stub_initrd = MeasuredFile(e.index, tagged.text or "initrd", _hex_digests(e.digests))
                elif tagged.name == "LOAD_OPTIONS_EVENT_TAG_ID" and stub_cmdline is None:
                    stub_cmdline = (tagged.text or "", e.index)
        elif et == _SEPARATOR:
            separators.setdefault(pcr, []).append(decode_separator(e.data).meaning)
        elif et == _ACTION and pcr == 5 and e.data.startswith(b"Exit Boot Services Invocation"):
            exit_bs = True
    _mark_shim(apps)
    if cmdline is None and stub_cmdline is not None:
        cmdline, cmdline_event = stub_cmdline
    kernel = _find_file(files, kernel_paths, ("vmlinuz", "vmlinux", "bzimage"))
    initrd = _find_file(files, initrd_paths, ("initrd", "initramfs")) or stub_initrd
    return BootChainClaims(
        applications=tuple(apps), drivers=tuple(drivers), grub_commands=tuple(commands), files=tuple(files),
        kernel_command_line_raw=cmdline, kernel_command_line_event=cmdline_event, kernel=kernel, initrd=initrd,
        uki_measurements=tuple(uki), separators={k: tuple(v) for k, v in separators.items()},
        exit_boot_services=exit_bs, drtm_events=drtm, _split=_split_cmdline(cmdline))


def _mark_shim(apps: list[BootApplication]) -> None:
    """A removable-media ``BOOTx64.EFI`` immediately followed by GRUB is shim."""
    for i, a in enumerate(apps[:-1]):
        if a.kind == "bootloader" and apps[i + 1].kind == "grub":
            apps[i] = BootApplication(a.event, a.pcr, "shim", a.device_path, a.file_path, a.digests)


def _find_file(files: list[MeasuredFile], paths: list[str], prefixes: tuple[str, ...]) -> MeasuredFile | None:
    """The measured file the last ``linux``/``initrd`` command named, else one named like one."""
    for path in reversed(paths):
        for f in reversed(files):
            if f.path == path or f.path.endswith(")" + path):
                return f
    for f in reversed(files):
        name = f.path.rsplit("/", 1)[-1].lower()
        if name.startswith(prefixes):
            return f
    return None
