"""InStream and OutStream (src/wsevents/aio/streams.py) over loopback, against wsevents or a raw peer."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import wsevents
from helpers import round_trip, wait_until
from wsevents import Connection, InStream, InvalidState, OutStream
from wsevents.aio import streams

MiB = 1024 * 1024

Pair = tuple[wsevents.Server, Connection, Connection]


def blob(n: int, seed: int = 1) -> bytes:
    """``n`` reproducible pseudo-random bytes (so that any reordering shows)."""
    return random.Random(seed).randbytes(n)


async def accept_raw(
    make_server: Any, raw_ws: Any, **server_options: Any
) -> tuple[Connection, asyncio.StreamReader, asyncio.StreamWriter]:
    """A wsevents server connection whose peer is a hand-driven client (reads frames byte-exactly)."""
    server = await make_server(server_options or None)
    accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", lambda c: accepted.done() or accepted.set_result(c))
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await asyncio.wait_for(accepted, 5)
    return conn, reader, writer


class Collector:
    """Flowing-mode consumer of an InStream: records "data" pieces and the "end"."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.ends = 0
        self.data_after_end = False
        self.ended = asyncio.Event()

    def attach(self, stream: InStream) -> None:
        stream.on("data", self.on_data)
        stream.on("end", self.on_end)

    def on_data(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        if self.ends:
            self.data_after_end = True
        self.chunks.append(data)

    def on_end(self) -> None:
        self.ends += 1
        self.ended.set()

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def next_stream(conn: Connection) -> asyncio.Future[InStream]:
    fut: asyncio.Future[InStream] = asyncio.get_running_loop().create_future()

    @conn.on("binary")
    def _(stream: InStream) -> None:
        if not fut.done():
            fut.set_result(stream)

    return fut


# -- InStream ------------------------------------------------------------------------


@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "fragmented"])
async def test_data_and_end_events_deliver_1mib_in_order(make_pair: Any, fragmented: bool) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=64 * 1024)
    payload = blob(MiB)
    collector = Collector()
    streams: list[InStream] = []

    @server_conn.on("binary")
    def on_binary(stream: InStream) -> None:
        assert isinstance(stream, InStream)
        streams.append(stream)
        collector.attach(stream)

    if fragmented:
        out = client.begin_binary()
        for i in range(0, MiB, 10_000):
            out.write(payload[i : i + 10_000])
        await out.end()
    else:
        await client.send_binary(payload)
    await asyncio.wait_for(collector.ended.wait(), 10)
    assert len(streams) == 1
    assert collector.data == payload
    assert collector.ends == 1
    assert not collector.data_after_end
    # Streamed: it arrived in several pieces, not as one assembled message.
    assert len(collector.chunks) > 1
    assert streams[0].ended


async def test_each_binary_message_is_its_own_stream(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    got: list[bytes] = []
    done = asyncio.Event()

    @server_conn.on("binary")
    async def on_binary(stream: InStream) -> None:
        got.append(await stream.read())
        if len(got) == 3:
            done.set()

    for i in range(3):
        client.send_binary(bytes([i]) * (1000 * (i + 1)))
    await asyncio.wait_for(done.wait(), 5)
    assert got == [b"\x00" * 1000, b"\x01" * 2000, b"\x02" * 3000]


async def test_await_read_returns_the_whole_message(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    payload = blob(MiB, seed=2)
    result: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    @server_conn.on("binary")
    async def on_binary(stream: InStream) -> None:
        result.set_result(await stream.read())

    client.send_binary(payload)
    assert await asyncio.wait_for(result, 10) == payload


async def test_read_of_an_empty_message(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    stream_fut = next_stream(server_conn)
    client.send_binary(b"")
    stream = await asyncio.wait_for(stream_fut, 5)
    assert await asyncio.wait_for(stream.read(), 5) == b""
    assert await asyncio.wait_for(stream.read(10), 5) == b""


async def test_read_n_returns_at_most_n_bytes_then_empty_at_the_end(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    payload = blob(300_000, seed=3)
    stream_fut = next_stream(server_conn)
    client.send_binary(payload)
    stream = await asyncio.wait_for(stream_fut, 5)
    assert await stream.read(0) == b""
    pieces: list[bytes] = []
    while True:
        piece = await asyncio.wait_for(stream.read(7000), 5)
        if not piece:
            break
        assert 0 < len(piece) <= 7000
        pieces.append(piece)
    assert b"".join(pieces) == payload
    assert await asyncio.wait_for(stream.read(7000), 5) == b""


async def test_read_n_returns_what_is_there_without_waiting_for_n(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    stream_fut = next_stream(server_conn)
    out = client.begin_binary()
    # binary_fragmentation default is 512 KiB: force a first frame out by writing past it.
    first = blob(600 * 1024, seed=4)
    await out.write(first)
    stream = await asyncio.wait_for(stream_fut, 5)
    got = bytearray()
    while len(got) < len(first):
        got += await asyncio.wait_for(stream.read(10 * MiB), 5)
    # The message is not finished, yet read(n) returned what had arrived.
    assert bytes(got) == first
    assert not stream.ended
    await out.end(b"tail")
    assert await asyncio.wait_for(stream.read(10 * MiB), 5) == b"tail"
    assert await asyncio.wait_for(stream.read(10), 5) == b""


async def test_async_for_over_a_stream(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    payload = blob(MiB, seed=5)
    result: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()

    @server_conn.on("binary")
    async def on_binary(stream: InStream) -> None:
        chunks = [chunk async for chunk in stream]
        result.set_result(chunks)

    client.send_binary(payload)
    chunks = await asyncio.wait_for(result, 10)
    assert all(chunks)
    assert b"".join(chunks) == payload


async def test_pause_holds_data_and_resume_releases_it(make_pair: Any, until: Any) -> None:
    _, server_conn, client = await make_pair()
    payload = blob(MiB, seed=6)
    collector = Collector()
    stream_fut = next_stream(server_conn)

    @server_conn.on("binary")
    def on_binary(stream: InStream) -> None:
        collector.attach(stream)
        stream.pause()

    await client.send_binary(payload)
    stream = await asyncio.wait_for(stream_fut, 5)
    assert stream.paused
    # The whole message arrives, but nothing is emitted while paused.
    await until(lambda: stream.ended)
    await round_trip(client)  # a barrier: what the stream would emit by itself has been
    assert collector.chunks == []
    assert collector.ends == 0
    stream.resume()
    assert not stream.paused
    await asyncio.wait_for(collector.ended.wait(), 5)
    assert collector.data == payload
    assert collector.ends == 1


async def test_pause_in_the_middle_then_resume(make_pair: Any) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=1000)
    collector = Collector()
    stream_fut = next_stream(server_conn)

    @server_conn.on("binary")
    def on_binary(stream: InStream) -> None:
        collector.attach(stream)

    out = client.begin_binary()
    await out.write(b"a" * 1000)
    stream = await asyncio.wait_for(stream_fut, 5)
    await wait_until(lambda: collector.chunks)
    assert collector.data == b"a" * 1000
    stream.pause()
    await out.write(b"b" * 1000)
    await out.end(b"c")
    await wait_until(lambda: stream.ended)
    await round_trip(client)  # a barrier: what the stream would emit by itself has been
    assert collector.data == b"a" * 1000
    assert collector.ends == 0
    stream.resume()
    await asyncio.wait_for(collector.ended.wait(), 5)
    assert collector.data == b"a" * 1000 + b"b" * 1000 + b"c"


@pytest.mark.parametrize("when", ["midway", "after-end"])
async def test_late_data_listener_still_gets_everything_in_order(
    make_pair: Any, until: Any, when: str
) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=50_000)
    payload = blob(MiB, seed=7)
    collector = Collector()
    attached_at: list[int] = []

    @server_conn.on("binary")
    async def on_binary(stream: InStream) -> None:
        # A coroutine listener: it runs later, after data has already arrived.
        if when == "midway":
            await until(lambda: stream.bytes_received > 0)
        else:
            await until(lambda: stream.ended)
        attached_at.append(stream.bytes_received)
        collector.attach(stream)

    out = client.begin_binary()
    for i in range(0, len(payload), 50_000):
        await out.write(payload[i : i + 50_000])
        if i == 0 and when == "midway":
            # Let the receiver see the first frame before the rest is sent.
            await until(lambda: bool(attached_at))
    await out.end()
    await asyncio.wait_for(collector.ended.wait(), 10)
    assert attached_at and attached_at[0] > 0
    if when == "after-end":
        assert attached_at[0] == len(payload)
    else:
        assert attached_at[0] < len(payload)
    assert collector.data == payload
    assert collector.ends == 1
    assert not collector.data_after_end


async def test_late_listeners_of_an_empty_message_still_get_end(make_pair: Any, until: Any) -> None:
    _, server_conn, client = await make_pair()
    collector = Collector()

    @server_conn.on("binary")
    async def on_binary(stream: InStream) -> None:
        # A coroutine listener runs after the (empty) message has already ended.
        await until(lambda: stream.ended)
        collector.attach(stream)

    client.send_binary(b"")
    await asyncio.wait_for(collector.ended.wait(), 5)
    assert collector.chunks == []
    assert collector.ends == 1


async def test_stream_readers_raise_connection_closed_when_the_connection_drops(make_pair: Any) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=1000)
    stream_fut = next_stream(server_conn)
    errors: list[BaseException] = []
    out = client.begin_binary()
    await out.write(b"x" * 1000)
    stream = await asyncio.wait_for(stream_fut, 5)
    stream.on("error", errors.append)
    assert client.transport is not None
    client.transport.abort()
    with pytest.raises(wsevents.ConnectionClosed) as info:
        await asyncio.wait_for(stream.read(), 5)
    assert info.value.code == 1006
    assert len(errors) == 1 and isinstance(errors[0], wsevents.ConnectionClosed)


# -- OutStream: frames on the wire ----------------------------------------------------


async def test_out_stream_frames_are_at_least_binary_fragmentation(make_server: Any, raw_ws: Any) -> None:
    conn, reader, _ = await accept_raw(make_server, raw_ws, binary_fragmentation=1000)
    out = conn.begin_binary()
    chunk = bytes(range(256)) + bytes(range(44))  # 300 bytes
    for _ in range(10):
        out.write(chunk)
    await out.end()
    frames = []
    while True:
        frame = await raw_ws.read_frame(reader)
        frames.append(frame)
        if frame.fin:
            break
    # Held until >= 1000 bytes, then one frame: 4 writes (1200), 4 writes (1200), the rest (600) at end().
    shapes = [(f.opcode, f.fin, len(f.payload)) for f in frames]
    assert shapes == [(2, False, 1200), (0, False, 1200), (0, True, 600)]
    assert all(len(f.payload) >= 1000 for f in frames[:-1])
    assert not any(f.masked for f in frames)
    assert b"".join(f.payload for f in frames) == chunk * 10


async def test_out_stream_write_over_fragmentation_goes_out_before_end(make_server: Any, raw_ws: Any) -> None:
    conn, reader, _ = await accept_raw(make_server, raw_ws, binary_fragmentation=1000)
    out = conn.begin_binary()
    out.write(b"a" * 999)
    await out.write(b"b")  # exactly binary_fragmentation bytes held: one frame goes out
    first = await raw_ws.read_frame(reader)
    assert (first.opcode, first.fin, first.payload) == (2, False, b"a" * 999 + b"b")
    await out.write(b"c" * 5000)  # a big write is one frame, not cut to the fragment size
    second = await raw_ws.read_frame(reader)
    assert (second.opcode, second.fin, second.payload) == (0, False, b"c" * 5000)
    await out.end(b"d")
    last = await raw_ws.read_frame(reader)
    assert (last.opcode, last.fin, last.payload) == (0, True, b"d")


async def test_module_default_binary_fragmentation(make_server: Any, raw_ws: Any) -> None:
    wsevents.set_binary_fragmentation(2000)  # restored by the conftest after the test
    conn, reader, _ = await accept_raw(make_server, raw_ws)
    assert conn.binary_fragmentation == 2000
    out = conn.begin_binary()
    out.write(b"a" * 1999)
    await out.write(b"b")
    await out.end(b"c")
    frames = [await raw_ws.read_frame(reader), await raw_ws.read_frame(reader)]
    assert [(f.opcode, f.fin, len(f.payload)) for f in frames] == [(2, False, 2000), (0, True, 1)]


async def test_end_on_an_empty_stream_sends_one_empty_final_frame(make_server: Any, raw_ws: Any) -> None:
    conn, reader, _ = await accept_raw(make_server, raw_ws)
    out = conn.begin_binary()
    await out.end()
    frame = await raw_ws.read_frame(reader)
    assert (frame.opcode, frame.fin, frame.payload) == (2, True, b"")
    # Nothing else was sent: the next frame is the text we send after it.
    conn.send_text("after")
    frame = await raw_ws.read_frame(reader)
    assert (frame.opcode, frame.fin, frame.payload) == (1, True, b"after")


async def test_end_with_data_only_sends_one_frame(make_server: Any, raw_ws: Any) -> None:
    conn, reader, _ = await accept_raw(make_server, raw_ws, binary_fragmentation=1000)
    out = conn.begin_binary()
    out.write(b"12")
    await out.end(b"345")
    frame = await raw_ws.read_frame(reader)
    assert (frame.opcode, frame.fin, frame.payload) == (2, True, b"12345")


# -- OutStream: what the receiver gets --------------------------------------------------


async def test_receiver_gets_one_message_with_the_concatenation(make_pair: Any) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=1000)
    pieces = [blob(300, seed=i) for i in range(10)]
    out = client.begin_binary()
    assert isinstance(out, OutStream)
    for piece in pieces:
        out.write(piece)
    await out.end()
    client.send_text("next")
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"".join(pieces)
    assert await asyncio.wait_for(server_conn.recv(), 5) == "next"


async def test_empty_out_stream_is_one_empty_message(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    await client.begin_binary().end()
    client.send_text("next")
    assert await asyncio.wait_for(server_conn.recv(), 5) == b""
    assert await asyncio.wait_for(server_conn.recv(), 5) == "next"


async def test_async_with_begin_binary_ends_the_stream(make_pair: Any) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=1000)
    async with client.begin_binary() as out:
        assert isinstance(out, OutStream)
        assert client.out_stream is out
        await out.write(b"x" * 1500)
        await out.write(b"y" * 10)
    assert out.ended
    assert client.out_stream is None
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"x" * 1500 + b"y" * 10


async def test_async_with_after_an_explicit_end(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    async with client.begin_binary() as out:
        await out.end(b"done")
    client.send_text("next")
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"done"
    assert await asyncio.wait_for(server_conn.recv(), 5) == "next"


async def test_out_stream_attribute_during_and_after(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    assert client.out_stream is None
    out = client.begin_binary()
    assert client.out_stream is out
    out.write(b"abc")
    assert client.out_stream is out
    await out.end()
    assert client.out_stream is None
    assert out.ended
    # A new stream can start once the previous one ended.
    out2 = client.begin_binary()
    assert client.out_stream is out2
    await out2.end(b"2")
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"abc"
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"2"


# -- OutStream: misuse -------------------------------------------------------------


@pytest.mark.parametrize("method", ["send_text", "send_binary", "send"])
async def test_sending_during_an_out_stream_raises_without_callback_or_listener(
    make_pair: Any, method: str
) -> None:
    _, server_conn, client = await make_pair()
    out = client.begin_binary()
    arg: Any = "text" if method == "send_text" else b"bin"
    with pytest.raises(InvalidState):
        getattr(client, method)(arg)
    # Nothing was sent in the middle of the stream: the receiver gets the stream, then the text.
    await out.end(b"stream")
    await client.send_text("after")
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"stream"
    assert await asyncio.wait_for(server_conn.recv(), 5) == "after"


@pytest.mark.parametrize("method", ["send_text", "send_binary"])
async def test_sending_during_an_out_stream_emits_error_when_listened(make_pair: Any, method: str) -> None:
    _, _, client = await make_pair()
    errors: list[BaseException] = []
    client.on("error", errors.append)
    out = client.begin_binary()
    arg: Any = "text" if method == "send_text" else b"bin"
    result = getattr(client, method)(arg)  # does not raise
    assert len(errors) == 1 and isinstance(errors[0], InvalidState)
    with pytest.raises(InvalidState):
        await result
    await out.end()
    assert client.ready_state == Connection.OPEN


@pytest.mark.parametrize("method", ["send_text", "send_binary"])
async def test_sending_during_an_out_stream_calls_the_callback(make_pair: Any, method: str) -> None:
    _, _, client = await make_pair()
    errors: list[BaseException] = []
    client.on("error", errors.append)  # the callback takes precedence over the event
    got: list[BaseException | None] = []
    out = client.begin_binary()
    arg: Any = "text" if method == "send_text" else b"bin"
    result = getattr(client, method)(arg, got.append)
    assert len(got) == 1 and isinstance(got[0], InvalidState)
    assert errors == []
    with pytest.raises(InvalidState):
        await result
    await out.end()


async def test_begin_binary_twice_raises_invalid_state(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    out = client.begin_binary()
    with pytest.raises(InvalidState):
        client.begin_binary()
    assert client.out_stream is out
    await out.end(b"first")
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"first"


async def test_begin_binary_on_a_closed_connection_raises(make_pair: Any) -> None:
    _, _, client = await make_pair()
    await asyncio.wait_for(client.close(1000), 5)
    with pytest.raises(InvalidState):
        client.begin_binary()


# -- OutStream: awaitables and callbacks --------------------------------------------------


async def test_write_and_end_awaitables_and_callbacks(make_pair: Any) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=1000)
    calls: list[tuple[str, BaseException | None]] = []
    out = client.begin_binary()
    held = out.write(b"a" * 10, lambda e: calls.append(("held", e)))
    assert calls == [("held", None)]  # only held here: done at once
    await asyncio.wait_for(held, 5)
    sent = out.write(b"b" * 2000, lambda e: calls.append(("frame", e)))
    await asyncio.wait_for(sent, 5)
    assert ("frame", None) in calls
    finished = asyncio.Event()
    out.on("finish", finished.set)
    ended = out.end(b"c", lambda e: calls.append(("end", e)))
    await asyncio.wait_for(ended, 5)
    assert finished.is_set()
    # A callback may run as soon as its data is handed over; give pending ones a turn.
    await asyncio.sleep(0)
    assert calls == [("held", None), ("frame", None), ("end", None)]
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"a" * 10 + b"b" * 2000 + b"c"


async def test_write_after_end_is_invalid_state(make_pair: Any) -> None:
    _, _, client = await make_pair()
    out = client.begin_binary()
    await out.end()
    with pytest.raises(InvalidState):
        out.write(b"late")
    with pytest.raises(InvalidState):
        out.end()
    got: list[BaseException | None] = []
    result = out.write(b"late", got.append)
    assert len(got) == 1 and isinstance(got[0], InvalidState)
    with pytest.raises(InvalidState):
        await result


async def test_write_of_a_non_bytes_is_a_type_error(make_pair: Any) -> None:
    _, _, client = await make_pair()
    out = client.begin_binary()
    with pytest.raises(TypeError):
        out.write("text")  # type: ignore[arg-type]
    out.write(bytearray(b"ok"))
    out.write(memoryview(b"!"))
    await out.end()


async def test_write_awaitable_waits_while_the_peer_does_not_read(make_server: Any, raw_ws: Any) -> None:
    conn, reader, _ = await accept_raw(make_server, raw_ws, binary_fragmentation=MiB)
    out = conn.begin_binary()
    # The raw peer reads nothing: 32 MiB cannot all be handed to the OS.
    pending = asyncio.ensure_future(out.write(b"\0" * (32 * MiB)))
    transport = conn.transport
    assert transport is not None
    await wait_until(lambda: transport.get_write_buffer_size() > 0)  # not all handed to the OS ...
    assert not pending.done()  # ... so the write is not done
    # Read it all: the write completes.

    async def drain() -> None:
        frame = await raw_ws.read_frame(reader)
        assert len(frame.payload) == 32 * MiB

    drainer = asyncio.ensure_future(drain())
    await asyncio.wait_for(pending, 10)
    await asyncio.wait_for(drainer, 10)


async def test_begin_binary_misuse_is_raised_even_with_an_error_listener(
    make_pair: Callable[..., Awaitable[Pair]],
) -> None:
    """There is no stream to return, so the misuse is raised, and not also emitted."""
    _, _, client = await make_pair()
    errors: list[BaseException] = []
    client.on("error", errors.append)
    out = client.begin_binary()
    with pytest.raises(InvalidState):
        client.begin_binary()
    out.end()
    await client.close(1000)
    with pytest.raises(InvalidState):
        client.begin_binary()
    assert errors == []


async def test_outstream_write_after_the_connection_closed_raises_connection_closed(
    make_pair: Callable[..., Awaitable[Pair]],
) -> None:
    _, server_conn, client = await make_pair()
    out = client.begin_binary()
    out.write(b"abc")
    server_conn.transport.abort()  # type: ignore[union-attr]
    await asyncio.wait_for(client.wait_closed(), 5)
    assert client.out_stream is None
    with pytest.raises(wsevents.ConnectionClosed) as info:
        out.write(b"more")
    assert info.value.code == 1006
    seen: list[BaseException | None] = []
    failed = out.end(b"x", seen.append)
    assert len(seen) == 1 and isinstance(seen[0], wsevents.ConnectionClosed)
    with pytest.raises(wsevents.ConnectionClosed):
        await failed


async def test_outstream_closed_locally_refuses_writes_and_emits_no_finish(
    make_pair: Callable[..., Awaitable[Pair]],
) -> None:
    _, _, client = await make_pair()
    out = client.begin_binary()
    finished: list[bool] = []
    out.on("finish", lambda: finished.append(True))
    closing = client.close(1000)
    with pytest.raises(InvalidState):
        out.write(b"late")
    with pytest.raises(InvalidState):
        out.end()
    await asyncio.wait_for(closing, 5)
    assert finished == []


async def test_resume_under_backpressure_keeps_the_bytes_in_order(make_pair: Any, until: Any) -> None:
    """Regression: the chunk taken for "data" went out after what resuming the socket fed in."""
    limit = 64 * 1024
    # One frame per 16 KiB write: a read then spans frames, and the core holds back
    # the frames after the one that went past the limit.
    _, server_conn, client = await make_pair({"max_buffer_length": limit}, binary_fragmentation=16 * 1024)
    payload = blob(MiB, seed=11)
    collector = Collector()
    stream_fut = next_stream(server_conn)

    @server_conn.on("binary")
    def on_binary(stream: InStream) -> None:
        collector.attach(stream)
        stream.pause()

    async def write_all() -> None:
        out = client.begin_binary()
        for i in range(0, MiB, 16 * 1024):
            await out.write(payload[i : i + 16 * 1024])
        await out.end()

    writer = asyncio.ensure_future(write_all())
    stream = await asyncio.wait_for(stream_fut, 5)
    # Held past the limit: reading has stopped, the next frames wait in the core.
    await until(lambda: stream.bytes_received > limit)
    stream.resume()
    await asyncio.wait_for(collector.ended.wait(), 10)
    await asyncio.wait_for(writer, 5)
    assert len(collector.data) == MiB
    assert collector.data == payload
    assert collector.ends == 1


# -- one reader at a time ------------------------------------------------------------


@pytest.mark.parametrize("second", ["read", "read-n", "async-for"])
async def test_a_second_concurrent_reader_raises_concurrency_error_at_once(
    make_pair: Any, until: Any, second: str
) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=1000)
    stream_fut = next_stream(server_conn)
    out = client.begin_binary()
    await out.write(b"a" * 1000)
    stream = await asyncio.wait_for(stream_fut, 5)
    got: list[bytes] = []

    async def first_reader() -> None:
        async for chunk in stream:
            got.append(chunk)

    first = asyncio.ensure_future(first_reader())
    # It has taken the first frame and waits for more.
    await until(lambda: got)

    async def second_reader() -> None:
        if second == "read":
            await stream.read()
        elif second == "read-n":
            await stream.read(10)
        else:
            async for _ in stream:
                pass

    with pytest.raises(wsevents.ConcurrencyError, match="already reading") as info:
        await asyncio.wait_for(second_reader(), 1)
    assert isinstance(info.value, InvalidState) and isinstance(info.value, RuntimeError)
    # The first reader was not disturbed: it gets the rest, in order, and ends.
    await out.end(b"b" * 500)
    await asyncio.wait_for(first, 5)
    assert b"".join(got) == b"a" * 1000 + b"b" * 500


async def test_reads_one_after_the_other_are_fine(make_pair: Any) -> None:
    _, server_conn, client = await make_pair(binary_fragmentation=1000)
    stream_fut = next_stream(server_conn)
    out = client.begin_binary()
    await out.write(b"a" * 1000)
    stream = await asyncio.wait_for(stream_fut, 5)
    assert await asyncio.wait_for(stream.read(400), 5) == b"a" * 400
    await out.end(b"b")
    assert await asyncio.wait_for(stream.read(), 5) == b"a" * 600 + b"b"
    assert await stream.read(10) == b""


# -- a stream nobody reads -------------------------------------------------------------


def stall_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "wsevents" and r.levelno == logging.WARNING and "stalled" in r.getMessage()
    ]


async def test_an_unread_stream_past_the_limit_logs_a_warning_naming_the_connection(
    make_pair: Any, until: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "_STALL_WARNING_DELAY", 0.05)
    limit = 64 * 1024
    _, server_conn, client = await make_pair({"max_buffer_length": limit})
    streams_seen: list[InStream] = []
    server_conn.on("binary", streams_seen.append)  # takes the stream, never reads it
    caplog.set_level(logging.WARNING, logger="wsevents")
    client.send_binary(blob(4 * limit))
    await until(lambda: stall_warnings(caplog))
    [message] = stall_warnings(caplog)
    assert repr(server_conn) in message
    assert "max_buffer_length" in message
    assert "read" in message

    # Once per stream: reading it lets the connection go on; the next unread one warns again.
    async for _ in streams_seen[0]:
        pass
    client.send_binary(blob(4 * limit, seed=2))
    await until(lambda: len(stall_warnings(caplog)) == 2)
    await until(lambda: len(streams_seen) == 2)
    assert len(stall_warnings(caplog)) == 2


async def test_a_stream_that_is_read_does_not_warn(
    make_pair: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "_STALL_WARNING_DELAY", 0.05)
    limit = 64 * 1024
    _, server_conn, client = await make_pair({"max_buffer_length": limit})
    payload = blob(MiB, seed=3)
    result: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    @server_conn.on("binary")
    async def on_binary(stream: InStream) -> None:
        result.set_result(b"".join([chunk async for chunk in stream]))

    caplog.set_level(logging.WARNING, logger="wsevents")
    client.send_binary(payload)
    assert await asyncio.wait_for(result, 10) == payload
    assert stall_warnings(caplog) == []
