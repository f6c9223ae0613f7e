"""Real backpressure over loopback: unconsumed data past max_buffer_length stops reading from the socket.

The kernel's socket buffers absorb some data whatever the library does; to make
"the sender stalls" independent of the machine's TCP autotuning, the tests pin
the client's send buffer and the server's receive buffer to small sizes.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import wsevents
from wsevents import Connection, InStream

KiB = 1024
MiB = 1024 * KiB
# asyncio reads at most this much from a socket at once (selector transports).
ONE_SOCKET_READ = 256 * KiB

Pair = tuple[wsevents.Server, Connection, Connection]


def blob(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def shrink_socket_buffers(server_conn: Connection, client: Connection) -> None:
    client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KiB)
    server_conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)


@pytest.fixture
def make_pair(make_server: Any, ws_connect: Any) -> Callable[..., Awaitable[Pair]]:
    """``server, server_conn, client = await make_pair(server_options)``, with small socket buffers."""

    async def factory(server_options: dict[str, Any] | None = None, **client_options: Any) -> Pair:
        server = await make_server(server_options)
        accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        server.on("connection", lambda c: accepted.done() or accepted.set_result(c))
        client = await ws_connect(f"ws://127.0.0.1:{server.port}/", client_options or None)
        server_conn = await asyncio.wait_for(accepted, 5)
        shrink_socket_buffers(server_conn, client)
        return server, server_conn, client

    return factory


def is_reading(conn: Connection) -> bool:
    transport = conn.transport
    assert transport is not None
    return transport.is_reading()


async def test_paused_in_stream_stops_reading_then_resume_gets_everything(make_pair: Any, until: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB})
    payload = blob(4 * MiB)
    streams: list[InStream] = []

    @server_conn.on("binary")
    def on_binary(stream: InStream) -> None:
        stream.pause()
        streams.append(stream)

    sending = asyncio.ensure_future(client.send_binary(payload))
    await until(lambda: streams and not is_reading(server_conn))
    stream = streams[0]
    await asyncio.sleep(0.5)
    # The server stopped reading from the socket ...
    assert not is_reading(server_conn)
    # ... so it holds at most the limit plus what one socket read brought in ...
    assert 64 * KiB < stream.bytes_received <= 64 * KiB + ONE_SOCKET_READ
    # ... and the client cannot hand its 4 MiB to the OS.
    assert not sending.done()
    assert server_conn.ready_state == Connection.OPEN

    chunks: list[bytes] = []
    ended = asyncio.Event()
    stream.on("data", chunks.append)
    stream.on("end", ended.set)
    stream.resume()
    await asyncio.wait_for(ended.wait(), 10)
    await asyncio.wait_for(sending, 10)
    assert b"".join(chunks) == payload
    assert is_reading(server_conn)
    assert server_conn.ready_state == Connection.OPEN
    # The connection goes on working normally (recv() once no message listener is left).
    server_conn.off("binary", on_binary)
    await client.send_text("after")
    assert await asyncio.wait_for(server_conn.recv(), 5) == "after"


async def test_unread_in_stream_stops_reading_then_async_for_gets_everything(
    make_pair: Any, until: Any
) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB})
    payload = blob(4 * MiB, seed=2)
    streams: list[InStream] = []
    # A listener that keeps the stream and consumes nothing (yet).
    server_conn.on("binary", streams.append)

    sending = asyncio.ensure_future(client.send_binary(payload))
    await until(lambda: streams and not is_reading(server_conn))
    await asyncio.sleep(0.5)
    stream = streams[0]
    assert not is_reading(server_conn)
    assert stream.bytes_received <= 64 * KiB + ONE_SOCKET_READ
    assert not sending.done()

    async def consume() -> bytes:
        return b"".join([chunk async for chunk in stream])

    assert await asyncio.wait_for(consume(), 10) == payload
    await asyncio.wait_for(sending, 10)
    assert server_conn.ready_state == Connection.OPEN


async def test_slow_data_listener_holds_nothing_unbounded(make_pair: Any) -> None:
    # Reading in small steps with read(n): the stream never holds more than the limit plus one read.
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB})
    payload = blob(2 * MiB, seed=3)
    stream_fut: asyncio.Future[InStream] = asyncio.get_running_loop().create_future()
    server_conn.on("binary", stream_fut.set_result)
    sending = asyncio.ensure_future(client.send_binary(payload))
    stream = await asyncio.wait_for(stream_fut, 5)
    got = bytearray()
    max_ahead = 0
    while True:
        piece = await asyncio.wait_for(stream.read(16 * KiB), 5)
        if not piece:
            break
        got += piece
        max_ahead = max(max_ahead, stream.bytes_received - len(got))
    assert bytes(got) == payload
    assert max_ahead <= 64 * KiB + ONE_SOCKET_READ
    await asyncio.wait_for(sending, 10)


async def test_recv_queue_stops_reading_then_recv_gets_every_message(make_pair: Any, until: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB})
    # Nobody listens for "text" or "binary": messages are queued for recv().
    count = 256
    size = 16 * KiB  # 4 MiB in all

    def message(i: int) -> str | bytes:
        body = blob(size, seed=i)
        if i % 3 == 0:
            return f"{i:08d}" + body.hex()[: size - 8]
        return i.to_bytes(4, "big") + body[4:]

    sent = 0

    async def produce() -> None:
        nonlocal sent
        for i in range(count):
            await client.send(message(i))
            sent += 1

    producer = asyncio.ensure_future(produce())
    await until(lambda: not is_reading(server_conn))
    await asyncio.sleep(0.5)
    assert not is_reading(server_conn)
    # The awaited sends stall: the client could not hand everything over.
    assert not producer.done()
    assert sent < count
    assert server_conn.ready_state == Connection.OPEN

    for i in range(count):
        got = await asyncio.wait_for(server_conn.recv(), 5)
        assert got == message(i), f"message {i} differs"
    await asyncio.wait_for(producer, 10)
    assert sent == count
    assert is_reading(server_conn)
    assert server_conn.ready_state == Connection.OPEN


async def test_recv_queue_below_the_limit_keeps_reading(make_pair: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB})
    for i in range(3):
        await client.send_binary(bytes([i]) * (20 * KiB))
    pong = asyncio.Event()
    client.on("pong", lambda data: pong.set())
    client.send_ping("sync")
    # The pong proves the server parsed everything sent before the ping: 60 KiB queued, under the limit.
    await asyncio.wait_for(pong.wait(), 5)
    assert is_reading(server_conn)
    for i in range(3):
        assert await asyncio.wait_for(server_conn.recv(), 5) == bytes([i]) * (20 * KiB)


@pytest.mark.parametrize("how", ["one-frame", "out-stream"])
async def test_streamed_binary_is_never_closed_for_its_size(make_pair: Any, how: str) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": MiB}, binary_fragmentation=256 * KiB)
    payload = blob(20 * MiB, seed=4)
    chunks: list[bytes] = []
    ended = asyncio.Event()
    closes: list[tuple[int, str]] = []
    server_conn.on("close", lambda code, reason: closes.append((code, reason)))

    @server_conn.on("binary")
    def on_binary(stream: InStream) -> None:
        stream.on("data", chunks.append)
        stream.on("end", ended.set)

    if how == "one-frame":
        sending: Awaitable[None] = client.send_binary(payload)
    else:
        out = client.begin_binary()
        for i in range(0, len(payload), 100 * KiB):
            out.write(payload[i : i + 100 * KiB])
        sending = out.end()
    await asyncio.wait_for(ended.wait(), 20)
    await asyncio.wait_for(sending, 5)
    assert b"".join(chunks) == payload
    assert closes == []
    assert server_conn.ready_state == Connection.OPEN
    assert client.ready_state == Connection.OPEN
