"""Connection over loopback: sending, states, attributes, subprotocols, pings, closing, recv, misuse."""

from __future__ import annotations

import asyncio
import enum
import logging
import socket

import pytest

import wsevents
from helpers import round_trip
from helpers import wait_until as _until
from wsevents import Connection, ConnectionClosed, InvalidState

pytestmark = pytest.mark.timeout(30)


def _closes(conn: Connection) -> list[tuple[int, str]]:
    got: list[tuple[int, str]] = []
    conn.on("close", lambda code, reason: got.append((code, reason)))
    return got


@pytest.fixture
async def pair(make_server, ws_connect, url_for):
    """``(server, server_conn, client_conn)``: a connected pair with no listeners on either side."""
    server = await make_server(close_timeout=1)
    accepted: list[Connection] = []
    server.on("connection", accepted.append)
    client = await ws_connect(url_for(server, "/pair?x=1"), close_timeout=1)
    await _until(lambda: accepted)
    return server, accepted[0], client


# -- sending ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("héllo ✓", "héllo ✓"),
        ("", ""),
        (b"\x00\x01\xff", b"\x00\x01\xff"),
        (bytearray(b"ba"), b"ba"),
        (memoryview(b"memoryview")[2:6], b"mory"),
        (b"", b""),
    ],
)
async def test_send_each_type_round_trips(echo_url, ws_connect, data, expected):
    conn = await ws_connect(echo_url)
    await asyncio.wait_for(conn.send(data), 5)
    got = await asyncio.wait_for(conn.recv(), 5)
    assert type(got) is type(expected)
    assert got == expected


async def test_send_text_and_send_binary(echo_url, ws_connect):
    conn = await ws_connect(echo_url)
    conn.send_text("t")
    conn.send_binary(bytearray(b"b"))
    conn.send_binary(memoryview(b"m"))
    got = [await asyncio.wait_for(conn.recv(), 5) for _ in range(3)]
    assert got == ["t", b"b", b"m"]


async def test_bytearray_is_copied_at_send(echo_url, ws_connect):
    conn = await ws_connect(echo_url)
    buf = bytearray(b"before")
    conn.send_binary(buf)
    buf[:] = b"after!"
    assert await asyncio.wait_for(conn.recv(), 5) == b"before"


@pytest.mark.parametrize("bad", [123, 1.5, None, ["x"], {"a": 1}])
async def test_send_rejects_other_types(echo_url, ws_connect, bad):
    conn = await ws_connect(echo_url)
    with pytest.raises(TypeError):
        conn.send(bad)


async def test_send_text_and_binary_check_types(echo_url, ws_connect):
    conn = await ws_connect(echo_url)
    with pytest.raises(TypeError):
        conn.send_text(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        conn.send_binary("text")  # type: ignore[arg-type]
    # Nothing was sent and the connection still works.
    conn.send_text("ok")
    assert await asyncio.wait_for(conn.recv(), 5) == "ok"


async def test_send_results_are_awaitable_and_call_back(echo_url, ws_connect):
    conn = await ws_connect(echo_url, max_buffer_length=4 * 1024 * 1024)
    calls: list[object] = []
    for call in (
        lambda cb: conn.send_text("a", cb),
        lambda cb: conn.send_binary(b"b", cb),
        lambda cb: conn.send("c", cb),
        lambda cb: conn.send(b"d" * 1_500_000, callback=cb),  # big enough to wait for the OS
        lambda cb: conn.send_ping("p", cb),
    ):
        before = len(calls)
        result = call(calls.append)
        assert await asyncio.wait_for(result, 5) is None
        assert calls[before:] == [None]
    assert calls == [None] * 5
    got = [await asyncio.wait_for(conn.recv(), 5) for _ in range(4)]
    assert got == ["a", b"b", "c", b"d" * 1_500_000]


async def test_fire_and_forget_sends(echo_url, ws_connect):
    conn = await ws_connect(echo_url)
    for i in range(50):
        conn.send_text(str(i))
    got = [await asyncio.wait_for(conn.recv(), 5) for _ in range(50)]
    assert got == [str(i) for i in range(50)]


# -- ready_state ---------------------------------------------------------------------------


def test_ready_state_constants():
    assert issubclass(wsevents.ReadyState, enum.IntEnum)
    assert (Connection.CONNECTING, Connection.OPEN, Connection.CLOSING, Connection.CLOSED) == (0, 1, 2, 3)
    assert Connection.OPEN == 1
    assert Connection.OPEN is wsevents.ReadyState.OPEN
    assert [s.name for s in wsevents.ReadyState] == ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]


async def test_ready_state_transitions_client(echo_server, url_for):
    conn = wsevents.connect(url_for(echo_server))
    assert conn.ready_state == Connection.CONNECTING
    assert conn.ready_state == 0
    assert isinstance(conn.ready_state, enum.IntEnum)
    states: list[int] = []
    conn.on("connect", lambda: states.append(conn.ready_state))
    conn.on("close", lambda code, reason: states.append(conn.ready_state))
    await asyncio.wait_for(conn, 5)
    assert conn.ready_state == Connection.OPEN
    closing = conn.close()
    assert conn.ready_state == Connection.CLOSING
    await asyncio.wait_for(closing, 5)
    assert conn.ready_state == Connection.CLOSED
    assert conn.ready_state is wsevents.ReadyState.CLOSED
    assert states == [Connection.OPEN, Connection.CLOSED]


async def test_ready_state_transitions_server(pair):
    _server, server_conn, client = pair
    assert server_conn.ready_state == Connection.OPEN
    states: list[int] = []
    server_conn.on("close", lambda code, reason: states.append(server_conn.ready_state))
    closing = server_conn.close(1000)
    assert server_conn.ready_state == Connection.CLOSING
    await asyncio.wait_for(closing, 5)
    assert server_conn.ready_state == Connection.CLOSED
    assert states == [Connection.CLOSED]
    await asyncio.wait_for(client.wait_closed(), 5)
    assert client.ready_state == Connection.CLOSED


# -- attributes -------------------------------------------------------------------------------


async def test_socket_both_sides(pair):
    server, server_conn, client = pair
    for conn in (server_conn, client):
        assert conn.socket is not None
        assert conn.socket.family in (socket.AF_INET, socket.AF_INET6)
        assert conn.socket is conn.transport.get_extra_info("socket")
    assert client.socket.getpeername()[1] == server.port
    assert server_conn.socket.getsockname()[1] == server.port
    assert server_conn.socket.getpeername()[1] == client.socket.getsockname()[1]


async def test_server_attribute(pair):
    server, server_conn, client = pair
    assert server_conn.server is server
    assert client.server is None


async def test_path_both_sides(pair):
    _server, server_conn, client = pair
    assert server_conn.path == "/pair?x=1"
    assert client.path == "/pair?x=1"


async def test_headers_both_sides(pair):
    _server, server_conn, client = pair
    assert server_conn.headers["sec-websocket-version"] == "13"
    assert server_conn.headers["host"].startswith("127.0.0.1:")
    assert "sec-websocket-accept" in client.headers
    assert "sec-websocket-key" not in client.headers
    assert all(name == name.lower() for name in server_conn.headers)
    assert all(name == name.lower() for name in client.headers)


async def test_out_stream_attribute(pair):
    _server, server_conn, client = pair
    assert client.out_stream is None
    out = client.begin_binary()
    assert client.out_stream is out
    await asyncio.wait_for(out.end(b"z"), 5)
    assert client.out_stream is None
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"z"


# -- subprotocols ------------------------------------------------------------------------------


async def _negotiate(make_server, url_for, client_protocols, **server_options):
    server = await make_server(**server_options)
    accepted: list[Connection] = []
    server.on("connection", accepted.append)
    conn = wsevents.connect(url_for(server), protocols=client_protocols, close_timeout=1)
    try:
        await asyncio.wait_for(conn, 5)
    except wsevents.HandshakeError as exc:
        await _until(lambda: accepted)
        return exc, accepted[0]
    await _until(lambda: accepted)
    return conn, accepted[0]


async def test_valid_protocols_picks_clients_most_preferred(make_server, url_for):
    conn, server_conn = await _negotiate(
        make_server, url_for, ["v2.chat", "v1.chat", "x"], valid_protocols=["v1.chat", "v2.chat"]
    )
    assert conn.protocol == "v2.chat"
    assert server_conn.protocol == "v2.chat"
    assert conn.protocols == ["v2.chat", "v1.chat", "x"]
    assert server_conn.protocols == ["v2.chat", "v1.chat", "x"]
    await asyncio.wait_for(conn.close(), 5)


async def test_select_protocol_custom(make_server, url_for):
    calls: list[tuple[Connection, list[str]]] = []

    def select(conn: Connection, protocols: list[str]) -> str:
        calls.append((conn, protocols))
        return protocols[-1]

    conn, server_conn = await _negotiate(make_server, url_for, ["a", "b", "c"], select_protocol=select)
    assert conn.protocol == "c"
    assert server_conn.protocol == "c"
    assert len(calls) == 1
    assert calls[0][0] is server_conn
    assert calls[0][1] == ["a", "b", "c"]
    await asyncio.wait_for(conn.close(), 5)


@pytest.mark.parametrize("answer", [None, ""])
async def test_select_protocol_no_agreement_fails_the_client(make_server, url_for, answer):
    error, server_conn = await _negotiate(
        make_server, url_for, ["a", "b"], select_protocol=lambda c, p: answer
    )
    assert isinstance(error, wsevents.HandshakeError)
    assert str(error) == "Invalid handshake: no protocol was negotiated"
    assert error.status is None
    # The server side completed its handshake without a protocol.
    assert server_conn.protocol is None
    assert server_conn.protocols == ["a", "b"]
    await asyncio.wait_for(server_conn.wait_closed(), 5)


@pytest.mark.parametrize("answer", [False, 0, 1, b"a"])
async def test_select_protocol_answer_not_a_str_refuses_with_500(make_server, url_for, answer, caplog):
    # As in the threaded server: a falsy non-str (False, 0) is a bug, not "no subprotocol".
    server = await make_server(select_protocol=lambda c, p: answer)
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(wsevents.connect(url_for(server), protocols=["a"]), 5)
    assert info.value.status == 500
    assert f"select_protocol returned {answer!r}, not a str or None" in caplog.text


async def test_valid_protocols_no_overlap_fails_the_client(make_server, url_for):
    error, server_conn = await _negotiate(make_server, url_for, ["a"], valid_protocols=["b"])
    assert isinstance(error, wsevents.HandshakeError)
    assert str(error) == "Invalid handshake: no protocol was negotiated"
    assert server_conn.protocol is None


async def test_client_without_protocols(make_server, url_for):
    conn, server_conn = await _negotiate(make_server, url_for, [], valid_protocols=["a"])
    assert conn.protocol is None
    assert conn.protocols == []
    assert server_conn.protocol is None
    assert server_conn.protocols == []
    assert "sec-websocket-protocol" not in server_conn.headers
    await asyncio.wait_for(conn.close(), 5)


async def test_server_without_protocol_options_ignores_requested_ones(make_server, url_for):
    error, server_conn = await _negotiate(make_server, url_for, ["a"])
    assert isinstance(error, wsevents.HandshakeError)
    assert server_conn.protocols == ["a"]
    assert server_conn.protocol is None


# -- ping / pong ------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "expected"), [("hello", "hello"), (b"raw", "raw"), ("", ""), ("é", "é")])
async def test_ping_pong_client_to_server(pair, data, expected):
    _server, _server_conn, client = pair
    pongs: list[object] = []
    client.on("pong", pongs.append)
    client.send_ping(data)
    await _until(lambda: pongs)
    assert pongs == [expected]
    assert isinstance(pongs[0], str)


async def test_ping_pong_server_to_client(pair):
    _server, server_conn, _client = pair
    pongs: list[object] = []
    server_conn.on("pong", pongs.append)
    await asyncio.wait_for(server_conn.send_ping("from server"), 5)
    await _until(lambda: pongs)
    assert pongs == ["from server"]


async def test_ping_default_payload_and_limit(pair):
    _server, _server_conn, client = pair
    pongs: list[object] = []
    client.on("pong", pongs.append)
    client.send_ping()
    await _until(lambda: pongs)
    assert pongs == [""]
    with pytest.raises(ValueError):
        client.send_ping("x" * 126)


# -- closing -------------------------------------------------------------------------------------


async def test_close_code_reason_server_to_client(pair):
    _server, server_conn, client = pair
    client_closes, server_closes = _closes(client), _closes(server_conn)
    await asyncio.wait_for(server_conn.close(4001, "server says bye ✓"), 5)
    await asyncio.wait_for(client.wait_closed(), 5)
    assert client_closes == [(4001, "server says bye ✓")]
    assert (client.close_code, client.close_reason) == (4001, "server says bye ✓")
    assert len(server_closes) == 1
    assert server_closes[0][0] == 4001


async def test_close_code_reason_client_to_server(pair):
    _server, server_conn, client = pair
    client_closes, server_closes = _closes(client), _closes(server_conn)
    await asyncio.wait_for(client.close(4002, "client leaves"), 5)
    await asyncio.wait_for(server_conn.wait_closed(), 5)
    assert server_closes == [(4002, "client leaves")]
    assert (server_conn.close_code, server_conn.close_reason) == (4002, "client leaves")
    assert len(client_closes) == 1
    assert client_closes[0][0] == 4002


@pytest.mark.parametrize("side", ["client", "server"])
async def test_close_without_code_peer_sees_1005(pair, side):
    _server, server_conn, client = pair
    closer, peer = (client, server_conn) if side == "client" else (server_conn, client)
    closer_closes, peer_closes = _closes(closer), _closes(peer)
    await asyncio.wait_for(closer.close(), 5)
    await asyncio.wait_for(asyncio.gather(peer.wait_closed(), closer.wait_closed()), 5)
    assert peer_closes == [(1005, "")]
    assert closer_closes == [(1005, "")]


async def test_close_reason_without_code_uses_1000(pair):
    _server, server_conn, client = pair
    server_closes = _closes(server_conn)
    await asyncio.wait_for(client.close(reason="just a reason"), 5)
    await asyncio.wait_for(server_conn.wait_closed(), 5)
    assert server_closes == [(1000, "just a reason")]


async def test_close_reason_of_123_bytes_is_allowed(pair):
    _server, server_conn, client = pair
    server_closes = _closes(server_conn)
    reason = "é" * 61 + "x"  # 123 bytes of UTF-8
    await asyncio.wait_for(client.close(1000, reason), 5)
    await asyncio.wait_for(server_conn.wait_closed(), 5)
    assert server_closes == [(1000, reason)]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1005, None),
        (1006, None),
        (1015, None),
        (999, None),
        (5000, None),
        (0, None),
        (1000, "x" * 124),
        (1000, "é" * 62),
    ],
)
async def test_close_rejects_bad_code_or_reason(pair, code, reason):
    _server, _server_conn, client = pair
    with pytest.raises(ValueError):
        client.close(code, reason)
    # Nothing was sent: the connection is still open.
    assert client.ready_state == Connection.OPEN
    client.send_text("still open")


async def test_close_is_idempotent(pair):
    _server, server_conn, client = pair
    closes = _closes(client)
    first = client.close(4003)
    second = client.close(4004)
    await asyncio.wait_for(first, 5)
    await asyncio.wait_for(second, 5)
    await asyncio.wait_for(client.close(), 5)
    await asyncio.wait_for(server_conn.wait_closed(), 5)
    assert server_conn.close_code == 4003
    assert len(closes) == 1


# -- "close" exactly once --------------------------------------------------------------------


@pytest.mark.parametrize("side", ["client", "server"])
async def test_close_emitted_once_on_normal_close(pair, side):
    _server, server_conn, client = pair
    closer = client if side == "client" else server_conn
    client_closes, server_closes = _closes(client), _closes(server_conn)
    await asyncio.wait_for(closer.close(1000), 5)
    # wait_closed() resolves as the transport is lost: no event can follow, a second "close" neither.
    await asyncio.wait_for(asyncio.gather(client.wait_closed(), server_conn.wait_closed()), 5)
    assert client_closes == [(1000, "")]
    assert server_closes == [(1000, "")]


@pytest.mark.parametrize("side", ["client", "server"])
async def test_close_emitted_once_on_peer_drop(pair, side):
    _server, server_conn, client = pair
    dropper, peer = (client, server_conn) if side == "client" else (server_conn, client)
    dropper_closes, peer_closes = _closes(dropper), _closes(peer)
    errors: list[BaseException] = []
    peer.on("error", errors.append)
    dropper.transport.abort()
    await asyncio.wait_for(asyncio.gather(peer.wait_closed(), dropper.wait_closed()), 5)
    assert peer_closes == [(1006, "")]
    assert dropper_closes == [(1006, "")]
    assert peer.ready_state == Connection.CLOSED
    assert (peer.close_code, peer.close_reason) == (1006, "")


async def test_peer_drop_ends_recv_with_1006(pair):
    _server, server_conn, client = pair
    server_conn.transport.abort()
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(client.recv(), 5)
    assert info.value.code == 1006


async def test_close_emitted_once_on_protocol_error_server_side(make_server, raw_ws):
    server = await make_server()
    accepted: list[Connection] = []
    closes: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    @server.on("connection")
    def on_connection(conn: Connection) -> None:
        accepted.append(conn)
        conn.on("close", lambda code, reason: closes.append((code, reason)))
        conn.on("error", errors.append)

    reader, writer, _ = await raw_ws.open(server.port)
    await _until(lambda: accepted)
    writer.write(raw_ws.frame(1, b"unmasked from a client", mask=False))
    frame = await raw_ws.read_frame(reader)
    assert frame.opcode == 8
    assert int.from_bytes(frame.payload[:2], "big") == 1002
    assert await asyncio.wait_for(reader.read(), 5) == b""  # the server closed TCP
    await asyncio.wait_for(accepted[0].wait_closed(), 5)
    assert len(closes) == 1
    assert closes[0][0] == 1002
    assert len(errors) == 1
    assert isinstance(errors[0], wsevents.ProtocolError)
    assert accepted[0].close_code == 1002


async def test_close_emitted_once_on_protocol_error_client_side(raw_server, raw_ws):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        writer.write(raw_ws.response(key))
        writer.write(raw_ws.frame(1, b"masked from a server", mask=True))
        await reader.read()
        writer.close()

    port = await raw_server(handler)
    conn = wsevents.connect(f"ws://127.0.0.1:{port}/", close_timeout=1)
    closes = _closes(conn)
    texts: list[str] = []
    conn.on("text", texts.append)
    # No "error" listener: a peer's protocol violation must not raise anywhere.
    await asyncio.wait_for(conn, 5)
    await asyncio.wait_for(conn.wait_closed(), 5)  # the transport is lost: no "text" can follow
    assert texts == []
    assert len(closes) == 1
    assert closes[0][0] == 1002
    assert conn.close_code == 1002


# -- recv / async for ---------------------------------------------------------------------------


@pytest.fixture
async def scripted(make_server, ws_connect, url_for):
    """A client of a server that answers "close CODE" by sending its queued words then closing with CODE."""
    server = await make_server()

    @server.on("connection")
    def on_connection(conn: Connection) -> None:
        @conn.on("text")
        def on_text(text: str) -> None:
            words = text.split()
            if words[0] == "close":
                for word in words[2:]:
                    conn.send(word.encode() if word.startswith("b:") else word)
                conn.close(int(words[1]), "scripted")

    return await ws_connect(url_for(server), close_timeout=1)


@pytest.mark.parametrize("code", [1000, 1001])
async def test_async_for_ends_cleanly_on_normal_close(scripted, code):
    scripted.send_text(f"close {code} one b:two three")

    async def collect() -> list[object]:
        return [message async for message in scripted]

    assert await asyncio.wait_for(collect(), 5) == ["one", b"b:two", "three"]
    assert scripted.close_code == code


async def test_async_for_raises_on_other_codes(scripted):
    scripted.send_text("close 4000 one")
    got: list[object] = []
    with pytest.raises(ConnectionClosed) as info:

        async def collect() -> None:
            async for message in scripted:
                got.append(message)

        await asyncio.wait_for(collect(), 5)
    assert got == ["one"]
    assert info.value.code == 4000
    assert info.value.reason == "scripted"


async def test_recv_after_close_raises_with_code_and_reason(scripted):
    scripted.send_text("close 4005 last")
    assert await asyncio.wait_for(scripted.recv(), 5) == "last"
    for _ in range(2):
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(scripted.recv(), 5)
        assert (info.value.code, info.value.reason) == (4005, "scripted")
    assert scripted.ready_state == Connection.CLOSED


async def test_recv_after_local_close(pair):
    _server, _server_conn, client = pair
    await asyncio.wait_for(client.close(4006, "mine"), 5)
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(client.recv(), 5)
    assert info.value.code == 4006


async def test_recv_waits_for_next_message(pair):
    _server, server_conn, client = pair
    pending = asyncio.ensure_future(client.recv())
    await round_trip(client)  # anything the server had sent would have arrived before the pong
    assert not pending.done()
    server_conn.send_text("late")
    assert await asyncio.wait_for(pending, 5) == "late"


async def test_messages_with_listeners_are_not_queued(pair):
    _server, server_conn, client = pair
    texts: list[str] = []
    client.on("text", texts.append)
    server_conn.send_text("to listener")
    server_conn.send_binary(b"dropped: only text is listened for")
    server_conn.send_text("last")
    await _until(lambda: texts == ["to listener", "last"])
    assert not client._queue


# -- misuse (send on a connection that is not open) ------------------------------------------


async def _closed_client(pair) -> Connection:
    _server, _server_conn, client = pair
    await asyncio.wait_for(client.close(1000), 5)
    return client


@pytest.mark.parametrize(
    "send",
    [
        lambda c, **kw: c.send_text("x", **kw),
        lambda c, **kw: c.send_binary(b"x", **kw),
        lambda c, **kw: c.send("x", **kw),
        lambda c, **kw: c.send_ping("x", **kw),
    ],
)
async def test_send_after_close_raises_invalid_state(pair, send):
    client = await _closed_client(pair)
    with pytest.raises(InvalidState):
        send(client)


async def test_send_after_close_emits_error_when_listened(pair):
    client = await _closed_client(pair)
    errors: list[BaseException] = []
    client.on("error", errors.append)
    result = client.send_text("x")  # does not raise
    assert len(errors) == 1
    assert isinstance(errors[0], InvalidState)
    with pytest.raises(InvalidState):
        await result


async def test_send_after_close_goes_to_callback(pair):
    client = await _closed_client(pair)
    errors: list[BaseException] = []
    client.on("error", errors.append)
    calls: list[object] = []
    result = client.send_binary(b"x", calls.append)  # does not raise
    assert len(calls) == 1
    assert isinstance(calls[0], InvalidState)
    assert errors == []  # the callback got it, not "error"
    with pytest.raises(InvalidState):
        await result


async def test_send_while_closing_is_misuse(pair):
    _server, _server_conn, client = pair
    closing = client.close(1000)
    assert client.ready_state == Connection.CLOSING
    with pytest.raises(InvalidState):
        client.send_text("too late")
    await asyncio.wait_for(closing, 5)


async def test_send_while_connecting_is_misuse(echo_url):
    conn = wsevents.connect(echo_url)
    try:
        assert conn.ready_state == Connection.CONNECTING
        with pytest.raises(InvalidState):
            conn.send_text("too early")
        await asyncio.wait_for(conn, 5)
        conn.send_text("now")
        assert await asyncio.wait_for(conn.recv(), 5) == "now"
    finally:
        await asyncio.wait_for(conn.close(), 5)


async def test_text_during_binary_stream_is_misuse(pair):
    _server, server_conn, client = pair
    out = client.begin_binary()
    with pytest.raises(InvalidState):
        client.send_text("not now")
    with pytest.raises(InvalidState):
        client.send_binary(b"not now")
    with pytest.raises(InvalidState):
        client.begin_binary()
    errors: list[BaseException] = []
    client.on("error", errors.append)
    client.send_text("still not")
    assert len(errors) == 1
    assert isinstance(errors[0], InvalidState)
    await asyncio.wait_for(out.end(b"streamed"), 5)
    client.send_text("after")
    assert await asyncio.wait_for(server_conn.recv(), 5) == b"streamed"
    assert await asyncio.wait_for(server_conn.recv(), 5) == "after"


# -- listeners ----------------------------------------------------------------------------------


async def test_decorator_listeners(pair):
    _server, server_conn, client = pair
    texts: list[str] = []
    errors: list[BaseException] = []

    @client.on("text")
    def on_text(text: str) -> None:
        texts.append(text)

    @client.on("error")
    def on_error(error: BaseException) -> None:
        errors.append(error)

    assert callable(on_text)
    assert client.listeners("text") == [on_text]
    server_conn.send_text("decorated")
    await _until(lambda: texts)
    assert texts == ["decorated"]
    await asyncio.wait_for(client.close(), 5)
    client.send_text("after close")  # goes to the decorated "error" listener
    assert len(errors) == 1
    assert isinstance(errors[0], InvalidState)


async def test_coroutine_listeners(pair):
    _server, server_conn, client = pair
    got: list[object] = []

    @client.on("text")
    async def on_text(text: str) -> None:
        await asyncio.sleep(0.01)
        got.append(text)

    @client.on("binary")
    async def on_binary(stream: wsevents.InStream) -> None:
        got.append(await stream.read())

    @client.on("close")
    async def on_close(code: int, reason: str) -> None:
        got.append((code, reason))

    server_conn.send_text("async text")
    server_conn.send_binary(b"async binary")
    await _until(lambda: len(got) == 2)
    assert sorted(got, key=repr) == sorted(["async text", b"async binary"], key=repr)
    await asyncio.wait_for(server_conn.close(4007, "r"), 5)
    await _until(lambda: len(got) == 3)
    assert got[2] == (4007, "r")


async def test_a_message_listener_that_raises_is_logged_and_the_rest_still_hear(pair, caplog):
    """A synchronous "text" listener that raises: logged with its traceback; the later "text"
    listeners of that message are skipped (as in Node), the "message" listeners (a coroutine
    among them) still get it, and so does every "text" listener of the next message."""
    _server, server_conn, client = pair
    heard: list[tuple[str, str]] = []

    def failing(text: str) -> None:
        heard.append(("failing", text))
        if text == "first":
            raise ValueError("listener bug")

    async def coroutine(message: str) -> None:
        heard.append(("coroutine", message))

    client.on("text", failing)
    client.on("text", lambda text: heard.append(("second", text)))
    client.on("message", lambda message: heard.append(("message", message)))
    client.on("message", coroutine)
    with caplog.at_level(logging.ERROR, logger="wsevents"):
        server_conn.send_text("first")
        server_conn.send_text("next")
        await _until(lambda: ("coroutine", "next") in heard)
    # A coroutine listener runs as a task, after the synchronous ones of its read.
    assert [entry for entry in heard if entry[0] != "coroutine"] == [
        ("failing", "first"), ("message", "first"),
        ("failing", "next"), ("second", "next"), ("message", "next"),
    ]
    coroutines = [entry for entry in heard if entry[0] == "coroutine"]
    assert coroutines == [("coroutine", "first"), ("coroutine", "next")]
    failures = [record for record in caplog.records if record.exc_info]
    assert [record.getMessage().split(" of ")[0] for record in failures] == ["exception in 'text' listener"]
    assert isinstance(failures[0].exc_info[1], ValueError)
    assert client.ready_state is wsevents.ReadyState.OPEN


async def test_binary_listener_gets_instream(pair):
    _server, server_conn, client = pair
    streams: list[wsevents.InStream] = []
    client.on("binary", streams.append)
    server_conn.send_binary(b"stream me")
    await _until(lambda: streams)
    assert isinstance(streams[0], wsevents.InStream)
    assert await asyncio.wait_for(streams[0].read(), 5) == b"stream me"


async def test_connect_event_on_both_sides(make_server, url_for):
    server = await make_server()
    server_connects: list[tuple[object, ...]] = []
    server.on("connection", lambda c: c.on("connect", lambda *a: server_connects.append(a)))
    conn = wsevents.connect(url_for(server))
    client_connects: list[tuple[object, ...]] = []
    conn.on("connect", lambda *a: client_connects.append(a))
    await asyncio.wait_for(conn, 5)
    await _until(lambda: server_connects and client_connects)
    assert server_connects == [()]
    assert client_connects == [()]
    await asyncio.wait_for(conn.close(), 5)


async def test_ready_state_is_read_only(echo_url, ws_connect):
    # It follows the connection: only close() and the peer move it, never an assignment.
    conn = await ws_connect(echo_url)
    with pytest.raises(AttributeError, match="ready_state"):
        conn.ready_state = wsevents.Connection.CLOSED
    assert conn.ready_state is wsevents.ReadyState.OPEN
    reconnecting = wsevents.connect(echo_url, reconnect=True)
    try:
        with pytest.raises(AttributeError, match="ready_state"):
            reconnecting.ready_state = wsevents.Connection.OPEN
        assert reconnecting.ready_state is wsevents.ReadyState.CONNECTING
    finally:
        await reconnecting.close()
