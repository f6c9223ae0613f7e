"""Hostile clients: each gets its documented status or close code, while a well-behaved client is
served meanwhile and the server's memory stays bounded.

(Slowloris, silent peers, oversized length fields, unmasked frames and invalid UTF-8 split across
fragments are in test_reliability_features.py, test_limits.py and the conformance suite.)
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import wsevents

MiB = 1 << 20


@pytest.fixture
def memory() -> Iterator[Any]:
    """Peak traced memory (bytes) of what runs while the fixture is active."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]

    def peak() -> int:
        return int(tracemalloc.get_traced_memory()[1] - base)

    yield peak
    tracemalloc.stop()


@pytest.fixture
async def echo(make_server: Any) -> AsyncIterator[wsevents.Server]:
    server = await make_server({"compression": False})
    server.on("connection", lambda c: c.on("text", c.send_text))
    yield server


async def still_served(server: wsevents.Server) -> None:
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
        await client.send_text("are you still there?")
        assert await asyncio.wait_for(client.recv(), 5) == "are you still there?"


async def test_ten_thousand_headers_get_431(echo: wsevents.Server, raw_ws: Any, memory: Any) -> None:
    reader, writer = await raw_ws.connect_raw(echo.port)
    request, _ = raw_ws.request(extra="".join(f"X-H{i}: v\r\n" for i in range(10_000)))
    writer.write(request)
    head = await raw_ws.read_head(reader)
    assert head.startswith(b"HTTP/1.1 431 ")
    assert await asyncio.wait_for(reader.read(), 5) == b"431 Request Header Fields Too Large\n"
    await still_served(echo)
    assert memory() < 4 * MiB


async def test_ping_flood(echo: wsevents.Server, raw_ws: Any, memory: Any) -> None:
    """10,000 pings: every one is answered, in order, and others are served meanwhile."""
    reader, writer, _ = await raw_ws.open(echo.port)
    burst = b"".join(raw_ws.frame(9, b"%05d" % i) for i in range(10_000))

    async def read_pongs() -> list[bytes]:
        pongs = []
        while len(pongs) < 10_000:
            frame = await raw_ws.read_frame(reader)
            assert frame.opcode == 10
            pongs.append(frame.payload)
        return pongs

    reading = asyncio.ensure_future(read_pongs())
    writer.write(burst)
    await still_served(echo)
    pongs = await asyncio.wait_for(reading, 20)
    assert pongs == [b"%05d" % i for i in range(10_000)]
    assert memory() < 8 * MiB


async def test_close_frame_flood(echo: wsevents.Server, raw_ws: Any) -> None:
    """The first close frame is answered, the other 9,999 ignored, and the server closes TCP."""
    reader, writer, _ = await raw_ws.open(echo.port)
    closes: list[tuple[int, str]] = []
    while not echo.connections:
        await asyncio.sleep(0.01)
    echo.connections[0].on("close", lambda code, reason: closes.append((code, reason)))
    writer.write(
        b"".join(raw_ws.frame(8, raw_ws.close_payload(4000 + i % 999, "flood")) for i in range(10_000))
    )
    try:
        answer = await raw_ws.read_frame(reader)
        assert answer.opcode == 8 and answer.payload == (4000).to_bytes(2, "big")
        assert await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        # The server closed with the flood unread in its receive buffer: the kernel's RST
        # may overtake the close frame. Acceptable for a peer that broke the protocol.
        pass
    await still_served(echo)
    assert closes == [(4000, "flood")]


async def test_a_client_that_stops_reading_during_broadcasts(
    make_server: Any, raw_ws: Any, memory: Any
) -> None:
    server = await make_server({"compression": False, "max_write_buffer": MiB})
    url = f"ws://127.0.0.1:{server.port}/"
    readers = [await wsevents.connect(url, max_buffer_length=4 * MiB) for _ in range(3)]
    _, stalled_writer, _ = await raw_ws.open(server.port)
    stalled_writer.transport.pause_reading()  # reads nothing from now on
    while len(server.connections) < 4:
        await asyncio.sleep(0.01)
    port = stalled_writer.get_extra_info("sockname")[1]
    (stalled,) = [c for c in server.connections if c.remote_address[1] == port]
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    stalled.on("close", lambda code, reason: closed.done() or closed.set_result((code, reason)))
    message = "b" * 32_768
    received = [0, 0, 0]

    async def drain(i: int, client: wsevents.Connection) -> None:
        with pytest.raises(wsevents.ConnectionClosed):
            while True:
                assert await client.recv() == message
                received[i] += 1

    draining = [asyncio.ensure_future(drain(i, c)) for i, c in enumerate(readers)]
    sent = 0
    for _ in range(400):  # 12.5 MiB to each peer
        sent += 1
        server.broadcast(message)
        await asyncio.sleep(0.002)
    assert await asyncio.wait_for(closed, 5) == (1008, "write buffer overflow: the peer does not read")
    assert server.stats["write_overflows"] == 1
    for client in readers:
        while client.ready_state == wsevents.Connection.OPEN and received[readers.index(client)] < sent:
            await asyncio.sleep(0.01)
        await client.close()
    await asyncio.gather(*draining)
    assert received == [sent] * 3  # the others got every broadcast
    assert memory() < 24 * MiB
