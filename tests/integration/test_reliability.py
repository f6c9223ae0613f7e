"""Issue 6, reliability and security: every option has a default, changes behaviour, and ends in an
exact close code or HTTP status.

handshake_timeout, close_timeout, keepalive (ping_interval / ping_timeout, latency), verify_client,
origins, max_connections, max_queue, max_write_buffer, server.stats, graceful server.close and
run() on SIGINT / SIGTERM, exceptions in listeners.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import wsevents
from helpers import close_event, wait_until
from wsevents.aio.options import ClientOptions, ServerOptions

KiB = 1024
MiB = 1024 * KiB
OVERFLOW = (1008, "write buffer overflow: the peer does not read")
KEEPALIVE = (1011, "keepalive ping timeout")


# -- helpers ---------------------------------------------------------------------------------------


def next_connection(server: wsevents.Server) -> asyncio.Future[wsevents.Connection]:
    """A future for the server's next "connection"."""
    fut: asyncio.Future[wsevents.Connection] = asyncio.get_running_loop().create_future()
    server.once("connection", fut.set_result)
    return fut


async def status_of(port: int, raw_ws: Any, extra: str = "", path: str = "/") -> tuple[str, bytes]:
    """Send an upgrade request by hand; return the status line and the whole response head."""
    reader, writer = await raw_ws.connect_raw(port)
    request, _ = raw_ws.request(path, extra=extra)
    writer.write(request)
    head = await raw_ws.read_head(reader)
    return head.split(b"\r\n", 1)[0].decode(), head


def key_of(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return value.strip().decode()
    raise AssertionError(f"no key in {head!r}")


def shrink_send_buffer(conn: wsevents.Connection) -> None:
    conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)


def is_reading(conn: wsevents.Connection) -> bool:
    transport = conn.transport
    assert transport is not None
    return transport.is_reading()


def pong_for(conn: wsevents.Connection, payload: str) -> asyncio.Future[str]:
    """Send a ping from ``conn``; the future is the peer's pong, which comes once the peer reads."""
    pong: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    conn.on("pong", lambda data: data == payload and not pong.done() and pong.set_result(data))
    conn.send_ping(payload)
    return pong


Peer = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def answer_pings(raw_ws: Any, peer: Peer, n: int) -> None:
    """Read ``n`` keepalive pings on a raw connection, answering each: at least n ping_intervals pass."""
    reader, writer = peer
    for _ in range(n):
        ping = await raw_ws.read_frame(reader)
        assert ping.opcode == 9
        writer.write(raw_ws.frame(10, ping.payload))


async def nothing_before_our_pong(raw_ws: Any, peer: Peer) -> None:
    """Ping the server by hand: the next frame must be its pong, so it sent nothing before (a barrier)."""
    reader, writer = peer
    writer.write(raw_ws.frame(9, b"probe"))
    frame = await raw_ws.read_frame(reader)
    assert (frame.opcode, frame.payload) == (10, b"probe")


async def elapsed(awaitable: Awaitable[Any], limit: float = 5) -> float:
    """Seconds until ``awaitable`` is done (by the clock: uvloop's loop.time() is cached, in ms)."""
    start = time.perf_counter()
    await asyncio.wait_for(awaitable, limit)
    return time.perf_counter() - start


# -- defaults and validation -----------------------------------------------------------------------


def test_defaults_of_servers_and_clients() -> None:
    server = wsevents.create_server()
    for options in (server.options, ServerOptions(), ClientOptions()):
        assert options.handshake_timeout == 10.0
        assert options.close_timeout == 5.0
        assert (options.ping_interval, options.ping_timeout) == (20.0, 20.0)
        assert options.max_queue == 64
        assert options.max_write_buffer == 64 * MiB
    assert server.options.verify_client is None
    assert server.options.origins is None
    assert server.options.max_connections is None
    assert server.stats == {"rejected": 0, "write_overflows": 0, "keepalive_timeouts": 0}


@pytest.mark.parametrize(
    "bad",
    [
        {"handshake_timeout": 0},
        {"close_timeout": -1},
        {"ping_interval": 0},
        {"ping_timeout": "20"},
        {"ping_timeout": -1},
        {"max_queue": 0},
        {"max_write_buffer": True},
        {"max_write_buffer": 0},
        {"max_connections": 0},
        {"verify_client": "yes"},
        {"origins": "https://a.example"},
    ],
)
def test_bad_option_values_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        wsevents.create_server(**bad)


def test_none_turns_timeouts_off() -> None:
    options = ServerOptions(handshake_timeout=None, close_timeout=None, ping_interval=None, ping_timeout=None)
    assert (options.handshake_timeout, options.close_timeout, options.ping_interval) == (None, None, None)


def test_server_only_options_are_unknown_to_clients() -> None:
    for name in ("verify_client", "origins", "max_connections"):
        with pytest.raises(TypeError, match=name):
            wsevents.connect("ws://127.0.0.1:9/", **{name: None})


# -- handshake_timeout -----------------------------------------------------------------------------


async def test_slowloris_is_dropped_while_a_well_behaved_client_is_served(
    make_server: Any, raw_ws: Any
) -> None:
    server = await make_server({"handshake_timeout": 1})
    server.on("connection", lambda c: c.on("text", c.send_text))
    reader, writer = await raw_ws.connect_raw(server.port)
    request, _ = raw_ws.request()
    start = time.perf_counter()

    async def trickle() -> None:  # one byte every 0.2 s: the request would take 30 s
        for byte in request:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)

    trickling = asyncio.ensure_future(trickle())
    try:
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
            await client.send_text("served meanwhile")
            assert await asyncio.wait_for(client.recv(), 5) == "served meanwhile"
            assert not reader.at_eof()  # really meanwhile: the slow one is still connected
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no HTTP answer at all
        assert 0.95 <= time.perf_counter() - start < 5
        assert not trickling.done()
    finally:
        trickling.cancel()
    assert server.connections == []


async def test_default_handshake_timeout_lets_a_slow_request_finish(make_server: Any, raw_ws: Any) -> None:
    server = await make_server()  # 10 s
    reader, writer = await raw_ws.connect_raw(server.port)
    request, _ = raw_ws.request()
    writer.write(request[:20])
    await asyncio.sleep(1.2)  # longer than the 1 s that drops it above
    writer.write(request[20:])
    assert (await raw_ws.read_head(reader)).startswith(b"HTTP/1.1 101 ")


async def test_client_handshake_timeout(raw_server: Any) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts TCP, never answers the upgrade request

    port = await raw_server(silent)
    start = time.perf_counter()
    conn = wsevents.connect(f"ws://127.0.0.1:{port}/", handshake_timeout=0.5)
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(conn, 5)
    assert 0.45 <= time.perf_counter() - start < 5
    assert info.value.status is None
    assert "timed out" in str(info.value)
    assert conn.ready_state == wsevents.Connection.CLOSED


# -- close_timeout ---------------------------------------------------------------------------------


async def test_server_close_timeout_aborts_a_peer_that_never_answers(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"close_timeout": 0.3})
    accepted = next_connection(server)
    reader, _, _ = await raw_ws.open(server.port)
    conn = await asyncio.wait_for(accepted, 5)
    closed = close_event(conn)
    assert 0.25 <= await elapsed(conn.close(4000, "bye")) < 3
    assert await closed == (1006, "")
    frame = await raw_ws.read_frame(reader)
    assert (frame.opcode, frame.payload) == (8, b"\x0f\xa0bye")


async def test_client_close_timeout_aborts_a_server_that_never_answers(raw_server: Any, raw_ws: Any) -> None:
    got_close: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw_ws.response(key_of(await raw_ws.read_head(reader))))
        got_close.set_result((await raw_ws.read_frame(reader)).payload)
        await reader.read()

    port = await raw_server(mute)
    client = await wsevents.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.3, compression=False)
    assert 0.25 <= await elapsed(client.close(1000)) < 3
    assert await got_close == b"\x03\xe8"
    assert (client.close_code, client.ready_state) == (1006, wsevents.Connection.CLOSED)


async def test_client_waits_at_most_close_timeout_for_the_servers_tcp_close(
    raw_server: Any, raw_ws: Any
) -> None:
    """A server that answers the close frame but never closes TCP (as nodejs-websocket does)."""
    half_closed: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def lingering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw_ws.response(key_of(await raw_ws.read_head(reader))))
        frame = await raw_ws.read_frame(reader)
        writer.write(raw_ws.frame(8, frame.payload, mask=False))
        half_closed.set_result(await reader.read())  # b"": the client half-closed
        await asyncio.sleep(10)

    port = await raw_server(lingering)
    client = await wsevents.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.4, compression=False)
    closed = close_event(client)
    assert 0.35 <= await elapsed(client.close(4001, "done")) < 3
    assert await closed == (4001, "done")  # the closing handshake completed
    assert await asyncio.wait_for(half_closed, 1) == b""


# -- keepalive -------------------------------------------------------------------------------------


async def test_server_keepalive_reaps_a_peer_that_never_answers_pings(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"ping_interval": 0.2, "ping_timeout": 0.3})
    accepted = next_connection(server)
    reader, _, _ = await raw_ws.open(server.port)
    closed = close_event(await asyncio.wait_for(accepted, 5))
    ping = await raw_ws.read_frame(reader)
    assert (ping.opcode, len(ping.payload)) == (9, 4)
    assert 0.2 <= await elapsed(closed, 3) < 3  # ping_timeout after the ping
    assert closed.result() == KEEPALIVE
    assert server.stats["keepalive_timeouts"] == 1
    assert server.connections == []
    last = await raw_ws.read_frame(reader)
    assert (last.opcode, last.payload) == (8, b"\x03\xf3keepalive ping timeout")
    assert await asyncio.wait_for(reader.read(), 2) == b""  # then the socket is aborted (EOF or reset)


async def test_client_keepalive_reaps_a_server_that_never_answers_pings(raw_server: Any, raw_ws: Any) -> None:
    pings: list[bytes] = []

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw_ws.response(key_of(await raw_ws.read_head(reader))))
        while True:
            frame = await raw_ws.read_frame(reader)
            pings.append(frame.payload)
            assert frame.opcode == 9 and frame.masked

    port = await raw_server(deaf)
    client = await wsevents.connect(
        f"ws://127.0.0.1:{port}/", ping_interval=0.2, ping_timeout=0.3, compression=False
    )
    closed = close_event(client)
    assert await asyncio.wait_for(closed, 3) == KEEPALIVE
    assert (client.close_code, client.close_reason) == KEEPALIVE
    assert len(pings) == 1 and len(pings[0]) == 4


async def test_keepalive_between_real_peers_measures_latency_and_emits_no_pong(make_server: Any) -> None:
    server = await make_server({"ping_interval": 0.2, "ping_timeout": 2})
    accepted = next_connection(server)
    client = await wsevents.connect(f"ws://127.0.0.1:{server.port}/", ping_interval=0.2, ping_timeout=2)
    conn = await asyncio.wait_for(accepted, 5)
    pongs: list[tuple[str, str]] = []
    conn.on("pong", lambda data: pongs.append(("server", data)))
    client.on("pong", lambda data: pongs.append(("client", data)))
    assert (conn.latency, client.latency) == (0.0, 0.0)
    # Latency is set as each keepalive pong is handled: wait for two rounds on each side.
    await wait_until(lambda: conn.latency and client.latency)
    first = (conn.latency, client.latency)
    await wait_until(lambda: conn.latency != first[0] and client.latency != first[1])
    assert 0 < conn.latency < 2 and 0 < client.latency < 2
    assert pongs == []  # keepalive pongs are the library's own
    assert conn.ready_state == client.ready_state == wsevents.Connection.OPEN
    # A ping of the application still gets its "pong".
    user_pong: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    client.once("pong", user_pong.set_result)
    await client.send_ping("mine")
    assert await asyncio.wait_for(user_pong, 5) == "mine"
    await client.close(1000)


async def test_ping_interval_turns_pings_on_and_off(make_server: Any, raw_ws: Any) -> None:
    """While a server with ping_interval=0.1 pings three times, one with None sends nothing."""
    quiet = await make_server({"ping_interval": None})
    accepted = next_connection(quiet)
    quiet_reader, quiet_writer, _ = await raw_ws.open(quiet.port)
    quiet_conn = await asyncio.wait_for(accepted, 5)
    pinging = await make_server({"ping_interval": 0.1})
    await answer_pings(raw_ws, (await raw_ws.open(pinging.port))[:2], 3)
    await nothing_before_our_pong(raw_ws, (quiet_reader, quiet_writer))
    assert quiet_conn.latency == 0.0  # nothing measured either


async def test_without_ping_timeout_an_unanswered_ping_does_not_close(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"ping_interval": 0.1, "ping_timeout": None})
    accepted = next_connection(server)
    reader, writer, _ = await raw_ws.open(server.port)
    conn = await asyncio.wait_for(accepted, 5)
    ping = await raw_ws.read_frame(reader)
    # While a peer that answers gets three pings, this one gets no second ping: one at a time.
    await answer_pings(raw_ws, (await raw_ws.open(server.port))[:2], 3)
    await nothing_before_our_pong(raw_ws, (reader, writer))
    assert conn.ready_state == wsevents.Connection.OPEN
    writer.write(raw_ws.frame(10, ping.payload))
    assert (await raw_ws.read_frame(reader)).opcode == 9  # answered: the next one comes
    assert conn.latency > 0


# -- verify_client ---------------------------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("verdict", "status", "header"),
    [
        (True, "HTTP/1.1 101 Switching Protocols", None),
        (False, "HTTP/1.1 403 Forbidden", None),
        (429, "HTTP/1.1 429 Too Many Requests", None),
        (404, "HTTP/1.1 404 Not Found", None),
        ("nonsense", "HTTP/1.1 500 Internal Server Error", None),
        (
            (401, {"WWW-Authenticate": 'Bearer realm="chat"'}),
            "HTTP/1.1 401 Unauthorized",
            b'WWW-Authenticate: Bearer realm="chat"\r\n',
        ),
        ((503, [("Retry-After", "7")]), "HTTP/1.1 503 Service Unavailable", b"Retry-After: 7\r\n"),
    ],
    ids=["true", "false", "int", "int404", "nonsense", "tuple-dict", "tuple-list"],
)
async def test_verify_client_result_forms(
    make_server: Any, raw_ws: Any, asynchronous: bool, verdict: Any, status: str, header: bytes | None
) -> None:
    seen: list[Any] = []

    def verify(request: Any) -> Any:
        seen.append(request)
        return verdict

    async def verify_async(request: Any) -> Any:
        await asyncio.sleep(0.01)
        return verify(request)

    server = await make_server({"verify_client": verify_async if asynchronous else verify})
    connections: list[wsevents.Connection] = []
    server.on("connection", connections.append)
    line, head = await status_of(server.port, raw_ws, "Authorization: Bearer t0k\r\n", "/room?id=3")
    assert line == status
    if header is not None:
        assert header in head
    (request,) = seen
    assert isinstance(request, wsevents.HttpRequest)
    assert (request.method, request.path) == ("GET", "/room?id=3")
    assert request.headers["AUTHORIZATION"] == request.headers["authorization"] == "Bearer t0k"
    assert request.remote_address[0] == "127.0.0.1"
    # "connection" is emitted as the 101 is written: the verdict is final once the status is read.
    assert len(connections) == (1 if verdict is True else 0)
    assert server.stats["rejected"] == (0 if verdict is True else 1)


async def test_verify_client_reads_a_token_from_the_query(make_server: Any, raw_ws: Any) -> None:
    def verify(request: wsevents.HttpRequest) -> Any:
        if parse_qs(urlsplit(request.path).query).get("token") == ["s3cret"]:
            return True
        return 401, {"WWW-Authenticate": 'Bearer realm="chat", error="invalid_token"'}

    server = await make_server({"verify_client": verify})
    url = f"ws://127.0.0.1:{server.port}/chat"
    async with wsevents.connect(url + "?room=1&token=s3cret") as client:
        assert client.ready_state == wsevents.Connection.OPEN
        assert server.connections[0].path == "/chat?room=1&token=s3cret"
    for query in ("?token=wrong", "", "?token=s3cret&token=s3cret"):
        with pytest.raises(wsevents.HandshakeError) as info:
            await wsevents.connect(url + query)
        assert info.value.status == 401
    line, head = await status_of(server.port, raw_ws, path="/chat?token=nope")
    assert line == "HTTP/1.1 401 Unauthorized"
    assert b'WWW-Authenticate: Bearer realm="chat", error="invalid_token"\r\n' in head
    assert server.stats["rejected"] == 4


async def test_a_slow_async_verify_client_does_not_hold_up_others(make_server: Any) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def verify(request: wsevents.HttpRequest) -> bool:
        if request.path == "/slow":
            started.set()
            await release.wait()
        return True

    server = await make_server({"verify_client": verify})
    slow = asyncio.ensure_future(wsevents.connect(f"ws://127.0.0.1:{server.port}/slow"))
    await asyncio.wait_for(started.wait(), 5)
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/fast") as fast:
        assert fast.ready_state == wsevents.Connection.OPEN
        assert not slow.done()
    release.set()
    conn = await asyncio.wait_for(slow, 5)
    assert conn.path == "/slow"
    await conn.close()


async def test_a_verify_client_that_raises_is_a_500_and_logged(
    make_server: Any, raw_ws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def verify(request: wsevents.HttpRequest) -> bool:
        raise RuntimeError("verifier bug")

    server = await make_server({"verify_client": verify})
    with caplog.at_level(logging.ERROR, logger="wsevents"):
        assert (await status_of(server.port, raw_ws))[0] == "HTTP/1.1 500 Internal Server Error"
    assert any(r.exc_info and "verifier bug" in str(r.exc_info[1]) for r in caplog.records)


# -- origins ---------------------------------------------------------------------------------------


async def test_origins_allow_list(make_server: Any, raw_ws: Any) -> None:
    async def status(server: wsevents.Server, origin: str | None) -> int:
        line, _ = await status_of(server.port, raw_ws, "" if origin is None else f"Origin: {origin}\r\n")
        return int(line.split()[1])

    lenient = await make_server({"origins": ["https://good.example", None]})
    assert await status(lenient, "https://good.example") == 101
    assert await status(lenient, None) == 101  # None in the list: requests without Origin are admitted
    assert await status(lenient, "https://evil.example") == 403
    assert await status(lenient, "https://good.example.evil.example") == 403
    assert lenient.stats["rejected"] == 2
    strict = await make_server({"origins": ["https://good.example"]})
    assert await status(strict, None) == 403
    assert await status(strict, "https://good.example") == 101
    with pytest.raises(wsevents.HandshakeError) as info:
        await wsevents.connect(f"ws://127.0.0.1:{strict.port}/", extra_headers={"Origin": "null"})
    assert info.value.status == 403
    anyone = await make_server()  # the default: no Origin check
    assert await status(anyone, "https://evil.example") == 101


# -- max_connections -------------------------------------------------------------------------------


async def test_max_connections_refuses_with_503_then_admits_again(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"max_connections": 2})
    url = f"ws://127.0.0.1:{server.port}/"
    first = await wsevents.connect(url)
    second = await wsevents.connect(url)
    with pytest.raises(wsevents.HandshakeError) as info:
        await wsevents.connect(url)
    assert info.value.status == 503
    assert (await status_of(server.port, raw_ws))[0] == "HTTP/1.1 503 Service Unavailable"
    assert server.stats["rejected"] == 2
    await first.close()
    await wait_until(lambda: len(server.connections) == 1)
    third = await wsevents.connect(url)  # admitted again once one has closed
    assert len(server.connections) == 2
    await asyncio.gather(second.close(), third.close())


# -- max_queue -------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["server", "client"])
@pytest.mark.parametrize(
    ("options", "count", "size", "pauses"),
    [
        ({"max_queue": 4}, 10, 10, True),
        ({}, 10, 10, False),  # the default, 64
        ({"max_buffer_length": 1000}, 3, 600, True),  # more than max_buffer_length bytes queued
    ],
)
async def test_max_queue_pauses_reading(
    make_server: Any, side: str, options: dict[str, Any], count: int, size: int, pauses: bool
) -> None:
    server = await make_server(options if side == "server" else None)
    accepted = next_connection(server)
    client = await wsevents.connect(f"ws://127.0.0.1:{server.port}/", **(options if side == "client" else {}))
    conn = await asyncio.wait_for(accepted, 5)
    receiver, sender = (conn, client) if side == "server" else (client, conn)
    messages = [f"{i:0{size}d}" for i in range(count)]
    for message in messages:
        sender.send_text(message)
    # The receiver's application reads nothing: with a full queue it stops reading the socket,
    # so a ping sent after the messages is answered only once the queue drained.
    if pauses:
        await wait_until(lambda: not is_reading(receiver))
        pong = pong_for(sender, "reading?")
    else:
        pong = pong_for(sender, "reading?")
        await asyncio.wait_for(pong, 5)  # all the messages were read before it
        assert is_reading(receiver)
    assert [await asyncio.wait_for(receiver.recv(), 5) for _ in messages] == messages
    assert await asyncio.wait_for(pong, 5) == "reading?"  # reading again once the queue drained
    assert is_reading(receiver)
    await client.close()


# -- max_write_buffer ------------------------------------------------------------------------------


async def test_write_overflow_drops_a_peer_that_never_reads(
    make_server: Any, raw_ws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server({"max_write_buffer": 256 * KiB, "compression": False})
    accepted = next_connection(server)
    await raw_ws.stalled(server.port)
    conn = await asyncio.wait_for(accepted, 5)
    shrink_send_buffer(conn)
    closed = close_event(conn)
    chunk = b"x" * (64 * KiB)
    sent = 0
    with caplog.at_level(logging.WARNING, logger="wsevents"):
        with pytest.raises(wsevents.InvalidState):  # the send that finds the buffer overfull
            for _ in range(1000):  # fire and forget: no send is awaited
                conn.send_binary(chunk)
                sent += len(chunk)
                await asyncio.sleep(0)
        assert await asyncio.wait_for(closed, 5) == OVERFLOW
    assert sent > 256 * KiB
    assert (conn.close_code, conn.close_reason) == OVERFLOW
    assert server.stats["write_overflows"] == 1
    warnings = [r for r in caplog.records if r.name == "wsevents" and r.levelno == logging.WARNING]
    assert any("max_write_buffer" in r.getMessage() for r in warnings)


async def test_the_default_max_write_buffer_tolerates_a_burst(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"compression": False})  # 64 MiB
    accepted = next_connection(server)
    await raw_ws.stalled(server.port)
    conn = await asyncio.wait_for(accepted, 5)
    shrink_send_buffer(conn)
    for _ in range(64):  # 4 MiB, fire and forget
        conn.send_binary(b"y" * (64 * KiB))
        await asyncio.sleep(0)
    assert conn.transport is not None and conn.transport.get_write_buffer_size() > 1 * MiB
    conn.send_text("one more")  # over 256 KiB waiting, but under 64 MiB: still fine
    assert conn.ready_state == wsevents.Connection.OPEN
    assert server.stats["write_overflows"] == 0


async def test_client_write_overflow(raw_server: Any, raw_ws: Any) -> None:
    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw_ws.response(key_of(await raw_ws.read_head(reader))))
        writer.transport.pause_reading()
        await asyncio.sleep(30)

    port = await raw_server(never_reads)
    client = await wsevents.connect(f"ws://127.0.0.1:{port}/", max_write_buffer=256 * KiB, compression=False)
    client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
    closed = close_event(client)
    errors: list[BaseException] = []
    client.on("error", errors.append)  # with an "error" listener the refused send is reported there
    for _ in range(1000):
        if client.ready_state != wsevents.Connection.OPEN:
            break
        client.send_binary(b"z" * (64 * KiB))
        await asyncio.sleep(0)
    assert await asyncio.wait_for(closed, 5) == OVERFLOW
    assert [type(e) for e in errors] == [wsevents.InvalidState]


async def test_awaited_sends_never_overflow(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"max_write_buffer": 256 * KiB, "compression": False})
    accepted = next_connection(server)
    reader, _, _ = await raw_ws.open(server.port)
    conn = await asyncio.wait_for(accepted, 5)
    shrink_send_buffer(conn)

    async def produce() -> None:
        for _ in range(40):  # 2.5 MiB, ten times max_write_buffer, each send awaited
            await conn.send_binary(b"w" * (64 * KiB))

    async def consume() -> int:
        total = 0
        while total < 40 * 64 * KiB:
            total += len((await raw_ws.read_frame(reader)).payload)
        return total

    await asyncio.wait_for(asyncio.gather(produce(), consume()), 20)
    assert conn.ready_state == wsevents.Connection.OPEN
    assert server.stats["write_overflows"] == 0


# -- graceful close --------------------------------------------------------------------------------


async def test_graceful_close_flushes_then_1001_and_aborts_a_peer_that_never_answers(
    make_server: Any, raw_ws: Any
) -> None:
    server = await make_server({"compression": False})
    server_closed = asyncio.Event()
    server.on("close", server_closed.set)
    client = await wsevents.connect(f"ws://127.0.0.1:{server.port}/", max_buffer_length=4 * MiB)
    client_closed = close_event(client)
    reader, _, _ = await raw_ws.open(server.port)  # reads, but never answers the close frame
    await wait_until(lambda: len(server.connections) == 2)
    big = os.urandom(2 * MiB)
    for conn in server.connections:  # sent just before the close: must arrive before the 1001
        conn.send_binary(big)
        conn.send_text("last words")
    took = await elapsed(server.close(graceful=True, timeout=0.5))
    assert 0.45 <= took < 3  # waited for the raw peer, then aborted it
    assert await client.recv() == big
    assert await client.recv() == "last words"
    assert await asyncio.wait_for(client_closed, 1) == (1001, "going away")
    assert (await raw_ws.read_frame(reader)).payload == big
    assert (await raw_ws.read_frame(reader)).payload == b"last words"
    last = await raw_ws.read_frame(reader)
    assert (last.opcode, last.payload) == (8, b"\x03\xe9going away")
    assert server_closed.is_set() and server.connections == []
    with pytest.raises(OSError):
        await wsevents.connect(f"ws://127.0.0.1:{server.port}/")  # no longer listening


async def test_graceful_close_timeout_defaults_to_close_timeout(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"close_timeout": 0.3})
    await raw_ws.open(server.port)
    await wait_until(lambda: server.connections)
    assert 0.25 <= await elapsed(server.close(graceful=True)) < 3


async def test_a_plain_close_leaves_connections_open(make_server: Any) -> None:
    server = await make_server()
    server.on("connection", lambda c: c.on("text", c.send_text))
    server_closed = asyncio.Event()
    server.on("close", server_closed.set)
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
        server.close()
        assert not server.listening
        with pytest.raises(OSError):
            await wsevents.connect(f"ws://127.0.0.1:{server.port}/")  # no new connections ...
        await client.send_text("still here")  # ... but the open one goes on
        assert await asyncio.wait_for(client.recv(), 5) == "still here"
        assert not server_closed.is_set()
    await asyncio.wait_for(server_closed.wait(), 5)  # once the last connection ended


RUN_SCRIPT = """
import sys
import wsevents

server = wsevents.create_server(lambda conn: conn.send_text("hello"))
server.listen(0, "127.0.0.1", lambda: print(server.port, flush=True))
wsevents.run()
print("run returned", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_run_closes_gracefully_on_signals(sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUN_SCRIPT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 10))
        client = await wsevents.connect(f"ws://127.0.0.1:{port}/")
        closed = close_event(client)
        assert await asyncio.wait_for(client.recv(), 5) == "hello"
        proc.send_signal(sig)
        assert await asyncio.wait_for(closed, 5) == (1001, "going away")
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == "run returned"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# -- exceptions in listeners -----------------------------------------------------------------------


def make_sync_listener(conn: wsevents.Connection, received: list[str]) -> Callable[[str], None]:
    def on_text(text: str) -> None:
        received.append(text)
        if text == "boom":
            raise RuntimeError("listener bug")
        conn.send_text(text)

    return on_text


# A coroutine listener that raises closes its connection with 1011: tests/aio/test_connection_correctness.py.
@pytest.mark.parametrize("make_listener", [make_sync_listener], ids=["sync"])
async def test_an_exception_in_a_text_listener_is_logged_and_the_next_message_delivered(
    make_server: Any, caplog: pytest.LogCaptureFixture, make_listener: Any
) -> None:
    server = await make_server()
    received: list[str] = []
    server.on("connection", lambda conn: conn.on("text", make_listener(conn, received)))
    with caplog.at_level(logging.ERROR, logger="wsevents"):
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
            await client.send_text("boom")
            await client.send_text("after")
            assert await asyncio.wait_for(client.recv(), 5) == "after"
            assert server.connections[0].ready_state == wsevents.Connection.OPEN
    assert received == ["boom", "after"]
    logged = [r for r in caplog.records if r.name == "wsevents" and r.exc_info]
    assert [(r.levelno, repr(r.exc_info[1])) for r in logged if r.exc_info] == [
        (logging.ERROR, "RuntimeError('listener bug')")
    ]


async def test_exceptions_in_connection_and_close_listeners_are_logged(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server()

    def on_connection(conn: wsevents.Connection) -> None:
        conn.on("text", conn.send_text)
        conn.on("close", lambda code, reason: 1 / 0)
        raise ValueError("connection listener bug")

    server.on("connection", on_connection)
    with caplog.at_level(logging.ERROR, logger="wsevents"):
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
            await client.send_text("echo?")
            assert await asyncio.wait_for(client.recv(), 5) == "echo?"
        await wait_until(lambda: not server.connections)
    kinds = {type(r.exc_info[1]) for r in caplog.records if r.exc_info}
    assert {ValueError, ZeroDivisionError} <= kinds
