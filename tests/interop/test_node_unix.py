"""Unix sockets with npm ``ws``: its client (``ws+unix:`` URLs) against a wsevents server on
``listen(path=...)``, and the wsevents client against a ``ws`` server on an ``http.Server``
listening on a path."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest
from nodepeer import NodePeer, pattern

import wsevents
from helpers import attach_echo, close_event

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def peers() -> AsyncIterator[list[NodePeer]]:
    started: list[NodePeer] = []
    yield started
    for peer in started:
        await peer.close()


async def test_ws_client_against_wsevents_server_on_a_unix_socket(
    sock_path: str, peers: list[NodePeer]
) -> None:
    server = wsevents.create_server(attach_echo, close_timeout=1)
    accepted: asyncio.Future[wsevents.Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", lambda conn: accepted.done() or accepted.set_result(conn))
    await asyncio.wait_for(server.listen(path=sock_path), 5)
    try:
        peer = await NodePeer.start("client", "ws", f"ws+unix://{sock_path}:/room?id=7")
        peers.append(peer)
        connected = await peer.next_event("connect")
        assert connected["path"] == "/room?id=7"
        server_conn = await asyncio.wait_for(accepted, 5)
        assert server_conn.path == "/room?id=7"
        assert server_conn.headers["host"] == "localhost"
        await peer.send(op="send_text", data="héllo")
        assert (await peer.next_event("text"))["data"] == "héllo"
        await peer.send(op="send_binary_pattern", length=100_000)
        echoed = await peer.next_event("binary")
        assert echoed["sha256"] == hashlib.sha256(pattern(100_000)).hexdigest()
        closed = close_event(server_conn)
        await peer.send(op="close", code=4005, reason="unix bye")
        assert await asyncio.wait_for(closed, 5) == (4005, "unix bye")
        assert (await peer.next_event("close"))["code"] == 4005
    finally:
        await asyncio.wait_for(server.close(graceful=True), 10)
    assert not os.path.exists(sock_path)


async def test_wsevents_client_against_ws_server_on_a_unix_socket(
    sock_path: str, peers: list[NodePeer]
) -> None:
    peer = await NodePeer.start("server", "ws", echo=True, unix=sock_path)
    peers.append(peer)
    async with wsevents.connect(f"ws+unix://{sock_path}:/feed?x=1") as conn:
        connected = await peer.next_event("connect")
        assert connected["path"] == "/feed?x=1"
        assert connected["headers"]["host"] == "localhost"
        await conn.send_text("héllo wörld")
        assert await asyncio.wait_for(conn.recv(), 5) == "héllo wörld"
        await conn.send_binary(pattern(70_000))
        assert await asyncio.wait_for(conn.recv(), 5) == pattern(70_000)
        await asyncio.wait_for(conn.close(4006, "client bye"), 5)
    event = await peer.next_event("close")
    assert (event["code"], event["reason"]) == (4006, "client bye")
