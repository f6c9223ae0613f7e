"""wsevents.protocol.handshake: the HTTP/1.1 opening handshake, both sides (RFC 6455 section 4)."""

from __future__ import annotations

import base64

import pytest

from wsevents.errors import HandshakeError
from wsevents.protocol.handshake import (
    GUID,
    MAX_HEAD_SIZE,
    MAX_HEADERS,
    Headers,
    Request,
    build_accept_response,
    build_error_response,
    build_request,
    check_request,
    check_response,
    choose_protocol,
    find_head_end,
    generate_key,
    is_upgrade,
    parse_protocols,
    parse_request,
    parse_response,
)
from wsevents.protocol.handshake import accept_key as compute_accept

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

BASE_HEADERS: list[tuple[str, str]] = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
    ("Origin", "http://example.com"),
]


def request_bytes(
    headers: list[tuple[str, str]] | None = None,
    request_line: str = "GET /chat?room=1 HTTP/1.1",
    **changes: str | None,
) -> bytes:
    """A request head; ``changes`` replace (or with None, drop) headers by name, "_" for "-"."""
    hs = list(BASE_HEADERS if headers is None else headers)
    for name, value in changes.items():
        name = name.replace("_", "-")
        hs = [(k, v) for k, v in hs if k.lower() != name.lower()]
        if value is not None:
            hs.append((name, value))
    lines = [request_line] + [f"{k}: {v}" for k, v in hs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def check(data: bytes) -> str:
    return check_request(parse_request(data))


def status_of(data: bytes) -> int | None:
    with pytest.raises(HandshakeError) as info:
        check(data)
    return info.value.status


# -- keys -------------------------------------------------------------------------


def test_accept_key_rfc_example() -> None:
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    assert compute_accept(KEY) == ACCEPT


def test_generate_key_is_fresh_base64_of_16_bytes() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16
        assert check(request_bytes(Sec_WebSocket_Key=key)) == key


# -- find_head_end ------------------------------------------------------------------


def test_find_head_end() -> None:
    head = request_bytes()
    assert find_head_end(head) == len(head)
    assert find_head_end(head + b"\x81\x05Hello") == len(head)
    assert find_head_end(head[:-1]) == -1
    assert find_head_end(b"") == -1
    assert find_head_end(bytearray(head)) == len(head)


def test_find_head_end_default_bound_is_16384() -> None:
    assert MAX_HEAD_SIZE == 16384
    assert find_head_end(b"x" * 16383) == -1
    with pytest.raises(HandshakeError) as info:
        find_head_end(b"x" * 16384)
    assert info.value.status == 431
    head = _head_of_size(16384)
    assert find_head_end(head) == 16384
    with pytest.raises(HandshakeError) as info:
        find_head_end(_head_of_size(16385))
    assert info.value.status == 431


def _head_of_size(size: int) -> bytes:
    """A well-formed request head of exactly ``size`` bytes, CRLF CRLF included."""
    base = request_bytes()
    filler = size - len(base) - len("X-Fill: \r\n")
    assert filler >= 0
    head = request_bytes(X_Fill="f" * filler)
    assert len(head) == size
    return head


@pytest.mark.parametrize("max_size", [300, 1000])
def test_find_head_end_accepts_a_head_of_max_size(max_size: int) -> None:
    head = _head_of_size(max_size)
    assert find_head_end(head, max_size) == max_size
    check(head[: find_head_end(head, max_size)])


@pytest.mark.parametrize("max_size", [300, 1000])
def test_find_head_end_refuses_an_endless_head_with_431(max_size: int) -> None:
    head = _head_of_size(max_size + 100)
    with pytest.raises(HandshakeError) as info:
        find_head_end(head, max_size)
    assert info.value.status == 431
    with pytest.raises(HandshakeError) as info:
        find_head_end(head[:-4], max_size)
    assert info.value.status == 431


@pytest.mark.parametrize("size", [299, 300, 301, 302, 303, 304, 305, 306, 400])
def test_find_head_end_does_not_depend_on_how_the_head_arrives(size: int) -> None:
    # A server calls find_head_end on what it has so far, after each read: the
    # verdict for a whole head must be the same as when it came in one piece.
    max_size = 300
    head = _head_of_size(size)
    try:
        whole: int | None = find_head_end(head, max_size)
    except HandshakeError as exc:
        assert exc.status == 431
        whole = None
    verdict: int | None = -1
    for n in range(1, len(head) + 1):
        try:
            verdict = find_head_end(head[:n], max_size)
        except HandshakeError as exc:
            assert exc.status == 431
            verdict = None
            break
        if verdict != -1:
            break
    assert verdict == whole
    # "head over max_header_size -> 431": the head counts its final CRLF CRLF.
    assert whole == (size if size <= max_size else None)


# -- parse_request / check_request ----------------------------------------------------


def test_valid_request() -> None:
    request = parse_request(request_bytes())
    assert isinstance(request, Request)
    assert request.method == "GET"
    assert request.path == "/chat?room=1"
    assert request.version == "HTTP/1.1"
    assert request.headers["host"] == "server.example.com"
    assert request.headers["Origin"] == "http://example.com"
    assert is_upgrade(request)
    assert check_request(request) == KEY


def test_parse_request_without_the_final_blank_line() -> None:
    data = request_bytes()
    assert parse_request(data[:-4]).headers["sec-websocket-key"] == KEY


def test_header_values_are_stripped() -> None:
    data = b"GET / HTTP/1.1\r\nHost:   h  \r\nUpgrade:\twebsocket\t\r\n\r\n"
    headers = parse_request(data).headers
    assert headers["host"] == "h"
    assert headers["upgrade"] == "websocket"


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.2", "HTTP/2.0"])
def test_http_versions_from_1_1(version: str) -> None:
    assert check(request_bytes(request_line=f"GET / {version}")) == KEY


@pytest.mark.parametrize(
    ("connection", "upgrade"),
    [
        ("Upgrade", "websocket"),
        ("upgrade", "WebSocket"),
        ("UPGRADE", "WEBSOCKET"),
        ("keep-alive, Upgrade", "websocket"),
        ("keep-alive,upgrade", "websocket"),
        ("Upgrade,keep-alive", "websocket"),
        ("keep-alive ,  Upgrade  ", "h2c, websocket"),
        ("keep-alive,Upgrade,close", "websocket,h2c"),
    ],
)
def test_upgrade_and_connection_tokens_in_any_case_and_spacing(connection: str, upgrade: str) -> None:
    assert check(request_bytes(Connection=connection, Upgrade=upgrade)) == KEY


def test_repeated_connection_headers_are_joined() -> None:
    data = request_bytes(
        [*BASE_HEADERS[:2], ("Connection", "keep-alive"), ("Connection", "Upgrade"), *BASE_HEADERS[3:]]
    )
    assert check(data) == KEY


@pytest.mark.parametrize("method", ["POST", "PUT", "HEAD", "OPTIONS", "DELETE", "get"])
def test_non_get_method_is_405(method: str) -> None:
    assert status_of(request_bytes(request_line=f"{method} /chat HTTP/1.1")) == 405


@pytest.mark.parametrize("upgrade", [None, "", "h2c", "websockets", "web socket"])
def test_get_without_upgrade_websocket_is_426(upgrade: str | None) -> None:
    request = parse_request(request_bytes(Upgrade=upgrade))
    assert not is_upgrade(request)
    with pytest.raises(HandshakeError) as info:
        check_request(request)
    assert info.value.status == 426


@pytest.mark.parametrize("version", [None, "", "8", "12", "14", "13, 8", "thirteen"])
def test_bad_or_missing_version_is_426(version: str | None) -> None:
    assert status_of(request_bytes(Sec_WebSocket_Version=version)) == 426


@pytest.mark.parametrize("connection", [None, "", "keep-alive", "close", "upgrades"])
def test_missing_connection_upgrade_is_400(connection: str | None) -> None:
    assert status_of(request_bytes(Connection=connection)) == 400


def test_missing_host_is_400() -> None:
    assert status_of(request_bytes(Host=None)) == 400


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "not base64!!",
        base64.b64encode(b"x" * 15).decode(),
        base64.b64encode(b"x" * 17).decode(),
        base64.b64encode(b"x" * 16).decode()[:-2],  # no padding
        "dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==",
        "dGhlIHNhbXBsZSBub25jZQ\xe9=",
    ],
)
def test_bad_key_is_400(key: str | None) -> None:
    assert status_of(request_bytes(Sec_WebSocket_Key=key)) == 400


def test_repeated_key_is_400() -> None:
    other = base64.b64encode(b"y" * 16).decode()
    assert status_of(request_bytes([*BASE_HEADERS, ("Sec-WebSocket-Key", other)])) == 400
    assert status_of(request_bytes([*BASE_HEADERS, ("Sec-WebSocket-Key", KEY)])) == 400


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n\r\n",
        b"\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n",
        b" / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / FOO/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
        b"GET / HTTP/x.y\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo(st: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\tfolded\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ],
)
def test_malformed_requests_are_400(data: bytes) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_request(data)
    assert info.value.status == 400


def test_header_count_bound_is_431() -> None:
    assert MAX_HEADERS == 128
    extra = [(f"X-H{i}", "v") for i in range(128 - len(BASE_HEADERS))]
    assert check(request_bytes(BASE_HEADERS + extra)) == KEY
    with pytest.raises(HandshakeError) as info:
        parse_request(request_bytes([*BASE_HEADERS, *extra, ("X-One-Too-Many", "v")]))
    assert info.value.status == 431
    with pytest.raises(HandshakeError) as info:
        parse_request(request_bytes(), max_headers=len(BASE_HEADERS) - 1)
    assert info.value.status == 431
    assert parse_request(request_bytes(), max_headers=len(BASE_HEADERS)).headers["host"]


# -- Headers ------------------------------------------------------------------------------


def test_headers_are_case_insensitive() -> None:
    h = Headers([("Content-Type", "text/plain"), ("X-A", "1")])
    assert h["content-type"] == h["CONTENT-TYPE"] == h["Content-Type"] == "text/plain"
    assert "x-a" in h and "X-A" in h and "x-b" not in h
    assert 1 not in h  # type: ignore[comparison-overlap]
    assert h.get("X-a") == "1"
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert list(h) == ["content-type", "x-a"]
    assert dict(h) == {"content-type": "text/plain", "x-a": "1"}
    assert len(h) == 2
    with pytest.raises(KeyError):
        h["missing"]


def test_headers_are_read_only() -> None:
    h = Headers([("A", "1")])
    with pytest.raises(TypeError):
        h["A"] = "2"  # type: ignore[index]
    with pytest.raises(TypeError):
        del h["A"]  # type: ignore[attr-defined]
    assert not hasattr(h, "update")
    assert not hasattr(h, "pop")
    assert not hasattr(h, "clear")
    with pytest.raises(AttributeError):
        h.other = 1  # type: ignore[attr-defined]
    assert h["a"] == "1"


def test_headers_join_repeats() -> None:
    h = Headers([("Accept", "a"), ("X", "1"), ("accept", "b"), ("ACCEPT", "c")])
    assert h["accept"] == "a, b, c"
    assert h.get_all("Accept") == ["a", "b", "c"]
    assert h.get_all("missing") == []
    assert len(h) == 2
    assert h.raw_items() == [("accept", "a"), ("x", "1"), ("accept", "b"), ("accept", "c")]


def test_request_headers_from_the_wire() -> None:
    data = request_bytes([*BASE_HEADERS, ("X-Multi", "1"), ("x-multi", "2")])
    headers = parse_request(data).headers
    assert headers["X-MULTI"] == "1, 2"
    assert headers.get_all("x-multi") == ["1", "2"]
    assert all(name == name.lower() for name in headers)


# -- subprotocols -----------------------------------------------------------------------------


def test_parse_protocols() -> None:
    assert parse_protocols(None) == []
    assert parse_protocols("") == []
    assert parse_protocols("chat") == ["chat"]
    assert parse_protocols("chat, superchat") == ["chat", "superchat"]
    assert parse_protocols(" a ,, b ,") == ["a", "b"]


@pytest.mark.parametrize(
    ("offered", "valid", "chosen"),
    [
        (["b", "a", "c"], ["a", "b"], "b"),
        (["a", "b"], ["b", "a"], "a"),
        (["x", "c"], ["a", "b", "c"], "c"),
        (["x", "y"], ["a"], None),
        ([], ["a"], None),
        (["a"], [], None),
        (["A"], ["a"], None),
    ],
)
def test_choose_protocol_picks_the_clients_most_preferred_valid_one(
    offered: list[str], valid: list[str], chosen: str | None
) -> None:
    assert choose_protocol(offered, valid) == chosen
    assert choose_protocol(offered, iter(valid)) == chosen


# -- building ---------------------------------------------------------------------------------


def test_build_request_exact() -> None:
    assert build_request("server.example.com", "/chat", KEY) == (
        b"GET /chat HTTP/1.1\r\n"
        b"Host: server.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
    )


def test_build_request_with_protocols_and_extra_headers() -> None:
    data = build_request(
        "h:8080", "/p?q=1", KEY, iter(["chat", "superchat"]), [("Origin", "http://o"), ("X-A", "1")]
    )
    assert data == (
        b"GET /p?q=1 HTTP/1.1\r\n"
        b"Host: h:8080\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Origin: http://o\r\n"
        b"X-A: 1\r\n"
        b"\r\n"
    )
    request = parse_request(data)
    assert check_request(request) == KEY
    assert parse_protocols(request.headers.get("sec-websocket-protocol")) == ["chat", "superchat"]


def test_build_accept_response_exact() -> None:
    assert build_accept_response(KEY) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )
    assert build_accept_response(KEY, "chat", [("X-Server", "wsevents")]) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: chat\r\n"
        b"X-Server: wsevents\r\n"
        b"\r\n"
    )
    assert b"Sec-WebSocket-Protocol" not in build_accept_response(KEY, "")


def test_build_error_response_exact() -> None:
    assert build_error_response(405, [("Allow", "GET")]) == (
        b"HTTP/1.1 405 Method Not Allowed\r\n"
        b"Allow: GET\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 23\r\n"
        b"Connection: close\r\n"
        b"\r\n"
        b"405 Method Not Allowed\n"
    )
    assert build_error_response(426, [("Sec-WebSocket-Version", "13")]) == (
        b"HTTP/1.1 426 Upgrade Required\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 21\r\n"
        b"Connection: close\r\n"
        b"\r\n"
        b"426 Upgrade Required\n"
    )


def test_build_error_response_with_a_body_and_its_content_type() -> None:
    assert build_error_response(200, [("content-type", "text/html")], b"<p>hi</p>") == (
        b"HTTP/1.1 200 OK\r\n"
        b"content-type: text/html\r\n"
        b"Content-Length: 9\r\n"
        b"Connection: close\r\n"
        b"\r\n"
        b"<p>hi</p>"
    )
    assert build_error_response(599, body=b"").startswith(b"HTTP/1.1 599 Error\r\n")
    assert build_error_response(599, body=b"").endswith(b"Content-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize("status", [400, 403, 404, 431, 500, 503])
def test_build_error_response_parses_back(status: int) -> None:
    data = build_error_response(status)
    end = find_head_end(data)
    response = parse_response(data[:end])
    assert response.status == status
    assert int(response.headers["content-length"]) == len(data) - end
    with pytest.raises(HandshakeError) as info:
        check_response(response, KEY, [])
    assert info.value.status == status


@pytest.mark.parametrize("bad", ["a\r\nInjected: 1", "a\nb", "a\rb", "\r\n"])
def test_header_values_with_line_breaks_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        build_request("h", "/", KEY, extra_headers=[("X-A", bad)])
    with pytest.raises(ValueError):
        build_request("h", "/", KEY, extra_headers=[(bad, "v")])
    with pytest.raises(ValueError):
        build_request(bad, "/", KEY)
    with pytest.raises(ValueError):
        build_request("h", "/", KEY, protocols=[bad])
    with pytest.raises(ValueError):
        build_accept_response(KEY, extra_headers=[("X-A", bad)])
    with pytest.raises(ValueError):
        build_accept_response(KEY, protocol=bad)
    with pytest.raises(ValueError):
        build_error_response(400, [("X-A", bad)])
    with pytest.raises(ValueError):
        build_error_response(400, [(bad, "v")])


# -- parse_response / check_response ------------------------------------------------------------


def response_bytes(status_line: str = "HTTP/1.1 101 Switching Protocols", **changes: str | None) -> bytes:
    hs = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ACCEPT)]
    for name, value in changes.items():
        name = name.replace("_", "-")
        hs = [(k, v) for k, v in hs if k.lower() != name.lower()]
        if value is not None:
            hs.append((name, value))
    return ("\r\n".join([status_line] + [f"{k}: {v}" for k, v in hs]) + "\r\n\r\n").encode("latin-1")


def check_resp(data: bytes, protocols: list[str] | None = None) -> str | None:
    return check_response(parse_response(data), KEY, protocols or [])


def test_valid_response() -> None:
    response = parse_response(build_accept_response(KEY))
    assert response.status == 101
    assert response.reason == "Switching Protocols"
    assert response.version == "HTTP/1.1"
    assert response.headers["sec-websocket-accept"] == ACCEPT
    assert check_response(response, KEY, []) is None


@pytest.mark.parametrize(
    ("connection", "upgrade"),
    [("upgrade", "WebSocket"), ("keep-alive, Upgrade", "websocket"), ("keep-alive,upgrade", "WEBSOCKET")],
)
def test_response_tokens_in_any_case(connection: str, upgrade: str) -> None:
    assert check_resp(response_bytes(Connection=connection, Upgrade=upgrade)) is None


@pytest.mark.parametrize("status", [200, 301, 400, 403, 404, 426, 500, 503])
def test_non_101_is_a_handshake_error_with_that_status(status: int) -> None:
    data = f"HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\n\r\n".encode()
    with pytest.raises(HandshakeError) as info:
        check_resp(data)
    assert info.value.status == status
    assert str(status) in str(info.value)


def _fails(data: bytes, protocols: list[str] | None = None) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        check_resp(data, protocols)
    return info.value


@pytest.mark.parametrize(
    "accept",
    [None, "", KEY, compute_accept("x" + KEY), ACCEPT.lower(), ACCEPT + " x"],
)
def test_wrong_accept_key(accept: str | None) -> None:
    error = _fails(response_bytes(Sec_WebSocket_Accept=accept))
    assert error.status is None
    assert "Accept" in str(error)


@pytest.mark.parametrize("upgrade", [None, "", "h2c"])
def test_missing_upgrade_in_the_response(upgrade: str | None) -> None:
    error = _fails(response_bytes(Upgrade=upgrade))
    assert error.status is None
    assert "Upgrade" in str(error)


@pytest.mark.parametrize("connection", [None, "", "keep-alive"])
def test_missing_connection_upgrade_in_the_response(connection: str | None) -> None:
    error = _fails(response_bytes(Connection=connection))
    assert error.status is None
    assert "Connection" in str(error)


def test_unoffered_extension() -> None:
    error = _fails(response_bytes(Sec_WebSocket_Extensions="permessage-deflate"))
    assert error.status is None
    assert "extension" in str(error)


@pytest.mark.parametrize("asked", [[], ["chat"], ["chat", "superchat"]])
def test_unoffered_protocol(asked: list[str]) -> None:
    error = _fails(response_bytes(Sec_WebSocket_Protocol="other"), asked)
    assert error.status is None
    assert "other" in str(error)


def test_asked_protocols_and_none_negotiated() -> None:
    error = _fails(response_bytes(), ["chat", "superchat"])
    assert str(error) == "Invalid handshake: no protocol was negotiated"
    assert error.status is None


@pytest.mark.parametrize("chosen", ["chat", "superchat", " superchat "])
def test_agreed_protocol_is_returned(chosen: str) -> None:
    assert check_resp(response_bytes(Sec_WebSocket_Protocol=chosen), ["chat", "superchat"]) == chosen.strip()


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.0 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 1010 Nope\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nno colon\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n folded\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    ],
)
def test_malformed_responses(data: bytes) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_response(data)
    assert info.value.status is None


def test_response_header_count_bound() -> None:
    data = response_bytes(**{f"X_H{i}": "v" for i in range(10)})
    assert parse_response(data, max_headers=13).headers["x-h9"] == "v"
    with pytest.raises(HandshakeError):
        parse_response(data, max_headers=12)


def test_response_without_a_reason_phrase() -> None:
    response = parse_response(b"HTTP/1.1 403\r\n\r\n")
    assert response.status == 403
    with pytest.raises(HandshakeError) as info:
        check_response(response, KEY, [])
    assert info.value.status == 403


def test_a_whole_handshake_between_the_two_sides() -> None:
    key = generate_key()
    request = parse_request(build_request("localhost:9000", "/ws", key, ["v2", "v1"]))
    assert check_request(request) == key
    offered = parse_protocols(request.headers.get("sec-websocket-protocol"))
    protocol = choose_protocol(offered, ["v1", "v2"])
    assert protocol == "v2"
    response = parse_response(build_accept_response(key, protocol))
    assert check_response(response, key, ["v2", "v1"]) == "v2"
