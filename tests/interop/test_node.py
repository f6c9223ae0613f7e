"""Interop with real Node peers nobody here wrote: npm ``ws`` and ``nodejs-websocket``
(versions pinned in package-lock.json), each as client of a wsevents server and as
server for the wsevents client."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nodepeer import LIBS, NodePeer, pattern

import wsevents

MiB = 1024 * 1024


class Recorder:
    """A wsevents server that echoes and records what happens to its one connection."""

    def __init__(self, **options: Any) -> None:
        self.server = wsevents.create_server(self.on_connection, **options)
        loop = asyncio.get_running_loop()
        self.conn: asyncio.Future[wsevents.Connection] = loop.create_future()
        self.closed: asyncio.Future[tuple[int, str]] = loop.create_future()
        self.pongs: asyncio.Queue[str] = asyncio.Queue()
        self.streamed: asyncio.Queue[bytes] = asyncio.Queue()

    def on_connection(self, conn: wsevents.Connection) -> None:
        conn.on("text", conn.send_text)

        async def on_binary(stream: wsevents.InStream) -> None:
            data = await stream.read()
            self.streamed.put_nowait(data)
            await conn.send_binary(data)

        conn.on("binary", on_binary)
        conn.on("pong", self.pongs.put_nowait)
        conn.on("close", lambda code, reason: self.closed.done() or self.closed.set_result((code, reason)))
        if not self.conn.done():
            self.conn.set_result(conn)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder(valid_protocols=["chat", "superchat"], max_buffer_length=4 * MiB)
    await rec.server.listen(0, "127.0.0.1")
    yield rec
    for conn in rec.server.connections:
        conn.transport.abort()  # type: ignore[union-attr]
    await asyncio.wait_for(rec.server.close(), 10)


@pytest.fixture
async def peers() -> AsyncIterator[list[NodePeer]]:
    started: list[NodePeer] = []
    yield started
    for peer in started:
        await peer.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("lib", LIBS)
async def test_node_client_against_wsevents_server(
    lib: str, recorder: Recorder, peers: list[NodePeer]
) -> None:
    url = f"ws://127.0.0.1:{recorder.server.port}/room?id=7"
    peer = await NodePeer.start("client", lib, url, protocols=["superchat", "chat"])
    peers.append(peer)
    connected = await peer.next_event("connect")
    conn = await asyncio.wait_for(recorder.conn, 5)
    assert conn.path == "/room?id=7"
    assert conn.protocols == ["superchat", "chat"]
    assert conn.protocol == "superchat" and connected["protocol"] == "superchat"

    await peer.send(op="send_text", data="héllo wörld ✓")
    assert (await peer.next_event("text"))["data"] == "héllo wörld ✓"

    await peer.send(op="send_binary_pattern", length=MiB)
    echoed = await peer.next_event("binary")
    assert (echoed["length"], echoed["sha256"]) == (MiB, sha(pattern(MiB)))
    assert await asyncio.wait_for(recorder.streamed.get(), 5) == pattern(MiB)

    conn.send_ping("knock knock")
    assert await asyncio.wait_for(recorder.pongs.get(), 5) == "knock knock"
    await peer.send(op="ping", data="who is there")
    assert (await peer.next_event("pong"))["data"] == "who is there"

    await peer.send(op="close", code=4001, reason="bye")
    assert await asyncio.wait_for(recorder.closed, 5) == (4001, "bye")
    assert (await peer.next_event("close"))["code"] == 4001


async def test_nodejs_websocket_stream_to_wsevents(recorder: Recorder, peers: list[NodePeer]) -> None:
    """nodejs-websocket's beginBinary() sends a fragmented message; wsevents reads it as one stream."""
    peer = await NodePeer.start("client", "nodejs-websocket", f"ws://127.0.0.1:{recorder.server.port}/")
    peers.append(peer)
    await peer.next_event("connect")
    await peer.send(op="send_binary_stream", length=MiB + 5, chunk=64 * 1024)
    assert await asyncio.wait_for(recorder.streamed.get(), 10) == pattern(MiB + 5)
    echoed = await peer.next_event("binary")
    assert echoed["sha256"] == sha(pattern(MiB + 5))


@pytest.mark.parametrize("lib", LIBS)
async def test_wsevents_server_closes_node_client(
    lib: str, recorder: Recorder, peers: list[NodePeer]
) -> None:
    peer = await NodePeer.start("client", lib, f"ws://127.0.0.1:{recorder.server.port}/")
    peers.append(peer)
    await peer.next_event("connect")
    conn = await asyncio.wait_for(recorder.conn, 5)
    await asyncio.wait_for(conn.close(4002, "server says bye"), 5)
    event = await peer.next_event("close")
    assert (event["code"], event["reason"]) == (4002, "server says bye")
    assert conn.ready_state == wsevents.Connection.CLOSED


@pytest.mark.parametrize("lib", LIBS)
async def test_wsevents_client_against_node_server(lib: str, peers: list[NodePeer]) -> None:
    peer = await NodePeer.start("server", lib, echo=True, protocols=["chat", "superchat"])
    peers.append(peer)
    url = f"ws://127.0.0.1:{peer.port}/feed?x=1"
    async with wsevents.connect(url, protocols=["superchat", "chat"], max_buffer_length=4 * MiB) as conn:
        connected = await peer.next_event("connect")
        assert connected["path"] == "/feed?x=1"
        assert connected["headers"]["sec-websocket-protocol"] == "superchat, chat"
        assert conn.protocol == "superchat" == connected["protocol"]

        await conn.send_text("héllo wörld ✓")
        assert await asyncio.wait_for(conn.recv(), 5) == "héllo wörld ✓"
        payload = pattern(MiB)
        await conn.send_binary(payload)
        assert await asyncio.wait_for(conn.recv(), 10) == payload
        assert (await peer.next_event("binary"))["sha256"] == sha(payload)

        async with conn.begin_binary() as out:
            for i in range(0, MiB, 100_000):
                await out.write(payload[i : i + 100_000])
        assert await asyncio.wait_for(conn.recv(), 10) == payload

        pong: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        conn.once("pong", pong.set_result)
        conn.send_ping("are you there")
        assert await asyncio.wait_for(pong, 5) == "are you there"

        await asyncio.wait_for(conn.close(4003, "client says bye"), 5)
    event = await peer.next_event("close")
    assert (event["code"], event["reason"]) == (4003, "client says bye")
    assert conn.close_code == 4003


@pytest.mark.parametrize("lib", LIBS)
async def test_node_server_closes_wsevents_client(lib: str, peers: list[NodePeer]) -> None:
    peer = await NodePeer.start("server", lib, echo=True)
    peers.append(peer)
    conn = await wsevents.connect(f"ws://127.0.0.1:{peer.port}/")
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    conn.on("close", lambda code, reason: closed.set_result((code, reason)))
    await peer.next_event("connect")
    await peer.send(op="close", code=4004, reason="server says bye")
    assert await asyncio.wait_for(closed, 5) == (4004, "server says bye")
    with pytest.raises(wsevents.ConnectionClosed) as info:
        await conn.recv()
    assert info.value.code == 4004


async def test_no_agreed_protocol_with_node_server(peers: list[NodePeer]) -> None:
    """nodejs-websocket answers without a protocol; the wsevents client fails as Node's does."""
    peer = await NodePeer.start("server", "nodejs-websocket", protocols=["chat"])
    peers.append(peer)
    with pytest.raises(wsevents.HandshakeError) as info:
        await wsevents.connect(f"ws://127.0.0.1:{peer.port}/", protocols=["other"])
    assert str(info.value) == "Invalid handshake: no protocol was negotiated"


async def test_ws_server_compression_with_wsevents_client(peers: list[NodePeer]) -> None:
    """permessage-deflate against npm ws, both directions, compressible and not."""
    peer = await NodePeer.start("server", "ws", echo=True, deflate=True)
    peers.append(peer)
    async with wsevents.connect(f"ws://127.0.0.1:{peer.port}/", max_buffer_length=4 * MiB) as conn:
        connected = await peer.next_event("connect")
        assert "permessage-deflate" in connected["extensions"]
        assert conn.deflate is not None
        assert "permessage-deflate" in conn.headers["sec-websocket-extensions"]
        for message in ("x" * 5000, "short", "ünïcødé " * 300):
            await conn.send_text(message)
            assert await asyncio.wait_for(conn.recv(), 5) == message
        for payload in (pattern(MiB), bytes(MiB), hashlib.sha512(b"seed").digest() * 2048):
            await conn.send_binary(payload)
            assert await asyncio.wait_for(conn.recv(), 10) == payload
        async with conn.begin_binary() as out:
            for _ in range(8):
                await out.write(pattern(100_000))
        assert await asyncio.wait_for(conn.recv(), 10) == pattern(100_000) * 8


async def test_ws_client_compression_with_wsevents_server(recorder: Recorder, peers: list[NodePeer]) -> None:
    peer = await NodePeer.start("client", "ws", f"ws://127.0.0.1:{recorder.server.port}/", deflate=True)
    peers.append(peer)
    connected = await peer.next_event("connect")
    assert "permessage-deflate" in connected["extensions"]
    conn = await asyncio.wait_for(recorder.conn, 5)
    assert conn.deflate is not None
    await peer.send(op="send_text", data="compress me " * 1000)
    assert (await peer.next_event("text"))["data"] == "compress me " * 1000
    await peer.send(op="send_binary_pattern", length=MiB)
    assert (await peer.next_event("binary"))["sha256"] == sha(pattern(MiB))
    assert await asyncio.wait_for(recorder.streamed.get(), 5) == pattern(MiB)
