"""Server over loopback: listen, bind errors, events, socket, connections, close semantics."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

import wsevents
from helpers import round_trip, wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def server():
    """A server not yet listening; closed (connections aborted) at teardown."""
    srv = wsevents.create_server(close_timeout=1)
    yield srv
    for conn in list(srv._live):
        if conn.transport is not None:
            conn.transport.abort()
    await asyncio.wait_for(srv.close(), 5)


@pytest.fixture
def busy_port():
    """A port on 127.0.0.1 with a listening plain socket on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


# -- listen ------------------------------------------------------------------------


async def test_listen_port_zero_sets_port_and_address(server):
    assert server.port is None
    result = server.listen(0, "127.0.0.1")
    assert result is server
    assert await asyncio.wait_for(result, 5) is server
    assert isinstance(server.port, int)
    assert 0 < server.port < 65536
    assert server.address == "127.0.0.1"
    # Really listening there.
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.close()


async def test_listen_without_host_is_dual_stack(server):
    await asyncio.wait_for(server.listen(0), 5)
    assert server.port > 0
    for host in ("127.0.0.1", "::1"):
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, server.port), 5)
        writer.close()


async def test_await_listen_on_busy_port_raises_eaddrinuse(server, busy_port):
    with pytest.raises(OSError) as info:
        await asyncio.wait_for(server.listen(busy_port, "127.0.0.1"), 5)
    assert info.value.errno == errno.EADDRINUSE


async def test_listen_on_busy_port_dual_stack_raises_eaddrinuse(make_server, server):
    other = await make_server(host=None)
    with pytest.raises(OSError) as info:
        await asyncio.wait_for(server.listen(other.port), 5)
    assert info.value.errno == errno.EADDRINUSE


async def test_listen_on_busy_port_emits_error(server, busy_port):
    errors: list[BaseException] = []
    listening: list[bool] = []
    server.on("error", errors.append)
    server.on("listening", lambda: listening.append(True))
    server.listen(busy_port, "127.0.0.1")
    await wait_until(lambda: errors)
    assert len(errors) == 1
    assert isinstance(errors[0], OSError)
    assert errors[0].errno == errno.EADDRINUSE
    assert listening == []
    # Awaiting still raises the same error.
    with pytest.raises(OSError) as info:
        await asyncio.wait_for(server, 5)
    assert info.value is errors[0]


async def test_listening_event_and_callback(server):
    events: list[object] = []
    server.on("listening", lambda *args: events.append(("event", args, server.port)))
    server.listen(0, "127.0.0.1", lambda *args: events.append(("callback", args, server.port)))
    await wait_until(lambda: len(events) == 2)
    port = server.port
    assert port
    assert sorted(events, key=str) == [("callback", (), port), ("event", (), port)]


async def test_listening_callback_is_called_once(server, ws_connect):
    calls: list[int] = []
    await asyncio.wait_for(server.listen(0, "127.0.0.1", lambda: calls.append(1)), 5)
    # A probe instead of a sleep: a client's round trip runs the loop well past any second call.
    await round_trip(await ws_connect(f"ws://127.0.0.1:{server.port}/"))
    assert calls == [1]


async def test_socket_is_the_asyncio_server(server):
    await asyncio.wait_for(server.listen(0, "127.0.0.1"), 5)
    # An asyncio.Server, or uvloop's equivalent (not a subclass) when the suite runs on uvloop.
    assert type(server.socket).__name__ == "Server"
    assert callable(server.socket.close) and callable(server.socket.serve_forever)
    assert server.socket.sockets[0].getsockname()[1] == server.port
    assert server.socket.is_serving()


# -- connections -------------------------------------------------------------------


async def test_connection_event_after_handshake(make_server, ws_connect, url_for):
    srv = await make_server()
    seen: list[tuple[wsevents.Connection, int]] = []
    srv.on("connection", lambda conn: seen.append((conn, conn.ready_state)))
    # A TCP connection without a handshake is not a "connection": accepted before the
    # WebSocket client below, it still has none once that one has.
    _, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"GET /raw HTTP/1.1\r\n")
    await ws_connect(url_for(srv, "/x"))
    await wait_until(lambda: seen)
    assert len(seen) == 1
    conn, state = seen[0]
    assert state == wsevents.Connection.OPEN
    assert conn.server is srv
    assert conn.path == "/x"
    writer.close()


async def test_connection_event_precedes_connect_event(make_server, ws_connect, url_for):
    srv = await make_server()
    order: list[str] = []

    @srv.on("connection")
    def on_connection(conn: wsevents.Connection) -> None:
        order.append("connection")
        conn.on("connect", lambda: order.append("connect"))

    await ws_connect(url_for(srv))
    await wait_until(lambda: len(order) == 2)
    assert order == ["connection", "connect"]


async def test_connections_is_a_snapshot_list(make_server, ws_connect, url_for):
    srv = await make_server()
    assert srv.connections == []
    c1 = await ws_connect(url_for(srv))
    await ws_connect(url_for(srv))
    await wait_until(lambda: len(srv.connections) == 2)
    snapshot = srv.connections
    assert isinstance(snapshot, list)
    assert all(isinstance(c, wsevents.Connection) and c.server is srv for c in snapshot)
    snapshot.clear()
    assert len(srv.connections) == 2
    # Broadcasting over it reaches every client.
    for conn in srv.connections:
        conn.send_text("all")
    assert await asyncio.wait_for(c1.recv(), 5) == "all"
    # A snapshot taken before a close keeps the closed connection; a new one does not.
    before = srv.connections
    await asyncio.wait_for(c1.close(1000), 5)
    await wait_until(lambda: len(srv.connections) == 1)
    assert len(before) == 2


async def test_closed_connection_left_connections_before_close_listeners(make_server, ws_connect, url_for):
    srv = await make_server()
    seen: list[object] = []

    @srv.on("connection")
    def on_connection(conn: wsevents.Connection) -> None:
        conn.on(
            "close", lambda code, reason: seen.append((code, conn in srv.connections, len(srv.connections)))
        )

    client = await ws_connect(url_for(srv))
    other = await ws_connect(url_for(srv))
    await wait_until(lambda: len(srv.connections) == 2)
    await asyncio.wait_for(client.close(4000), 5)
    await wait_until(lambda: seen)
    assert seen == [(4000, False, 1)]
    # And for a dropped connection too.
    other.transport.abort()
    await wait_until(lambda: len(seen) == 2)
    assert seen[1] == (1006, False, 0)


# -- close --------------------------------------------------------------------------


async def test_close_stops_accepting_but_keeps_connections(make_server, ws_connect, url_for, echo_handler):
    srv = await make_server(close_timeout=1)
    srv.on("connection", echo_handler)
    server_conns: list[wsevents.Connection] = []
    srv.on("connection", server_conns.append)
    closes: list[int] = []
    srv.on("close", lambda: closes.append(1))
    client = await ws_connect(url_for(srv))
    await wait_until(lambda: server_conns)

    result = srv.close()
    assert result is srv
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(wsevents.connect(url_for(srv)), 5)
    # The existing connection still works both ways.
    client.send_text("still here")
    assert await asyncio.wait_for(client.recv(), 5) == "still here"
    server_conns[0].send_text("from server")
    assert await asyncio.wait_for(client.recv(), 5) == "from server"
    assert closes == []  # not before the last connection ended
    assert srv.connections == [server_conns[0]]

    await asyncio.wait_for(client.close(1000), 5)
    await wait_until(lambda: closes)
    assert closes == [1]
    assert srv.connections == []


async def test_new_connect_after_close_is_refused(make_server, url_for):
    srv = await make_server()
    url = url_for(srv)
    await asyncio.wait_for(srv.close(), 5)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(wsevents.connect(url), 5)


async def test_await_close_waits_for_last_connection(make_server, ws_connect, url_for):
    srv = await make_server()
    client = await ws_connect(url_for(srv))
    await wait_until(lambda: srv.connections)
    closing = asyncio.ensure_future(srv.close())
    await round_trip(client)  # the server ran meanwhile
    assert not closing.done()
    await asyncio.wait_for(client.close(), 5)
    assert await asyncio.wait_for(closing, 5) is srv


async def test_await_close_without_connections(make_server):
    srv = await make_server()
    events: list[int] = []
    srv.on("close", lambda: events.append(1))
    assert await asyncio.wait_for(srv.close(), 5) is srv
    assert events == [1]
    assert srv.socket is None


async def test_close_callback(make_server, ws_connect, url_for):
    srv = await make_server()
    client = await ws_connect(url_for(srv))
    await wait_until(lambda: srv.connections)
    calls: list[tuple[object, ...]] = []
    srv.close(lambda *args: calls.append(args))
    await round_trip(client)  # the server ran meanwhile
    assert calls == []
    await asyncio.wait_for(client.close(), 5)
    await wait_until(lambda: calls)
    assert calls == [()]


async def test_close_event_waits_for_server_initiated_close(make_server, ws_connect, url_for):
    srv = await make_server()
    client = await ws_connect(url_for(srv))
    await wait_until(lambda: srv.connections)
    order: list[str] = []
    srv.connections[0].on("close", lambda code, reason: order.append(f"conn {code}"))
    srv.on("close", lambda: order.append("server"))
    srv.close()
    srv.connections[0].close(1001, "bye")
    await asyncio.wait_for(client.wait_closed(), 5)
    await wait_until(lambda: "server" in order)
    assert order == ["conn 1001", "server"]
    assert client.close_code == 1001
    assert client.close_reason == "bye"


async def test_listen_again_after_close(make_server, ws_connect, url_for):
    srv = await make_server()
    await asyncio.wait_for(srv.close(), 5)
    await asyncio.wait_for(srv.listen(0, "127.0.0.1"), 5)
    conn = await ws_connect(url_for(srv))
    assert conn.ready_state == wsevents.Connection.OPEN
