"""The module functions: create_server / connect option forms, URL checks, module defaults, ``__all__``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import wsevents
from helpers import wait_until

# -- helpers -------------------------------------------------------------------


async def _closed_with(conn: wsevents.Connection) -> tuple[int, str]:
    """Wait until ``conn`` is CLOSED; the (code, reason) of its "close" event."""
    got: list[tuple[int, str]] = []
    conn.on("close", lambda code, reason: got.append((code, reason)))
    await asyncio.wait_for(conn.wait_closed(), 5)
    await asyncio.sleep(0)
    assert len(got) == 1
    return got[0]


async def _binary_roundtrip(conn: wsevents.Connection, size: int) -> object:
    """Send ``size`` bytes; the echoed message, or the ``ConnectionClosed`` that ended it."""
    conn.send_binary(b"x" * size)
    try:
        return await asyncio.wait_for(conn.recv(), 5)
    except wsevents.ConnectionClosed as exc:
        return exc


# -- create_server option forms --------------------------------------------------


async def test_create_server_dict_options(make_server, echo_handler, ws_connect, url_for):
    server = await make_server({"max_buffer_length": 1000})
    server.on("connection", echo_handler)
    conn = await ws_connect(url_for(server))
    assert await _binary_roundtrip(conn, 1000) == b"x" * 1000
    result = await _binary_roundtrip(conn, 1001)
    assert isinstance(result, wsevents.ConnectionClosed)
    assert result.code == 1009


async def test_create_server_keyword_options(make_server, echo_handler, ws_connect, url_for):
    server = await make_server(max_buffer_length=1000)
    server.on("connection", echo_handler)
    conn = await ws_connect(url_for(server))
    result = await _binary_roundtrip(conn, 1001)
    assert isinstance(result, wsevents.ConnectionClosed)
    assert result.code == 1009


async def test_create_server_dict_and_keywords_keywords_win(make_server, echo_handler, ws_connect, url_for):
    server = await make_server(
        {"max_buffer_length": 10_000_000, "valid_protocols": ["chat"]}, max_buffer_length=1000
    )
    server.on("connection", echo_handler)
    conn = await ws_connect(url_for(server), protocols=["chat"])
    assert conn.protocol == "chat"  # the dict's other options still apply
    result = await _binary_roundtrip(conn, 1001)
    assert isinstance(result, wsevents.ConnectionClosed)
    assert result.code == 1009


async def test_create_server_callable_first_is_connection_listener(ws_connect, url_for):
    seen: list[wsevents.Connection] = []
    server = wsevents.create_server(seen.append)
    assert server.listeners("connection") == [seen.append]
    await asyncio.wait_for(server.listen(0, "127.0.0.1"), 5)
    try:
        await ws_connect(url_for(server))
        await wait_until(lambda: seen)
        assert len(seen) == 1
        assert isinstance(seen[0], wsevents.Connection)
        assert seen[0].server is server
    finally:
        for c in server.connections:
            c.close()
        await asyncio.wait_for(server.close(), 5)


async def test_create_server_callback_after_options(ws_connect, url_for):
    seen: list[wsevents.Connection] = []
    server = wsevents.create_server({"valid_protocols": ["p"]}, seen.append)
    server2 = wsevents.create_server(seen.append, valid_protocols=["p"])
    for s in (server, server2):
        assert s.listeners("connection") == [seen.append]
        await asyncio.wait_for(s.listen(0, "127.0.0.1"), 5)
    try:
        for s in (server, server2):
            conn = await ws_connect(url_for(s), protocols=["p"])
            assert conn.protocol == "p"
        await wait_until(lambda: len(seen) == 2)
    finally:
        for s in (server, server2):
            for c in s.connections:
                c.close()
            await asyncio.wait_for(s.close(), 5)


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        ((), {"bogus_option": 1}, "bogus_option"),
        (({"not_an_option": 1},), {}, "not_an_option"),
        (({"valid_protocols": ["a"]},), {"typo_protocols": ["a"]}, "typo_protocols"),
    ],
)
def test_create_server_unknown_option_names_it(args: tuple[Any, ...], kwargs: dict[str, Any], name: str):
    with pytest.raises(TypeError, match=name):
        wsevents.create_server(*args, **kwargs)


# -- connect option forms -----------------------------------------------------------


@pytest.fixture
async def proto_server(make_server):
    """A server accepting subprotocols a, b and c (picks the client's most preferred)."""
    return await make_server(valid_protocols=["a", "b", "c"])


async def test_connect_dict_options(proto_server, ws_connect, url_for):
    conn = await ws_connect(url_for(proto_server), {"protocols": ["b"]})
    assert conn.protocol == "b"


async def test_connect_keyword_options(proto_server, ws_connect, url_for):
    conn = await ws_connect(url_for(proto_server), protocols=["c"])
    assert conn.protocol == "c"


async def test_connect_dict_and_keywords_keywords_win(proto_server, url_for):
    headers: list[Any] = []
    proto_server.on("connection", lambda c: headers.append(c.headers))
    conn = wsevents.connect(
        url_for(proto_server), {"protocols": ["a"], "extra_headers": {"X-From-Dict": "1"}}, protocols=["b"]
    )
    try:
        await asyncio.wait_for(conn, 5)
        assert conn.protocol == "b"
        await wait_until(lambda: headers)
        assert headers[0]["x-from-dict"] == "1"
    finally:
        await asyncio.wait_for(conn.close(), 5)


async def test_connect_callable_first_is_connect_listener(echo_url):
    calls: list[tuple[Any, ...]] = []

    def on_connect(*args: Any) -> None:
        calls.append(args)

    conn = wsevents.connect(echo_url, on_connect)
    assert conn.listeners("connect") == [on_connect]
    try:
        await wait_until(lambda: calls)
        assert calls == [()]
        assert conn.ready_state == wsevents.Connection.OPEN
    finally:
        await asyncio.wait_for(conn.close(), 5)


async def test_connect_callback_after_options(echo_url):
    calls: list[str] = []
    conn1 = wsevents.connect(echo_url, {"protocols": []}, lambda: calls.append("dict"))
    conn2 = wsevents.connect(echo_url, lambda: calls.append("kw"), close_timeout=1)
    try:
        await wait_until(lambda: len(calls) == 2)
        assert sorted(calls) == ["dict", "kw"]
    finally:
        await asyncio.wait_for(asyncio.gather(conn1.close(), conn2.close()), 5)


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        ((), {"bogus_option": 1}, "bogus_option"),
        (({"valid_protocols": ["x"]},), {}, "valid_protocols"),  # a server option, not a client one
    ],
)
def test_connect_unknown_option_names_it(args: tuple[Any, ...], kwargs: dict[str, Any], name: str):
    with pytest.raises(TypeError, match=name):
        wsevents.connect("ws://127.0.0.1:9/", *args, **kwargs)


async def test_await_connect_returns_the_open_connection(echo_url):
    pending = wsevents.connect(echo_url)
    conn = await asyncio.wait_for(pending, 5)
    try:
        assert conn is pending
        assert isinstance(conn, wsevents.Connection)
        assert conn.ready_state == wsevents.Connection.OPEN
        conn.send_text("hello")
        assert await asyncio.wait_for(conn.recv(), 5) == "hello"
    finally:
        await asyncio.wait_for(conn.close(), 5)


async def test_async_with_connect_closes_with_1000(echo_server, echo_url):
    server_side: list[wsevents.Connection] = []
    echo_server.on("connection", server_side.append)
    async with wsevents.connect(echo_url) as conn:
        assert conn.ready_state == wsevents.Connection.OPEN
        conn.send_text("ping")
        assert await asyncio.wait_for(conn.recv(), 5) == "ping"
        await wait_until(lambda: server_side)
        closed = asyncio.ensure_future(_closed_with(server_side[0]))
        await asyncio.sleep(0)
    assert conn.ready_state == wsevents.Connection.CLOSED
    assert await asyncio.wait_for(closed, 5) == (1000, "")
    assert conn.close_code == 1000


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "https://127.0.0.1/",
        "127.0.0.1:80/",
        "ws://",
        "ws:///path",
        "ws://127.0.0.1:notaport/",
        "ws://127.0.0.1:99999/",
        "ws://127.0.0.1:-1/",
        "ws://127.0.0.1/chat#room",
        "ws://127.0.0.1/chat#",
    ],
)
def test_connect_rejects_bad_urls(url: str):
    with pytest.raises(ValueError):
        wsevents.connect(url)


# -- module defaults ----------------------------------------------------------------


async def test_set_max_buffer_length_applies_to_new_connections(
    make_server, echo_handler, ws_connect, url_for
):
    # A connection made before the change keeps the old (2 MiB) bound.
    server = await make_server()
    server.on("connection", echo_handler)
    old = await ws_connect(url_for(server))
    wsevents.set_max_buffer_length(1000)
    assert await _binary_roundtrip(old, 5000) == b"x" * 5000
    # A server and connection made afterwards use the new default.
    server2 = await make_server()
    server2.on("connection", echo_handler)
    new = await ws_connect(url_for(server2))
    assert await _binary_roundtrip(new, 1000) == b"x" * 1000
    result = await _binary_roundtrip(new, 1001)
    assert isinstance(result, wsevents.ConnectionClosed)
    assert result.code == 1009


async def test_per_server_max_buffer_length_beats_the_default(make_server, echo_handler, ws_connect, url_for):
    wsevents.set_max_buffer_length(1000)
    server = await make_server(max_buffer_length=10_000)
    server.on("connection", echo_handler)
    # The echo comes back to the client, which needs its own per-connection bound too.
    conn = await ws_connect(url_for(server), max_buffer_length=10_000)
    assert await _binary_roundtrip(conn, 5000) == b"x" * 5000


async def test_default_max_buffer_length_is_2_mib(make_server, echo_handler, ws_connect, url_for):
    server = await make_server()
    server.on("connection", echo_handler)
    conn = await ws_connect(url_for(server))
    assert await _binary_roundtrip(conn, 2 * 1024 * 1024) == b"x" * (2 * 1024 * 1024)
    result = await _binary_roundtrip(conn, 2 * 1024 * 1024 + 1)
    assert isinstance(result, wsevents.ConnectionClosed)
    assert result.code == 1009


async def _stream_frames(
    make_server, raw_ws, writes: list[int], **options: Any
) -> list[tuple[int, bool, int]]:
    """Frames (opcode, fin, length) a server OutStream sends for ``writes`` then ``end()``."""
    server = await make_server(**options)

    async def on_connection(conn: wsevents.Connection) -> None:
        out = conn.begin_binary()
        for n in writes:
            await out.write(b"y" * n)
        await out.end()

    server.on("connection", on_connection)
    reader, _writer, _ = await raw_ws.open(server.port)
    frames = []
    while True:
        frame = await raw_ws.read_frame(reader)
        frames.append((frame.opcode, frame.fin, len(frame.payload)))
        if frame.fin:
            return frames


async def test_set_binary_fragmentation_applies_to_new_servers(make_server, raw_ws):
    wsevents.set_binary_fragmentation(100)
    frames = await _stream_frames(make_server, raw_ws, [60, 60, 30, 80])
    assert frames == [(2, False, 120), (0, False, 110), (0, True, 0)]


async def test_default_binary_fragmentation_is_512_kib(make_server, raw_ws):
    kib = 1024
    frames = await _stream_frames(make_server, raw_ws, [300 * kib, 200 * kib, 20 * kib, 10 * kib])
    assert frames == [(2, False, 520 * kib), (0, True, 10 * kib)]


async def test_per_server_binary_fragmentation(make_server, raw_ws):
    wsevents.set_binary_fragmentation(100)
    frames = await _stream_frames(make_server, raw_ws, [60, 60], binary_fragmentation=1000)
    assert frames == [(2, True, 120)]


@pytest.mark.parametrize("value", [0, -1, -512])
def test_module_setters_reject_non_positive(value: int):
    with pytest.raises(ValueError):
        wsevents.set_binary_fragmentation(value)
    with pytest.raises(ValueError):
        wsevents.set_max_buffer_length(value)


@pytest.mark.parametrize("value", [1.5, "1000", None, True])
def test_module_setters_reject_non_int(value: Any):
    with pytest.raises((TypeError, ValueError)):
        wsevents.set_binary_fragmentation(value)
    with pytest.raises((TypeError, ValueError)):
        wsevents.set_max_buffer_length(value)


async def test_rejected_setter_keeps_the_default(make_server, raw_ws):
    wsevents.set_binary_fragmentation(100)
    with pytest.raises(ValueError):
        wsevents.set_binary_fragmentation(0)
    frames = await _stream_frames(make_server, raw_ws, [150])
    assert frames == [(2, False, 150), (0, True, 0)]


# -- public names ------------------------------------------------------------------

PUBLIC_NAMES = [
    "create_server",
    "connect",
    "set_binary_fragmentation",
    "set_max_buffer_length",
    "run",
    "Server",
    "Connection",
    "ReadyState",
    "InStream",
    "OutStream",
    "EventEmitter",
    "WebSocketError",
    "HandshakeError",
    "ProtocolError",
    "MessageTooBig",
    "InvalidState",
    "ConnectionClosed",
]


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_name_exported(name: str):
    assert name in wsevents.__all__
    assert getattr(wsevents, name) is not None


def test_all_names_exist():
    for name in wsevents.__all__:
        assert hasattr(wsevents, name), name


def test_error_hierarchy():
    for name in ("HandshakeError", "ProtocolError", "MessageTooBig", "InvalidState", "ConnectionClosed"):
        assert issubclass(getattr(wsevents, name), wsevents.WebSocketError), name
    assert issubclass(wsevents.WebSocketError, Exception)
    assert wsevents.HandshakeError("x", 403).status == 403
    assert wsevents.HandshakeError("x").status is None
    closed = wsevents.ConnectionClosed(4000, "why")
    assert (closed.code, closed.reason) == (4000, "why")


def test_server_and_connection_are_event_emitters():
    assert issubclass(wsevents.Server, wsevents.EventEmitter)
    assert issubclass(wsevents.Connection, wsevents.EventEmitter)
    assert issubclass(wsevents.InStream, wsevents.EventEmitter)
    assert issubclass(wsevents.OutStream, wsevents.EventEmitter)
