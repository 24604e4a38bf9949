#!/usr/bin/env python3
"""Boot Debian's signed shim -> GRUB -> Linux chain under QEMU/OVMF with a swtpm TPM 2.0 and
capture the genuine firmware event log, the TPM's PCRs and the IMA log as test fixtures.

Usage: make_fixtures.py [OUTDIR] [VARIANT ...]   (see make-fixtures.sh; docs/fixtures.md)

Only the system Python is needed (no third-party modules). Network: ``apt-get download`` only.
Downloads and build products are cached under $ATTESTD_QEMU_CACHE (default: <repo>/var/cache/qemu-boot,
which is git-ignored).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "qemu"
CACHE = Path(os.environ.get("ATTESTD_QEMU_CACHE", REPO / "var" / "cache" / "qemu-boot"))
BOOT_TIMEOUT = int(os.environ.get("ATTESTD_QEMU_TIMEOUT", "600"))

OVMF_DIR = Path("/usr/share/OVMF")
FIRMWARE = {
    True: ("OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"),  # SMM build, MS keys enrolled, SB enforced
    False: ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),  # no SMM, empty key stores -> SecureBoot=0
}

# Kernel command line. rootfstype=ramfs: without root=, 6.1 unpacks the initramfs into tmpfs, and IMA's
# tcb policy never measures tmpfs (dont_measure fsmagic=TMPFS_MAGIC); ramfs is measured.
BASE_CMDLINE = "console=ttyS0 rootfstype=ramfs ima_policy=tcb ima_template=ima-ng ima_hash=sha256 panic=-1"

VARIANTS = {
    # name: (secure boot, extra kernel args, GRUB loader commands)
    "sb": (True, "", ("linux", "initrd")),
    "sb-second": (True, "", ("linux", "initrd")),
    "sb-initsh": (True, "init=/bin/sh", ("linux", "initrd")),
    # Debian's GRUB 2.06 `linux` command only hands over to `linuxefi` when Secure Boot is enabled;
    # otherwise it uses the legacy x86 boot protocol, the kernel's EFI stub never runs, and the kernel
    # gets no TPM event log (no binary_bios_measurements). So Secure Boot off boots with linuxefi.
    "nosb": (False, "", ("linuxefi", "initrdefi")),
}

# Fixed identifiers so that rebuilding the disk gives byte-identical GPT (measured into PCR 5).
DISK_GUID = uuid.UUID("a77e57d0-0000-4000-8000-000000000001")
PART_GUID = uuid.UUID("a77e57d0-0000-4000-8000-000000000002")
ESP_TYPE = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
FAT_VOLID = "A77E57D0"
SECTOR = 512
DISK_SECTORS = 64 * 1024 * 1024 // SECTOR
PART_FIRST = 2048
PART_LAST = DISK_SECTORS - 2048 - 1


def log(msg: str) -> None:
    print(f"[make-fixtures {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def out(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


# ---------------------------------------------------------------------------------------------------
# Packages


def kernel_package() -> str:
    env = os.environ.get("ATTESTD_KERNEL_PKG")
    if env:
        return env
    deps = out(["apt-cache", "depends", "linux-image-amd64"])
    m = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*-amd64)\b", deps)
    if not m:
        raise SystemExit(f"cannot find the current signed kernel in: {deps!r}")
    return m.group(1)


def candidate_version(pkg: str) -> str:
    pol = out(["apt-cache", "policy", pkg])
    m = re.search(r"Candidate:\s*(\S+)", pol)
    if not m or m.group(1) == "(none)":
        raise SystemExit(f"no candidate for {pkg}; run apt-get update")
    return m.group(1)


def fetch_deb(pkg: str) -> Path:
    """apt-get download into the cache (once per version)."""
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    ver = candidate_version(pkg)
    # apt-get download names files pkg_version_arch.deb, with ':' in the epoch encoded as %3a
    fver = ver.replace(":", "%3a")
    for cand in debs.glob(f"{pkg}_*.deb"):
        if cand.name.startswith(f"{pkg}_{fver}_"):
            return cand
    log(f"apt-get download {pkg}={ver}")
    run(["apt-get", "download", "-q", f"{pkg}={ver}"], cwd=debs, stdout=subprocess.DEVNULL)
    for cand in debs.glob(f"{pkg}_{fver}_*.deb"):
        return cand
    raise SystemExit(f"apt-get download {pkg} produced no file")


def extract(deb: Path) -> Path:
    dest = CACHE / "extract" / deb.stem
    if not (dest / ".done").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        run(["dpkg-deb", "-x", str(deb), str(dest)])
        (dest / ".done").touch()
    return dest


def deb_field(deb: Path, field: str) -> str:
    return out(["dpkg-deb", "-f", str(deb), field]).strip()


def installed_version(pkg: str) -> str | None:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() or None


def sha256_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Initramfs


def build_initramfs(dest: Path) -> Path:
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise SystemExit("busybox-static is not installed")
    with tempfile.TemporaryDirectory(prefix="initramfs-") as td:
        root = Path(td) / "root"
        for d in ("bin", "dev", "proc", "sys", "tmp", "root"):
            (root / d).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        applets = out([str(busybox), "--list"]).split()
        for a in sorted(set(applets)):
            if a != "busybox":
                (root / "bin" / a).symlink_to("busybox")
        shutil.copy2(HERE / "init", root / "init")
        (root / "init").chmod(0o755)
        # Reproducible archive: fixed mtimes, root ownership, sorted names.
        for p in [root, *root.rglob("*")]:
            os.utime(p, (0, 0), follow_symlinks=False)
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        cpio = subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc", "--owner=0:0", "--reproducible"],
            input=("\n".join(names) + "\n").encode(), cwd=root, check=True, capture_output=True,
        ).stdout
        gz = subprocess.run(["gzip", "-n", "-9"], input=cpio, check=True, capture_output=True).stdout
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    tmp.write_bytes(gz)
    tmp.replace(dest)  # atomic: concurrent runs never see a half-written initrd
    return dest


# ---------------------------------------------------------------------------------------------------
# Disk image: GPT with one EFI System Partition (FAT), written without loop mounts.


def _gpt_header(my_lba: int, alt_lba: int, entries_lba: int, entries_crc: int) -> bytes:
    fmt = "<8sIIIIQQQQ16sQIII"
    fields = [b"EFI PART", 0x00010000, 92, 0, 0, my_lba, alt_lba, 34, DISK_SECTORS - 34,
              DISK_GUID.bytes_le, entries_lba, 128, 128, entries_crc]
    hdr = struct.pack(fmt, *fields)
    fields[3] = zlib.crc32(hdr)
    return struct.pack(fmt, *fields).ljust(SECTOR, b"\0")


def build_disk(dest: Path, files: dict[str, Path]) -> Path:
    """files: FAT path (e.g. 'EFI/BOOT/BOOTX64.EFI') -> source file."""
    part_sectors = PART_LAST - PART_FIRST + 1
    with tempfile.TemporaryDirectory(prefix="esp-") as td:
        part = Path(td) / "esp.fat"
        run(["mkfs.vfat", "-C", "--invariant", "-i", FAT_VOLID, "-n", "ESP", str(part),
             str(part_sectors * SECTOR // 1024)], stdout=subprocess.DEVNULL)
        env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
        dirs = sorted({str(Path(p).parent) for p in files} - {"."}, key=lambda s: s.count("/"))
        made: set[str] = set()
        for d in dirs:
            parts = d.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in made:
                    run(["mmd", "-i", str(part), f"::/{sub}"], env=env)
                    made.add(sub)
        for fat_path, src in files.items():
            run(["mcopy", "-m", "-i", str(part), str(src), f"::/{fat_path}"], env=env)
        fat = part.read_bytes()
    assert len(fat) == part_sectors * SECTOR, (len(fat), part_sectors * SECTOR)

    entry = struct.pack("<16s16sQQQ72s", ESP_TYPE.bytes_le, PART_GUID.bytes_le, PART_FIRST, PART_LAST, 0,
                        "EFI System Partition".encode("utf-16-le"))
    entries = entry.ljust(128 * 128, b"\0")
    ecrc = zlib.crc32(entries)
    mbr = bytearray(SECTOR)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                               min(DISK_SECTORS - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    with open(tmp, "wb") as f:
        f.truncate(DISK_SECTORS * SECTOR)
        f.write(mbr)
        f.write(_gpt_header(1, DISK_SECTORS - 1, 2, ecrc))
        f.write(entries)
        f.seek(PART_FIRST * SECTOR)
        f.write(fat)
        f.seek((DISK_SECTORS - 33) * SECTOR)
        f.write(entries)
        f.write(_gpt_header(DISK_SECTORS - 1, 1, DISK_SECTORS - 33, ecrc))
    tmp.replace(dest)
    return dest


def grub_cfg(extra_args: str, loader: tuple[str, str] = ("linux", "initrd")) -> str:
    args = BASE_CMDLINE + (f" {extra_args}" if extra_args else "")
    return (
        "# attestd fixture boot (scripts/qemu-boot/make_fixtures.py)\n"
        "set timeout=0\n"
        "set default=0\n"
        "menuentry 'attestd fixture' {\n"
        f"\t{loader[0]} /vmlinuz {args}\n"
        f"\t{loader[1]} /initrd.img\n"
        "}\n"
    )


# ---------------------------------------------------------------------------------------------------
# Boot


def boot(disk: Path, secure_boot: bool, workdir: Path) -> tuple[str, str, float, list[str]]:
    """Boot once with a fresh swtpm and a fresh copy of the OVMF variable store.

    Returns (data-port text, console text, seconds, qemu argv)."""
    code, vars_tmpl = (OVMF_DIR / n for n in FIRMWARE[secure_boot])
    state = workdir / "tpm"
    state.mkdir()
    sock = workdir / "swtpm.ctrl"
    run(["swtpm_setup", "--tpm2", "--tpmstate", str(state), "--pcr-banks", "sha1,sha256",
         "--overwrite", "--logfile", str(workdir / "swtpm_setup.log")], stdout=subprocess.DEVNULL)
    swtpm = subprocess.Popen(
        ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}", "--ctrl", f"type=unixio,path={sock}",
         "--log", f"file={workdir / 'swtpm.log'},level=1", "--terminate"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        else:
            raise SystemExit("swtpm did not create its control socket")
        vars_copy = workdir / "OVMF_VARS.fd"
        shutil.copyfile(vars_tmpl, vars_copy)
        console, data = workdir / "console.log", workdir / "data.log"
        argv = ["qemu-system-x86_64",
                "-machine", "q35,smm=on,accel=tcg", "-m", "512", "-smp", "1",
                "-display", "none", "-vga", "none", "-monitor", "none", "-nic", "none", "-no-reboot",
                "-serial", f"file:{console}", "-serial", f"file:{data}"]
        if secure_boot:
            argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
            "-chardev", f"socket,id=chrtpm,path={sock}",
            "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0",
            "-drive", f"if=none,id=esp,format=raw,readonly=on,file={disk}",
            "-device", "virtio-blk-pci,drive=esp,bootindex=1",
        ]
        log(f"booting ({'Secure Boot' if secure_boot else 'no Secure Boot'}), timeout {BOOT_TIMEOUT}s")
        t0 = time.monotonic()
        q = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            qout, _ = q.communicate(timeout=BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(q.pid, signal.SIGKILL)
            q.wait()
            tail = console.read_text(errors="replace")[-3000:] if console.exists() else ""
            raise SystemExit(f"boot timed out after {BOOT_TIMEOUT}s; console tail:\n{tail}")
        except BaseException:  # e.g. Ctrl-C: QEMU runs in its own session, so stop it ourselves
            os.killpg(q.pid, signal.SIGKILL)
            q.wait()
            raise
        secs = time.monotonic() - t0
        if q.returncode != 0:
            raise SystemExit(f"qemu exited {q.returncode}: {qout.decode(errors='replace')}")
    finally:
        if swtpm.poll() is None:
            swtpm.terminate()
            try:
                swtpm.wait(5)
            except subprocess.TimeoutExpired:
                swtpm.kill()
                swtpm.wait()
    # Serial port 1 carries only the guest's dump (firmware, GRUB and kernel use serial port 0).
    return (data.read_text(errors="replace") if data.exists() else "",
            console.read_text(errors="replace") if console.exists() else "", secs, argv)


SECTION = re.compile(r"=====BEGIN (\S+)=====\r?\n(.*?)=====END \1=====", re.S)


def parse_dump(text: str) -> dict[str, str]:
    if "=====ATTESTD-FIXTURE-DONE=====" not in text:
        raise SystemExit(f"guest did not finish its dump (raw serial output under {CACHE / 'last-boot'})")
    return {m.group(1): m.group(2) for m in SECTION.finditer(text)}


def parse_pcrs(body: str) -> dict[str, dict[str, str]]:
    pcrs: dict[str, dict[str, str]] = {}
    for line in body.splitlines():
        f = line.split()
        if len(f) == 3:
            pcrs.setdefault(f[0], {})[f[1]] = f[2].lower()
    return pcrs


def b64(sections: dict[str, str], name: str) -> bytes:
    body = sections.get(name, "MISSING")
    if body.strip() == "MISSING":
        raise SystemExit(f"guest could not read {name} (raw serial output under {CACHE / 'last-boot'})")
    return base64.b64decode("".join(body.split()))


# ---------------------------------------------------------------------------------------------------


def prepare() -> dict:
    """Fetch packages, build initramfs; returns paths and package metadata (cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    kpkg = kernel_package()
    pkgs = {"shim": "shim-signed", "grub": "grub-efi-amd64-signed", "kernel": kpkg}
    meta_pkgs, trees = {}, {}
    for role, pkg in pkgs.items():
        deb = fetch_deb(pkg)
        trees[role] = extract(deb)
        meta_pkgs[role] = {"package": pkg, "version": deb_field(deb, "Version"), "deb": deb.name,
                           "source": deb_field(deb, "Source") or pkg}
    shim = trees["shim"] / "usr/lib/shim/shimx64.efi.signed"
    grub = trees["grub"] / "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
    kver = kpkg.removeprefix("linux-image-")
    kernel = trees["kernel"] / f"boot/vmlinuz-{kver}"
    for p in (shim, grub, kernel):
        if not p.is_file():
            raise SystemExit(f"missing {p}")
    initrd = build_initramfs(CACHE / "initrd.img")
    meta_pkgs["shim"]["file"] = "usr/lib/shim/shimx64.efi.signed"
    meta_pkgs["grub"]["file"] = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
    meta_pkgs["kernel"]["file"] = f"boot/vmlinuz-{kver}"
    for role, p in (("shim", shim), ("grub", grub), ("kernel", kernel)):
        meta_pkgs[role]["sha256"] = sha256_file(p)
    for role, pkg in (("ovmf", "ovmf"), ("swtpm", "swtpm"), ("qemu", "qemu-system-x86"),
                      ("busybox", "busybox-static")):
        meta_pkgs[role] = {"package": pkg, "version": installed_version(pkg)}
    meta_pkgs["initramfs"] = {"sha256": sha256_file(initrd), "init": "scripts/qemu-boot/init"}
    return {"shim": shim, "grub": grub, "kernel": kernel, "initrd": initrd, "packages": meta_pkgs}


def make_variant(name: str, prep: dict, outdir: Path) -> dict:
    secure_boot, extra, loader = VARIANTS[name]
    cfg = grub_cfg(extra, loader)
    with tempfile.TemporaryDirectory(prefix=f"boot-{name}-") as td:
        work = Path(td)
        (work / "grub.cfg").write_text(cfg)
        # shim at the removable-media path loads grubx64.efi from its own directory (there is no
        # fbx64.efi, so no fallback/boot-entry creation). Debian's signed GRUB has the prefix
        # /EFI/debian built in; its embedded config sources $prefix/grub.cfg when $prefix exists.
        layout = {
            "EFI/BOOT/BOOTX64.EFI": prep["shim"],
            "EFI/BOOT/grubx64.efi": prep["grub"],
            "EFI/debian/grub.cfg": work / "grub.cfg",
            "vmlinuz": prep["kernel"],
            "initrd.img": prep["initrd"],
        }
        # The disk image is cached by content: every file's path and hash, and the builder's own code.
        key = hashlib.sha256(json.dumps(
            [[k, sha256_file(v)] for k, v in sorted(layout.items())]
            + [sha256_file(Path(__file__))]).encode()).hexdigest()[:16]
        disk = CACHE / "disks" / f"esp-{key}.img"
        if not disk.exists():
            disk.parent.mkdir(parents=True, exist_ok=True)
            build_disk(disk, layout)
        data, console, secs, argv = boot(disk, secure_boot, work)
        raw = CACHE / "last-boot" / name  # raw serial output, kept for debugging a failed parse
        raw.mkdir(parents=True, exist_ok=True)
        (raw / "data.log").write_text(data)
        (raw / "console.log").write_text(console)
        sections = parse_dump(data)

        target = outdir / name
        stage = outdir / f".{name}.tmp"
        shutil.rmtree(stage, ignore_errors=True)
        (stage / "ima").mkdir(parents=True)
        (stage / "binary_bios_measurements").write_bytes(b64(sections, "binary_bios_measurements"))
        (stage / "ima" / "binary_runtime_measurements").write_bytes(
            b64(sections, "binary_runtime_measurements"))
        (stage / "ima" / "ascii_runtime_measurements").write_bytes(
            b64(sections, "ascii_runtime_measurements"))
        pcrs = parse_pcrs(sections["pcrs"])
        after = parse_pcrs(sections["pcrs_after"])
        if not {"sha1", "sha256"} <= pcrs.keys():
            raise SystemExit(f"expected sha1 and sha256 PCR banks, got {sorted(pcrs)}")
        (stage / "pcrs.json").write_text(json.dumps(pcrs, indent=2) + "\n")
        (stage / "pcrs_after.json").write_text(json.dumps(after, indent=2) + "\n")
        (stage / "console.log").write_text(console)
        cmdline = sections.get("cmdline", "").strip()
        meta = {
            "variant": name,
            "secure_boot": secure_boot,
            "firmware": {"code": str(OVMF_DIR / FIRMWARE[secure_boot][0]),
                         "vars_template": str(OVMF_DIR / FIRMWARE[secure_boot][1])},
            "packages": prep["packages"],
            "grub_cfg": cfg,
            "esp_layout": ["EFI/BOOT/BOOTX64.EFI (shimx64.efi.signed)", "EFI/BOOT/grubx64.efi",
                           "EFI/debian/grub.cfg", "vmlinuz", "initrd.img"],
            "kernel_cmdline": cmdline,
            "guest_uname": sections.get("uname", "").strip(),
            "swtpm_pcr_banks": ["sha1", "sha256"],
            "qemu_argv": [a.replace(str(work), "$WORK").replace(str(CACHE), "$CACHE") for a in argv],
            "boot_seconds": round(secs, 1),
            "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "pcrs_changed_after_ima_read": sorted(
                f"{b}:{i}" for b in pcrs for i in pcrs[b] if after.get(b, {}).get(i) != pcrs[b][i]),
            "guest_sysinfo": sections.get("sysinfo", "").strip().splitlines(),
        }
        (stage / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        stage.replace(target)
    log(f"{name}: done in {secs:.1f}s -> {target}")
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("args", nargs="*", metavar="OUTDIR|VARIANT",
                    help=f"OUTDIR defaults to {DEFAULT_OUT.relative_to(REPO)}; variants default to all of "
                         f"{', '.join(VARIANTS)} (a first argument naming a variant is a variant)")
    args = ap.parse_args(argv)
    rest = list(args.args)
    args.outdir = Path(rest.pop(0)) if rest and rest[0] not in VARIANTS else DEFAULT_OUT
    args.variants = rest
    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {bad}; choose from {list(VARIANTS)}")
    for tool in ("qemu-system-x86_64", "swtpm", "swtpm_setup", "cpio", "gzip", "mkfs.vfat", "mcopy",
                 "mmd", "apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            raise SystemExit(f"missing tool {tool}: run scripts/install-system-deps.sh")
    args.outdir.mkdir(parents=True, exist_ok=True)
    prep = prepare()
    for name in args.variants or list(VARIANTS):
        make_variant(name, prep, args.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
