"""Client over loopback: URLs, IPv6, host/port overrides, headers, failures, the closing handshake."""

from __future__ import annotations

import asyncio
import socket

import pytest

import wsevents
from helpers import round_trip, wait_until

pytestmark = pytest.mark.timeout(30)


def _record_events(conn: wsevents.Connection) -> dict[str, list[tuple[object, ...]]]:
    events: dict[str, list[tuple[object, ...]]] = {"connect": [], "error": [], "close": []}
    for name, got in events.items():
        conn.on(name, lambda *args, got=got: got.append(args))
    return events


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


# -- addressing ------------------------------------------------------------------------


async def test_ipv6_literal_and_ipv4_on_dual_stack_server(make_server, ws_connect, echo_handler):
    srv = await make_server(host=None)
    srv.on("connection", echo_handler)
    hosts: list[str] = []
    srv.on("connection", lambda c: hosts.append(c.headers["host"]))
    v6 = await ws_connect(f"ws://[::1]:{srv.port}/six")
    v4 = await ws_connect(f"ws://127.0.0.1:{srv.port}/four")
    for conn, text in ((v6, "over ::1"), (v4, "over 127.0.0.1")):
        conn.send_text(text)
        assert await asyncio.wait_for(conn.recv(), 5) == text
    assert v6.socket.getpeername()[0] == "::1"
    assert v4.socket.getpeername()[0] == "127.0.0.1"
    await wait_until(lambda: len(hosts) == 2)
    assert sorted(hosts) == sorted([f"[::1]:{srv.port}", f"127.0.0.1:{srv.port}"])


async def test_query_string_kept_in_path(echo_server, ws_connect, url_for):
    paths: list[str] = []
    echo_server.on("connection", lambda c: paths.append(c.path))
    conn = await ws_connect(url_for(echo_server, "/chat/room?id=7&name=a%20b"))
    assert conn.path == "/chat/room?id=7&name=a%20b"
    await wait_until(lambda: paths)
    assert paths == ["/chat/room?id=7&name=a%20b"]


async def test_empty_path_is_slash(echo_server, ws_connect):
    paths: list[str] = []
    echo_server.on("connection", lambda c: paths.append(c.path))
    conn = await ws_connect(f"ws://127.0.0.1:{echo_server.port}")
    assert conn.path == "/"
    await wait_until(lambda: paths)
    assert paths == ["/"]


async def test_host_and_port_options_override_where_to_connect(echo_server, ws_connect):
    hosts: list[str] = []
    echo_server.on("connection", lambda c: hosts.append(c.headers["host"]))
    conn = await ws_connect("ws://example.invalid:1234/over", host="127.0.0.1", port=echo_server.port)
    conn.send_text("routed")
    assert await asyncio.wait_for(conn.recv(), 5) == "routed"
    assert conn.socket.getpeername()[1] == echo_server.port
    await wait_until(lambda: hosts)
    assert hosts == ["example.invalid:1234"]


async def test_default_port_left_out_of_host_header(echo_server, ws_connect):
    hosts: list[str] = []
    echo_server.on("connection", lambda c: hosts.append(c.headers["host"]))
    await ws_connect("ws://example.com/x", host="127.0.0.1", port=echo_server.port)
    await wait_until(lambda: hosts)
    assert hosts == ["example.com"]


# -- headers -----------------------------------------------------------------------------


async def test_extra_headers_reach_the_server(echo_server, ws_connect, url_for):
    server_side: list[wsevents.Connection] = []
    echo_server.on("connection", server_side.append)
    conn = await ws_connect(
        url_for(echo_server), extra_headers={"X-Token": "Abc 123", "Origin": "http://o.test"}
    )
    await wait_until(lambda: server_side)
    headers = server_side[0].headers
    assert headers["x-token"] == "Abc 123"
    assert headers["origin"] == "http://o.test"
    assert "x-token" in list(headers)
    assert "X-Token" not in list(headers)  # names are lower-cased
    assert headers["X-TOKEN"] == "Abc 123"  # and looked up case-insensitively
    assert headers["upgrade"].lower() == "websocket"
    assert "sec-websocket-key" in headers
    with pytest.raises(TypeError):
        headers["x-token"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        del headers["x-token"]  # type: ignore[attr-defined]
    # The client side has the response's headers.
    assert "sec-websocket-accept" in conn.headers
    assert conn.headers["connection"].lower() == "upgrade"
    with pytest.raises(TypeError):
        conn.headers["upgrade"] = "x"  # type: ignore[index]


# -- failures ----------------------------------------------------------------------------


async def test_connection_refused_raises_on_await(free_port):
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{free_port}/"), 5)


async def test_connection_refused_emits_error_and_close_1006(free_port):
    conn = wsevents.connect(f"ws://127.0.0.1:{free_port}/")
    events = _record_events(conn)
    await wait_until(lambda: events["close"])  # the last event: nothing can follow it
    assert events["connect"] == []
    assert len(events["error"]) == 1
    assert isinstance(events["error"][0][0], ConnectionRefusedError)
    assert events["close"] == [(1006, "")]
    assert conn.ready_state == wsevents.Connection.CLOSED
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(conn, 5)


async def _answer(raw_server, response: bytes | None, *, then_close: bool = True) -> int:
    """A raw server that reads the request head and answers ``response`` (built from the key if callable)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if response is not None:
            writer.write(response)
            await writer.drain()
        if then_close:
            writer.close()
        else:
            await reader.read()

    return await raw_server(handler)


async def test_handshake_error_with_status_403(raw_server):
    port = await _answer(raw_server, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nForbidden")
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/"), 5)
    assert info.value.status == 403


async def test_handshake_error_status_for_other_codes(raw_server):
    port = await _answer(raw_server, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", then_close=False)
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/"), 5)
    assert info.value.status == 404


async def test_handshake_error_emits_error_and_close(raw_server):
    port = await _answer(raw_server, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    conn = wsevents.connect(f"ws://127.0.0.1:{port}/")
    events = _record_events(conn)
    await wait_until(lambda: events["close"])
    await asyncio.sleep(0.05)
    assert len(events["error"]) == 1
    error = events["error"][0][0]
    assert isinstance(error, wsevents.HandshakeError)
    assert error.status == 403
    assert events["close"] == [(1006, "")]
    assert events["connect"] == []


async def _answer_with(raw_server, make_response) -> int:
    """A raw server answering ``make_response(key)``, then waiting for the client to go."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        writer.write(make_response(key))
        await reader.read()

    return await raw_server(handler)


@pytest.mark.parametrize(
    "make_response",
    [
        pytest.param(
            lambda key: (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ),
            id="bad-accept-key",
        ),
        pytest.param(
            lambda key: (
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {_accept(key)}\r\n\r\n"
            ).encode(),
            id="no-upgrade-header",
        ),
        pytest.param(
            lambda key: (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Sec-WebSocket-Accept: {_accept(key)}\r\n\r\n"
            ).encode(),
            id="no-connection-header",
        ),
        pytest.param(
            lambda key: (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {_accept(key)}\r\nSec-WebSocket-Protocol: unasked\r\n\r\n"
            ).encode(),
            id="protocol-not-offered",
        ),
        pytest.param(
            lambda key: (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {_accept(key)}\r\n"
                "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n\r\n"
            ).encode(),
            id="extension-not-offered",
        ),
        pytest.param(lambda key: b"SSH-2.0-OpenSSH_9.6\r\n\r\n", id="garbage"),
    ],
)
async def test_handshake_error_without_status(raw_server, make_response):
    port = await _answer_with(raw_server, make_response)
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/"), 5)
    assert info.value.status is None


async def test_raw_server_valid_response_is_accepted(raw_server):
    # The counterpart of the failures above: the same raw server with a correct answer works.
    port = await _answer_with(
        raw_server,
        lambda key: (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
            f"Sec-WebSocket-Accept: {_accept(key)}\r\n\r\n"
        ).encode(),
    )
    conn = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.5), 5)
    assert conn.ready_state == wsevents.Connection.OPEN
    conn.transport.abort()


async def test_client_handshake_timeout(raw_server):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    port = await raw_server(silent)
    conn = wsevents.connect(f"ws://127.0.0.1:{port}/", handshake_timeout=0.5)
    events = _record_events(conn)
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(conn, 5)
    assert info.value.status is None
    await wait_until(lambda: events["close"])
    assert events["close"] == [(1006, "")]


async def test_server_closing_before_answering_fails_the_client(raw_server):
    port = await _answer(raw_server, None)
    conn = wsevents.connect(f"ws://127.0.0.1:{port}/")
    events = _record_events(conn)
    with pytest.raises((wsevents.WebSocketError, OSError)):
        await asyncio.wait_for(conn, 5)
    await wait_until(lambda: events["close"])
    assert events["close"] == [(1006, "")]
    assert events["connect"] == []


async def test_close_while_connecting(echo_server, url_for, ws_connect):
    server_side: list[wsevents.Connection] = []
    echo_server.on("connection", server_side.append)
    conn = wsevents.connect(url_for(echo_server))
    events = _record_events(conn)
    assert conn.ready_state == wsevents.Connection.CONNECTING
    await asyncio.wait_for(conn.close(), 5)
    assert conn.ready_state == wsevents.Connection.CLOSED
    # A probe instead of a sleep: the server accepts connections in order, so once a later
    # client has made a round trip, the abandoned one would have reached "connection".
    later = await ws_connect(url_for(echo_server))
    await round_trip(later)
    assert events["close"] == [(1006, "")]
    assert events["connect"] == []
    assert conn.ready_state == wsevents.Connection.CLOSED
    assert len(server_side) == 1 and server_side[0].remote_address[1] == later.socket.getsockname()[1]


# -- the closing handshake against servers that do not close first -----------------------


def _accept(key: str) -> str:
    from wsevents.protocol.handshake import accept_key

    return accept_key(key)


async def _raw_ws_server(raw_server, raw_ws, on_close_frame: str) -> tuple[int, dict[str, object]]:
    """A hand-written WebSocket server; what it does with the client's close frame is ``on_close_frame``.

    ``"reply-then-wait-eof"``: answer the close frame, keep TCP open until the client's EOF, then close
    (what nodejs-websocket does). ``"reply-never-close"``: answer it and never close TCP, even at EOF.
    ``"ignore"``: never answer, never close.
    """
    state: dict[str, object] = {"eof": False}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        writer.write(raw_ws.response(key))
        while True:
            frame = await raw_ws.read_frame(reader)
            if frame.opcode == 8:
                break
        state["close_payload"] = frame.payload
        if on_close_frame != "ignore":
            writer.write(raw_ws.frame(8, frame.payload, mask=False))
        rest = await reader.read()
        state["eof"] = rest == b""
        if on_close_frame == "reply-then-wait-eof":
            writer.close()
        else:
            await asyncio.sleep(3600)

    return await raw_server(handler), state


async def test_client_half_closes_so_node_style_server_finishes(raw_server, raw_ws):
    port, state = await _raw_ws_server(raw_server, raw_ws, "reply-then-wait-eof")
    conn = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/", close_timeout=30), 5)
    events = _record_events(conn)
    # close_timeout is 30 s: finishing within 5 s means the server saw our EOF and closed.
    await asyncio.wait_for(conn.close(4000, "done"), 5)
    assert conn.ready_state == wsevents.Connection.CLOSED
    assert state["eof"] is True
    assert state["close_payload"] == b"\x0f\xa0done"
    await asyncio.sleep(0)
    assert events["close"] == [(4000, "done")]


async def test_client_gives_up_after_close_timeout_when_server_keeps_tcp(raw_server, raw_ws):
    port, state = await _raw_ws_server(raw_server, raw_ws, "reply-never-close")
    conn = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.5), 5)
    events = _record_events(conn)
    await asyncio.wait_for(conn.close(1000), 5)
    assert conn.ready_state == wsevents.Connection.CLOSED
    await asyncio.sleep(0)
    # The server's close frame did arrive: its code stands.
    assert events["close"] == [(1000, "")]
    assert state["eof"] is True


async def test_client_reaches_closed_with_1006_when_close_frame_ignored(raw_server, raw_ws):
    port, _state = await _raw_ws_server(raw_server, raw_ws, "ignore")
    conn = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.5), 5)
    events = _record_events(conn)
    closing = conn.close(1000)
    assert conn.ready_state == wsevents.Connection.CLOSING
    await asyncio.wait_for(closing, 5)
    assert conn.ready_state == wsevents.Connection.CLOSED
    await asyncio.sleep(0)
    assert events["close"] == [(1006, "")]
    assert conn.close_code == 1006
