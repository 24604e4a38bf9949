"""Generator of realistic IMA runtime measurement lists, with independently computed PCRs.

Writes the same list in both kernel forms - ``binary_runtime_measurements`` and
``ascii_runtime_measurements`` (layouts: security/integrity/ima/ima_fs.c ``ima_measurements_show``
and ``ima_ascii_measurements_show``; field encodings: ima_template_lib.c) - and computes the
expected PCR values with plain hashlib, without using :mod:`attestd.ima`:

* template hash = SHA-1 over ``u32 len || data`` of every field (legacy ``ima``: ``d || n`` padded
  to 256 bytes); SHA-1 bank extends it, other banks extend the template digest with their own hash;
* violations log an all-zero template hash and extend 0xFF... into every bank.

Used by the tests (round trips, tampering) and by the benchmark::

    python -m attestd.testing.imagen 100000 /tmp/ima.bin [--ascii /tmp/ima.txt] [--seed 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import struct
import sys
from dataclasses import dataclass, field
from typing import Sequence

__all__ = ["GeneratedList", "generate", "sign_v2", "TEMPLATE_FORMATS"]

#: template name -> field ids (Documentation/security/IMA-templates.rst)
TEMPLATE_FORMATS = {
    "ima": "d|n",
    "ima-ng": "d-ng|n-ng",
    "ima-sig": "d-ng|n-ng|sig",
    "ima-buf": "d-ng|n-ng|buf",
    "ima-modsig": "d-ng|n-ng|sig|d-modsig|modsig",
    "ima-ngv2": "d-ngv2|n-ng",
    "ima-sigv2": "d-ngv2|n-ng|sig",
}
_HEX_FIELDS = {"sig", "buf", "modsig", "evmsig"}

_DIRS = ("/usr/bin", "/usr/sbin", "/usr/lib64", "/usr/libexec", "/etc", "/usr/lib/systemd",
         "/usr/lib/modules/6.8.0-45-generic/kernel/drivers/net", "/usr/share/locale", "/var/lib/dpkg")
_NAMES = ("bash", "systemd", "ld-linux-x86-64.so.2", "libc.so.6", "libssl.so.3", "sshd", "python3.12",
          "dbus-daemon", "journald.conf", "e1000e.ko", "libcrypto.so.3", "agetty", "udevadm", "cron", "ls",
          "cat", "grep", "sed", "libz.so.1", "libpam.so.0", "nsswitch.conf", "passwd", "ld.so.cache")


@dataclass(frozen=True, slots=True)
class GeneratedList:
    """A generated list in both forms, and what a correct replay must give."""

    binary: bytes
    ascii: bytes
    #: bank -> PCR index -> final value, computed independently.
    expected: dict[str, dict[int, bytes]]
    #: bank -> PCR10 value after each entry (``running[bank][k]`` covers entries 0..k).
    running_pcr10: dict[str, list[bytes]]
    #: byte offset of each entry in ``binary``, and of each line in ``ascii``.
    offsets: list[int]
    line_offsets: list[int]
    violations: list[int]
    template_names: list[str]
    #: index of entries carrying a real signature made with ``signer`` (ima-sig / ima-modsig).
    signed: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.offsets)


def _keyid(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(public_key, rsa.RSAPublicKey):
        bits = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    else:
        bits = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return hashlib.sha1(bits).digest()[-4:]


_HASH_ALGO_IDS = {"sha1": 2, "sha256": 4, "sha384": 5, "sha512": 6}


def sign_v2(private_key, digest: bytes, algo: str = "sha256") -> bytes:
    """A ``security.ima`` v2 signature (type 0x03, version 2) over ``digest``, as evmctl writes it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    h = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[algo]()
    if isinstance(private_key, rsa.RSAPrivateKey):
        sig = private_key.sign(digest, padding.PKCS1v15(), Prehashed(h))
    else:
        sig = private_key.sign(digest, ec.ECDSA(Prehashed(h)))
    header = struct.pack(">BBB4sH", 0x03, 0x02, _HASH_ALGO_IDS[algo], _keyid(private_key.public_key()), len(sig))
    return header + sig


def _extend(name: str, pcr: bytes, digest: bytes) -> bytes:
    return hashlib.new(name, pcr + digest).digest()


def generate(
    count: int,
    *,
    seed: int = 0,
    templates: Sequence[str] = ("ima-ng",),
    digest_algo: str = "sha256",
    violation_rate: float = 0.0,
    other_pcr_rate: float = 0.0,
    signer=None,
    sign_rate: float = 0.5,
    banks: Sequence[str] = ("sha1", "sha256"),
    big_endian: bool = False,
) -> GeneratedList:
    """Generate ``count`` entries (the first is ``boot_aggregate``).

    ``templates`` are chosen at random per entry (names from :data:`TEMPLATE_FORMATS` or a template
    format such as ``"d-ng|n-ng|iuid|imode"``). With ``signer`` (an RSA or EC private key) a share
    ``sign_rate`` of the entries whose template has ``sig`` carry a real v2 signature.
    """
    rng = random.Random(seed)
    order = ">" if big_endian else "<"
    u32 = struct.Struct(order + "I").pack
    zero_th = bytes(20)
    pcrs: dict[str, dict[int, bytes]] = {b: {} for b in banks}
    running: dict[str, list[bytes]] = {b: [] for b in banks}
    sizes = {b: hashlib.new(b).digest_size for b in banks}
    bin_parts: list[bytes] = []
    asc_parts: list[bytes] = []
    offsets: list[int] = []
    line_offsets: list[int] = []
    violations: list[int] = []
    signed: list[int] = []
    names: list[str] = []
    boff = aoff = 0
    dsize = hashlib.new(digest_algo).digest_size

    for i in range(count):
        tname = templates[0] if i == 0 else rng.choice(templates)
        fmt = TEMPLATE_FORMATS.get(tname, tname).split("|")
        violation = i > 0 and rng.random() < violation_rate
        pcr = 11 if (i > 0 and rng.random() < other_pcr_rate) else 10
        if i == 0:
            path = b"boot_aggregate"
        else:
            path = f"{rng.choice(_DIRS)}/{rng.choice(_NAMES)}".encode()
            if rng.random() < 0.3:
                path += f".{rng.randrange(1000)}".encode()
        content = b"content:" + path + rng.randbytes(8)
        buf = b""
        if "buf" in fmt and i > 0:
            buf = b"BOOT_IMAGE=/vmlinuz-6.8.0 root=UUID=" + rng.randbytes(16).hex().encode() + b" ro quiet"
            content = buf
            path = b"kexec-cmdline"
        file_digest = hashlib.new(digest_algo, content).digest()
        legacy_digest = hashlib.sha1(content).digest()

        values: list[bytes] = []
        for fid in fmt:
            if fid == "d":
                values.append(bytes(20) if violation else legacy_digest)
            elif fid == "n":
                values.append(path[:255] + b"\0")
            elif fid == "d-ng":
                values.append(digest_algo.encode() + b":\0" + (bytes(dsize) if violation else file_digest))
            elif fid == "d-ngv2":
                values.append(b"ima:" + digest_algo.encode() + b":\0" + (bytes(dsize) if violation else file_digest))
            elif fid == "n-ng":
                values.append(path + b"\0")
            elif fid == "sig":
                if signer is not None and not violation and rng.random() < sign_rate and "d-ng" in fmt:
                    values.append(sign_v2(signer, file_digest, digest_algo))
                    signed.append(i)
                else:
                    values.append(b"")
            elif fid == "buf":
                values.append(buf)
            elif fid == "d-modsig":
                values.append(b"sha256:\0" + rng.randbytes(32) if rng.random() < 0.3 else b"")
            elif fid == "modsig":
                values.append(b"\x30\x82" + rng.randbytes(40) if values[-1] else b"")
            elif fid in ("iuid", "igid"):
                values.append(struct.pack(order + "I", rng.choice((0, 0, 1000))))
            elif fid == "imode":
                values.append(struct.pack(order + "H", rng.choice((0o100755, 0o100644))))
            else:
                raise ValueError(f"generator does not know field {fid}")

        if tname == "ima":
            d, n = values[0], values[1][:-1]
            hashed = d + n + bytes(256 - len(n))
            tdata_bin = d + u32(len(n)) + n
        else:
            hashed = b"".join(u32(len(v)) + v for v in values)
            tdata_bin = u32(len(hashed)) + hashed
        th = zero_th if violation else hashlib.sha1(hashed).digest()
        if violation:
            violations.append(i)

        tn = tname.encode()
        entry = u32(pcr) + th + u32(len(tn)) + tn + tdata_bin
        offsets.append(boff)
        bin_parts.append(entry)
        boff += len(entry)

        toks = []
        for fid, v in zip(fmt, values):
            if not v:
                toks.append(b"")
            elif fid in ("n", "n-ng"):
                toks.append(v[:-1])
            elif fid in ("d-ng", "d-modsig", "d-ngv2"):
                k = v.index(b"\0")
                toks.append(v[:k] + v[k + 1 :].hex().encode())
            elif fid in ("iuid", "igid", "imode"):
                toks.append(str(int.from_bytes(v, "big" if big_endian else "little")).encode())
            else:
                toks.append(v.hex().encode())
        line = b"%2d %s %s" % (pcr, th.hex().encode(), tn) + b"".join(b" " + t for t in toks) + b"\n"
        line_offsets.append(aoff)
        asc_parts.append(line)
        aoff += len(line)
        names.append(tname)

        for b in banks:
            if violation:
                digest = b"\xff" * sizes[b]
            elif b == "sha1":
                digest = th
            else:
                digest = hashlib.new(b, hashed).digest()
            cur = pcrs[b].get(pcr, bytes(sizes[b]))
            pcrs[b][pcr] = _extend(b, cur, digest)
            running[b].append(pcrs[b].get(10, bytes(sizes[b])))

    return GeneratedList(
        binary=b"".join(bin_parts),
        ascii=b"".join(asc_parts),
        expected=pcrs,
        running_pcr10=running,
        offsets=offsets,
        line_offsets=line_offsets,
        violations=violations,
        template_names=names,
        signed=signed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m attestd.testing.imagen", description=__doc__.splitlines()[0])
    ap.add_argument("count", type=int)
    ap.add_argument("binary_out")
    ap.add_argument("--ascii", dest="ascii_out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--template", action="append", dest="templates")
    ap.add_argument("--violation-rate", type=float, default=0.0)
    args = ap.parse_args(argv)
    g = generate(args.count, seed=args.seed, templates=tuple(args.templates or ("ima-ng",)),
                 violation_rate=args.violation_rate)
    with open(args.binary_out, "wb") as f:
        f.write(g.binary)
    if args.ascii_out:
        with open(args.ascii_out, "wb") as f:
            f.write(g.ascii)
    json.dump({"entries": g.count, "pcrs": {b: {str(k): v.hex() for k, v in d.items()} for b, d in g.expected.items()}},
              sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
