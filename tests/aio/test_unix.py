"""Unix sockets: ``listen(path=...)``, ``ws+unix://`` / ``wss+unix://`` URLs and the ``unix_path`` option."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import stat
from pathlib import Path

import pytest
import trustme

import wsevents
import wsevents.sync
from helpers import Servers, attach_echo, close_event
from wsevents.protocol.url import parse_url

pytestmark = pytest.mark.timeout(30)

async def _echo_server(servers: Servers, path: str, **options: object) -> wsevents.Server:
    server = wsevents.create_server(attach_echo, close_timeout=1, **options)
    servers.append(server)
    await asyncio.wait_for(server.listen(path=path), 5)
    return server


def _accepted(server: wsevents.Server) -> asyncio.Future[wsevents.Connection]:
    fut: asyncio.Future[wsevents.Connection] = asyncio.get_running_loop().create_future()
    server.on("connection", lambda conn: fut.done() or fut.set_result(conn))
    return fut


def _next_text(conn: wsevents.Connection) -> asyncio.Future[str]:
    fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    conn.on("text", lambda text: fut.done() or fut.set_result(text))
    return fut


def _next_binary(conn: wsevents.Connection) -> asyncio.Future[bytes]:
    fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_binary(stream: wsevents.InStream) -> None:
        data = await stream.read()
        if not fut.done():
            fut.set_result(data)

    conn.on("binary", on_binary)
    return fut


async def test_text_binary_and_close_code_over_a_unix_socket(
    servers: Servers, sock_path: str
) -> None:
    server = await _echo_server(servers, sock_path)
    assert (server.address, server.port) == (sock_path, None)
    assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
    accepted = _accepted(server)
    client = await asyncio.wait_for(wsevents.connect(f"ws+unix://{sock_path}:/chat?room=1"), 5)
    server_conn = await asyncio.wait_for(accepted, 5)
    assert server_conn.path == "/chat?room=1"
    assert server_conn.headers["host"] == "localhost"
    text = _next_text(client)
    client.send_text("héllo")
    assert await asyncio.wait_for(text, 5) == "héllo"
    binary = _next_binary(client)
    client.send_binary(bytes(range(256)) * 300)
    assert await asyncio.wait_for(binary, 5) == bytes(range(256)) * 300
    closed = close_event(server_conn)
    client.close(4001, "bye")
    assert await asyncio.wait_for(closed, 5) == (4001, "bye")
    await asyncio.wait_for(client.wait_closed(), 5)


async def test_the_socket_file_is_removed_on_close(servers: Servers, sock_path: str) -> None:
    server = await _echo_server(servers, sock_path)
    assert os.path.exists(sock_path)
    await asyncio.wait_for(server.close(), 5)
    assert not os.path.exists(sock_path)


async def test_a_client_started_right_after_listen_finds_the_server(
    servers: Servers, sock_path: str
) -> None:
    server = wsevents.create_server(attach_echo, close_timeout=1)
    servers.append(server)
    server.listen(path=sock_path)  # bound before it returns: no await
    client = await asyncio.wait_for(wsevents.connect(f"ws+unix://{sock_path}"), 5)
    assert client.path == "/"
    client.close()
    await asyncio.wait_for(client.wait_closed(), 5)


async def test_the_unix_path_option_keeps_the_urls_host_and_path(
    servers: Servers, sock_path: str
) -> None:
    server = await _echo_server(servers, sock_path)
    accepted = _accepted(server)
    client = await asyncio.wait_for(wsevents.connect("ws://chat.example:8080/room", unix_path=sock_path), 5)
    server_conn = await asyncio.wait_for(accepted, 5)
    assert server_conn.path == "/room"
    assert server_conn.headers["host"] == "chat.example:8080"
    client.close()
    await asyncio.wait_for(client.wait_closed(), 5)


async def test_a_stale_socket_file_is_replaced(servers: Servers, sock_path: str) -> None:
    # A server killed without closing leaves its socket file behind, and nobody accepts there.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(sock_path)
    dead.close()
    assert os.path.exists(sock_path)
    await _echo_server(servers, sock_path)
    client = await asyncio.wait_for(wsevents.connect(f"ws+unix://{sock_path}"), 5)
    client.close()
    await asyncio.wait_for(client.wait_closed(), 5)


async def test_a_live_socket_is_not_taken_over(servers: Servers, sock_path: str) -> None:
    await _echo_server(servers, sock_path)
    second = wsevents.create_server()
    with pytest.raises(OSError) as info:
        await asyncio.wait_for(second.listen(path=sock_path), 5)
    assert info.value.errno == errno.EADDRINUSE
    assert info.value.filename == sock_path
    assert sock_path in str(info.value)
    # The first server still serves there.
    client = await asyncio.wait_for(wsevents.connect(f"ws+unix://{sock_path}"), 5)
    client.close()
    await asyncio.wait_for(client.wait_closed(), 5)


async def test_listening_where_a_plain_file_is_refused_and_leaves_it(sock_path: str) -> None:
    Path(sock_path).write_text("precious")
    with pytest.raises(FileExistsError) as info:
        await asyncio.wait_for(wsevents.create_server().listen(path=sock_path), 5)
    assert info.value.filename == sock_path
    assert "not a socket" in str(info.value)
    assert Path(sock_path).read_text() == "precious"


async def test_connecting_to_a_missing_socket_names_the_path(sock_path: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        await asyncio.wait_for(wsevents.connect(f"ws+unix://{sock_path}:/x"), 5)
    assert info.value.filename == sock_path
    assert sock_path in str(info.value)


async def test_connecting_to_a_file_that_is_not_a_socket_says_so(sock_path: str) -> None:
    Path(sock_path).write_text("")
    with pytest.raises(ConnectionRefusedError) as info:
        await asyncio.wait_for(wsevents.connect("ws://localhost/", unix_path=sock_path), 5)
    assert info.value.filename == sock_path
    assert "not a socket" in str(info.value)


def test_option_mistakes_are_refused_before_any_io(sock_path: str) -> None:
    server = wsevents.create_server()
    with pytest.raises(ValueError, match="takes no port or host"):
        server.listen(8000, path=sock_path)
    with pytest.raises(ValueError, match="names the socket already"):
        wsevents.sync.connect(f"ws+unix://{sock_path}", unix_path=sock_path)
    with pytest.raises(ValueError, match="port and unix_path exclude each other"):
        wsevents.sync.connect("ws://localhost/", unix_path=sock_path, port=80)
    with pytest.raises(ValueError, match="takes no host"):
        wsevents.sync.connect(f"ws+unix://localhost{sock_path}")


async def test_wss_over_a_unix_socket(servers: Servers, sock_path: str) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    server = await _echo_server(servers, sock_path, ssl=server_ctx)
    accepted = _accepted(server)
    client = await asyncio.wait_for(wsevents.connect(f"wss+unix://{sock_path}:/secure", ssl=client_ctx), 5)
    server_conn = await asyncio.wait_for(accepted, 5)
    assert server_conn.path == "/secure"
    assert client.transport is not None
    assert client.transport.get_extra_info("ssl_object").server_hostname == "localhost"
    text = _next_text(client)
    client.send_text("sealed")
    assert await asyncio.wait_for(text, 5) == "sealed"
    client.close(1000)
    await asyncio.wait_for(client.wait_closed(), 5)


def _sync_exchange(url: str) -> tuple[str, bytes]:
    with wsevents.sync.connect(url, close_timeout=2) as conn:
        conn.send("sync hello")
        text = conn.recv(timeout=5)
        conn.send(b"\x00\x01\x02")
        data = conn.recv(timeout=5)
    assert isinstance(text, str) and isinstance(data, bytes)
    return text, data


async def test_the_sync_client_over_a_unix_socket(servers: Servers, sock_path: str) -> None:
    server = await _echo_server(servers, sock_path)
    accepted = _accepted(server)
    exchange = asyncio.to_thread(_sync_exchange, f"ws+unix://{sock_path}:/sync")
    assert await asyncio.wait_for(exchange, 10) == ("sync hello", b"\x00\x01\x02")
    server_conn = await asyncio.wait_for(accepted, 5)
    assert server_conn.path == "/sync"
    assert server_conn.headers["host"] == "localhost"


def test_the_sync_client_names_a_missing_socket(sock_path: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        wsevents.sync.connect("ws://localhost/", unix_path=sock_path)
    assert info.value.filename == sock_path


@pytest.mark.parametrize(
    ("url", "secure", "socket_path", "path"),
    [
        ("ws+unix:///run/app.sock:/chat?room=1", False, "/run/app.sock", "/chat?room=1"),
        ("ws+unix:///run/app.sock", False, "/run/app.sock", "/"),
        ("WSS+UNIX:///run/app.sock:/", True, "/run/app.sock", "/"),
        ("ws+unix:///run/my%20app.sock:/é", False, "/run/my app.sock", "/%C3%A9"),
    ],
)
def test_ws_unix_urls_are_parsed_as_the_ws_package_does(
    url: str, secure: bool, socket_path: str, path: str
) -> None:
    parsed = parse_url(url)
    assert (parsed.secure, parsed.unix_path, parsed.path) == (secure, socket_path, path)
    assert parsed.host_header == "localhost"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ws+unix://host/run/app.sock", "takes no host"),
        ("ws+unix://", "no socket path"),
        ("ws+unix:///run/app.sock:chat", "must start with '/'"),
        ("ws+unix:///run/app.sock:/#top", "fragments are not allowed"),
    ],
)
def test_malformed_ws_unix_urls_say_what_is_wrong(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_url(url)
