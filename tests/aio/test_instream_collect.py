"""A binary message collected whole, over loopback: each piece is unmasked straight into it.

While ``await stream.read()`` waits for the whole message (or while ``recv()`` / ``"message"``
collect one that arrives in pieces), the core unmasks each arriving piece into the message's
own buffer instead of handing it on as a bytes object to be joined later. What the application
gets is the same; the limits (``max_buffer_length``, 1009) hold to the byte; a read that is
cancelled stops the collection and reading goes on. The peer is a raw client writing
byte-exact masked frames.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from helpers import BINARY, CONT, frame, wait_until
from wsevents import Connection, InStream, MessageTooBig

LIMIT = 100_000
FIRST = 40_000


def blob(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


async def accept_raw(
    make_server: Any, raw_ws: Any, **server_options: Any
) -> tuple[Connection, asyncio.StreamReader, asyncio.StreamWriter]:
    """A wsevents server connection whose peer is a hand-driven client."""
    server = await make_server(server_options)
    accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", lambda c: None if accepted.done() else accepted.set_result(c))
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await asyncio.wait_for(accepted, 5)
    return conn, reader, writer


async def close_code(reader: asyncio.StreamReader, raw_ws: Any) -> int:
    """The code of the close frame the server sends (after any other frames)."""
    while True:
        got = await asyncio.wait_for(raw_ws.read_frame(reader), 5)
        if got.opcode == 8:
            return int.from_bytes(got.payload[:2], "big")


class WholeReads:
    """A ``"binary"`` listener that reads each message whole; what it got, or its error."""

    def __init__(self, conn: Connection) -> None:
        self.streams: list[InStream] = []
        self.results: list[bytes | BaseException] = []
        self.tasks: list[asyncio.Task[None]] = []
        conn.on("binary", self.on_binary)

    def on_binary(self, stream: InStream) -> None:
        self.streams.append(stream)
        self.tasks.append(asyncio.ensure_future(self.read(stream)))

    async def read(self, stream: InStream) -> None:
        try:
            self.results.append(await stream.read())
        except MessageTooBig as exc:
            self.results.append(exc)

    def collecting(self) -> bool:
        return bool(self.streams) and self.streams[-1]._collecting is not None


async def test_a_waiting_whole_read_gets_the_rest_unmasked_into_its_buffer(
    make_server: Any, raw_ws: Any
) -> None:
    conn, reader, writer = await accept_raw(make_server, raw_ws, max_buffer_length=LIMIT)
    reads = WholeReads(conn)
    parts = [blob(FIRST, 1), blob(20_000, 2), blob(30_000, 3)]
    writer.write(frame(BINARY, parts[0], fin=False))
    await wait_until(reads.collecting)
    assert conn._core is not None and conn._core._sink is reads.streams[0]._collecting
    writer.write(frame(CONT, parts[1], fin=False) + frame(CONT, parts[2]))
    await wait_until(lambda: reads.results)
    assert reads.results == [b"".join(parts)]
    assert conn._core._sink is None
    assert reads.streams[0].bytes_received == sum(map(len, parts))
    # The next message, whole in one frame, is read as ever.
    writer.write(frame(BINARY, b"next"))
    await wait_until(lambda: len(reads.results) == 2)
    assert reads.results[1] == b"next"


@pytest.mark.parametrize("total", [LIMIT, LIMIT + 1], ids=["at the limit", "one byte over"])
async def test_a_collected_whole_read_is_bounded_to_the_byte(
    make_server: Any, raw_ws: Any, total: int
) -> None:
    conn, reader, writer = await accept_raw(make_server, raw_ws, max_buffer_length=LIMIT)
    reads = WholeReads(conn)
    message = blob(total, 4)
    writer.write(frame(BINARY, message[:FIRST], fin=False))
    await wait_until(reads.collecting)
    half = (total + FIRST) // 2
    writer.write(frame(CONT, message[FIRST:half], fin=False) + frame(CONT, message[half:]))
    await wait_until(lambda: reads.results)
    if total <= LIMIT:
        assert reads.results == [message]
        return
    assert isinstance(reads.results[0], MessageTooBig)
    assert await close_code(reader, raw_ws) == 1009


async def test_a_cancelled_whole_read_stops_collecting_and_reading_goes_on(
    make_server: Any, raw_ws: Any
) -> None:
    conn, reader, writer = await accept_raw(make_server, raw_ws, max_buffer_length=LIMIT)
    reads = WholeReads(conn)
    writer.write(frame(BINARY, blob(FIRST, 5), fin=False))
    await wait_until(reads.collecting)
    # Past the limit would fail the message; cancelled first, the read takes what it had with it.
    reads.tasks[0].cancel()
    await wait_until(lambda: reads.tasks[0].done())
    stream = reads.streams[0]
    assert stream._collecting is None and conn._core is not None and conn._core._sink is None
    rest = blob(2 * LIMIT, 6)
    writer.write(frame(CONT, rest[:LIMIT], fin=False) + frame(CONT, rest[LIMIT:]))
    chunks = []
    async for chunk in stream:  # read piece by piece: the stream's backpressure still works
        chunks.append(chunk)
    assert b"".join(chunks) == rest
    writer.write(frame(BINARY, b"after"))
    await wait_until(lambda: len(reads.results) == 1)
    assert reads.results == [b"after"]


@pytest.mark.parametrize("total", [LIMIT, LIMIT + 1], ids=["at the limit", "one byte over"])
async def test_recv_collects_a_message_in_pieces_bounded_to_the_byte(
    make_server: Any, raw_ws: Any, total: int
) -> None:
    conn, reader, writer = await accept_raw(make_server, raw_ws, max_buffer_length=LIMIT)
    received = asyncio.ensure_future(conn.recv())
    message = blob(total, 7)
    # A first frame in two reads: the first piece is kept as the start of the message's buffer.
    first = frame(BINARY, message[:FIRST], fin=False)
    writer.write(first[:20_000])
    await wait_until(lambda: conn._parts is not None and not isinstance(conn._parts, list))
    writer.write(first[20_000:] + frame(CONT, message[FIRST:]))
    if total <= LIMIT:
        assert await asyncio.wait_for(received, 5) == message
        return
    assert await close_code(reader, raw_ws) == 1009
    received.cancel()


async def test_message_listeners_get_a_message_collected_in_pieces(make_server: Any, raw_ws: Any) -> None:
    conn, reader, writer = await accept_raw(make_server, raw_ws, max_buffer_length=LIMIT)
    got: list[str | bytes] = []
    conn.on("message", got.append)
    message = blob(LIMIT, 8)
    wire = frame(BINARY, message[:FIRST], fin=False) + frame(CONT, message[FIRST:])
    for i in range(0, len(wire), 7_000):  # many reads, most of them mid-frame
        writer.write(wire[i : i + 7_000])
        await writer.drain()
        await asyncio.sleep(0)
    await wait_until(lambda: got)
    assert got == [message]
