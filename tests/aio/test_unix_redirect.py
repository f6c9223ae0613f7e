"""Redirects answered by a server on a Unix socket, for the asyncio and the threaded client.

A relative ``Location`` stays on the same socket with the new resource (same origin: the
credentials follow); an absolute ``ws://`` one goes over TCP like any redirect to another origin
(``Authorization`` and cookies stay behind); ``max_redirects`` counts these hops too. A server
reached over TCP cannot send the client to a Unix socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import wsevents
import wsevents.sync
from helpers import Servers, attach_echo
from proxies import pipe
from wsevents.protocol.proxy import same_origin
from wsevents.protocol.url import parse_url

pytestmark = pytest.mark.timeout(30)

CREDENTIALS = {"Authorization": "Bearer t0k", "Cookie": "s=1", "X-Trace": "abc"}
Seen = list[tuple[str, dict[str, str]]]
Route = Callable[[str], "str | None"]


async def echo_server(servers: Servers, seen: Seen) -> wsevents.Server:
    """A WebSocket echo server on 127.0.0.1 that records each request's path and headers."""

    def verify(request: Any) -> bool:
        seen.append((request.path, {k.lower(): v for k, v in request.headers.items()}))
        return True

    server = wsevents.create_server(attach_echo, close_timeout=1, verify_client=verify)
    servers.append(server)
    await asyncio.wait_for(server.listen(0, "127.0.0.1"), 5)
    return server


async def unix_front(servers: Servers, path: str, route: Route, seen: Seen,
                     backend: int | None = None) -> None:
    """A server on the Unix socket ``path``: it records each request and answers 302 to
    ``route(request path)``, or (None) hands the connection to the WebSocket server on port
    ``backend`` as it came."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        first, headers = _parse_head(head)
        seen.append((first.split(" ")[1], headers))
        location = route(first.split(" ")[1])
        if location is not None or backend is None:
            writer.write(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
        up_writer.write(head)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    servers.append(await asyncio.start_unix_server(handle, path))


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    first, *lines = head.decode("latin-1").split("\r\n")
    pairs = (line.partition(":") for line in lines if line)
    return first, {name.strip().lower(): value.strip() for name, _, value in pairs}


async def echoed_aio(url: str, **options: Any) -> str:
    conn = await asyncio.wait_for(wsevents.connect(url, **options), 5)
    try:
        conn.send_text("hi")
        reply = await asyncio.wait_for(conn.recv(), 5)
        return f"{conn.path} {reply}"
    finally:
        conn.close(1000)
        await asyncio.wait_for(conn.wait_closed(), 5)


def echoed_sync(url: str, **options: Any) -> str:
    with wsevents.sync.connect(url, close_timeout=2, **options) as conn:
        conn.send("hi")
        reply = conn.recv(timeout=5)
        assert isinstance(reply, str)
        return f"{conn.path} {reply}"


async def echoed(client: str, url: str, **options: Any) -> str:
    if client == "aio":
        return await echoed_aio(url, **options)
    return await asyncio.wait_for(asyncio.to_thread(echoed_sync, url, **options), 10)


CLIENTS = pytest.mark.parametrize("client", ["aio", "sync"])


@CLIENTS
async def test_a_relative_location_stays_on_the_socket(client: str, servers: Servers, sock_path: str) -> None:
    seen: Seen = []
    backend_seen: Seen = []
    backend = await echo_server(servers, backend_seen)
    route: Route = lambda p: "next?x=1" if p == "/a/start" else None  # noqa: E731
    await unix_front(servers, sock_path, route, seen, backend.port)
    reply = await echoed(client, f"ws+unix://{sock_path}:/a/start", extra_headers=CREDENTIALS)
    assert reply == "/a/next?x=1 hi"
    assert [p for p, _ in seen] == ["/a/start", "/a/next?x=1"]
    assert [p for p, _ in backend_seen] == ["/a/next?x=1"]
    # The same server: the credentials follow, and Host stays localhost.
    assert seen[1][1]["authorization"] == "Bearer t0k" and seen[1][1]["cookie"] == "s=1"
    assert seen[1][1]["host"] == "localhost"


@CLIENTS
async def test_an_absolute_ws_location_goes_over_tcp_without_credentials(
    client: str, servers: Servers, sock_path: str
) -> None:
    tcp_seen: Seen = []
    tcp = await echo_server(servers, tcp_seen)
    unix_seen: Seen = []
    await unix_front(servers, sock_path, lambda p: f"ws://127.0.0.1:{tcp.port}/over-tcp", unix_seen)
    reply = await echoed(client, f"ws+unix://{sock_path}:/start", extra_headers=CREDENTIALS)
    assert reply == "/over-tcp hi"
    assert [p for p, _ in unix_seen] == ["/start"]
    assert unix_seen[0][1]["authorization"] == "Bearer t0k"
    assert [p for p, _ in tcp_seen] == ["/over-tcp"]
    headers = tcp_seen[0][1]
    assert headers["x-trace"] == "abc" and headers["host"] == f"127.0.0.1:{tcp.port}"
    assert "authorization" not in headers and "cookie" not in headers


@CLIENTS
async def test_max_redirects_counts_the_hops_on_the_socket(client: str, servers: Servers,
                                                           sock_path: str) -> None:
    seen: Seen = []
    await unix_front(servers, sock_path, lambda p: "/again", seen)
    with pytest.raises(wsevents.HandshakeError, match="too many redirects: more than max_redirects=2"):
        await echoed(client, f"ws+unix://{sock_path}:/", max_redirects=2)
    assert [p for p, _ in seen] == ["/", "/again", "/again"]


@CLIENTS
async def test_a_tcp_server_cannot_redirect_to_a_unix_socket(client: str, servers: Servers,
                                                             sock_path: str) -> None:
    unix_seen: Seen = []
    await unix_front(servers, sock_path, lambda p: "/never", unix_seen)
    tcp = await asyncio.start_server(lambda r, w: _redirect_to(r, w, f"ws+unix://{sock_path}:/local"),
                                     "127.0.0.1", 0)
    servers.append(tcp)
    port = tcp.sockets[0].getsockname()[1]
    with pytest.raises(wsevents.HandshakeError, match="cannot send the client to a Unix socket") as info:
        await echoed(client, f"ws://127.0.0.1:{port}/")
    assert info.value.status == 302
    assert unix_seen == []


async def _redirect_to(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, location: str) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    writer.close()


def test_a_unix_socket_and_a_tcp_localhost_are_different_origins() -> None:
    unix = parse_url("ws+unix:///run/app.sock:/")
    assert not same_origin(unix, parse_url("ws://localhost/"))
    assert not same_origin(unix, parse_url("ws+unix:///run/other.sock:/"))
    assert not same_origin(unix, parse_url("wss+unix:///run/app.sock:/"))
    assert same_origin(unix, parse_url("ws+unix:///run/app.sock:/elsewhere"))
