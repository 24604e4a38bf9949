"""Small attestation requests run on the event loop's thread on SQLite; large ones, unknown
lengths and PostgreSQL deployments run in the thread pool (attestd.service.dispatch)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from starlette.requests import Request

from attestd.service.dispatch import INLINE_MAX_BYTES, run_attestation


def _request(length: int | None) -> Request:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


@pytest.mark.parametrize(("inline", "length", "on_loop"), [
    (True, 20_000, True), (True, INLINE_MAX_BYTES, True), (True, INLINE_MAX_BYTES + 1, False),
    (True, None, False), (False, 20_000, False)])
def test_where_an_attestation_runs(inline, length, on_loop):
    async def main():
        loop_thread = threading.current_thread()
        ran_on = await run_attestation(_request(length), inline, lambda x, y=0: (threading.current_thread(), x + y),
                                       1, y=2)
        return loop_thread, ran_on

    loop_thread, (thread, value) = asyncio.run(main())
    assert value == 3 and (thread is loop_thread) == on_loop
