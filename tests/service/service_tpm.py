"""A swtpm whose PCRs were replayed from a real QEMU boot, quoting over service nonces."""

from __future__ import annotations

import hashlib

from service_helpers import QEMU, decode_nonce, evidence_from_quote

from attestd.testing.bootreplay import replay_into_swtpm
from attestd.testing.swtpm import SwTPM

#: what linux-secure-boot requires (0x43FF): PCRs 0-9 and 14
SELECTION = {"sha256": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]}


class BootedTPM:
    def __init__(self, variant: str = "sb") -> None:
        self.log = (QEMU / variant / "binary_bios_measurements").read_bytes()
        self.tpm = SwTPM()
        self.tpm.__enter__()
        try:
            self.expected = replay_into_swtpm(self.tpm, self.log)
            self.ek = self.tpm.create_ek("ecc")
            self.ak = self.tpm.create_ak(self.ek, "ecc", hash="sha256")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.tpm.__exit__(None, None, None)

    def evidence(self, nonce: str, *, runtime: bytes | None = None, quote_nonce: bytes | None = None,
                 selection=SELECTION, **extra) -> dict:
        raw = decode_nonce(nonce)
        qualifying = quote_nonce if quote_nonce is not None else (
            raw if runtime is None else hashlib.sha256(raw + runtime).digest())
        q = self.tpm.quote(self.ak, selection, nonce=qualifying)
        return evidence_from_quote(q, nonce=nonce, eventlog=self.log, **extra)
