"""Server edges that once failed silently (issue 9): close during a bind, shared waits,
admission with async hooks, broadcasts past a failing peer, ``close()`` that waits,
HEAD, and error responses to a client that is still sending."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import wsevents
from wsevents.protocol.opening import LINGER_BYTES

pytestmark = pytest.mark.timeout(30)

KiB = 1024
Until = Callable[..., Awaitable[None]]


def free_port() -> int:
    """A port nothing listens on right now (on 127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


# -- listen() then close() at once ------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_close_right_after_listen_never_listens(host: str, until: Until) -> None:
    server = wsevents.create_server()
    events: list[str] = []
    server.on("listening", lambda: events.append("listening"))
    server.on("close", lambda: events.append("close"))
    port = free_port()
    before = asyncio.all_tasks()
    server.listen(port, host)
    server.close()
    started = asyncio.all_tasks() - before  # the bind, whatever shape it takes
    await asyncio.wait_for(server, 5)  # "close", once the bind that was called off has settled
    await until(lambda: all(task.done() for task in started))
    assert events == ["close"]
    assert not server.listening
    assert await refused(port)
    # The server can listen again afterwards.
    await asyncio.wait_for(server.listen(0, "127.0.0.1"), 5)
    assert server.listening
    await asyncio.wait_for(server.close(), 5)


@pytest.mark.parametrize("ticks", [1, 2, 3])
async def test_close_while_the_bind_starts_serving(
    ticks: int, caplog: pytest.LogCaptureFixture, until: Until
) -> None:
    """close() at each step of the bind task (asyncio owns the socket once it serves it)."""
    server = wsevents.create_server()
    before = asyncio.all_tasks()
    server.listen(0, "127.0.0.1")
    port = server.port
    assert port
    started = asyncio.all_tasks() - before
    for _ in range(ticks):
        await asyncio.sleep(0)
    server.close()
    await asyncio.wait_for(server, 5)
    await until(lambda: all(task.done() for task in started))
    assert not server.listening
    assert await refused(port)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_listen_on_an_ip_literal_binds_before_it_returns() -> None:
    server = wsevents.create_server()
    server.listen(0, "127.0.0.1")
    assert server.port  # known at once, as after Node's listen() on an address
    # The kernel queues a connection before asyncio serves the socket.
    client = wsevents.connect(f"ws://127.0.0.1:{server.port}/")
    await asyncio.wait_for(client, 5)
    await asyncio.wait_for(client.close(1000), 5)
    await asyncio.wait_for(server.close(), 5)


async def test_a_client_made_right_after_listen_on_a_host_name_waits_for_the_bind() -> None:
    server = wsevents.create_server()
    port = free_port()
    server.listen(port, "localhost")
    client = wsevents.connect(f"ws://localhost:{port}/")
    await asyncio.wait_for(client, 5)
    await asyncio.wait_for(client.close(1000), 5)
    await asyncio.wait_for(server.close(), 5)


async def test_a_failed_listen_nobody_handles_is_logged_outside_run(
    caplog: pytest.LogCaptureFixture, until: Until
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = wsevents.create_server()
        server.listen(busy.getsockname()[1], "127.0.0.1")  # neither awaited nor an "error" listener

        def reported() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.levelno == logging.ERROR and "listen(" in r.getMessage()]

        await until(reported)
    (record,) = reported()
    assert "address already in use" in record.getMessage()
    assert "nobody listens" in record.getMessage()
    assert not server.listening


# -- shared waits --------------------------------------------------------------------------------


async def test_a_timed_out_close_wait_does_not_cancel_the_wait_of_others(make_server: Any) -> None:
    server = await make_server()
    client = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{server.port}/"), 5)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(server.close(), 0.05)  # the client keeps it open
    later = asyncio.ensure_future(asyncio.wait_for(server, 5))
    await asyncio.wait_for(client.close(1000), 5)
    assert await later is server  # not CancelledError


# -- max_connections with async hooks -------------------------------------------------------------


@pytest.mark.parametrize("hook", ["verify_client", "select_protocol"])
async def test_max_connections_counts_handshakes_pending_in_an_async_hook(
    make_server: Any, hook: str
) -> None:
    async def verify(request: Any) -> bool:
        await asyncio.sleep(0.1)
        return True

    async def select(conn: Any, protocols: list[str]) -> str:
        await asyncio.sleep(0.1)
        return protocols[0]

    options: dict[str, Any] = {"max_connections": 1, hook: verify if hook == "verify_client" else select}
    server = await make_server(options)
    url = f"ws://127.0.0.1:{server.port}/"
    protocols = ["chat"] if hook == "select_protocol" else []
    clients = [wsevents.connect(url, protocols=protocols) for _ in range(5)]
    results = await asyncio.wait_for(asyncio.gather(*clients, return_exceptions=True), 10)
    opened = [r for r in results if isinstance(r, wsevents.Connection)]
    refusals = [r for r in results if isinstance(r, wsevents.HandshakeError)]
    assert len(opened) == 1, results
    assert len(refusals) == 4, results
    assert {r.status for r in refusals} == {503}  # as documented for max_connections
    assert len(server.connections) == 1
    await asyncio.wait_for(opened[0].close(1000), 5)
    # The slot is free again once it closed.
    again = await asyncio.wait_for(wsevents.connect(url, protocols=protocols), 5)
    await asyncio.wait_for(again.close(1000), 5)


# -- broadcast past a failing peer --------------------------------------------------------------


async def test_broadcast_reaches_every_peer_when_a_compressing_peer_overflows(
    make_server: Any, until: Until
) -> None:
    server = await make_server({"compression": True, "max_write_buffer": 64 * KiB})
    url = f"ws://127.0.0.1:{server.port}/"
    # First in the connection set, so that the broadcast meets it before the others.
    stalled = await asyncio.wait_for(wsevents.connect(url, compression=True), 5)
    await until(lambda: len(server.connections) == 1)
    stalled_side = server.connections[0]
    assert stalled_side.deflate is not None
    stalled_side.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
    assert stalled.transport is not None
    stalled.transport.pause_reading()
    closes: list[int] = []
    stalled_side.on("close", lambda code, reason: closes.append(code))
    readers = [await asyncio.wait_for(wsevents.connect(url, compression=False), 5) for _ in range(2)]
    await until(lambda: len(server.connections) == 3)
    received: list[list[bytes]] = [[], []]
    for i, reader in enumerate(readers):
        reader.on("binary", lambda stream, i=i: asyncio.ensure_future(_collect(stream, received[i])))
    messages = [os.urandom(32 * KiB) for _ in range(40)]  # incompressible: 1.3 MB to the stalled peer
    for message in messages:
        server.broadcast(message)  # never raises for one peer's fault
        await asyncio.sleep(0)
    await until(lambda: closes == [1008])
    await until(lambda: all(len(got) == len(messages) for got in received), 10)
    assert received == [messages, messages]
    assert server.stats["write_overflows"] == 1
    for reader in readers:
        await asyncio.wait_for(reader.close(1000), 5)


async def _collect(stream: wsevents.InStream, into: list[bytes]) -> None:
    into.append(await stream.read())


# -- close() that waits for connections -----------------------------------------------------------


async def test_close_says_which_connections_keep_it_open(
    make_server: Any, caplog: pytest.LogCaptureFixture, until: Until
) -> None:
    server = await make_server(close_timeout=0.2)
    client = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{server.port}/"), 5)
    await until(lambda: len(server.connections) == 1)
    caplog.set_level(logging.INFO, logger="wsevents")
    closing = server.close()

    def reported() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "server.close() waits" in r.getMessage()]

    await until(reported)
    (record,) = reported()
    assert record.levelno == logging.INFO
    assert "1 connection" in record.getMessage()
    assert "graceful=True" in record.getMessage()
    assert str(client.transport.get_extra_info("sockname")) in record.getMessage()  # type: ignore[union-attr]
    await asyncio.wait_for(client.close(1000), 5)
    await asyncio.wait_for(closing, 5)


async def test_close_with_nothing_open_logs_nothing(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(close_timeout=0.05)
    caplog.set_level(logging.INFO, logger="wsevents")
    await asyncio.wait_for(server.close(), 5)
    assert server._lingering is None
    assert not [r for r in caplog.records if "server.close() waits" in r.getMessage()]


# -- HTTP: HEAD, and error responses to a client still sending --------------------------------------


async def _exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a plain TCP connection; everything read until the server's EOF."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(request)
        await asyncio.wait_for(writer.drain(), 5)
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_head_gets_the_get_head_without_the_body(make_server: Any, asynchronous: bool) -> None:
    body = b"<h1>hello</h1>\n"

    def page(request: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/html"}, body

    async def page_async(request: Any) -> tuple[int, dict[str, str], bytes]:
        return page(request)

    server = await make_server(http_handler=page_async if asynchronous else page)
    get = await _exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await _exchange(server.port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert get.endswith(b"\r\n\r\n" + body)
    assert head == get[: -len(body)]
    assert f"Content-Length: {len(body)}\r\n".encode() in head


async def test_head_that_falls_through_gets_426_without_a_body(make_server: Any) -> None:
    server = await make_server(http_handler=lambda request: None)
    head = await _exchange(server.port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 426 ")
    assert head.endswith(b"\r\n\r\n")
    assert b"Content-Length: " in head and b"Content-Length: 0\r\n" not in head


async def test_431_reaches_a_client_that_sent_200_kb_of_headers(make_server: Any) -> None:
    server = await make_server()
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 990) for i in range(210))
    request = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n" + filler + b"\r\n"
    assert len(request) > 200 * KiB
    response = await _exchange(server.port, request)
    assert response.startswith(b"HTTP/1.1 431 "), response[:100]


async def test_403_reaches_a_client_still_sending_after_an_async_refusal(make_server: Any) -> None:
    async def verify(request: Any) -> bool:
        await asyncio.sleep(0.05)
        return False

    server = await make_server(verify_client=verify)
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.port), 5)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    writer.write(os.urandom(256 * KiB))  # e.g. frames sent optimistically before the answer
    await asyncio.wait_for(writer.drain(), 5)
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert response.startswith(b"HTTP/1.1 403 ")


async def test_the_lingering_close_is_bounded_in_size(make_server: Any) -> None:
    server = await make_server()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.port), 5)
    writer.write(b"NOT HTTP\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), 5)
    assert response.startswith(b"HTTP/1.1 400 ")
    chunk = b"z" * (64 * KiB)
    with pytest.raises(ConnectionError):
        for _ in range(4 * LINGER_BYTES // len(chunk)):
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 5)
    writer.close()
    await asyncio.wait_for(server.close(), 5)  # its last connection has ended


async def test_the_lingering_close_is_bounded_in_time(make_server: Any) -> None:
    server = await make_server(close_timeout=0.2)
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.port), 5)
    writer.write(b"NOT HTTP\r\n\r\n")
    response = await asyncio.wait_for(
        reader.read(), 5
    )  # the response, then EOF: the server shut down writing
    assert response.startswith(b"HTTP/1.1 400 ")
    # The client neither sends more nor closes: the server closes after close_timeout.
    await asyncio.wait_for(server.close(), 5)
    writer.close()
