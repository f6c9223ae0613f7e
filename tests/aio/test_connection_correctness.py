"""Connection edge cases that used to hang, leak or vanish (issue 9).

Coroutine listeners that raise, concurrent ``recv()``, ``recv()`` next to
message listeners, the ``"message"`` event, messages nobody listens for,
cancelled close waits, memory per pending send, sends before the handshake,
and exceptions inside asyncio callbacks and timers.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import socket
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import wsevents
from helpers import wait_until
from wsevents import ConcurrencyError, Connection, ConnectionClosed, HandshakeError, InvalidState
from wsevents.aio import receiving

pytestmark = pytest.mark.timeout(30)

Pair = tuple[wsevents.Server, Connection, Connection]


@pytest.fixture
async def pair(make_server: Any, ws_connect: Any, url_for: Any) -> Pair:
    """``(server, server_conn, client)`` with no message listeners on either side."""
    server = await make_server(close_timeout=1)
    accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", lambda c: accepted.done() or accepted.set_result(c))
    client = await ws_connect(url_for(server), close_timeout=1)
    return server, await asyncio.wait_for(accepted, 5), client


def closes(conn: Connection) -> asyncio.Future[tuple[int, str]]:
    """A future for the ``(code, reason)`` of ``conn``'s ``"close"``."""
    fut: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    conn.on("close", lambda code, reason: fut.done() or fut.set_result((code, reason)))
    return fut


def logged_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsevents" and r.levelno >= logging.ERROR]


async def waiting_recv(conn: Connection, until: Callable[..., Awaitable[None]]) -> asyncio.Task[Any]:
    """A task blocked in ``conn.recv()`` (its waiter is installed when this returns)."""
    task = asyncio.ensure_future(conn.recv())
    await until(lambda: conn._recv_waiter is not None)
    return task


# -- bug 4: a coroutine listener that raises -------------------------------------------------------


async def test_async_connection_handler_that_raises_closes_with_1011_and_logs_once(
    make_server: Any, ws_connect: Any, url_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(close_timeout=1)

    @server.on("connection")
    async def handler(conn: Connection) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("handler bug")

    with caplog.at_level(logging.ERROR, logger="wsevents"):
        client = await ws_connect(url_for(server))
        closed = closes(client)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(client.recv(), 5)
        assert info.value.code == 1011
        assert await asyncio.wait_for(closed, 5) == (1011, "internal error")
    records = logged_errors(caplog)
    assert len(records) == 1
    assert records[0].exc_info is not None and repr(records[0].exc_info[1]) == "RuntimeError('handler bug')"


async def test_async_text_listener_that_raises_closes_with_1011(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    _server, server_conn, client = pair
    server_closed = closes(server_conn)

    @server_conn.on("text")
    async def on_text(text: str) -> None:
        raise ValueError(f"cannot handle {text}")

    with caplog.at_level(logging.ERROR, logger="wsevents"):
        client.send_text("this")
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(client.recv(), 5)
    assert info.value.code == 1011
    # The server initiated the close; the client echoed 1011.
    assert (await asyncio.wait_for(server_closed, 5))[0] == 1011
    assert [repr(r.exc_info[1]) for r in logged_errors(caplog) if r.exc_info] == [
        "ValueError('cannot handle this')"
    ]


async def test_async_handler_reading_past_a_close_is_not_an_error(
    make_server: Any, ws_connect: Any, url_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(close_timeout=1)
    ended: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    @server.on("connection")
    async def handler(conn: Connection) -> None:
        try:
            await conn.recv()
        except ConnectionClosed as exc:
            ended.set_result(exc)
            raise

    with caplog.at_level(logging.ERROR, logger="wsevents"):
        client = await ws_connect(url_for(server))
        client.transport.abort()  # the handler's recv() ends with 1006 and re-raises
        await asyncio.wait_for(ended, 5)
        for _ in range(5):  # the task's done-callback runs on a later iteration
            await asyncio.sleep(0)
    assert logged_errors(caplog) == []


# -- bug 6: two concurrent recv() -------------------------------------------------------------------


async def test_second_concurrent_recv_raises_at_once_and_the_first_still_gets_its_message(
    pair: Pair, until: Any
) -> None:
    _server, server_conn, client = pair
    first = await waiting_recv(client, until)
    with pytest.raises(ConcurrencyError, match="already waiting in recv"):
        await client.recv()
    server_conn.send_text("for the first")
    assert await asyncio.wait_for(first, 5) == "for the first"


async def test_concurrent_async_for_is_refused_and_the_first_reader_ends_at_close(
    pair: Pair, until: Any
) -> None:
    _server, server_conn, client = pair

    async def read_all() -> list[str | bytes]:
        return [message async for message in client]

    first = asyncio.ensure_future(read_all())
    await until(lambda: client._recv_waiter is not None)
    with pytest.raises(ConcurrencyError):
        await read_all()
    server_conn.send_text("one")
    await asyncio.wait_for(server_conn.close(1000), 5)
    assert await asyncio.wait_for(first, 5) == ["one"]


async def test_recv_after_a_cancelled_recv_works(pair: Pair, until: Any) -> None:
    _server, server_conn, client = pair
    first = await waiting_recv(client, until)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    server_conn.send_binary(b"kept")
    assert await asyncio.wait_for(client.recv(), 5) == b"kept"


# -- bug 14: recv() next to message listeners ---------------------------------------------------------


@pytest.mark.parametrize("event", ["text", "binary", "message"])
async def test_recv_with_a_message_listener_raises_at_once(pair: Pair, event: str) -> None:
    _server, _server_conn, client = pair
    client.on(event, lambda message: None)
    with pytest.raises(InvalidState, match=f"while a '{event}' listener is attached"):
        await asyncio.wait_for(client.recv(), 5)


async def test_a_waiting_recv_fails_when_a_message_listener_is_added(pair: Pair, until: Any) -> None:
    _server, _server_conn, client = pair
    waiting = await waiting_recv(client, until)
    client.on("text", lambda text: None)
    with pytest.raises(InvalidState, match="'text' listener"):
        await asyncio.wait_for(waiting, 5)


async def test_a_listener_added_after_the_queue_filled_gets_the_next_messages(pair: Pair, until: Any) -> None:
    _server, server_conn, client = pair
    for i in range(70):  # over max_queue (64): reading from the socket stops
        client.send_text(f"queued {i}")
    await until(lambda: len(server_conn._queue or ()) >= 64 and not server_conn.transport.is_reading())
    texts: list[str] = []
    server_conn.on("text", texts.append)
    client.send_text("to the listener")
    await until(lambda: texts and texts[-1] == "to the listener")


# -- the "message" event ------------------------------------------------------------------------------


async def test_message_listener_gets_str_and_whole_bytes_in_order(pair: Pair, until: Any) -> None:
    _server, server_conn, client = pair
    got: list[str | bytes] = []
    server_conn.on("message", got.append)
    client.send_text("one")
    out = client.begin_binary()
    out.write(b"a" * 70_000)
    out.end(b"b")
    client.send_binary(b"three")
    await until(lambda: len(got) == 3)
    assert got == ["one", b"a" * 70_000 + b"b", b"three"]


async def test_message_listener_binary_is_bounded_by_max_buffer_length(
    make_server: Any, ws_connect: Any, url_for: Any
) -> None:
    server = await make_server(max_buffer_length=1024, close_timeout=1)
    got: list[str | bytes] = []
    server.on("connection", lambda conn: conn.on("message", got.append))
    client = await ws_connect(url_for(server))
    client.send_binary(b"x" * 1024)
    client.send_binary(b"x" * 1025)
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(client.recv(), 5)
    assert info.value.code == 1009
    assert got == [b"x" * 1024]


async def test_binary_and_message_listeners_both_get_the_message(pair: Pair, until: Any) -> None:
    _server, server_conn, client = pair
    whole: list[str | bytes] = []
    streamed: list[bytes] = []

    @server_conn.on("binary")
    def on_binary(stream: wsevents.InStream) -> None:
        stream.on("data", streamed.append)

    server_conn.on("message", whole.append)
    payload = bytes(range(256)) * 1000
    client.send_binary(payload)
    client.send_text("and text")
    await until(lambda: len(whole) == 2)
    assert whole == [payload, "and text"]
    assert b"".join(streamed) == payload


# -- bug 13: a message kind nobody listens for --------------------------------------------------------


async def test_text_only_listener_does_not_stall_on_binary_messages(
    pair: Pair, until: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _server, server_conn, client = pair
    texts: list[str] = []
    server_conn.on("text", texts.append)
    server_closed = closes(server_conn)
    with caplog.at_level(logging.WARNING, logger="wsevents"):
        for i in range(200):  # far over max_queue (64)
            client.send_binary(b"%d" % i)
        client.send_text("after the binaries")
        await until(lambda: texts == ["after the binaries"])
        await asyncio.wait_for(client.close(1000), 5)
    assert await asyncio.wait_for(server_closed, 5) == (1000, "")
    assert not server_conn._queue or list(server_conn._queue) == [receiving._END]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "binary messages are dropped" in warnings[0] and "'message' listener" in warnings[0]


async def test_binary_only_listener_drops_text_with_one_warning(
    pair: Pair, until: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _server, server_conn, client = pair
    streams: list[wsevents.InStream] = []
    server_conn.on("binary", streams.append)
    with caplog.at_level(logging.WARNING, logger="wsevents"):
        for _ in range(100):
            client.send_text("nobody reads this")
        client.send_binary(b"!")
        await until(lambda: streams)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "text messages are dropped" in warnings[0]
    assert server_conn.ready_state == Connection.OPEN


# -- bug 7: a timed-out close() wait -----------------------------------------------------------------


async def test_timed_out_close_wait_does_not_cancel_wait_closed(raw_server: Any, raw_ws: Any) -> None:
    async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await raw_ws.read_head(reader)
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(raw_ws.response(key))
        await reader.read()  # never answers the close frame

    port = await raw_server(silent_peer)
    client = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.5), 5)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.close(1000), 0.05)
    assert client.ready_state == Connection.CLOSING
    await asyncio.wait_for(client.wait_closed(), 5)  # not CancelledError
    assert client.ready_state == Connection.CLOSED
    await asyncio.wait_for(client.close(), 1)  # and close() again just returns


# -- bug 11: memory per pending send -----------------------------------------------------------------


async def paused_sender(server_conn: Connection, client: Connection) -> None:
    """Make ``server_conn``'s writing paused: the client stops reading and the server fills the socket."""
    assert client.transport is not None
    client.transport.pause_reading()
    server_conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    chunk = os.urandom(256 * 1024)  # random: compression must not shrink it
    for _ in range(64):
        if not server_conn.send_binary(chunk).done():
            return
        await asyncio.sleep(0)
    raise AssertionError("writing never paused")


async def test_pending_sends_share_one_waiter_and_complete_in_order(pair: Pair) -> None:
    _server, server_conn, client = pair
    await paused_sender(server_conn, client)
    sends = 20_000
    order: list[int] = []
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        results = [server_conn.send_binary(b"x") for _ in range(sends)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # What Connection allocates itself (in any of the modules its methods come from), not the
    # transport's own buffering (uvloop's is attributed to the line that calls transport.write).
    modules = {inspect.getfile(k) for k in Connection.__mro__ if k.__module__.startswith("wsevents.aio")}
    assert inspect.getfile(Connection.send_binary) in modules
    source, first = inspect.getsourcelines(Connection._write_now)  # the one caller of transport.write
    write_file = inspect.getfile(Connection._write_now)
    here = [tracemalloc.Filter(True, module) for module in sorted(modules)] + [
        tracemalloc.Filter(False, write_file, lineno) for lineno in range(first, first + len(source))
    ]
    diff = after.filter_traces(here).compare_to(before.filter_traces(here), "filename")
    grown = sum(stat.size_diff for stat in diff)
    # One future per send would be some 100 bytes each (about 2 MB here); one per drain is a few hundred.
    assert grown < 20_000, grown
    assert len({id(r) for r in results}) == 1
    for i in range(5):
        server_conn.send_binary(b"y", lambda error, i=i: order.append(i) if error is None else None)
    assert client.transport is not None
    client.transport.resume_reading()
    await asyncio.wait_for(asyncio.gather(*results[:3]), 10)
    assert all(r.done() for r in results)
    assert order == [0, 1, 2, 3, 4]


async def test_a_timed_out_send_wait_does_not_cancel_the_others(pair: Pair) -> None:
    _server, server_conn, client = pair
    await paused_sender(server_conn, client)
    first = server_conn.send_binary(b"a")
    second = server_conn.send_binary(b"b")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(first, 0.01)
    assert client.transport is not None
    client.transport.resume_reading()
    await asyncio.wait_for(second, 10)


async def test_pending_sends_fail_with_connection_closed_when_the_connection_drops(pair: Pair) -> None:
    _server, server_conn, client = pair
    await paused_sender(server_conn, client)
    errors: list[BaseException | None] = []
    pending = server_conn.send_binary(b"z", errors.append)
    assert server_conn.transport is not None
    server_conn.transport.abort()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(pending, 5)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionClosed)


# -- a send before the handshake ---------------------------------------------------------------------


async def test_send_before_open_says_what_to_do(echo_url: str) -> None:
    conn = wsevents.connect(echo_url)
    try:
        with pytest.raises(InvalidState, match=r"await connect\(\).*'connect' listener"):
            conn.send_text("too early")
    finally:
        await asyncio.wait_for(conn, 5)
        await asyncio.wait_for(conn.close(), 5)


# -- bug 15: exceptions inside asyncio callbacks and timers -----------------------------------------


def boom(*args: Any) -> None:
    raise RuntimeError("injected failure")


class FaultyCore:
    """Stands in for a connection's core (which has slots) and fails in one method."""

    def __init__(self, core: Any, method: str) -> None:
        self._core = core
        self._method = method

    def __getattr__(self, name: str) -> Any:
        return boom if name == self._method else getattr(self._core, name)


def inject(conn: Connection, method: str) -> None:
    assert conn._core is not None
    conn._core = FaultyCore(conn._core, method)  # type: ignore[assignment]


async def test_failure_in_data_received_closes_with_1011_and_emits_error(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _server, server_conn, client = pair
    errors: list[BaseException] = []
    server_conn.on("error", errors.append)
    inject(server_conn, "receive_data")
    with caplog.at_level(logging.ERROR, logger="wsevents"):
        client.send_text("trigger")
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(client.recv(), 5)
    assert info.value.code == 1011
    assert [str(e) for e in errors] == ["injected failure"]
    assert any("data_received" in r.getMessage() for r in logged_errors(caplog))


async def test_failure_in_a_keepalive_timer_closes_with_1011(
    make_server: Any, ws_connect: Any, url_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await make_server(ping_interval=0.05, close_timeout=1)
    accepted: list[Connection] = []
    server.on("connection", accepted.append)
    client = await ws_connect(url_for(server))
    assert accepted and accepted[0]._core is not None
    inject(accepted[0], "send_ping")
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(client.recv(), 5)
    assert info.value.code == 1011


async def test_failure_in_connection_made_fails_the_connect_at_once(
    make_server: Any, url_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await make_server()
    # The upgrade request is built in connection_made (by the ClientHandshake).
    monkeypatch.setattr("wsevents.protocol.opening.build_request", boom)
    conn = wsevents.connect(url_for(server), handshake_timeout=30)
    with pytest.raises(HandshakeError, match="injected failure") as info:
        await asyncio.wait_for(conn, 5)  # not after handshake_timeout
    assert isinstance(info.value.__cause__, RuntimeError)
    await asyncio.wait_for(conn.wait_closed(), 5)


async def test_failure_in_connection_lost_still_ends_the_connection(
    pair: Pair, until: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _server, server_conn, client = pair
    reading = asyncio.ensure_future(client.recv())
    await until(lambda: client._recv_waiter is not None)
    closed = closes(client)
    # connection_lost aborts the stream being sent: make that step fail.
    monkeypatch.setattr(client.begin_binary(), "_abort", boom)
    with caplog.at_level(logging.ERROR, logger="wsevents"):
        assert server_conn.transport is not None
        server_conn.transport.abort()
        assert (await asyncio.wait_for(closed, 5))[0] == 1006
    await asyncio.wait_for(client.wait_closed(), 5)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(reading, 5)
    assert any("connection_lost" in r.getMessage() for r in logged_errors(caplog))


async def test_messages_before_a_violation_reach_async_for_then_it_raises_1002(
    make_server: Any, raw_ws: Any
) -> None:
    """RFC 6455 7.1.7, as README's Conformance section says: the message parsed before a protocol
    violation is delivered to the reader, the connection fails at once, and the reader then sees 1002.
    """
    received: list[str | bytes] = []
    ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(conn: wsevents.Connection) -> None:
        try:
            async for message in conn:
                received.append(message)
        except wsevents.ConnectionClosed as closed:
            ended.set_result(closed.code)
        else:
            ended.set_result(-1)

    server = await make_server()
    server.on("connection", handler)
    reader, writer, _ = await raw_ws.open(server.port)
    # A whole text message and a frame with a reserved bit set, in one write (one read at the server).
    violation = bytearray(raw_ws.frame(0x1, b"after"))
    violation[0] |= 0x40
    writer.write(raw_ws.frame(0x1, b"Hello, world!") + bytes(violation))
    close = await raw_ws.read_frame(reader)
    assert close.opcode == 0x8 and close.payload[:2] == (1002).to_bytes(2, "big")
    assert await asyncio.wait_for(ended, 5) == 1002
    assert received == ["Hello, world!"]


async def test_a_full_queue_nobody_reads_logs_a_warning_naming_the_connection(
    make_pair: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No listener and no recv(): once the queue is full reading stops; that must not be silent."""
    caplog.set_level(logging.WARNING, logger="wsevents")
    _, server_conn, client = await make_pair({"max_queue": 4})
    for i in range(10):
        client.send_text(f"m{i}")

    def stall_warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "recv() that was never called" in r.getMessage()]

    await wait_until(lambda: stall_warnings(), timeout=5)
    (record,) = stall_warnings()
    assert repr(server_conn) in record.getMessage() and "'message' listener" in record.getMessage()
    # Reading them ends the stall, and every message is there, in order.
    assert [await asyncio.wait_for(server_conn.recv(), 5) for _ in range(10)] == [f"m{i}" for i in range(10)]


async def test_a_reader_that_is_merely_slow_gets_no_queue_warning(
    make_pair: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wsevents")
    _, server_conn, client = await make_pair({"max_queue": 4})
    assert await asyncio.wait_for(asyncio.gather(client.send_text("first"), server_conn.recv()), 5)
    for i in range(10):
        client.send_text(f"m{i}")
    await wait_until(lambda: "queue" in server_conn._pause_reasons, timeout=5)
    # The probe: no warning was armed, since this connection's application does call recv().
    assert server_conn._queue_stall_timer is None
    assert [await asyncio.wait_for(server_conn.recv(), 5) for _ in range(10)] == [f"m{i}" for i in range(10)]
