"""The exception tree: each subclass raised where its docstring promises, every one caught by
the base it had before it existed, and the close code alone deciding OK vs Error."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import wsevents
import wsevents.sync
from wsevents import errors
from wsevents.protocol.deflate import DeflateConfig, client_accept
from wsevents.protocol.handshake import (
    Headers,
    Request,
    Response,
    accept_key,
    check_request,
    check_response,
    find_head_end,
    parse_request,
    parse_response,
)
from wsevents.protocol.proxy import check_connect_response, parse_proxy, redirect_target
from wsevents.protocol.url import parse_url

pytestmark = pytest.mark.timeout(30)

# Each subclass and the class that ``except`` clauses written before it used.
TREE = {
    "InvalidURI": "WebSocketError",
    "InvalidStatus": "HandshakeError",
    "InvalidMessage": "HandshakeError",
    "InvalidUpgrade": "HandshakeError",
    "NegotiationError": "HandshakeError",
    "ProxyError": "HandshakeError",
    "HandshakeTimeout": "HandshakeError",
    "MessageTooBig": "ProtocolError",
    "ConcurrencyError": "InvalidState",
    "ConnectionClosedOK": "ConnectionClosed",
    "ConnectionClosedError": "ConnectionClosed",
}

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
PROXY = parse_proxy("http://proxy:3128")


@pytest.mark.parametrize(("name", "base"), TREE.items())
def test_each_subclass_is_caught_by_its_old_base(name: str, base: str) -> None:
    cls = getattr(wsevents, name)
    assert cls is getattr(errors, name)
    assert issubclass(cls, getattr(wsevents, base))
    assert issubclass(cls, wsevents.WebSocketError)
    assert name in errors.__doc__  # drawn in the tree of the module docstring


def test_a_bad_url_is_still_a_value_error() -> None:
    # Before InvalidURI, parse_url raised ValueError: `except ValueError` keeps working.
    assert issubclass(wsevents.InvalidURI, ValueError)
    for url in ("http://example.com/", "ws://", "ws://host/#frag", 42):
        with pytest.raises(ValueError) as info:
            parse_url(url)  # type: ignore[arg-type]
        assert type(info.value) is wsevents.InvalidURI


@pytest.mark.parametrize(("code", "cls"), [
    (1000, wsevents.ConnectionClosedOK),
    (1001, wsevents.ConnectionClosedOK),
    (1002, wsevents.ConnectionClosedError),
    (1005, wsevents.ConnectionClosedError),
    (1006, wsevents.ConnectionClosedError),
    (1011, wsevents.ConnectionClosedError),
    (4000, wsevents.ConnectionClosedError),
])
def test_the_close_code_decides_ok_or_error(code: int, cls: type[wsevents.ConnectionClosed]) -> None:
    closed = wsevents.ConnectionClosed(code, "bye")
    assert type(closed) is cls
    assert (closed.code, closed.reason, str(closed)) == (code, "bye", f"connection closed: {code} bye")
    with pytest.raises(wsevents.ConnectionClosed):
        raise closed
    # A subclass named explicitly is kept as named.
    assert type(cls(code)) is cls


# -- the sans-I/O raise sites -------------------------------------------------------


def _response(status: int, **headers: str) -> Response:
    return Response(status, "", "HTTP/1.1", Headers(list(headers.items())))


def _upgrade(**extra: str) -> Response:
    headers = {"upgrade": "websocket", "connection": "Upgrade", "sec-websocket-accept": accept_key(KEY)}
    return _response(101, **{**headers, **extra})


@pytest.mark.parametrize(("call", "cls", "status"), [
    (lambda: find_head_end(b"x" * 100, 100), wsevents.InvalidMessage, 431),
    (lambda: find_head_end(b"x" * 100, 100, response=True), wsevents.InvalidMessage, None),
    (lambda: parse_request(b"GET /\r\n\r\n"), wsevents.InvalidMessage, 400),
    (lambda: parse_response(b"HTTP/1.1 abc Nope\r\n\r\n"), wsevents.InvalidMessage, None),
    (lambda: check_request(Request("POST", "/", "HTTP/1.1", Headers([]))), wsevents.InvalidUpgrade, 405),
    (lambda: check_request(Request("GET", "/", "HTTP/1.1", Headers([]))), wsevents.InvalidUpgrade, 426),
    (lambda: check_response(_response(404), KEY, []), wsevents.InvalidStatus, 404),
    (lambda: check_response(_response(200), KEY, []), wsevents.InvalidStatus, 200),
    (lambda: check_response(_upgrade(**{"sec-websocket-accept": "x"}), KEY, []),
     wsevents.InvalidUpgrade, None),
    (lambda: check_response(_upgrade(**{"sec-websocket-protocol": "b"}), KEY, ["a"]),
     wsevents.NegotiationError, None),
    (lambda: check_response(_upgrade(), KEY, ["a"]), wsevents.NegotiationError, None),
    (lambda: check_response(_upgrade(**{"sec-websocket-extensions": "x"}), KEY, []),
     wsevents.NegotiationError, None),
    (lambda: client_accept("permessage-deflate; bogus=1", DeflateConfig()), wsevents.NegotiationError, None),
    (lambda: check_connect_response(_response(407), PROXY), wsevents.ProxyError, 407),
    (lambda: check_connect_response(_response(502), PROXY), wsevents.ProxyError, 502),
    (lambda: redirect_target(parse_url("ws://a/"), _response(302)), wsevents.InvalidStatus, 302),
    (lambda: redirect_target(parse_url("ws://a/"), _response(302, location="ftp://b/")),
     wsevents.InvalidStatus, 302),
    (lambda: redirect_target(parse_url("wss://a/"), _response(302, location="ws://b/")),
     wsevents.InvalidStatus, 302),
])
def test_handshake_failures_raise_the_precise_subclass(call: Any, cls: type[wsevents.HandshakeError],
                                                       status: int | None) -> None:
    with pytest.raises(wsevents.HandshakeError) as info:
        call()
    assert type(info.value) is cls
    assert info.value.status == status


# -- through the asyncio client -------------------------------------------------------


async def test_a_refused_upgrade_is_an_invalid_status(make_server: Any, url_for: Any) -> None:
    server = await make_server(verify_client=lambda info: False)
    with pytest.raises(wsevents.InvalidStatus) as info:
        await asyncio.wait_for(wsevents.connect(url_for(server)), 5)
    assert info.value.status == 403


async def test_a_server_that_never_answers_is_a_handshake_timeout(raw_server: Any) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # the request, then nothing until the client gives up

    port = await raw_server(silent)
    with pytest.raises(wsevents.HandshakeTimeout, match="opening handshake timed out"):
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/", handshake_timeout=0.2), 5)


async def test_too_many_redirects_is_an_invalid_status(raw_server: Any) -> None:
    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    port = await raw_server(redirect)
    with pytest.raises(wsevents.InvalidStatus, match="too many redirects") as info:
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{port}/", max_redirects=1), 5)
    assert info.value.status == 302


@pytest.mark.parametrize(("code", "cls"), [
    (1000, wsevents.ConnectionClosedOK),
    (1001, wsevents.ConnectionClosedOK),
    (4000, wsevents.ConnectionClosedError),
    (1011, wsevents.ConnectionClosedError),
])
async def test_recv_after_a_close_raises_by_its_code(make_pair: Any, code: int,
                                                     cls: type[wsevents.ConnectionClosed]) -> None:
    _, server_conn, client = await make_pair()
    server_conn.close(code, "bye")
    with pytest.raises(wsevents.ConnectionClosed) as info:
        await asyncio.wait_for(client.recv(), 5)
    assert type(info.value) is cls
    assert (info.value.code, info.value.reason) == (code, "bye")


async def test_a_dropped_connection_is_a_connection_closed_error(make_pair: Any) -> None:
    _, server_conn, client = await make_pair()
    assert server_conn.transport is not None
    server_conn.transport.abort()
    with pytest.raises(wsevents.ConnectionClosedError) as info:
        await asyncio.wait_for(client.recv(), 5)
    assert info.value.code == 1006


# -- through the threaded client --------------------------------------------------------


def test_the_sync_client_times_out_with_a_handshake_timeout() -> None:
    # A listening socket that never accepts: TCP connects (the backlog), no answer ever comes.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(wsevents.HandshakeTimeout, match="timed out in the opening handshake"):
            wsevents.sync.connect(f"ws://127.0.0.1:{port}/", handshake_timeout=0.2)


def test_the_sync_client_refuses_a_bad_url_with_invalid_uri() -> None:
    with pytest.raises(wsevents.InvalidURI):
        wsevents.sync.connect("http://127.0.0.1/")
