"""The server's HTTP side byte for byte: rejections (status, headers, socket closed), accepted variants."""

from __future__ import annotations

import asyncio
import base64
import os
import socket

import pytest

import wsevents
from wsevents.protocol.handshake import accept_key

pytestmark = pytest.mark.timeout(30)

KEY = base64.b64encode(b"0123456789abcdef").decode()

_BASE = {
    "Host": "127.0.0.1",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": KEY,
    "Sec-WebSocket-Version": "13",
}


def _request(
    request_line: str = "GET /chat HTTP/1.1",
    extra: list[tuple[str, str]] | None = None,
    **headers: str | None,
) -> bytes:
    """An upgrade request; keyword ``Sec_WebSocket_Key="..."`` replaces a header, ``=None`` drops it."""
    fields = dict(_BASE)
    for name, value in headers.items():
        name = name.replace("_", "-")
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    lines = [request_line, *(f"{k}: {v}" for k, v in fields.items()), *(f"{k}: {v}" for k, v in extra or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _exchange(port: int, data: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send ``data``, read until the server closes; the status line, headers (lower-cased names), body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        raw = await asyncio.wait_for(reader.read(), 5)  # returns only once the server closed the socket
    finally:
        writer.transport.abort()
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete HTTP head in {raw[:200]!r}"
    status, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


async def _check_still_serving(server: wsevents.Server, ws_connect) -> None:
    conn = await ws_connect(f"ws://127.0.0.1:{server.port}/after")
    conn.send_text("still serving")
    assert await asyncio.wait_for(conn.recv(), 5) == "still serving"


REJECTIONS = [
    pytest.param(
        _request("POST /chat HTTP/1.1"), "HTTP/1.1 405 Method Not Allowed", ("allow", "GET"), id="post"
    ),
    pytest.param(
        _request("PUT /chat HTTP/1.1"), "HTTP/1.1 405 Method Not Allowed", ("allow", "GET"), id="put"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "HTTP/1.1 426 Upgrade Required",
        ("upgrade", "websocket"),
        id="plain-get",
    ),
    pytest.param(
        _request(Upgrade=None), "HTTP/1.1 426 Upgrade Required", ("upgrade", "websocket"), id="no-upgrade"
    ),
    pytest.param(
        _request(Upgrade="h2c"), "HTTP/1.1 426 Upgrade Required", ("upgrade", "websocket"), id="upgrade-h2c"
    ),
    pytest.param(
        _request(Sec_WebSocket_Version=None),
        "HTTP/1.1 426 Upgrade Required",
        ("sec-websocket-version", "13"),
        id="no-version",
    ),
    pytest.param(
        _request(Sec_WebSocket_Version="8"),
        "HTTP/1.1 426 Upgrade Required",
        ("sec-websocket-version", "13"),
        id="version-8",
    ),
    pytest.param(_request(Host=None), "HTTP/1.1 400 Bad Request", None, id="no-host"),
    pytest.param(_request(Connection=None), "HTTP/1.1 400 Bad Request", None, id="no-connection"),
    pytest.param(
        _request(Connection="keep-alive"), "HTTP/1.1 400 Bad Request", None, id="connection-keep-alive"
    ),
    pytest.param(_request(Sec_WebSocket_Key=None), "HTTP/1.1 400 Bad Request", None, id="no-key"),
    pytest.param(
        _request(Sec_WebSocket_Key="not base64!!"), "HTTP/1.1 400 Bad Request", None, id="key-not-base64"
    ),
    pytest.param(
        _request(Sec_WebSocket_Key=base64.b64encode(b"x" * 15).decode()),
        "HTTP/1.1 400 Bad Request",
        None,
        id="key-15-bytes",
    ),
    pytest.param(
        _request(extra=[("Sec-WebSocket-Key", KEY)]), "HTTP/1.1 400 Bad Request", None, id="key-repeated"
    ),
    pytest.param(_request("GET /chat HTTP/1.0"), "HTTP/1.1 400 Bad Request", None, id="http-1.0"),
    pytest.param(_request("GET /chat"), "HTTP/1.1 400 Bad Request", None, id="no-version-in-request-line"),
    pytest.param(_request("GET  /chat HTTP/1.1"), "HTTP/1.1 400 Bad Request", None, id="double-space"),
    pytest.param(
        _request(extra=[("Bad Header", "x")]), "HTTP/1.1 400 Bad Request", None, id="bad-header-name"
    ),
    pytest.param(
        _request().replace(b"Host: 127.0.0.1\r\n", b"Host 127.0.0.1\r\n"),
        "HTTP/1.1 400 Bad Request",
        None,
        id="header-without-colon",
    ),
    pytest.param(b"HELLO\r\n\r\n", "HTTP/1.1 400 Bad Request", None, id="garbage-hello"),
    pytest.param(
        _request(extra=[("X-Big", "a" * (17 * 1024))]),
        "HTTP/1.1 431 Request Header Fields Too Large",
        None,
        id="17-kib-of-headers",
    ),
    pytest.param(
        _request(extra=[(f"X-H{i}", "v") for i in range(200)]),
        "HTTP/1.1 431 Request Header Fields Too Large",
        None,
        id="200-header-lines",
    ),
]


@pytest.mark.parametrize(("data", "status", "header"), REJECTIONS)
async def test_rejection(echo_server, ws_connect, data, status, header):
    connections: list[object] = []
    echo_server.on("connection", connections.append)
    got_status, headers, body = await _exchange(echo_server.port, data)
    assert got_status == status
    if header is not None:
        name, value = header
        assert headers[name] == value
    assert headers["connection"].lower() == "close"
    assert int(headers["content-length"]) == len(body)
    assert "sec-websocket-accept" not in headers
    assert connections == []
    await _check_still_serving(echo_server, ws_connect)


async def test_tls_client_hello_on_plain_port_gets_400(echo_server, ws_connect):
    # The start of a TLS ClientHello: no CRLF at all, and the client then waits for an answer.
    hello = b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + os.urandom(32) + b"\x00\x00\x02\x13\x01\x01\x00"
    status, headers, _ = await _exchange(echo_server.port, hello)
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["connection"].lower() == "close"
    await _check_still_serving(echo_server, ws_connect)


async def test_header_limits_are_options(make_server):
    server = await make_server(max_header_size=1024, max_headers=10)
    status, _, _ = await _exchange(server.port, _request(extra=[("X-Big", "a" * 1100)]))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    status, _, _ = await _exchange(server.port, _request(extra=[(f"X-H{i}", "v") for i in range(6)]))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    # Within the limits: accepted.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(_request(extra=[(f"X-H{i}", "v") for i in range(5)]))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    writer.transport.abort()


@pytest.mark.parametrize("step", [1, 7])
async def test_request_split_across_writes_is_accepted(echo_server, step):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server.port)
    writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = _request()
    for i in range(0, len(data), step):
        writer.write(data[i : i + step])
        await writer.drain()
        await asyncio.sleep(0.001)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    writer.transport.abort()


# -- accepted requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        ("websocket", "Upgrade"),
        ("WebSocket", "Upgrade"),
        ("WEBSOCKET", "UPGRADE"),
        ("websocket", "keep-alive, Upgrade"),
        ("websocket", "keep-alive,upgrade"),
        ("websocket", "Upgrade, keep-alive"),
        ("websocket", "keep-alive ,  Upgrade"),
    ],
)
async def test_upgrade_and_connection_variants_accepted(echo_server, raw_ws, upgrade, connection):
    reader, writer = await raw_ws.connect_raw(echo_server.port)
    writer.write(_request(Upgrade=upgrade, Connection=connection))
    head = (await raw_ws.read_head(reader)).decode("latin-1")
    lines = head.split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    assert headers["sec-websocket-accept"] == accept_key(KEY)
    assert headers["upgrade"].lower() == "websocket"
    assert headers["connection"].lower() == "upgrade"
    assert "sec-websocket-protocol" not in headers
    # And it is a working WebSocket.
    writer.write(raw_ws.frame(1, b"variant"))
    frame = await raw_ws.read_frame(reader)
    assert (frame.opcode, frame.payload, frame.masked) == (1, b"variant", False)


async def test_accept_key_of_rfc_example(echo_server, raw_ws):
    reader, writer = await raw_ws.connect_raw(echo_server.port)
    writer.write(_request(Sec_WebSocket_Key="dGhlIHNhbXBsZSBub25jZQ=="))
    head = await raw_ws.read_head(reader)
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head


async def test_frame_in_same_write_as_handshake_is_not_lost(echo_server, raw_ws):
    reader, writer = await raw_ws.connect_raw(echo_server.port)
    writer.write(_request() + raw_ws.frame(1, b"right behind the head") + raw_ws.frame(2, b"\x01\x02"))
    head = await raw_ws.read_head(reader)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    first = await raw_ws.read_frame(reader)
    second = await raw_ws.read_frame(reader)
    assert (first.opcode, first.payload) == (1, b"right behind the head")
    assert (second.opcode, second.payload) == (2, b"\x01\x02")


async def test_path_and_headers_from_raw_request(echo_server, raw_ws):
    seen: list[wsevents.Connection] = []
    echo_server.on("connection", seen.append)
    reader, writer = await raw_ws.connect_raw(echo_server.port)
    writer.write(_request("GET /room/1?user=ann&x=%20 HTTP/1.1", extra=[("X-Mixed-Case", "Value")]))
    await raw_ws.read_head(reader)
    for _ in range(500):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert seen[0].path == "/room/1?user=ann&x=%20"
    assert seen[0].headers["x-mixed-case"] == "Value"


# -- handshake timeout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent", [b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n", b""], ids=["half-request", "nothing"]
)
async def test_handshake_timeout_drops_slow_client(make_server, ws_connect, raw_ws, sent):
    server = await make_server(handshake_timeout=0.5)
    server.on("connection", lambda conn: conn.on("text", conn.send_text))
    connections: list[object] = []
    server.on("connection", connections.append)
    reader, writer = await raw_ws.connect_raw(server.port)
    writer.write(sent)
    rest = await asyncio.wait_for(reader.read(), 5)  # the end of TCP (an EOF or a reset) ...
    assert rest == b""  # ... without an answer
    assert connections == []
    await _check_still_serving(server, ws_connect)
    assert len(connections) == 1
