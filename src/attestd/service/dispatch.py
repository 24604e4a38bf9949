"""Where an attestation request runs: on the event loop or in the thread pool.

An attestation is CPU work (parsing, hashing, signature checks, signing) between two short local
database transactions. In a worker process on SQLite, running it on the event loop itself is the
fastest: no hand-off to a pool thread and back, and no threads taking the GIL from each other
mid-request (measured on the load benchmark: 291 -> 344 attestations/s with two workers, p99
unchanged). The loop is then busy for the few milliseconds of one attestation, which is also the
time other requests would have waited for the GIL.

Large requests (above :data:`INLINE_MAX_BYTES`: a long IMA list can take a second to replay) and
deployments on PostgreSQL (each statement waits for a network round trip, during which the loop
would serve nothing) go to the thread pool, as FastAPI runs synchronous endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

__all__ = ["INLINE_MAX_BYTES", "run_attestation"]

#: requests up to this size run inline on the event loop (an attestation with a 15-60 KB firmware
#: event log and a short IMA list is well under it)
INLINE_MAX_BYTES = 256 * 1024

T = TypeVar("T")


async def run_attestation(request: Request, inline: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the loop when ``inline`` and the request is small, else in the pool."""
    length = request.headers.get("content-length", "")
    if inline and length.isdigit() and int(length) <= INLINE_MAX_BYTES:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)
