"""Hostile clients against a wsevents server.

Each attack gets its documented status or close code, a well-behaved client is served while it
goes on, and the server's memory stays bounded (``tracemalloc`` peak, or the count of allocated
blocks where tracing would be too slow; generous bounds).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

import wsevents
from helpers import close_event, wait_until

KiB = 1024
MiB = 1024 * KiB
OVERFLOW = (1008, "write buffer overflow: the peer does not read")


# -- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def memory() -> Iterator[Callable[[], int]]:
    """``peak()``: the most memory (bytes) allocated at once since the fixture started, over its start."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    yield lambda: tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()


@pytest.fixture
async def server(make_server: Any) -> AsyncIterator[wsevents.Server]:
    """An echo server with short timeouts (the attacks below expect them), compression off."""
    srv = await make_server(
        {"compression": False, "handshake_timeout": 1, "close_timeout": 1, "max_write_buffer": 256 * KiB}
    )
    srv.on("connection", echo_on_echo_path)
    yield srv


def echo_on_echo_path(conn: wsevents.Connection) -> None:
    """Well-behaved clients use /echo; attackers elsewhere meet a recv() application that reads nothing."""
    if conn.path == "/echo":
        conn.on("text", conn.send_text)


async def served(server: wsevents.Server, text: str = "are you still there?") -> None:
    """A well-behaved client gets its echo."""
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/echo", compression=False) as client:
        await client.send_text(text)
        while await asyncio.wait_for(client.recv(), 5) != text:
            pass  # a broadcast


async def server_side(server: wsevents.Server, writer: asyncio.StreamWriter) -> wsevents.Connection:
    """The server's connection for a raw client."""
    port = writer.get_extra_info("sockname")[1]

    def find() -> wsevents.Connection | None:
        return next((c for c in server.connections if c.remote_address[1] == port), None)

    await wait_until(find)
    conn = find()
    assert conn is not None
    return conn


async def read_close(raw_ws: Any, reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Skip the data frames to the server's close frame; return its code and reason.

    Nothing may follow the close frame but the end of TCP: an EOF, or a reset where the attack
    left input unread (the reader keeps what arrived before a reset).
    """
    while (frame := await raw_ws.read_frame(reader)).opcode != 8:
        pass
    assert await asyncio.wait_for(reader.read(), 5) == b""
    return struct.unpack("!H", frame.payload[:2])[0], frame.payload[2:]


def header(opcode: int, length: int, *, fin: bool = True) -> bytes:
    """A masked frame header announcing ``length`` bytes (64-bit length form), payload not included."""
    return struct.pack("!BBQ", (0x80 if fin else 0) | opcode, 0x80 | 127, length) + b"\x00\x00\x00\x00"


# -- the opening handshake ------------------------------------------------------------------------


async def test_slowloris_crowd(server: wsevents.Server, raw_ws: Any, memory: Any) -> None:
    """20 clients trickling their requests a byte every 0.2 s, 20 sending nothing: all dropped at
    handshake_timeout (1 s) without an answer, while a normal client is served."""
    request, _ = raw_ws.request()
    peers = [await raw_ws.connect_raw(server.port) for _ in range(40)]
    start = time.perf_counter()

    async def trickle(writer: asyncio.StreamWriter) -> None:
        for byte in request:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)

    trickling = [asyncio.ensure_future(trickle(w)) for _, w in peers[:20]]
    try:
        await served(server)
        assert not any(r.at_eof() for r, _ in peers)  # served while all 40 were still connected
        answers = await asyncio.wait_for(asyncio.gather(*(r.read() for r, _ in peers)), 5)
        assert answers == [b""] * 40
        assert 0.95 <= time.perf_counter() - start < 5
    finally:
        for task in trickling:
            task.cancel()
    assert server.connections == [] and not server._live
    assert memory() < 4 * MiB


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        pytest.param(
            lambda raw: raw.request(extra="".join(f"X-H{i}: v\r\n" for i in range(10_000)))[0],
            431,
            id="10000-headers",
        ),
        pytest.param(
            lambda raw: raw.request(extra="".join(f"H{i}:v\r\n" for i in range(200)))[0],
            431,
            id="200-small-headers",
        ),
        pytest.param(
            lambda raw: raw.request(extra="X-Big: " + "a" * 100_000 + "\r\n")[0], 431, id="100k-header-line"
        ),
        pytest.param(lambda raw: b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\n", 431, id="40k-request-line"),
        pytest.param(
            lambda raw: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 500, 400, id="tls-hello"
        ),
        pytest.param(lambda raw: b"\r\n\r\n", 400, id="empty-head"),
        pytest.param(lambda raw: raw.request(extra="Bad Header\r\n")[0], 400, id="malformed-header"),
        pytest.param(lambda raw: raw.request(extra=" folded\r\n")[0], 400, id="folded-header"),
        pytest.param(
            lambda raw: raw.request(extra="Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n")[0],
            400,
            id="two-keys",
        ),
        pytest.param(
            lambda raw: raw.request()[0].replace(b"Version: 13", b"Version: 8"), 426, id="version-8"
        ),
        pytest.param(lambda raw: raw.request()[0].replace(b"GET", b"DELETE"), 405, id="delete"),
        pytest.param(
            lambda raw: raw.request()[0].replace(b"HTTP/1.1", b"HTTP/1.\xb9"), 400, id="superscript-version"
        ),
    ],
)
async def test_hostile_requests_get_their_status(
    server: wsevents.Server, raw_ws: Any, memory: Any, request_head: Any, status: int
) -> None:
    reader, writer = await raw_ws.connect_raw(server.port)
    writer.write(request_head(raw_ws))
    head = await raw_ws.read_head(reader)
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.split(b" ", 2)[1] == str(status).encode(), head
    assert b"\r\nConnection: close\r\n" in head
    body = await asyncio.wait_for(reader.read(), 5)  # then the server closes
    assert body == status_line.split(b" ", 1)[1] + b"\n"  # e.g. "431 Request Header Fields Too Large"
    assert not reader.reset  # the answer is not lost to a reset, however much the client sent
    await served(server)
    assert server.stats["rejected"] == 1
    assert memory() < 4 * MiB


# -- frames ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param([header(0x1, 100 * MiB)], id="text"),
        pytest.param([header(0x2, 100 * MiB)], id="binary"),
        pytest.param(
            [header(0x2, 1 * MiB, fin=False), b"b" * MiB, header(0x0, MiB + MiB // 2)], id="continued"
        ),
        pytest.param([header(0x1, 2**63 - 1)], id="2**63-1"),
    ],
)
async def test_a_huge_length_field_is_refused_before_its_payload(
    server: wsevents.Server, raw_ws: Any, memory: Any, attack: list[bytes]
) -> None:
    """max_buffer_length is 2 MiB: 1009 as soon as a header announces more, no payload needed."""
    reader, writer, _ = await raw_ws.open(server.port)  # messages go to recv()
    conn = await server_side(server, writer)
    closed = close_event(conn)
    for piece in attack:
        writer.write(piece)
    code, reason = await read_close(raw_ws, reader)
    assert code == 1009 and reason.startswith(b"message of over 2097152 bytes")
    assert (await asyncio.wait_for(closed, 5))[0] == 1009
    await served(server)
    assert memory() < (6 if len(attack) > 1 else 2) * MiB


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([(0x81, b"\x05", b"hello")], 1002, id="unmasked"),
        pytest.param([(0xC1, b"\x85", b"hello")], 1002, id="rsv1-without-extension"),
        pytest.param([(0xA1, b"\x85", b"hello")], 1002, id="rsv2"),
        pytest.param([(0x83, b"\x85", b"hello")], 1002, id="opcode-3"),
        pytest.param([(0x8B, b"\x80", b"")], 1002, id="opcode-0xB"),
        pytest.param([(0x09, b"\x80", b"")], 1002, id="fragmented-ping"),
        pytest.param([(0x89, b"\xfe\x00\x7e", b"p" * 126)], 1002, id="126-byte-ping"),
        pytest.param([(0x80, b"\x82", b"hi")], 1002, id="orphan-continuation"),
        pytest.param([(0x01, b"\x82", b"hi"), (0x81, b"\x82", b"hi")], 1002, id="text-inside-text"),
        pytest.param([(0x88, b"\x82", b"\x03\xed")], 1002, id="close-1005-on-wire"),
        pytest.param([(0x88, b"\x81", b"\x03")], 1002, id="close-1-byte"),
        pytest.param([(0x88, b"\x84", b"\x03\xe8\xc0\xaf")], 1007, id="close-reason-bad-utf8"),
        pytest.param([(0x82, b"\xff" + b"\x80" + b"\x00" * 7, b"")], 1002, id="length-top-bit"),
    ],
)
async def test_protocol_violations_are_failed_with_their_code(
    server: wsevents.Server, raw_ws: Any, frames: list[tuple[int, bytes, bytes]], code: int
) -> None:
    """Unmasked frames, reserved bits, unknown opcodes, bad control frames, bad fragmentation."""
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await server_side(server, writer)
    closed = close_event(conn)
    for b0, length, payload in frames:
        masked = length[0] & 0x80
        writer.write(bytes([b0]) + length + (b"\x00\x00\x00\x00" if masked else b"") + payload)
    assert (await read_close(raw_ws, reader))[0] == code
    assert (await asyncio.wait_for(closed, 5))[0] == code
    await served(server)


@pytest.mark.parametrize(
    "fragments",
    [
        pytest.param(
            [b"caf\xc3\xa9 \xf0\x9f", b"\x28 and the rest"], id="4-byte-sequence-broken-across-fragments"
        ),
        pytest.param([b"ok so far \xed", b"\xa0\x80"], id="surrogate-split-across-fragments"),
        pytest.param([b"fine", b" also fine", b"\xc0\xaf overlong"], id="overlong-in-third-fragment"),
        pytest.param([b"\xf4\x90"], id="past-U+10FFFF-in-first-fragment"),
    ],
)
async def test_invalid_utf8_fails_fast_inside_a_fragmented_message(
    server: wsevents.Server, raw_ws: Any, fragments: list[bytes]
) -> None:
    """1007 as soon as the bytes cannot be valid, before the message's final fragment is sent."""
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await server_side(server, writer)
    closed = close_event(conn)
    for i, fragment in enumerate(fragments):
        writer.write(raw_ws.frame(0x1 if i == 0 else 0x0, fragment, fin=False))  # never a final one
    assert await read_close(raw_ws, reader) == (1007, b"invalid UTF-8 in text message")
    assert await asyncio.wait_for(closed, 5) == (1007, "invalid UTF-8 in text message")
    await served(server)


@pytest.mark.parametrize("kind", ["recv-binary", "recv-text", "in-stream"])
async def test_a_flood_of_tiny_fragments_takes_no_more_memory_than_its_bytes(
    make_server: Any, raw_ws: Any, kind: str
) -> None:
    """99,000 fragments of 2 bytes (and 1,000 empty ones): held as about 200 KB, not as 99,000 objects."""
    srv = await make_server({"compression": False, "ping_interval": None})
    srv.on("connection", echo_on_echo_path)
    streams: list[wsevents.InStream] = []
    if kind == "in-stream":
        srv.on("connection", lambda c: c.on("binary", streams.append))  # never reads the stream
    reader, writer, _ = await raw_ws.open(srv.port)
    conn = await server_side(srv, writer)
    piece = "ā".encode() if kind == "recv-text" else b"ab"
    opcode = 0x1 if kind == "recv-text" else 0x2
    fragment = raw_ws.frame(0x0, piece, fin=False)
    empty = raw_ws.frame(0x0, b"", fin=False)
    burst = (fragment * 99 + empty) * 1000
    gc.collect()
    blocks = sys.getallocatedblocks()
    writer.write(raw_ws.frame(opcode, piece, fin=False))
    writer.write(burst)
    await writer.drain()
    pong = raw_ws.frame(0x9, b"sync")
    writer.write(pong)  # answered once everything before it was parsed
    while (await raw_ws.read_frame(reader)).opcode != 0xA:
        pass
    gc.collect()
    held = sys.getallocatedblocks() - blocks
    assert held < 10_000, f"{held} blocks held for one message in 99,001 pieces so far"
    writer.write(raw_ws.frame(0x0, piece, fin=True))
    if kind == "in-stream":
        message: Any = await asyncio.wait_for(streams[0].read(), 5)
    else:
        message = await asyncio.wait_for(conn.recv(), 5)
    expected = piece * 99_002
    assert message == (expected.decode() if kind == "recv-text" else expected)
    await served(srv)


# -- control frames --------------------------------------------------------------------------------


async def test_ping_flood_is_answered_in_order_and_others_are_served(
    server: wsevents.Server, raw_ws: Any, memory: Any
) -> None:
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await server_side(server, writer)
    burst = b"".join(raw_ws.frame(0x9, b"%05d" % i) for i in range(10_000))

    async def read_pongs() -> list[bytes]:
        pongs = []
        while len(pongs) < 10_000:
            frame = await raw_ws.read_frame(reader)
            assert frame.opcode == 0xA and not frame.masked
            pongs.append(frame.payload)
        return pongs

    reading = asyncio.ensure_future(read_pongs())
    writer.write(burst)
    await served(server)
    assert await asyncio.wait_for(reading, 30) == [b"%05d" % i for i in range(10_000)]
    assert conn.ready_state == wsevents.Connection.OPEN
    assert memory() < 8 * MiB


async def test_ping_flood_from_a_peer_that_never_reads_the_pongs(
    server: wsevents.Server, raw_ws: Any, memory: Any
) -> None:
    """The pongs pile up unsent: past max_write_buffer (256 KiB) the peer is dropped with 1008."""
    _, writer = await raw_ws.stalled(server.port)
    conn = await server_side(server, writer)
    conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
    closed = close_event(conn)
    batch = raw_ws.frame(0x9, b"p" * 125) * 1000  # 131 KB of pings, 127 KB of pongs

    async def flood() -> None:
        for _ in range(40):  # at most 5 MB, far past 256 KiB
            if closed.done():
                return
            writer.write(batch)
            try:
                await writer.drain()
            except ConnectionError:
                return

    flooding = asyncio.ensure_future(flood())
    try:
        assert await asyncio.wait_for(closed, 10) == OVERFLOW
    finally:
        flooding.cancel()
    assert server.stats["write_overflows"] == 1
    await served(server)
    assert memory() < 8 * MiB


async def test_close_frame_flood(server: wsevents.Server, raw_ws: Any) -> None:
    """The first close frame is answered (its code echoed, and nothing after it), the other 9,999
    ignored; the server closes TCP. (With the flood unread, Linux may end TCP with a reset after the
    close frame: the reader keeps what came before it.)"""
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await server_side(server, writer)
    closes: list[tuple[int, str]] = []
    conn.on("close", lambda code, reason: closes.append((code, reason)))
    writer.write(
        b"".join(raw_ws.frame(0x8, raw_ws.close_payload(4000 + i % 999, "flood")) for i in range(10_000))
    )
    assert (await raw_ws.read_frame(reader)).payload == b"\x0f\xa0"  # the first frame: the code echoed
    assert await asyncio.wait_for(reader.read(), 5) == b""  # nothing after it
    await asyncio.wait_for(conn.wait_closed(), 5)
    assert closes == [(4000, "flood")]
    await served(server)


# -- peers that vanish or stop reading ------------------------------------------------------------


async def test_a_half_open_connection_is_reaped_by_keepalive(make_server: Any, raw_ws: Any) -> None:
    """A client that vanishes without a FIN (it never reads, never writes, never closes again)."""
    srv = await make_server({"ping_interval": 0.2, "ping_timeout": 0.3, "compression": False})
    srv.on("connection", echo_on_echo_path)
    healthy = await wsevents.connect(f"ws://127.0.0.1:{srv.port}/echo", ping_interval=0.2, ping_timeout=0.3)
    _, writer, _ = await raw_ws.open(srv.port)
    conn = await server_side(srv, writer)
    conn.send_text("you there?")
    writer.transport.pause_reading()  # gone: the socket stays open on its side
    closed = close_event(conn)
    assert await asyncio.wait_for(closed, 3) == (1011, "keepalive ping timeout")
    assert srv.stats["keepalive_timeouts"] == 1
    assert conn not in srv.connections
    # The responsive peer went through the same keepalive rounds and is still served.
    assert healthy.ready_state == wsevents.Connection.OPEN
    await healthy.send_text("still here")
    assert await asyncio.wait_for(healthy.recv(), 5) == "still here"
    await healthy.close()


async def test_a_client_that_stops_reading_during_broadcasts_is_dropped(
    make_server: Any, raw_ws: Any, memory: Any
) -> None:
    srv = await make_server({"compression": False, "max_write_buffer": 256 * KiB})
    srv.on("connection", echo_on_echo_path)
    url = f"ws://127.0.0.1:{srv.port}/"
    readers = [await wsevents.connect(url, compression=False) for _ in range(3)]
    _, stalled_writer = await raw_ws.stalled(srv.port)
    stalled = await server_side(srv, stalled_writer)
    stalled.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
    dropped = close_event(stalled)
    received = [0, 0, 0]
    message = "b" * (16 * KiB)

    async def drain(i: int, client: wsevents.Connection) -> None:
        async for got in client:
            assert got == message
            received[i] += 1

    draining = [asyncio.ensure_future(drain(i, c)) for i, c in enumerate(readers)]
    deliveries = []

    async def broadcasting() -> None:
        for _ in range(200):  # 3.2 MB to each peer
            deliveries.append(srv.broadcast(message))
            await asyncio.sleep(0.002)

    sending = asyncio.ensure_future(broadcasting())
    assert await asyncio.wait_for(dropped, 5) == OVERFLOW
    await served(srv)  # while the broadcasts go on
    await asyncio.wait_for(sending, 10)
    assert srv.stats["write_overflows"] == 1
    assert deliveries[0] == 4 and deliveries[-1] == 3  # the stalled peer was skipped once dropped
    await wait_until(lambda: received == [200] * 3)  # the others got every broadcast
    await asyncio.gather(*(c.close(1000) for c in readers))
    await asyncio.gather(*draining)
    assert memory() < 16 * MiB


async def test_a_message_flood_to_an_application_that_does_not_read(
    server: wsevents.Server, raw_ws: Any, memory: Any
) -> None:
    """100,000 messages to a recv() application that reads none: max_queue (64) stops reading."""
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await server_side(server, writer)
    flood = raw_ws.frame(0x1, b"spam") * 100_000
    writer.write(flood)
    transport = conn.transport
    assert transport is not None
    await wait_until(lambda: not transport.is_reading())
    await served(server)
    assert memory() < 4 * MiB
    assert [await asyncio.wait_for(conn.recv(), 5) for _ in range(1000)] == ["spam"] * 1000
    assert conn.ready_state == wsevents.Connection.OPEN
