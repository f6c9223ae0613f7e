"""The conformance cases against a wsevents echo **client**, the raw peer being the server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from cases import CASES, Case
from check import SERVER_LIMIT, problems, steps_for
from peer import RawServer

import wsevents


def answer(offer: str | None) -> str | None:
    """The raw server's answer for a case's offer: a bare client_max_window_bits needs a value."""
    if offer is None:
        return None
    params = [p.strip() for p in offer.split(";")]
    return "; ".join(p + "=15" if p == "client_max_window_bits" else p for p in params)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_client(case: Case) -> None:
    limit = int(case.options.get("max_buffer_length", SERVER_LIMIT))  # type: ignore[call-overload]
    agreed = answer(case.extensions)
    async with RawServer(steps_for(case), extensions=agreed, allow_rsv1=agreed is not None) as raw:
        conn = await wsevents.connect(
            f"ws://127.0.0.1:{raw.port}/",
            max_buffer_length=limit,
            max_queue=10_000,
            compression=agreed is not None,
        )
        assert (conn.deflate is not None) is (agreed is not None)

        async def echo() -> None:
            with contextlib.suppress(wsevents.ConnectionClosed, wsevents.InvalidState):
                async for message in conn:
                    await conn.send(message)

        echoing = asyncio.ensure_future(echo())
        result = await raw.result(60)
        await asyncio.wait_for(conn.wait_closed(), 10)
        await asyncio.wait_for(echoing, 5)
    found = problems(case, result)
    assert not found, f"{case.id} {case.title}:\n  " + "\n  ".join(found)
