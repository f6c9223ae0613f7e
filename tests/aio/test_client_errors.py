"""Client failures say what happened and what to do: a web page, no TLS for wss://, an unknown host."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import pytest

import wsevents

pytestmark = pytest.mark.timeout(30)


async def _answering(raw_server: Any, response: bytes) -> int:
    """A raw server that reads the request head, answers ``response`` and closes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        writer.close()

    port: int = await raw_server(handler)
    return port


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
@pytest.mark.parametrize("status", [200, 204])
async def test_a_plain_web_server_is_not_a_websocket_endpoint(
    raw_server: Any, version: str, status: int
) -> None:
    page = b"<html>hello</html>"
    head = f"{version} {status} OK\r\nContent-Type: text/html\r\nContent-Length: {len(page)}\r\n\r\n"
    port = await _answering(raw_server, head.encode() + page)
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/"), 5)
    assert str(info.value) == f"the server answered {status} without upgrading: not a WebSocket endpoint"
    assert info.value.status == status


async def test_wss_to_a_plain_server_suggests_ws(echo_server: wsevents.Server) -> None:
    with pytest.raises(ssl.SSLError) as info:
        await asyncio.wait_for(wsevents.connect(f"wss://127.0.0.1:{echo_server.port}/"), 5)
    assert str(info.value).endswith(": the server does not speak TLS (try ws://)")
    assert isinstance(info.value.__cause__, ssl.SSLError)


async def test_an_unknown_host_is_named() -> None:
    # .invalid never resolves (RFC 6761), and fails fast without a network.
    with pytest.raises(socket.gaierror) as info:
        await asyncio.wait_for(wsevents.connect("ws://nosuch.invalid/"), 10)
    assert "cannot resolve host 'nosuch.invalid'" in str(info.value)


async def test_an_unknown_host_given_as_the_host_option_is_named() -> None:
    conn = wsevents.connect("ws://example.com/", host="nosuch.invalid")
    errors: list[BaseException] = []
    conn.on("error", errors.append)
    with pytest.raises(socket.gaierror, match="cannot resolve host 'nosuch.invalid'"):
        await asyncio.wait_for(conn, 10)
    assert len(errors) == 1 and "nosuch.invalid" in str(errors[0])


@pytest.mark.parametrize("limit", [None, 1024])
async def test_an_oversized_response_head_is_called_a_response_head(
    raw_server: Any, limit: int | None
) -> None:
    port = await _answering(raw_server, b"HTTP/1.1 101 Switching Protocols\r\n" + b"X-Pad: " + b"a" * 20_000)
    options: dict[str, Any] = {} if limit is None else {"max_header_size": limit}
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/", **options), 5)
    assert str(info.value) == f"response head over {limit or 16384} bytes (max_header_size)"
    # The server sent no 431: the client must not claim it did.
    assert info.value.status is None


async def test_extra_headers_with_a_line_break_fail_at_the_call_not_after_the_timeout(echo_url: str) -> None:
    with pytest.raises(ValueError, match="header 'X-A': the value .* contains a line break"):
        wsevents.connect(echo_url, extra_headers={"X-A": "v\r\nX-B: 1"}, handshake_timeout=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bye",), "close(code, reason): the code comes first, e.g. close(1000, 'bye')"),
        (("bye", 1001), "close(code, reason): the code comes first, e.g. close(1001, 'bye')"),
    ],
)
async def test_close_with_the_reason_first_says_the_code_comes_first(
    echo_url: str, ws_connect: Any, args: tuple[Any, ...], message: str
) -> None:
    client = await ws_connect(echo_url)
    with pytest.raises(TypeError) as info:
        client.close(*args)
    assert str(info.value) == message
    assert client.ready_state == wsevents.Connection.OPEN
