"""wsevents.sync against other peers: the asyncio API of wsevents (both ways), websockets (both ways)
and npm ``ws`` (Node) as a server."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as ws_serve

import wsevents
from wsevents import ConnectionClosed
from wsevents.sync import Connection, connect

from .conftest import SyncServe, url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
from nodepeer import NodePeer, pattern  # noqa: E402

MiB = 1024 * 1024


@pytest.fixture(params=[True, False], ids=["deflate", "plain"])
def compression(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def exchange(conn: Connection, big: int = MiB + 3) -> None:
    """The same round trips against every echo peer: text, binary, empty, ``big`` bytes, ping."""
    for message in ("grüße ✓", "", b"", b"\x00\xff" * 10, "z" * big, bytes(range(256)) * (big // 256)):
        conn.send(message)
        assert conn.recv(timeout=10) == message
    assert conn.ping(b"p").wait(10)


async def test_sync_client_against_the_asyncio_server(compression: bool) -> None:
    def on_connection(conn: wsevents.Connection) -> None:
        async def echo() -> None:
            async for message in conn:
                await conn.send(message)

        asyncio.ensure_future(echo())

    server = wsevents.create_server(on_connection, compression=compression, valid_protocols=["v1"])
    await server.listen(0, "127.0.0.1")
    try:

        def client() -> tuple[int | None, bool, str | None]:
            with connect(f"ws://127.0.0.1:{server.port}/", compression=compression, protocols=["v1"]) as conn:
                exchange(conn)
                agreed = conn.deflate is not None
            return conn.close_code, agreed, conn.protocol

        assert await asyncio.to_thread(client) == (1000, compression, "v1")
    finally:
        await asyncio.wait_for(server.close(), 10)


async def test_asyncio_client_against_the_sync_server(sync_serve: SyncServe, compression: bool) -> None:
    seen: list[tuple[str, str | None]] = []
    ended = threading.Event()

    def handler(conn: Connection) -> None:
        seen.append((conn.path, conn.protocol))
        try:
            for message in conn:
                conn.send(message)
        finally:
            ended.set()

    server = sync_serve(handler, compression=compression, valid_protocols=["v1"])
    async with wsevents.connect(url(server, "/a?b=c"), compression=compression, protocols=["v1"]) as conn:
        assert (conn.deflate is not None) is compression
        for message in ("text", b"bin", "big" * 200000, b""):
            await conn.send(message)
            assert await asyncio.wait_for(conn.recv(), 10) == message
    assert await asyncio.to_thread(ended.wait, 10)
    assert seen == [("/a?b=c", "v1")]


def test_sync_client_against_websockets(compression: bool) -> None:
    def handler(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    with ws_serve(
        handler, "127.0.0.1", 0, compression="deflate" if compression else None, max_size=4 * MiB
    ) as server:
        thread = threading.Thread(target=server.serve_forever, name="test-websockets-server")
        thread.start()
        try:
            port = server.socket.getsockname()[1]
            with connect(
                f"ws://127.0.0.1:{port}/", compression=compression, max_buffer_length=4 * MiB
            ) as conn:
                assert (conn.deflate is not None) is compression
                exchange(conn)
            assert conn.close_code == 1000
        finally:
            server.shutdown()
            thread.join(10)


def test_websockets_client_against_the_sync_server(sync_serve: SyncServe, compression: bool) -> None:
    server = sync_serve(compression=compression, max_buffer_length=4 * MiB)
    with ws_connect(url(server), compression="deflate" if compression else None, max_size=4 * MiB) as ws:
        for message in ("grüße", b"\x01" * 70000, "q" * MiB):
            ws.send(message)
            assert ws.recv(timeout=10) == message
        ws.ping(b"x").wait(10)
        ws.close(1000, "bye")
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=1)


@pytest.fixture
def node_ws_server(compression: bool) -> Iterator[tuple[NodePeer, asyncio.AbstractEventLoop]]:
    """npm ``ws`` as an echo server, driven from a loop of its own."""
    loop = asyncio.new_event_loop()
    peer = loop.run_until_complete(NodePeer.start("server", "ws", echo=True, deflate=compression))
    try:
        yield peer, loop
    finally:
        loop.run_until_complete(peer.close())
        loop.close()


def test_sync_client_against_node_ws(node_ws_server: tuple[NodePeer, Any], compression: bool) -> None:
    peer, loop = node_ws_server
    with connect(f"ws://127.0.0.1:{peer.port}/node", compression=compression) as conn:
        assert (conn.deflate is not None) is compression
        # The peer reports each text message on one line of its stdout: a line stays under 64 KiB.
        exchange(conn, big=60000)
        loop.run_until_complete(peer.send(op="send_binary_pattern", length=300000))
        received = conn.recv(timeout=10)
        assert isinstance(received, bytes)
        assert hashlib.sha256(received).digest() == hashlib.sha256(pattern(300000)).digest()
        loop.run_until_complete(peer.send(op="close", code=4001, reason="node says bye"))
        with pytest.raises(ConnectionClosed) as info:
            conn.recv(timeout=10)
        assert (info.value.code, info.value.reason) == (4001, "node says bye")
    event = loop.run_until_complete(peer.next_event("close"))
    assert event["code"] == 4001


async def test_node_ws_client_against_the_sync_server(sync_serve: SyncServe, compression: bool) -> None:
    server = sync_serve(compression=compression)
    peer = await NodePeer.start("client", "ws", url(server, "/from-node"), deflate=compression)
    try:
        event = await peer.next_event("connect")
        assert event["path"] == "/from-node"
        assert event["extensions"].startswith("permessage-deflate") is compression
        await peer.send(op="send_text", data="grüße from node")
        assert (await peer.next_event("text"))["data"] == "grüße from node"
        await peer.send(op="send_binary_pattern", length=200000)
        echoed = await peer.next_event("binary")
        assert (echoed["length"], echoed["sha256"]) == (200000, hashlib.sha256(pattern(200000)).hexdigest())
        await peer.send(op="ping", data="node ping")
        assert (await peer.next_event("pong"))["data"] == "node ping"
        await peer.send(op="close", code=1000, reason="node done")
        closed = await peer.next_event("close")
        assert closed["code"] == 1000
    finally:
        await peer.close()
