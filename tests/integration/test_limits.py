"""max_buffer_length over loopback: messages that must be held whole are bounded; past the bound, 1009."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Iterator
from typing import Any

import pytest

import wsevents
from wsevents import Connection, InStream, MessageTooBig
from wsevents.aio.options import DEFAULTS

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture(autouse=True)
def restore_max_buffer_length() -> Iterator[None]:
    saved = DEFAULTS.max_buffer_length
    try:
        yield
    finally:
        wsevents.set_max_buffer_length(saved)


class Closes:
    """Records the "close" events of a connection."""

    def __init__(self, conn: Connection) -> None:
        self.events: list[tuple[int, str]] = []
        self.done = asyncio.Event()
        conn.on("close", self.on_close)

    def on_close(self, code: int, reason: str) -> None:
        self.events.append((code, reason))
        self.done.set()

    async def wait(self) -> tuple[int, str]:
        await asyncio.wait_for(self.done.wait(), 5)
        assert len(self.events) == 1
        return self.events[0]


class Watch:
    """The "close" events of both ends, recorded from before the test's first send."""

    def __init__(self, server_conn: Connection, client: Connection) -> None:
        self.server_conn = server_conn
        self.client = client
        self.server = Closes(server_conn)
        self.client_closes = Closes(client)

    async def both_1009(self) -> None:
        server_code, _ = await self.server.wait()
        client_code, _ = await self.client_closes.wait()
        assert server_code == 1009
        assert client_code == 1009
        assert self.server_conn.close_code == 1009
        assert self.client.close_code == 1009


# -- text -------------------------------------------------------------------------------


@pytest.mark.parametrize("listening", [True, False], ids=["text-listener", "recv"])
async def test_text_over_the_limit_closes_with_1009(make_pair: Any, listening: bool) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 1000})
    texts: list[str] = []
    if listening:
        server_conn.on("text", texts.append)
    server_closes = Closes(server_conn)
    client_closes = Closes(client)
    client.send_text("x" * 1001)
    assert (await server_closes.wait())[0] == 1009
    assert (await client_closes.wait())[0] == 1009
    assert texts == []
    # The sender's recv() ends with the same code.
    with pytest.raises(wsevents.ConnectionClosed) as info:
        await asyncio.wait_for(client.recv(), 5)
    assert info.value.code == 1009


async def test_text_at_the_limit_is_delivered(make_pair: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 1000})
    watch = Watch(server_conn, client)
    await client.send_text("é" * 500)  # exactly 1000 bytes of UTF-8
    assert await asyncio.wait_for(server_conn.recv(), 5) == "é" * 500
    client.send_text("é" * 500 + "x")  # 1001 bytes
    await watch.both_1009()


async def test_error_event_is_message_too_big(make_pair: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 1000})
    watch = Watch(server_conn, client)
    errors: list[BaseException] = []
    server_conn.on("error", errors.append)
    client.send_text("x" * 2000)
    await watch.both_1009()
    assert len(errors) == 1
    assert isinstance(errors[0], MessageTooBig)
    assert errors[0].code == 1009


# -- binary -------------------------------------------------------------------------------


async def test_binary_over_the_limit_via_recv_closes_with_1009(make_pair: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB})
    watch = Watch(server_conn, client)
    client.send_binary(b"\x01" * (64 * KiB + 1))
    await watch.both_1009()
    with pytest.raises(wsevents.ConnectionClosed) as info:
        await asyncio.wait_for(server_conn.recv(), 5)
    assert info.value.code == 1009


async def test_fragmented_binary_over_the_limit_via_recv_closes_with_1009(make_pair: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB}, binary_fragmentation=16 * KiB)
    watch = Watch(server_conn, client)
    out = client.begin_binary()
    for _ in range(5):  # 5 frames of 16 KiB: the fifth one goes past 64 KiB
        out.write(b"\x02" * (16 * KiB))
    await watch.both_1009()


async def test_binary_at_the_limit_via_recv_is_delivered(make_pair: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB}, binary_fragmentation=16 * KiB)
    await client.send_binary(b"\x03" * (64 * KiB))
    async with client.begin_binary() as out:
        for _ in range(4):
            await out.write(b"\x04" * (16 * KiB))
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"\x03" * (64 * KiB)
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"\x04" * (64 * KiB)
    assert server_conn.ready_state == Connection.OPEN


async def test_stream_read_past_the_limit_raises_message_too_big_and_closes_1009(make_pair: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB})
    watch = Watch(server_conn, client)
    outcome: asyncio.Future[BaseException | bytes] = asyncio.get_running_loop().create_future()

    @server_conn.on("binary")
    async def on_binary(stream: InStream) -> None:
        try:
            outcome.set_result(await stream.read())
        except Exception as exc:
            outcome.set_result(exc)

    client.send_binary(b"\x05" * (200 * KiB))
    result = await asyncio.wait_for(outcome, 5)
    assert isinstance(result, MessageTooBig)
    assert result.code == 1009
    await watch.both_1009()


async def test_stream_read_at_the_limit_is_fine(make_pair: Any) -> None:
    _, server_conn, client = await make_pair({"max_buffer_length": 64 * KiB})
    outcome: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    @server_conn.on("binary")
    async def on_binary(stream: InStream) -> None:
        outcome.set_result(await stream.read())

    client.send_binary(b"\x06" * (64 * KiB))
    assert await asyncio.wait_for(outcome, 5) == b"\x06" * (64 * KiB)
    assert server_conn.ready_state == Connection.OPEN


async def test_client_side_limit(make_pair: Any) -> None:
    _, server_conn, client = await make_pair(max_buffer_length=1000)
    watch = Watch(server_conn, client)
    server_conn.send_text("y" * 1000)
    assert await asyncio.wait_for(client.recv(), 5) == "y" * 1000
    server_conn.send_binary(b"y" * 1001)
    await watch.both_1009()


# -- decided from the frame header -------------------------------------------------------------


@pytest.mark.parametrize("opcode", [1, 2], ids=["text", "binary"])
async def test_huge_length_field_closes_1009_without_waiting_for_the_payload(
    make_server: Any, raw_ws: Any, opcode: int
) -> None:
    wsevents.set_max_buffer_length(2 * MiB)
    server = await make_server()
    accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", accepted.set_result)
    reader, writer, _ = await raw_ws.open(server.port)
    server_conn = await asyncio.wait_for(accepted, 5)
    closes = Closes(server_conn)
    # Only the header of a masked frame announcing 100 MiB: no payload follows.
    writer.write(struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, 100 * MiB) + os.urandom(4))
    await writer.drain()
    frame = await raw_ws.read_frame(reader)
    assert frame.opcode == 8
    assert struct.unpack("!H", frame.payload[:2])[0] == 1009
    # The server closes TCP right after: EOF.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert (await closes.wait())[0] == 1009


async def test_huge_length_field_of_a_continuation_closes_1009(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"max_buffer_length": 2 * MiB})
    accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", accepted.set_result)
    reader, writer, _ = await raw_ws.open(server.port)
    server_conn = await asyncio.wait_for(accepted, 5)
    closes = Closes(server_conn)
    key = os.urandom(4)
    first = struct.pack("!BB", 0x02, 0x80 | 4) + key + bytes(b ^ k for b, k in zip(b"abcd", key, strict=True))
    writer.write(first + struct.pack("!BBQ", 0x80, 0x80 | 127, 2 * MiB) + os.urandom(4))
    await writer.drain()
    frame = await raw_ws.read_frame(reader)
    assert frame.opcode == 8
    assert struct.unpack("!H", frame.payload[:2])[0] == 1009
    assert (await closes.wait())[0] == 1009


# -- per-server override and module default ----------------------------------------------------


async def test_module_default_applies_and_per_server_option_overrides_it(make_pair: Any) -> None:
    wsevents.set_max_buffer_length(1000)
    _, default_conn, default_client = await make_pair()
    watch = Watch(default_conn, default_client)
    _, override_conn, override_client = await make_pair({"max_buffer_length": 4096})
    assert default_conn.max_buffer_length == 1000
    assert override_conn.max_buffer_length == 4096

    await override_client.send_text("z" * 1500)
    assert await asyncio.wait_for(override_conn.recv(), 5) == "z" * 1500

    default_client.send_text("z" * 1500)
    await watch.both_1009()
    assert override_conn.ready_state == Connection.OPEN


async def test_module_default_restored_gives_the_documented_2_mib(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    assert server_conn.max_buffer_length == 2 * MiB
    assert client.max_buffer_length == 2 * MiB


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1000"])
def test_set_max_buffer_length_rejects_bad_values(bad: Any) -> None:
    with pytest.raises(ValueError):
        wsevents.set_max_buffer_length(bad)
    assert DEFAULTS.max_buffer_length == 2 * MiB


@pytest.mark.parametrize("bad", [0, -5])
def test_bad_per_server_max_buffer_length(bad: int) -> None:
    with pytest.raises(ValueError):
        wsevents.create_server(max_buffer_length=bad)
