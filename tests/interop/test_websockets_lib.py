"""Interop with the Python ``websockets`` library, each side against the other."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed as WsClosed

import wsevents

MiB = 1024 * 1024


@pytest.fixture(params=[True, False], ids=["deflate", "plain"])
def compression(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
async def wsevents_server(compression: bool) -> AsyncIterator[tuple[wsevents.Server, dict[str, Any]]]:
    seen: dict[str, Any] = {"closed": asyncio.get_running_loop().create_future()}

    def on_connection(conn: wsevents.Connection) -> None:
        seen["conn"] = conn

        async def echo() -> None:
            async for message in conn:
                await conn.send(message)

        asyncio.ensure_future(echo())
        conn.on("close", lambda code, reason: seen["closed"].set_result((code, reason)))

    server = wsevents.create_server(
        on_connection, valid_protocols=["v2", "v1"], max_buffer_length=4 * MiB, compression=compression
    )
    await server.listen(0, "127.0.0.1")
    yield server, seen
    await asyncio.wait_for(server.close(), 10)


async def test_websockets_client_against_wsevents_server(
    wsevents_server: tuple[wsevents.Server, dict[str, Any]], compression: bool
) -> None:
    server, seen = wsevents_server
    url = f"ws://127.0.0.1:{server.port}/path?q=1"
    async with ws_connect(url, subprotocols=["v1", "v2"], max_size=4 * MiB) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "v1"
        assert ws.response is not None
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
        assert (agreed is not None and agreed.startswith("permessage-deflate")) is compression
        conn = seen["conn"]
        assert (conn.path, conn.protocol) == ("/path?q=1", "v1")

        await ws.send("grüße ✓")
        assert await asyncio.wait_for(ws.recv(), 5) == "grüße ✓"
        payload = os.urandom(MiB)
        await ws.send(payload)
        assert await asyncio.wait_for(ws.recv(), 10) == payload
        await ws.send(["frag", "mented ", "text"])  # a fragmented message
        assert await asyncio.wait_for(ws.recv(), 5) == "fragmented text"

        pong_waiter = await ws.ping(b"ping data")
        await asyncio.wait_for(pong_waiter, 5)
        pong: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        conn.once("pong", pong.set_result)
        conn.send_ping("from wsevents")
        assert await asyncio.wait_for(pong, 5) == "from wsevents"

        await ws.close(4010, "websockets says bye")
    assert await asyncio.wait_for(seen["closed"], 5) == (4010, "websockets says bye")


async def test_wsevents_server_closes_websockets_client(
    wsevents_server: tuple[wsevents.Server, dict[str, Any]],
) -> None:
    server, seen = wsevents_server
    async with ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"
        await seen["conn"].close(4011, "wsevents says bye")
        with pytest.raises(WsClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4011, "wsevents says bye")


@pytest.fixture
async def websockets_server(compression: bool) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    seen: dict[str, Any] = {"closed": asyncio.get_running_loop().create_future()}

    async def handler(ws: ServerConnection) -> None:
        seen["ws"] = ws
        seen["request"] = ws.request
        try:
            async for message in ws:
                if message == "close please":
                    await ws.close(4021, "websockets server says bye")
                    break
                await ws.send(message)
        finally:
            if not seen["closed"].done():
                seen["closed"].set_result((ws.close_code, ws.close_reason))

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["v2", "v1"],  # type: ignore[list-item]
        max_size=4 * MiB,
        compression="deflate" if compression else None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield port, seen


async def test_wsevents_client_against_websockets_server(
    websockets_server: tuple[int, dict[str, Any]], compression: bool
) -> None:
    port, seen = websockets_server
    url = f"ws://127.0.0.1:{port}/feed?x=2"
    async with wsevents.connect(url, protocols=["v1", "v2"], max_buffer_length=4 * MiB) as conn:
        # websockets picks by its own preference order.
        assert conn.protocol in ("v1", "v2")
        assert (conn.deflate is not None) is compression
        assert seen["request"].path == "/feed?x=2"

        await conn.send_text("grüße ✓")
        assert await asyncio.wait_for(conn.recv(), 5) == "grüße ✓"
        payload = os.urandom(MiB)
        await conn.send_binary(payload)
        assert await asyncio.wait_for(conn.recv(), 10) == payload
        async with conn.begin_binary() as out:
            for i in range(0, MiB, 200_000):
                await out.write(payload[i : i + 200_000])
        assert await asyncio.wait_for(conn.recv(), 10) == payload

        pong: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        conn.once("pong", pong.set_result)
        conn.send_ping("ping from wsevents")
        assert await asyncio.wait_for(pong, 5) == "ping from wsevents"

        await asyncio.wait_for(conn.close(4020, "wsevents client says bye"), 5)
    assert await asyncio.wait_for(seen["closed"], 5) == (4020, "wsevents client says bye")
    assert conn.ready_state == wsevents.Connection.CLOSED


async def test_websockets_server_closes_wsevents_client(
    websockets_server: tuple[int, dict[str, Any]],
) -> None:
    port, _ = websockets_server
    # This websockets server refuses (400) clients that offer no subprotocol of its list.
    conn = await wsevents.connect(f"ws://127.0.0.1:{port}/", protocols=["v1"])
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    conn.on("close", lambda code, reason: closed.set_result((code, reason)))
    await conn.send_text("close please")
    assert await asyncio.wait_for(closed, 5) == (4021, "websockets server says bye")
