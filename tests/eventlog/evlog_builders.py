"""Build small synthetic TCG event logs byte by byte for the eventlog tests.

Written from the PFP 1.05 layouts (10.2.1 TCG_PCClientPCREvent, 10.2.2 TCG_PCR_EVENT2, 10.4.5.1
TCG_EfiSpecIDEventStruct) independently of the parser, and paired with an independent replay so the
tests compare the library against a second implementation.
"""

from __future__ import annotations

import hashlib
import struct
import uuid

from cryptography.hazmat.primitives import hashes

SHA1, SHA256, SHA384, SHA512, SM3 = 0x0004, 0x000B, 0x000C, 0x000D, 0x0012
SIZES = {SHA1: 20, SHA256: 32, SHA384: 48, SHA512: 64, SM3: 32}
NAMES = {SHA1: "sha1", SHA256: "sha256", SHA384: "sha384", SHA512: "sha512", SM3: "sm3_256"}

EV_POST_CODE = 0x01
EV_NO_ACTION = 0x03
EV_SEPARATOR = 0x04
EV_ACTION = 0x05
EV_S_CRTM_VERSION = 0x08
EV_IPL = 0x0D
EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001
EV_EFI_VARIABLE_BOOT = 0x80000002
EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003
EV_EFI_GPT_EVENT = 0x80000006
EV_EFI_ACTION = 0x80000007
EV_EFI_HCRTM_EVENT = 0x80000010
EV_EFI_VARIABLE_AUTHORITY = 0x800000E0


def H(alg: int, data: bytes) -> bytes:
    if alg == SM3:
        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize()
    return hashlib.new(NAMES[alg], data).digest()


def spec_id_data(algs=((SHA1, 20), (SHA256, 32)), vendor: bytes = b"", *, signature=b"Spec ID Event03\0",
                 count: int | None = None) -> bytes:
    body = signature + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(algs) if count is None else count)
    body += b"".join(struct.pack("<HH", a, s) for a, s in algs)
    return body + bytes([len(vendor)]) + vendor


def sha1_record(pcr: int, etype: int, digest: bytes, data: bytes, *, size: int | None = None) -> bytes:
    assert len(digest) == 20
    return struct.pack("<II", pcr, etype) + digest + struct.pack("<I", len(data) if size is None else size) + data


def event2_record(pcr: int, etype: int, digests, data: bytes, *, count: int | None = None,
                  size: int | None = None) -> bytes:
    out = struct.pack("<III", pcr, etype, len(digests) if count is None else count)
    for alg, d in digests:
        out += struct.pack("<H", alg) + d
    return out + struct.pack("<I", len(data) if size is None else size) + data


def measured(pcr: int, etype: int, data: bytes, algs=(SHA1, SHA256), *, digest_of: bytes | None = None) -> bytes:
    """A TCG_PCR_EVENT2 whose digests are the hash of ``digest_of`` (default: the data itself)."""
    content = data if digest_of is None else digest_of
    return event2_record(pcr, etype, [(a, H(a, content)) for a in algs], data)


def agile_log(*records: bytes, algs=((SHA1, 20), (SHA256, 32)), vendor: bytes = b"") -> bytes:
    return sha1_record(0, EV_NO_ACTION, b"\0" * 20, spec_id_data(algs, vendor)) + b"".join(records)


def startup_locality(locality: int) -> bytes:
    return b"StartupLocality\0" + bytes([locality])


def uefi_variable_data(name: str, data: bytes, guid: str = "8be4df61-93ca-11d2-aa0d-00e098032b8c") -> bytes:
    """UEFI_VARIABLE_DATA (PFP 10.4.4 / Table 17)."""
    encoded = name.encode("utf-16-le")
    return uuid.UUID(guid).bytes_le + struct.pack("<QQ", len(name), len(data)) + encoded + data


def independent_replay(events, *, locality: int = 0, extend_no_action: bool = False
                       ) -> dict[str, dict[int, bytes]]:
    """Replay ``[(pcr, etype, {alg: digest})]`` the plain way: zeros (PCR0: locality), extend digests.

    ``extend_no_action`` reproduces tpm2-tools < 5.5, which also extended EV_NO_ACTION digests.
    """
    out: dict[str, dict[int, bytes]] = {}
    for pcr, etype, digests in events:
        if etype == EV_NO_ACTION and not extend_no_action:
            continue
        for alg, d in digests.items():
            bank = out.setdefault(NAMES[alg], {})
            cur = bank.get(pcr)
            if cur is None:
                cur = bytearray(SIZES[alg])
                if pcr == 0:
                    cur[-1] = locality
                cur = bytes(cur)
            bank[pcr] = H(alg, cur + d)
    return out
