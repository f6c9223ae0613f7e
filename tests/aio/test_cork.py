"""Writes made while one read is dispatched go out as one write, with nothing reordered or lost.

A read holding many frames (a pipelining peer) is answered by echoes, pongs and close
answers that the connection joins into one ``transport.write`` (``CORK_LIMIT`` bytes at
most; a bigger write goes out on its own, in order); a read of one message holds nothing
back, its answer is written at once. These tests check the batching on a
real server, and that the order of everything the peer receives, the close answer before
the TCP close, and the completion of the batch's sends are what they were write by write.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsevents
from wsevents.aio.transport import CORK_LIMIT

pytestmark = pytest.mark.timeout(120)

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


class CountingTransport:
    """A real transport, passed through, that records every write (works on uvloop too)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._real = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def count_writes(conn: wsevents.Connection) -> CountingTransport:
    transport = conn.transport
    assert transport is not None
    counting = CountingTransport(transport)
    conn._transport = counting  # type: ignore[assignment]
    return counting


def echo(conn: wsevents.Connection) -> None:
    conn.on("message", lambda message: conn.send(message))


async def read_frames(raw_ws: Any, reader: asyncio.StreamReader, count: int) -> list[tuple[int, bytes]]:
    return [(f.opcode, f.payload) for f in [await raw_ws.read_frame(reader) for _ in range(count)]]


async def test_a_read_of_many_messages_is_answered_in_one_write(make_server: Any, raw_ws: Any) -> None:
    server = await make_server()
    counted: asyncio.Future[CountingTransport] = asyncio.get_running_loop().create_future()

    def on_connection(conn: wsevents.Connection) -> None:
        conn.on("text", conn.send_text)
        counted.set_result(count_writes(conn))

    server.on("connection", on_connection)
    reader, writer, _ = await raw_ws.open(server.port)
    counting = await asyncio.wait_for(counted, 5)
    writer.write(b"".join(raw_ws.frame(TEXT, f"message {i}".encode()) for i in range(50)))
    frames = await read_frames(raw_ws, reader, 50)
    assert frames == [(TEXT, f"message {i}".encode()) for i in range(50)]
    # The 50 frames arrive in one read or a few: one write per read, not one per message.
    assert 1 <= len(counting.writes) < 50
    assert b"".join(counting.writes) == b"".join(raw_ws.frame(TEXT, f"message {i}".encode(), mask=False)
                                                 for i in range(50))


async def test_what_the_last_message_of_a_read_sends_goes_out_at_once(make_server: Any, raw_ws: Any) -> None:
    """Nothing of the read follows it, so nothing is held back: the write is made inside the
    listener and the send is complete when it returns (no waiter for the end of the read)."""
    server = await make_server()
    seen: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()

    def on_connection(conn: wsevents.Connection) -> None:
        counting = count_writes(conn)

        def on_text(text: str) -> None:
            before = len(counting.writes)
            sent = conn.send_text(text)
            seen.put_nowait((len(counting.writes) - before, sent.done()))

        conn.on("text", on_text)

    server.on("connection", on_connection)
    reader, writer, _ = await raw_ws.open(server.port)
    for i in range(3):  # one message per read: each waits for its echo
        writer.write(raw_ws.frame(TEXT, str(i).encode()))
        assert await read_frames(raw_ws, reader, 1) == [(TEXT, str(i).encode())]
        assert await asyncio.wait_for(seen.get(), 5) == (1, True)


async def test_a_close_read_with_messages_is_answered_after_their_echoes(
    make_server: Any, raw_ws: Any
) -> None:
    server = await make_server()
    server.on("connection", echo)
    reader, writer, _ = await raw_ws.open(server.port)
    writer.write(
        raw_ws.frame(TEXT, b"a")
        + raw_ws.frame(TEXT, b"b")
        + raw_ws.frame(CLOSE, raw_ws.close_payload(4000, "bye"))
    )
    # The server closes TCP right after its close answer: the corked echoes and the answer
    # must reach the transport before that close.
    assert await read_frames(raw_ws, reader, 3) == [(TEXT, b"a"), (TEXT, b"b"), (CLOSE, b"\x0f\xa0")]
    assert await asyncio.wait_for(reader.read(), 5) == b""


async def test_pings_in_a_read_are_answered_in_place(make_server: Any, raw_ws: Any) -> None:
    server = await make_server()
    server.on("connection", echo)
    reader, writer, _ = await raw_ws.open(server.port)
    writer.write(raw_ws.frame(TEXT, b"a") + raw_ws.frame(PING, b"p") + raw_ws.frame(TEXT, b"b"))
    assert await read_frames(raw_ws, reader, 3) == [(TEXT, b"a"), (PONG, b"p"), (TEXT, b"b")]


async def test_a_failure_in_a_read_goes_out_after_the_echoes_before_it(make_server: Any, raw_ws: Any) -> None:
    server = await make_server()
    server.on("connection", echo)
    reader, writer, _ = await raw_ws.open(server.port)
    unmasked = raw_ws.frame(TEXT, b"x", mask=False)  # a client must mask: 1002
    writer.write(raw_ws.frame(TEXT, b"a") + unmasked)
    frames = await read_frames(raw_ws, reader, 2)
    assert frames[0] == (TEXT, b"a")
    assert frames[1][0] == CLOSE and frames[1][1][:2] == b"\x03\xea"
    assert await asyncio.wait_for(reader.read(), 5) == b""


async def test_sends_of_a_read_complete_after_the_write_in_send_order(make_server: Any, raw_ws: Any) -> None:
    server = await make_server()
    done: list[tuple[str, BaseException | None, int]] = []
    awaitables: list[Any] = []
    counted: asyncio.Future[CountingTransport] = asyncio.get_running_loop().create_future()

    def on_connection(conn: wsevents.Connection) -> None:
        counting = count_writes(conn)
        counted.set_result(counting)

        def on_text(text: str) -> None:
            def sent(error: BaseException | None) -> None:
                done.append((text, error, len(counting.writes)))

            awaitables.append(conn.send_text(text, sent))

        conn.on("text", on_text)

    server.on("connection", on_connection)
    reader, writer, _ = await raw_ws.open(server.port)
    counting = await asyncio.wait_for(counted, 5)
    writer.write(b"".join(raw_ws.frame(TEXT, str(i).encode()) for i in range(20)))
    await read_frames(raw_ws, reader, 20)
    await asyncio.wait_for(asyncio.gather(*awaitables), 5)
    assert [text for text, _, _ in done] == [str(i) for i in range(20)]
    assert all(error is None for _, error, _ in done)
    # Each callback ran once its message had been handed to the transport.
    sent = b""
    for text, _, writes in done:
        sent = b"".join(counting.writes[:writes])
        assert raw_ws.frame(TEXT, text.encode(), mask=False) in sent


async def test_sends_of_a_read_whose_write_does_not_go_out_whole_wait_for_the_drain(
    make_server: Any, raw_ws: Any
) -> None:
    server = await make_server(max_buffer_length=1 << 20)
    awaitables: list[Any] = []
    got_all = asyncio.Event()
    count = 30
    reply = "r" * 2000  # 30 replies: 60 KB, under CORK_LIMIT, so they go out as one write

    def on_connection(conn: wsevents.Connection) -> None:
        transport = conn.transport
        assert transport is not None
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        def on_text(text: str) -> None:
            awaitables.append(conn.send_text(reply))
            if len(awaitables) == count:
                got_all.set()

        conn.on("text", on_text)

    server.on("connection", on_connection)
    reader, writer = await raw_ws.stalled(server.port)
    writer.write(b"".join(raw_ws.frame(TEXT, b"x") for _ in range(count)))
    await asyncio.wait_for(got_all.wait(), 5)
    # The peer reads nothing and the buffers are small: the batch's one write did not go out whole.
    assert not any(aw.done() for aw in awaitables)
    writer.transport.resume_reading()
    assert await read_frames(raw_ws, reader, count) == [(TEXT, reply.encode())] * count
    await asyncio.wait_for(asyncio.gather(*awaitables), 5)
    assert all(aw.done() for aw in awaitables)


# -- any mix of messages, sizes and reads: the peer gets exactly the echoes, in order ------

MESSAGES = st.lists(
    st.one_of(
        st.tuples(st.just(TEXT), st.integers(0, 300)),
        st.tuples(st.just(BINARY), st.integers(0, 300)),
        st.tuples(st.just(PING), st.integers(0, 125)),
        st.tuples(
            st.sampled_from([TEXT, BINARY]), st.sampled_from([CORK_LIMIT - 1, CORK_LIMIT, 2 * CORK_LIMIT])
        ),
    ),
    min_size=1,
    max_size=40,
)


def new_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("WSEVENTS_TEST_UVLOOP"):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def payload(opcode: int, size: int, index: int) -> bytes:
    unit = f"<{index}:{opcode}>".encode()
    return (unit * (size // len(unit) + 1))[:size]


def masked(opcode: int, data: bytes) -> bytes:
    """A client frame, masked with a big-integer XOR (fast enough for 128 KiB payloads)."""
    key = os.urandom(4)
    n = len(data)
    length = bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + n.to_bytes(2, "big") if n < 65536 else (
        bytes([0xFF]) + n.to_bytes(8, "big"))
    stream = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return bytes([0x80 | opcode]) + length + key + body


async def echo_exchange(raw_ws: Any, messages: list[tuple[int, int]], cuts: list[int]) -> None:
    server = wsevents.create_server(max_buffer_length=4 * CORK_LIMIT)
    server.on("connection", echo)
    await server.listen(0, "127.0.0.1")
    try:
        reader, writer, _ = await raw_ws.open(server.port)
        wire = b"".join(masked(op, payload(op, n, i)) for i, (op, n) in enumerate(messages))
        wire += masked(CLOSE, raw_ws.close_payload(1000))
        bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
        for start, end in zip(bounds, bounds[1:], strict=False):
            writer.write(wire[start:end])
        expected = [(PONG if op == PING else op, payload(op, n, i)) for i, (op, n) in enumerate(messages)]
        expected.append((CLOSE, b"\x03\xe8"))
        assert await read_frames(raw_ws, reader, len(expected)) == expected
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        server.close()
        for writer in raw_ws._writers:
            writer.transport.abort()
        raw_ws._writers.clear()  # this example's loop ends here, not at the fixture's teardown


# The raw_ws fixture only holds the writers to abort; each example empties it itself.
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(messages=MESSAGES, cuts=st.lists(st.integers(0, 1 << 20), max_size=6))
def test_any_reads_of_any_messages_are_echoed_in_order_then_closed(
    raw_ws: Any, messages: list[tuple[int, int]], cuts: list[int]
) -> None:
    loop = new_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(echo_exchange(raw_ws, messages, cuts), 30))
    finally:
        loop.close()
