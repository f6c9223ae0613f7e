"""Issue 6's knobs: timeouts, keepalive, admission, flow control, graceful shutdown, listener errors.

Each has a default, an option that changes behaviour, and an exact close code or HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import wsevents
from wsevents.aio.options import ClientOptions, ServerOptions


def test_defaults() -> None:
    for options in (ServerOptions(), ClientOptions()):
        assert options.handshake_timeout == 10.0
        assert options.close_timeout == 5.0
        assert options.ping_interval == 20.0 and options.ping_timeout == 20.0
        assert options.max_queue == 64
        assert options.max_write_buffer == 64 * 1024 * 1024
    server_options = ServerOptions()
    assert server_options.verify_client is None and server_options.origins is None
    assert server_options.max_connections is None


@pytest.mark.parametrize(
    "bad",
    [
        {"ping_interval": 0},
        {"ping_timeout": -1},
        {"max_queue": 0},
        {"max_write_buffer": 0},
        {"max_connections": 0},
        {"verify_client": 3},
        {"origins": "https://a"},
    ],
)
def test_bad_values_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        wsevents.create_server(**bad)


async def status_of(port: int, raw_ws: Any, extra: str = "", path: str = "/") -> tuple[str, bytes]:
    reader, writer = await raw_ws.connect_raw(port)
    request, _ = raw_ws.request(path, extra=extra)
    writer.write(request)
    head = await raw_ws.read_head(reader)
    return head.split(b"\r\n", 1)[0].decode(), head


# -- timeouts --------------------------------------------------------------------------------


async def test_slowloris_is_dropped_while_others_are_served(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"handshake_timeout": 1})
    server.on("connection", lambda c: c.on("text", c.send_text))
    reader, writer = await raw_ws.connect_raw(server.port)
    request, _ = raw_ws.request()
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def trickle() -> None:
        for byte in request:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)

    trickling = asyncio.ensure_future(trickle())
    try:
        # Meanwhile a well-behaved client is served.
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
            await client.send_text("still served")
            assert await asyncio.wait_for(client.recv(), 5) == "still served"
        assert await asyncio.wait_for(reader.read(), 5) == b""  # dropped without an answer
        assert 0.9 < loop.time() - start < 3
    finally:
        trickling.cancel()


async def test_close_timeout_bounds_a_peer_that_never_answers(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"close_timeout": 0.3})
    accepted: asyncio.Future[wsevents.Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", accepted.set_result)
    reader, _, _ = await raw_ws.open(server.port)
    conn = await asyncio.wait_for(accepted, 5)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.wait_for(conn.close(4000, "bye"), 5)
    assert 0.25 < loop.time() - start < 2
    assert conn.close_code == 1006
    frame = await raw_ws.read_frame(reader)
    assert frame.opcode == 8 and frame.payload[:2] == b"\x0f\xa0"


# -- keepalive -------------------------------------------------------------------------------


async def test_keepalive_reaps_a_silent_peer(make_server: Any, raw_ws: Any) -> None:
    """A raw client that never answers pings: the server closes with 1011 after ping_timeout."""
    server = await make_server({"ping_interval": 0.2, "ping_timeout": 0.3})
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    server.on("connection", lambda c: c.on("close", lambda code, reason: closed.set_result((code, reason))))
    reader, _, _ = await raw_ws.open(server.port)
    ping = await raw_ws.read_frame(reader)
    assert ping.opcode == 9 and len(ping.payload) == 4
    assert await asyncio.wait_for(closed, 3) == (1011, "keepalive ping timeout")
    assert server.stats["keepalive_timeouts"] == 1


async def test_keepalive_on_the_client_side(raw_server: Any, raw_ws: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await raw_ws.read_head(reader)
        key = [
            line.split(b": ")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        ]
        writer.write(raw_ws.response(key[0].decode()))
        await asyncio.sleep(5)  # never answers pings

    port = await raw_server(handler)
    conn = await wsevents.connect(
        f"ws://127.0.0.1:{port}/", ping_interval=0.2, ping_timeout=0.3, compression=False
    )
    await asyncio.wait_for(conn.wait_closed(), 3)
    assert (conn.close_code, conn.close_reason) == (1011, "keepalive ping timeout")


async def test_latency_measured_and_keepalive_pongs_not_emitted(make_server: Any) -> None:
    server = await make_server({"ping_interval": 0.05, "ping_timeout": 1})
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/", ping_interval=None) as client:
        pongs: list[str] = []
        while not server.connections:
            await asyncio.sleep(0.01)
        conn = server.connections[0]
        conn.on("pong", pongs.append)
        assert conn.latency == 0.0
        for _ in range(250):  # bounded: 5 s
            await asyncio.sleep(0.02)
            if conn.latency:
                break
        assert 0 < conn.latency < 1
        assert pongs == []  # keepalive pongs are the library's business
        assert client.latency == 0.0  # the client's own keepalive is off


# -- admission -------------------------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(
    ("verdict", "status", "header"),
    [
        (True, "HTTP/1.1 101 Switching Protocols", None),
        (False, "HTTP/1.1 403 Forbidden", None),
        (429, "HTTP/1.1 429 Too Many Requests", None),
        (
            (401, {"WWW-Authenticate": 'Basic realm="chat"'}),
            "HTTP/1.1 401 Unauthorized",
            b'WWW-Authenticate: Basic realm="chat"',
        ),
        ("nonsense", "HTTP/1.1 500 Internal Server Error", None),
    ],
)
async def test_verify_client(
    make_server: Any, raw_ws: Any, asynchronous: bool, verdict: Any, status: str, header: bytes | None
) -> None:
    seen: list[wsevents.HttpRequest] = []

    def sync_verify(request: wsevents.HttpRequest) -> Any:
        seen.append(request)
        return verdict

    async def async_verify(request: wsevents.HttpRequest) -> Any:
        await asyncio.sleep(0.01)
        return sync_verify(request)

    server = await make_server({"verify_client": async_verify if asynchronous else sync_verify})
    line, head = await status_of(server.port, raw_ws, "Authorization: token\r\n", "/room?id=3")
    assert line == status
    if header is not None:
        assert header in head
    assert seen[0].path == "/room?id=3" and seen[0].headers["authorization"] == "token"
    assert seen[0].method == "GET" and seen[0].remote_address[0] == "127.0.0.1"
    assert server.stats["rejected"] == (0 if verdict is True else 1)


async def test_verify_client_that_raises_is_a_500(make_server: Any, raw_ws: Any) -> None:
    def verify(request: wsevents.HttpRequest) -> bool:
        raise RuntimeError("oops")

    server = await make_server({"verify_client": verify})
    assert (await status_of(server.port, raw_ws))[0] == "HTTP/1.1 500 Internal Server Error"


async def test_origins(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"origins": ["https://good.example", None]})
    assert (await status_of(server.port, raw_ws, "Origin: https://good.example\r\n"))[0].endswith(
        "101 Switching Protocols"
    )
    assert (await status_of(server.port, raw_ws))[0].endswith("101 Switching Protocols")  # None: no Origin
    assert (await status_of(server.port, raw_ws, "Origin: https://evil.example\r\n"))[
        0
    ] == "HTTP/1.1 403 Forbidden"
    strict = await make_server({"origins": ["https://good.example"]})
    assert (await status_of(strict.port, raw_ws))[0] == "HTTP/1.1 403 Forbidden"


async def test_max_connections(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"max_connections": 2})
    url = f"ws://127.0.0.1:{server.port}/"
    first = await wsevents.connect(url)
    second = await wsevents.connect(url)
    with pytest.raises(wsevents.HandshakeError) as info:
        await wsevents.connect(url)
    assert info.value.status == 503
    await first.close()
    while len(server.connections) > 1:
        await asyncio.sleep(0.01)
    third = await wsevents.connect(url)  # admitted again
    await third.close()
    await second.close()


# -- flow control ----------------------------------------------------------------------------


async def test_max_queue_pauses_reading(make_server: Any) -> None:
    server = await make_server({"max_queue": 4})
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
        while not server.connections:
            await asyncio.sleep(0.01)
        conn = server.connections[0]
        for i in range(10):
            client.send_text(f"m{i}")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not conn.transport.is_reading():  # type: ignore[union-attr]
                break
        assert not conn.transport.is_reading()  # type: ignore[union-attr]
        assert [await conn.recv() for _ in range(10)] == [f"m{i}" for i in range(10)]
        assert conn.transport.is_reading()  # type: ignore[union-attr]


async def test_write_overflow_drops_a_peer_that_does_not_read(
    make_server: Any, raw_ws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server({"max_write_buffer": 256 * 1024, "compression": False})
    accepted: asyncio.Future[wsevents.Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", accepted.set_result)
    _, writer, _ = await raw_ws.open(server.port)
    writer.transport.pause_reading()  # the peer reads nothing
    conn = await asyncio.wait_for(accepted, 5)
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    conn.on("close", lambda code, reason: closed.set_result((code, reason)))
    chunk = b"x" * 65536
    with caplog.at_level(logging.WARNING, logger="wsevents"):
        refused = None
        for _ in range(2000):  # fire-and-forget: ignores every awaitable
            try:
                conn.send_binary(chunk)
            except wsevents.InvalidState as exc:
                refused = exc  # the send that found the buffer over the bound is refused
                break
            await asyncio.sleep(0)
        code, reason = await asyncio.wait_for(closed, 5)
    assert refused is not None
    assert (code, reason) == (1008, "write buffer overflow: the peer does not read")
    assert server.stats["write_overflows"] == 1
    assert any("max_write_buffer" in r.getMessage() for r in caplog.records)


async def test_awaited_sends_respect_backpressure(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"max_write_buffer": 256 * 1024, "compression": False})
    accepted: asyncio.Future[wsevents.Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", accepted.set_result)
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await asyncio.wait_for(accepted, 5)

    async def produce() -> None:
        for _ in range(100):  # 6.4 MiB, far past max_write_buffer, but awaited
            await conn.send_binary(b"y" * 65536)

    async def consume() -> int:
        total = 0
        while total < 100 * 65536:
            frame = await raw_ws.read_frame(reader)
            total += len(frame.payload)
            await asyncio.sleep(0.001)
        return total

    await asyncio.wait_for(asyncio.gather(produce(), consume()), 30)
    assert conn.ready_state == wsevents.Connection.OPEN
    assert server.stats["write_overflows"] == 0


# -- graceful shutdown and listener errors --------------------------------------------------------


async def test_graceful_close_flushes_then_1001_and_aborts_stragglers(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"compression": False})
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
        reader, _, _ = await raw_ws.open(server.port)  # will never answer the close frame
        while len(server.connections) < 2:
            await asyncio.sleep(0.01)
        for conn in server.connections:
            conn.send_text("sent just before")
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(server.close(graceful=True, timeout=0.5), 5)
        assert 0.4 < loop.time() - start < 3  # waited for the raw peer, then aborted it
        assert await client.recv() == "sent just before"
        with pytest.raises(wsevents.ConnectionClosed):
            await client.recv()
        assert client.close_code == 1001
        assert (await raw_ws.read_frame(reader)).payload == b"sent just before"
        last = await raw_ws.read_frame(reader)
        assert last.opcode == 8 and last.payload[:2] == (1001).to_bytes(2, "big")
    assert server.connections == []


async def test_a_listener_exception_is_logged_and_the_connection_goes_on(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server()
    received: list[str] = []

    def on_connection(conn: wsevents.Connection) -> None:
        @conn.on("text")
        def on_text(text: str) -> None:
            received.append(text)
            if text == "boom":
                raise RuntimeError("listener bug")
            conn.send_text(text)

    server.on("connection", on_connection)
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
        with caplog.at_level(logging.ERROR, logger="wsevents"):
            await client.send_text("boom")
            await client.send_text("after")
            assert await asyncio.wait_for(client.recv(), 5) == "after"
    assert received == ["boom", "after"]
    assert any(r.exc_info and "listener bug" in str(r.exc_info[1]) for r in caplog.records)
