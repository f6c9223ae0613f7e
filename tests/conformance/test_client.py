"""The conformance cases against a wsevents echo **client**, the raw peer being the server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from cases import CASES, Case
from check import SERVER_LIMIT, echoed_close, problems, steps_for
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
    holder: list[wsevents.Connection] = []
    states_at_fin: list[int] = []

    def on_eof(_: object) -> None:
        # The raw server sees the client's FIN (its half-close), and closes only after this.
        states_at_fin.append(holder[0].ready_state)

    async with RawServer(
        steps_for(case), extensions=agreed, allow_rsv1=agreed is not None, on_eof=on_eof
    ) as raw:
        conn = await wsevents.connect(
            f"ws://127.0.0.1:{raw.port}/",
            max_buffer_length=limit,
            max_queue=10_000,
            compression=agreed is not None,
            close_timeout=30,
        )
        holder.append(conn)
        assert (conn.deflate is not None) is (agreed is not None)

        async def echo() -> None:
            with contextlib.suppress(wsevents.ConnectionClosed, wsevents.InvalidState):
                async for message in conn:
                    await conn.send(message)

        echoing = asyncio.ensure_future(echo())
        result = await raw.result(60)
        # Well before close_timeout (30 s): the client ends when the raw server closes TCP.
        await asyncio.wait_for(conn.wait_closed(), 10)
        await asyncio.wait_for(echoing, 5)
    found = problems(case, result, conn.close_code)
    if echoed_close(result):
        # After a clean closing handshake the client half-closes and waits for the server (RFC 6455 7.1.1).
        if states_at_fin != [wsevents.Connection.CLOSING]:
            found.append(f"the client did not wait for the server to close TCP: {states_at_fin}")
    assert not found, f"{case.id} {case.title}:\n  " + "\n  ".join(found)
