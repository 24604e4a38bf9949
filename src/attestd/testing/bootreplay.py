"""Replay a real firmware event log into a fresh swtpm, so the TPM's PCRs equal a real boot's.

    with SwTPM() as tpm:
        pcrs = replay_into_swtpm(tpm, Path("tests/fixtures/qemu/sb/binary_bios_measurements").read_bytes())
        # tpm's sha1/sha256 PCRs 0-9, 14 ... now hold what the booted machine's TPM held;
        # a quote over them verifies against the log.

Every event that extends a PCR (all but ``EV_NO_ACTION``) has each of its digests extended into
the same PCR of the same bank, in log order, with ``tpm2_pcrextend`` (batched: one command extends
many PCRs, in argument order). Only banks the log and the TPM both have are extended. A log that
starts at a non-zero locality (an ``EV_NO_ACTION`` ``StartupLocality`` event) cannot be reproduced
on a TPM already started at locality 0 and is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from attestd.eventlog import parse
from attestd.testing.swtpm import SwTPM, SwTPMError

__all__ = ["replay_into_swtpm"]

EV_NO_ACTION = 0x3
_BATCH = 24


def replay_into_swtpm(tpm: SwTPM, log_bytes: bytes, *, banks: Iterable[str] = ("sha1", "sha256"),
                      check: bool = True) -> dict[str, dict[int, bytes]]:
    """Extend every measured event of ``log_bytes`` into ``tpm``; returns the log's replayed PCR values
    for ``banks`` (and, with ``check``, first confirms the TPM reads back exactly those)."""
    log = parse(log_bytes)
    wanted = tuple(banks)
    for e in log.events:
        if e.event_type == EV_NO_ACTION and e.data.startswith(b"StartupLocality\x00") and e.data[16:17] not in (b"", b"\x00"):
            raise SwTPMError(f"the log starts at locality {e.data[16]}, which swtpm cannot reproduce")
    specs: list[str] = []
    for e in log.events:
        if e.event_type == EV_NO_ACTION:
            continue
        parts = [f"{bank}={d.hex()}" for bank, d in e.digests.items() if bank in wanted]
        if parts:
            specs.append(f"{e.pcr}:{','.join(parts)}")
    for i in range(0, len(specs), _BATCH):
        tpm.run("tpm2_pcrextend", *specs[i:i + _BATCH], flush=False)
    replayed = log.replay()
    expected = {bank: dict(replayed[bank]) for bank in wanted if bank in replayed}
    if check:
        actual = tpm.read_pcrs({bank: sorted(v) for bank, v in expected.items()})
        for bank, values in expected.items():
            for index, value in values.items():
                if actual.get(bank, {}).get(index) != value:
                    raise SwTPMError(f"after replay, {bank} PCR {index} is "
                                     f"{actual.get(bank, {}).get(index, b'').hex()}, the log gives {value.hex()}")
    return expected
