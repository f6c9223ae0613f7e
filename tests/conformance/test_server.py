"""The conformance cases against a wsevents echo **server**, the raw peer being the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cases import CASES, Case
from check import SERVER_LIMIT, problems, steps_for
from peer import open_client

import wsevents


async def echo(conn: wsevents.Connection) -> None:
    try:
        async for message in conn:
            await conn.send(message)
    except (wsevents.ConnectionClosed, wsevents.InvalidState):
        pass  # failed by the peer's bad bytes (or closed before an echo): the case judges the close


@pytest.fixture
async def echo_server(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[wsevents.Server, list[wsevents.Connection]]]:
    """The echo server for the case, and the list its connections are appended to."""
    case: Case = request.param
    limit = int(case.options.get("max_buffer_length", SERVER_LIMIT))  # type: ignore[call-overload]
    server = wsevents.create_server(echo, max_buffer_length=limit, max_queue=10_000)
    conns: list[wsevents.Connection] = []
    server.on("connection", conns.append)
    await server.listen(0, "127.0.0.1")
    yield server, conns
    await asyncio.wait_for(server.close(graceful=True, timeout=1), 5)


@pytest.mark.parametrize("echo_server", CASES, ids=[c.id for c in CASES], indirect=True)
async def test_server(
    echo_server: tuple[wsevents.Server, list[wsevents.Connection]], request: pytest.FixtureRequest
) -> None:
    server, conns = echo_server
    case: Case = request.node.callspec.params["echo_server"]
    peer = await open_client(server.port, extensions=case.extensions, allow_rsv1=case.extensions is not None)
    if case.extensions is not None:
        assert peer.result.handshake.get("sec-websocket-extensions", "").startswith("permessage-deflate")
    result = await asyncio.wait_for(peer.run(steps_for(case)), 60)
    assert len(conns) == 1
    # The server closed TCP (the peer saw it before closing its own side) and is CLOSED.
    await asyncio.wait_for(conns[0].wait_closed(), 5)
    found = problems(case, result, conns[0].close_code)
    assert not found, f"{case.id} {case.title}:\n  " + "\n  ".join(found)
