"""An IMA runtime measurement list (binary or ASCII) and its replay.

``parse`` recognises the two forms the kernel exports under ``/sys/kernel/security/ima/``:
``ascii_runtime_measurements`` (a line starts with ``<pcr> <40 hex digits> ``) and
``binary_runtime_measurements`` (anything else). See binfmt.py and asciifmt.py for the layouts.

Error policy: ``parse`` checks structure only and raises only :class:`EvidenceError`. Whether each
template hash matches its template data is a *verification* question, answered by
:meth:`ImaLog.verify_template_hashes`, :meth:`ImaLog.replay` and the matching functions, which
raise :class:`VerificationError` ``ima.template_hash_mismatch`` naming the entry index and offset.
A file signature that cannot be decoded does not make the list unparseable (the kernel records
whatever ``security.ima`` xattr a file carries); :func:`attestd.ima.verify_signatures` reports it
per entry as ``malformed`` with the decoding error code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from attestd.errors import EvidenceError, VerificationError
from attestd.ima.asciifmt import looks_like_ascii, parse_ascii
from attestd.ima.binfmt import parse_binary
from attestd.ima.entry import ImaEntry
from attestd.ima.replay import (
    DEFAULT_BANKS,
    IMA_PCR,
    ReplayState,
    check_template_hashes,
    match_pcr,
    replay_entries,
)

__all__ = ["ImaLog", "parse"]


@dataclass(frozen=True, slots=True)
class ImaLog:
    """A parsed measurement list (or a continuation of one starting at ``first_index``)."""

    entries: tuple[ImaEntry, ...]
    format: Literal["binary", "ascii"]
    #: ``"big"`` for a binary list from a big-endian host without ``ima_canonical_fmt``.
    byte_order: Literal["little", "big"] = "little"
    #: absolute index of the first entry (non-zero when the input is the tail of a longer list).
    first_index: int = 0

    def __len__(self) -> int:
        return len(self.entries)

    # -- checks ---------------------------------------------------------------------------------
    def verify_template_hashes(self) -> None:
        """Raise ``ima.template_hash_mismatch`` at the first entry whose template hash is wrong."""
        check_template_hashes(self.entries)

    @property
    def violations(self) -> tuple[int, ...]:
        """Indices of violation entries (all-zero template hash)."""
        return tuple(e.index for e in self.entries if e.is_violation)

    @property
    def pcr_indices(self) -> tuple[int, ...]:
        return tuple(sorted({e.pcr for e in self.entries}))

    def warnings(self) -> list[str]:
        """Facts a verifier should surface although they are not errors."""
        out = []
        v = self.violations
        if v:
            out.append(f"{len(v)} violation entr{'y' if len(v) == 1 else 'ies'} (all-zero template hash, "
                       f"0xFF extended), first at index {v[0]}")
        if self.byte_order == "big":
            out.append("binary list is big endian (non-canonical format from a big-endian host)")
        other = [p for p in self.pcr_indices if p != IMA_PCR]
        if other:
            out.append(f"entries extend PCR {', '.join(map(str, other))} besides PCR {IMA_PCR}")
        return out

    # -- replay ---------------------------------------------------------------------------------
    def _after(self, state: ReplayState | None) -> tuple[ImaEntry, ...]:
        if state is None:
            if self.first_index:
                raise VerificationError(
                    "ima.replay.state_mismatch",
                    f"the list starts at entry {self.first_index}: replay needs the state at that entry",
                    field="state",
                )
            return self.entries
        k = state.position - self.first_index
        if k < 0 or k > len(self.entries):
            raise VerificationError(
                "ima.replay.state_mismatch",
                f"saved state is at entry {state.position} but the list holds entries "
                f"{self.first_index}..{self.first_index + len(self.entries)}",
                field="state",
                details={"position": state.position, "first_index": self.first_index},
            )
        return self.entries[k:]

    def replay_state(
        self,
        state: ReplayState | None = None,
        *,
        banks: Iterable[str] | None = None,
        check: bool = True,
        sha1_padded: bool = False,
    ) -> ReplayState:
        """Continue ``state`` (default: the empty list) over the entries it has not seen."""
        return replay_entries(self._after(state), state, banks=banks, check=check, sha1_padded=sha1_padded)

    def replay(
        self,
        *,
        banks: Iterable[str] = DEFAULT_BANKS,
        check: bool = True,
        sha1_padded: bool = False,
    ) -> dict[str, dict[int, bytes]]:
        """Final PCR values: bank name -> PCR index -> value (only PCRs the list extends)."""
        state = ReplayState.initial(banks)
        return self.replay_state(state, check=check, sha1_padded=sha1_padded).as_dict()

    def match_pcr(
        self,
        value: bytes,
        *,
        bank: str = "sha1",
        pcr: int = IMA_PCR,
        state: ReplayState | None = None,
        check: bool = True,
        sha1_padded: bool = False,
    ) -> ReplayState | None:
        """The state after the shortest prefix whose replay equals ``value`` (see replay.match_pcr)."""
        return match_pcr(self._after(state), value, state, bank=bank, pcr=pcr, check=check,
                         sha1_padded=sha1_padded)

    def matching_prefix(
        self,
        value: bytes,
        *,
        bank: str = "sha1",
        pcr: int = IMA_PCR,
        state: ReplayState | None = None,
        check: bool = True,
        sha1_padded: bool = False,
    ) -> int | None:
        """Number of entries (from the start of the list) whose replay equals ``value``; None if none."""
        st = self.match_pcr(value, bank=bank, pcr=pcr, state=state, check=check, sha1_padded=sha1_padded)
        return None if st is None else st.position


def parse(data: bytes | bytearray | memoryview, *, first_index: int = 0) -> ImaLog:
    """Parse a binary or ASCII IMA measurement list (auto-detected).

    ``first_index`` is the absolute index of the first entry when ``data`` is the tail of a list
    (the agent sends entries from N on). Raises only :class:`EvidenceError`.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    if first_index < 0:
        raise EvidenceError("ima.first_index", "first_index must be >= 0", field="first_index")
    if not data:
        return ImaLog((), "binary", "little", first_index)
    stripped = data.lstrip(b"\r\n ")
    if not stripped or looks_like_ascii(stripped):
        return ImaLog(tuple(parse_ascii(data, first_index=first_index)), "ascii", "little", first_index)
    entries, big = parse_binary(data, first_index=first_index)
    return ImaLog(tuple(entries), "binary", "big" if big else "little", first_index)
