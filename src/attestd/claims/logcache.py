"""What an event log proves, kept for the next attestation that sends the same log.

A host sends the same firmware event log at every attestation until it reboots, and hosts booted
from one image often send identical logs. Parsing the log, replaying it against the quoted PCRs,
checking that event data was measured, and reading claims from its events are pure functions of
two inputs: the log's bytes and the quoted PCR values (every bank, every PCR). :class:`LogCache`
keeps their result under ``SHA-256(log || quoted PCRs)``
(:func:`log_key`), so a repeated log costs one hash.

Nothing is taken on trust: the quote (signature, nonce, PCR digest over the supplied values) is
verified at every attestation before the cache is consulted, and the key covers exactly the
inputs the cached result depends on. A log that fails verification is not kept (the next
attempt fails again, with the same error). The cache is per process and bounded: the least
recently used entry goes first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Generic, TypeVar

__all__ = ["LogCache", "log_key"]

T = TypeVar("T")


def log_key(log: bytes, pcrs: Mapping[str, Mapping[int, bytes]]) -> bytes:
    """SHA-256 over the log and the quoted PCR values, each bank and PCR in order, every part
    length-framed (so no two different inputs share a key)."""
    h = hashlib.sha256(b"attestd log v1\x00")
    h.update(len(log).to_bytes(8, "big"))
    h.update(log)
    for bank in sorted(pcrs):
        values = pcrs[bank]
        name = bank.encode()
        h.update(len(name).to_bytes(1, "big") + name + len(values).to_bytes(2, "big"))
        for index in sorted(values):
            value = bytes(values[index])
            h.update(index.to_bytes(2, "big") + len(value).to_bytes(1, "big") + value)
    return h.digest()


class LogCache(Generic[T]):
    """A thread-safe LRU of at most ``entries`` results (0: keeps nothing)."""

    def __init__(self, entries: int) -> None:
        if entries < 0:
            raise ValueError("entries must be >= 0")
        self.entries = entries
        self._items: OrderedDict[bytes, T] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> T | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: bytes, item: T) -> None:
        if self.entries == 0:
            return
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
