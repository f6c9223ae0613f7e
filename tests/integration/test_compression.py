"""permessage-deflate on loopback: wsevents on both sides, hand-made peers (decompression bombs,
byte-level checks), and the Python ``websockets`` library on the other side."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as lib_connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

import wsevents
from helpers import BINARY, CLOSE, TEXT, frame
from wsevents.protocol.deflate import PerMessageDeflate, parse_extensions

MiB = 1 << 20
RSV1 = 0b100
_rng = random.Random(1234)
_WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do"]
TEXT_MIB = " ".join(_rng.choice(_WORDS) for _ in range(200_000))[:MiB]
BIN_MIB = TEXT_MIB.encode()
RANDOM_MIB = _rng.randbytes(MiB)

assert int(websockets.version.version.split(".")[0]) >= 13  # the websockets.asyncio API


def settings(codec: PerMessageDeflate | None) -> tuple[int, bool, int, bool]:
    assert codec is not None
    return (
        codec.compress_bits,
        codec.compress_no_context,
        codec.decompress_bits,
        codec.decompress_no_context,
    )


def extension_params(header: str | None) -> dict[str, str | None]:
    assert header is not None
    ((name, params),) = parse_extensions(header)
    assert name == "permessage-deflate"
    return dict(params)


# -- fixtures -------------------------------------------------------------------------------


Start = Callable[..., Awaitable[tuple[wsevents.Server, "asyncio.Queue[wsevents.Connection]"]]]


@pytest.fixture
async def start_server(make_server: Any, echo_handler: Any) -> AsyncIterator[Start]:
    """``server, accepted = await start_server(mode, **options)``: an echo server.

    ``mode`` "events" echoes through the "text"/"binary" listeners (binary as an
    InStream), "recv" through ``async for``, "none" does not echo.
    """
    tasks: set[asyncio.Task[None]] = set()

    async def start(
        mode: str = "events", **options: Any
    ) -> tuple[wsevents.Server, asyncio.Queue[wsevents.Connection]]:
        server = await make_server(close_timeout=1, **options)
        accepted: asyncio.Queue[wsevents.Connection] = asyncio.Queue()

        def on_connection(conn: wsevents.Connection) -> None:
            accepted.put_nowait(conn)
            if mode == "events":
                echo_handler(conn)
            elif mode == "recv":

                async def echo() -> None:
                    try:
                        async for message in conn:
                            await conn.send(message)
                    except wsevents.WebSocketError:
                        pass

                task = asyncio.ensure_future(echo())
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        server.on("connection", on_connection)
        return server, accepted

    yield start
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class CountingProxy:
    """A TCP relay that counts the bytes going each way (to see what crosses the wire)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = 0  # client to server
        self.down = 0  # server to client
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        try:
            while data := await reader.read(65536):
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False))
        writer.close()
        up_writer.close()

    def reset(self) -> None:
        self.up = self.down = 0

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in self.writers:
            w.transport.abort()


@pytest.fixture
async def proxy_to() -> AsyncIterator[Callable[[int], Awaitable[tuple[CountingProxy, int]]]]:
    proxies: list[CountingProxy] = []

    async def factory(port: int) -> tuple[CountingProxy, int]:
        proxy = CountingProxy(port)
        proxies.append(proxy)
        return proxy, await proxy.start()

    yield factory
    for proxy in proxies:
        proxy.close()
    await asyncio.sleep(0)


async def open_pair(
    start_server: Start,
    ws_connect: Any,
    client_options: dict[str, Any],
    mode: str = "events",
    **server_options: Any,
) -> tuple[wsevents.Connection, wsevents.Connection]:
    server, accepted = await start_server(mode, **server_options)
    client = await ws_connect(f"ws://127.0.0.1:{server.port}/", client_options)
    server_conn = await asyncio.wait_for(accepted.get(), 5)
    return client, server_conn


async def echo_all(conn: wsevents.Connection, messages: list[str | bytes]) -> None:
    for message in messages:
        await conn.send(message)
        assert await asyncio.wait_for(conn.recv(), 10) == message


# -- wsevents on both sides --------------------------------------------------------------------


async def test_default_agrees_on_both_sides(start_server: Start, ws_connect: Any) -> None:
    client, server_conn = await open_pair(start_server, ws_connect, {})
    assert server_conn.headers["sec-websocket-extensions"] == "permessage-deflate; client_max_window_bits"
    assert extension_params(client.headers.get("sec-websocket-extensions")) == {
        "server_max_window_bits": "12",
        "client_max_window_bits": "12",
    }
    assert settings(client.deflate) == (12, False, 12, False)
    assert settings(server_conn.deflate) == (12, False, 12, False)
    assert client.deflate is not None and client.deflate.threshold == 128
    await echo_all(client, ["héllo " * 100, b"\x01\x02" * 500, "short"])


@pytest.mark.parametrize("side", ["client", "server", "both"])
async def test_compression_off_on_either_side(start_server: Start, ws_connect: Any, side: str) -> None:
    client_opts: dict[str, Any] = {"compression": False} if side in ("client", "both") else {}
    server_opts: dict[str, Any] = {"compression": False} if side in ("server", "both") else {}
    client, server_conn = await open_pair(start_server, ws_connect, client_opts, **server_opts)
    assert client.deflate is None and server_conn.deflate is None
    assert "sec-websocket-extensions" not in client.headers
    # The client offers unless it is off itself.
    assert ("sec-websocket-extensions" in server_conn.headers) is (side == "server")
    await echo_all(client, ["x" * 5000, b"\x00" * 5000, "", b"", "é" * 200])


# (client config, server config, client settings, server settings);
# settings = (compress_bits, compress_no_context, decompress_bits, decompress_no_context).
CONFIG_CASES = [
    ({"server_no_context_takeover": True}, {}, (12, False, 12, True), (12, True, 12, False)),
    ({}, {"server_no_context_takeover": True}, (12, False, 12, True), (12, True, 12, False)),
    ({"client_no_context_takeover": True}, {}, (12, True, 12, False), (12, False, 12, True)),
    ({}, {"client_no_context_takeover": True}, (12, True, 12, False), (12, False, 12, True)),
    ({"server_max_window_bits": 10}, {}, (12, False, 10, False), (10, False, 12, False)),
    ({}, {"server_max_window_bits": 9}, (12, False, 9, False), (9, False, 12, False)),
    (
        {"server_max_window_bits": 15},
        {"server_max_window_bits": 15},
        (12, False, 15, False),
        (15, False, 12, False),
    ),
    ({"server_max_window_bits": 8}, {}, (12, False, 9, False), (8, False, 12, False)),
    ({"client_max_window_bits": 10}, {}, (10, False, 12, False), (12, False, 10, False)),
    ({}, {"client_max_window_bits": 9}, (9, False, 12, False), (12, False, 9, False)),
    (
        {"client_max_window_bits": 15},
        {"client_max_window_bits": 15},
        (15, False, 12, False),
        (12, False, 15, False),
    ),
    ({"client_max_window_bits": 8}, {}, (8, False, 12, False), (12, False, 9, False)),
    (
        {
            "server_no_context_takeover": True,
            "client_no_context_takeover": True,
            "server_max_window_bits": 11,
        },
        {"client_max_window_bits": 10},
        (10, True, 11, True),
        (11, True, 10, True),
    ),
    (
        {"threshold": 0, "level": 1, "mem_level": 9},
        {"threshold": 4096, "level": 9, "mem_level": 1},
        None,
        None,
    ),
]


@pytest.mark.parametrize(("client_cfg", "server_cfg", "client_settings", "server_settings"), CONFIG_CASES)
async def test_dict_configs_are_agreed(
    start_server: Start,
    ws_connect: Any,
    client_cfg: dict[str, Any],
    server_cfg: dict[str, Any],
    client_settings: tuple[int, bool, int, bool] | None,
    server_settings: tuple[int, bool, int, bool] | None,
) -> None:
    client, server_conn = await open_pair(
        start_server, ws_connect, {"compression": client_cfg}, compression=server_cfg
    )
    if client_settings is None:
        assert settings(client.deflate) == settings(server_conn.deflate) == (12, False, 12, False)
    else:
        assert settings(client.deflate) == client_settings
        assert settings(server_conn.deflate) == server_settings
    assert client.deflate is not None and server_conn.deflate is not None
    assert client.deflate.threshold == client_cfg.get("threshold", 128)
    assert server_conn.deflate.threshold == server_cfg.get("threshold", 128)
    messages: list[str | bytes] = [TEXT_MIB[i * 3000 : i * 3000 + 2000 + i] for i in range(20)]
    messages += [BIN_MIB[:300_000], RANDOM_MIB[:100_000], "tiny", b""]
    await echo_all(client, messages)


@pytest.mark.parametrize("mode", ["events", "recv"])
async def test_sizes_round_trip_compressed(
    start_server: Start, ws_connect: Any, proxy_to: Any, mode: str
) -> None:
    server, accepted = await start_server(mode)
    proxy, port = await proxy_to(server.port)
    client = await ws_connect(f"ws://127.0.0.1:{port}/")
    assert client.deflate is not None
    for size in (0, 1, 127, 128, MiB):
        await echo_all(client, [TEXT_MIB[:size], BIN_MIB[:size], RANDOM_MIB[:size]])
    # Compressible data really crosses the wire compressed, both ways.
    proxy.reset()
    await echo_all(client, [TEXT_MIB, BIN_MIB])
    assert proxy.up < MiB // 2 and proxy.down < MiB // 2, (proxy.up, proxy.down)


@pytest.mark.parametrize("no_context", [False, True])
async def test_streamed_binary_compressed_both_ways(
    start_server: Start, ws_connect: Any, proxy_to: Any, no_context: bool
) -> None:
    server, accepted = await start_server(
        "none",
        binary_fragmentation=4096,
        compression={"server_no_context_takeover": no_context, "client_no_context_takeover": no_context},
    )
    proxy, port = await proxy_to(server.port)
    client = await ws_connect(f"ws://127.0.0.1:{port}/", binary_fragmentation=4096)
    server_conn = await asyncio.wait_for(accepted.get(), 5)
    assert settings(server_conn.deflate)[1] is no_context

    @server_conn.on("binary")
    async def _echo(stream: wsevents.InStream) -> None:
        async with server_conn.begin_binary() as out:
            async for chunk in stream:
                await out.write(chunk)

    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def _collect(stream: wsevents.InStream) -> None:
        received.put_nowait(await stream.read())

    client.on("binary", _collect)

    payload = BIN_MIB[:400_000]
    for _ in range(2):
        proxy.reset()
        async with client.begin_binary() as out:
            for i in range(0, len(payload), 10_000):
                await out.write(payload[i : i + 10_000])
        assert await asyncio.wait_for(received.get(), 10) == payload
        assert proxy.up < len(payload) // 2 and proxy.down < len(payload) // 2, (proxy.up, proxy.down)
    # Random data, in a stream too.
    async with client.begin_binary() as out:
        await out.write(RANDOM_MIB[:50_000])
        await out.write(RANDOM_MIB[50_000:60_000])
    assert await asyncio.wait_for(received.get(), 10) == RANDOM_MIB[:60_000]


@pytest.mark.parametrize("no_context", [False, True])
async def test_many_messages_in_a_row(
    start_server: Start, ws_connect: Any, proxy_to: Any, no_context: bool
) -> None:
    config = {"server_no_context_takeover": no_context, "client_no_context_takeover": no_context}
    server, _ = await start_server("recv", compression=config)
    proxy, port = await proxy_to(server.port)
    client = await ws_connect(f"ws://127.0.0.1:{port}/", compression=config)
    messages = [f"message {i}: " + TEXT_MIB[(i % 7) * 1000 : (i % 7) * 1000 + 400] for i in range(200)]
    for m in messages:
        client.send_text(m)
    for m in messages:
        assert await asyncio.wait_for(client.recv(), 5) == m
    total = sum(len(m) for m in messages)
    if no_context:
        assert proxy.up < total
    else:
        # Context takeover: the repeats are back-references to earlier messages.
        assert proxy.up < total // 10, (proxy.up, total)


# -- decompression bombs -------------------------------------------------------------------------


def deflate_raw(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


BOMB = deflate_raw(bytes(50 * MiB))


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


@pytest.mark.parametrize("opcode", [BINARY, TEXT])
async def test_compression_bomb_against_the_server(start_server: Start, raw_ws: Any, opcode: int) -> None:
    assert len(BOMB) < 100_000
    server, accepted = await start_server("none", max_buffer_length=MiB)
    reader, writer = await raw_ws.connect_raw(server.port)
    request, _ = raw_ws.request(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    writer.write(request)
    head = await raw_ws.read_head(reader)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-extensions: permessage-deflate" in head.lower()
    server_conn = await asyncio.wait_for(accepted.get(), 5)
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    server_conn.on("close", lambda code, reason: closed.set_result((code, reason)))
    wire = frame(opcode, BOMB, rsv=RSV1)

    rss_before = maxrss_bytes()
    tracemalloc.start()
    try:
        writer.write(wire)
        got = await raw_ws.read_frame(reader)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (got.opcode, got.payload[:2]) == (CLOSE, b"\x03\xf1")  # 1009
    code, _ = await asyncio.wait_for(closed, 5)
    assert code == 1009 and server_conn.close_code == 1009
    assert peak < 20 * MiB, peak
    assert maxrss_bytes() - rss_before < 20 * MiB


@pytest.mark.parametrize("mode", ["stream", "queue"])
async def test_many_small_bombs_in_one_read_stay_bounded(
    start_server: Start, raw_ws: Any, until: Any, mode: str
) -> None:
    """Unconsumed data is bounded by max_buffer_length through backpressure (pause_reading).

    Reading pauses once the connection holds more than the bound, but the frames
    already received in the same read are still inflated: ~135 KB of frames that
    each inflate to ~900 KB, under the bound one by one, must not become tens of
    MiB held in memory ("stream": one streamed binary whose InStream is not read;
    "queue": 150 whole messages queued for recv()). Either the connection fails
    with 1009 or parsing stops with reading.
    """
    server, accepted = await start_server("none", max_buffer_length=MiB)
    reader, writer = await raw_ws.connect_raw(server.port)
    request, _ = raw_ws.request(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    writer.write(request)
    assert b"permessage-deflate" in await raw_ws.read_head(reader)
    server_conn = await asyncio.wait_for(accepted.get(), 5)
    streams: list[wsevents.InStream] = []
    if mode == "stream":
        server_conn.on("binary", streams.append)  # holds the stream, reads nothing
    closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server_conn.on("close", lambda code, reason: closed.set_result(code))

    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first, second = (comp.compress(bytes(900_000)) + comp.flush(zlib.Z_SYNC_FLUSH) for _ in range(2))
    # Each further 900,000 zeros compress to the same bytes (the window is all zeros).
    if mode == "stream":
        wire = frame(BINARY, first, fin=False, rsv=RSV1) + frame(0, second, fin=False) * 149
    else:
        wire = frame(BINARY, first[:-4], rsv=RSV1) + frame(BINARY, second[:-4], rsv=RSV1) * 149
    assert len(wire) < 200_000

    tracemalloc.start()
    try:
        writer.write(wire)
        if mode == "stream":
            await until(lambda: closed.done() or (streams and streams[0].bytes_received > MiB))
        else:
            with contextlib.suppress(wsevents.ConnectionClosed):
                assert await asyncio.wait_for(server_conn.recv(), 5) == bytes(900_000)
        await asyncio.sleep(0.2)  # let whatever was read be processed
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if closed.done():
        assert closed.result() == 1009
    assert peak < 20 * MiB, f"{peak / MiB:.0f} MiB held for {len(wire)} bytes received"


async def test_compression_bomb_against_the_client(raw_server: Any, raw_ws: Any) -> None:
    seen: asyncio.Future[tuple[bytes, Any]] = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await raw_ws.read_head(reader)
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(raw_ws.response(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"))
        writer.write(frame(BINARY, BOMB, rsv=RSV1, mask=False))
        got = await raw_ws.read_frame(reader)
        seen.set_result((head, got))
        writer.close()

    port = await raw_server(handler)
    conn = wsevents.connect(f"ws://127.0.0.1:{port}/", max_buffer_length=MiB, close_timeout=1)
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    conn.on("close", lambda code, reason: closed.set_result((code, reason)))
    tracemalloc.start()
    try:
        await asyncio.wait_for(conn, 5)
        head, got = await asyncio.wait_for(seen, 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert b"permessage-deflate" in head
    assert conn.deflate is not None
    assert (got.opcode, got.masked, got.payload[:2]) == (CLOSE, True, b"\x03\xf1")
    assert (await asyncio.wait_for(closed, 5))[0] == 1009
    assert peak < 20 * MiB, peak


async def test_raw_peer_sees_rsv1_only_at_or_over_the_threshold(start_server: Start, raw_ws: Any) -> None:
    server, _ = await start_server("recv")
    reader, writer = await raw_ws.connect_raw(server.port)
    request, _ = raw_ws.request(
        extra="Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
    )
    writer.write(request)
    head = await raw_ws.read_head(reader)
    assert b"client_no_context_takeover" in head
    decomp = zlib.decompressobj(-15)  # the client did not limit the server's window
    for text in ("a" * 127, "b" * 128, "ü" * 1000, "b" * 128):
        # Each message compressed afresh, as client_no_context_takeover promises.
        writer.write(frame(TEXT, deflate_raw(text.encode()), rsv=RSV1))
        raw = await asyncio.wait_for(reader.readexactly(2), 5)
        compressed = bool(raw[0] & 0x40)
        n = raw[1] & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        payload = await asyncio.wait_for(reader.readexactly(n), 5)
        assert raw[0] & 0x0F == TEXT and not raw[1] & 0x80
        assert compressed is (len(text.encode()) >= 128)
        if compressed:
            payload = decomp.decompress(payload + b"\x00\x00\xff\xff")
        assert payload.decode() == text


# -- interop with the websockets library ---------------------------------------------------------


WSEVENTS_CONFIGS = [
    {},
    {"server_no_context_takeover": True},
    {"client_no_context_takeover": True},
    {"client_max_window_bits": 9},
]


async def lib_echo_checks(send: Callable[[Any], Awaitable[None]], recv: Callable[[], Awaitable[Any]]) -> None:
    messages: list[str | bytes] = [
        "grüße ✓",
        TEXT_MIB[:100_000],
        BIN_MIB,
        RANDOM_MIB,
        "",
        b"",
        "x" * 127,
        "y" * 128,
    ]
    messages += [f"{i} " + TEXT_MIB[i * 100 : i * 100 + 500] for i in range(50)]
    for message in messages:
        await send(message)
        assert await asyncio.wait_for(recv(), 10) == message


@pytest.mark.parametrize("config", WSEVENTS_CONFIGS, ids=str)
async def test_websockets_client_against_wsevents_server(start_server: Start, config: dict[str, Any]) -> None:
    server, accepted = await start_server("recv", compression=config, max_buffer_length=4 * MiB)
    ws: ClientConnection
    async with lib_connect(f"ws://127.0.0.1:{server.port}/", max_size=4 * MiB, proxy=None) as ws:
        assert ws.request is not None and ws.response is not None
        assert ws.request.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        params = extension_params(ws.response.headers.get("Sec-WebSocket-Extensions"))
        server_conn = await asyncio.wait_for(accepted.get(), 5)
        compress_bits, compress_nct, decompress_bits, decompress_nct = settings(server_conn.deflate)
        assert ("server_no_context_takeover" in params) is compress_nct
        assert ("client_no_context_takeover" in params) is decompress_nct
        assert decompress_nct is ("client_no_context_takeover" in config)
        assert compress_nct is ("server_no_context_takeover" in config)
        assert params["client_max_window_bits"] == str(config.get("client_max_window_bits", 12))
        assert decompress_bits == config.get("client_max_window_bits", 12)
        assert params["server_max_window_bits"] == "12" and compress_bits == 12
        await lib_echo_checks(ws.send, ws.recv)


async def test_websockets_client_asking_for_a_15_bit_server_window(start_server: Start) -> None:
    # RFC 7692 section 7.1.2.1: asked for, server_max_window_bits must be in the answer, 15 too.
    server, accepted = await start_server("recv", compression={"server_max_window_bits": 15})
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=15, client_max_window_bits=True)
    async with lib_connect(
        f"ws://127.0.0.1:{server.port}/", extensions=[factory], compression=None, proxy=None
    ) as ws:
        assert ws.response is not None
        params = extension_params(ws.response.headers.get("Sec-WebSocket-Extensions"))
        assert params["server_max_window_bits"] == "15"
        server_conn = await asyncio.wait_for(accepted.get(), 5)
        assert settings(server_conn.deflate) == (15, False, 12, False)
        for message in ("hello " * 1000, RANDOM_MIB[:100_000]):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), 5) == message


@pytest.fixture
async def lib_server() -> AsyncIterator[tuple[int, list[ServerConnection]]]:
    conns: list[ServerConnection] = []

    async def echo(ws: ServerConnection) -> None:
        conns.append(ws)
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, max_size=4 * MiB) as server:
        port = server.sockets[0].getsockname()[1]
        yield port, conns


@pytest.mark.parametrize("config", WSEVENTS_CONFIGS, ids=str)
async def test_wsevents_client_against_websockets_server(
    lib_server: tuple[int, list[ServerConnection]], ws_connect: Any, config: dict[str, Any]
) -> None:
    port, conns = lib_server
    client = await ws_connect(f"ws://127.0.0.1:{port}/", compression=config, max_buffer_length=4 * MiB)
    params = extension_params(client.headers.get("sec-websocket-extensions"))
    (lib_conn,) = conns
    assert lib_conn.request is not None
    assert lib_conn.request.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
    compress_bits, compress_nct, decompress_bits, decompress_nct = settings(client.deflate)
    assert ("server_no_context_takeover" in params) is decompress_nct
    assert decompress_nct is ("server_no_context_takeover" in config)
    assert compress_nct is ("client_no_context_takeover" in config)
    assert params["server_max_window_bits"] == "12" and decompress_bits == 12
    assert (
        int(params["client_max_window_bits"] or 0)
        == compress_bits
        == config.get("client_max_window_bits", 12)
    )

    async def send(message: Any) -> None:
        await client.send(message)

    await lib_echo_checks(send, client.recv)
    # A streamed binary from wsevents, compressed as one message.
    async with client.begin_binary() as out:
        for i in range(0, 300_000, 30_000):
            await out.write(BIN_MIB[i : i + 30_000])
    assert await asyncio.wait_for(client.recv(), 10) == BIN_MIB[:300_000]
    await asyncio.wait_for(client.close(1000), 5)
    assert client.close_code == 1000


async def test_wsevents_client_without_compression_against_websockets_server(
    lib_server: tuple[int, list[ServerConnection]], ws_connect: Any
) -> None:
    port, conns = lib_server
    client = await ws_connect(f"ws://127.0.0.1:{port}/", compression=False)
    assert client.deflate is None and "sec-websocket-extensions" not in client.headers
    assert conns[0].request is not None and "Sec-WebSocket-Extensions" not in conns[0].request.headers
    await echo_all(client, ["x" * 1000, os.urandom(1000)])
