"""wsevents.protocol.opening: both sides of the opening handshake, driven by bytes only.

Heads are fed whole and cut anywhere (Hypothesis); the decisions (state,
status, protocol, extensions) and the bytes to write must not depend on the cuts.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsevents.errors import HandshakeError, InvalidMessage, InvalidStatus, InvalidUpgrade, NegotiationError
from wsevents.options import ClientOptions, ServerOptions, merge_options
from wsevents.protocol.deflate import DeflateConfig, client_offer
from wsevents.protocol.handshake import (
    accept_key,
    build_accept_response,
    build_error_response,
    parse_response,
)
from wsevents.protocol.opening import ClientHandshake, HandshakeState, ServerHandshake
from wsevents.protocol.url import parse_url

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SPLITS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def request(*lines: str, start: str = "GET /chat?room=1 HTTP/1.1") -> bytes:
    """An upgrade request head with ``lines`` added (``"-Name"`` drops a default header)."""
    headers = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    extra = []
    for line in lines:
        if line.startswith("-"):
            headers.pop(line[1:])
        else:
            name, _, value = line.partition(": ")
            if name in headers:
                headers[name] = value
            else:
                extra.append(line)
    all_lines = [start] + [f"{k}: {v}" for k, v in headers.items()] + extra
    return ("\r\n".join(all_lines) + "\r\n\r\n").encode("latin-1")


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


cut_lists = st.lists(st.integers(min_value=0, max_value=400), max_size=12)


def state(handshake: ServerHandshake | ClientHandshake) -> HandshakeState:
    """The state read afresh (mypy narrows ``handshake.state`` across the calls that change it)."""
    return handshake.state


def server(data: bytes, **kwargs: object) -> ServerHandshake:
    handshake = ServerHandshake(**kwargs)  # type: ignore[arg-type]
    handshake.receive_data(data)
    return handshake


# -- server: accepting ----------------------------------------------------------


@SPLITS
@given(cuts=cut_lists)
def test_server_accepts_a_request_cut_anywhere(cuts: list[int]) -> None:
    frames = b"\x81\x85abcdefghi"
    handshake = ServerHandshake()
    for piece in pieces(request("Sec-WebSocket-Protocol: a, b") + frames, cuts):
        handshake.receive_data(piece)
    assert handshake.state is HandshakeState.UPGRADE
    assert handshake.request is not None and handshake.request.path == "/chat?room=1"
    assert handshake.key == KEY
    assert handshake.offered == ["a", "b"]
    assert handshake.leftover == frames
    assert handshake.data_to_send() == b""
    assert handshake.admit(False)
    assert handshake.verify(True)
    assert handshake.accept("b")
    assert state(handshake) is HandshakeState.ACCEPTED
    assert handshake.status == 101
    assert handshake.protocol == "b"
    assert handshake.data_to_send() == build_accept_response(KEY, "b")
    assert handshake.data_to_send() == b""


def test_server_negotiates_permessage_deflate() -> None:
    config = DeflateConfig()
    handshake = server(request(f"Sec-WebSocket-Extensions: {client_offer(config)}"), deflate=config)
    assert handshake.accept(None)
    assert handshake.deflate is not None
    response = parse_response(handshake.data_to_send())
    assert response.status == 101
    assert response.headers["sec-websocket-extensions"].startswith("permessage-deflate")
    assert response.headers["sec-websocket-accept"] == accept_key(KEY)


def test_server_without_compression_ignores_the_offer() -> None:
    handshake = server(request("Sec-WebSocket-Extensions: permessage-deflate"))
    assert handshake.accept(None)
    assert handshake.deflate is None
    assert b"Extensions" not in handshake.data_to_send()


@pytest.mark.parametrize("chosen", [None, ""])
def test_server_accepts_without_a_subprotocol(chosen: str | None) -> None:
    handshake = server(request("Sec-WebSocket-Protocol: a"))
    assert handshake.accept(chosen)
    assert handshake.protocol is None
    assert b"Sec-WebSocket-Protocol" not in handshake.data_to_send()


@pytest.mark.parametrize("chosen", [1, b"a", ["a"], False])
def test_server_refuses_a_non_str_subprotocol_with_500(chosen: object) -> None:
    handshake = server(request("Sec-WebSocket-Protocol: a"))
    assert not handshake.accept(chosen)
    assert handshake.state is HandshakeState.REFUSED
    assert handshake.status == 500
    assert handshake.problem == f"select_protocol returned {chosen!r}, not a str or None"
    assert handshake.data_to_send() == build_error_response(500)


def test_server_keeps_bytes_after_the_head_for_the_frame_core() -> None:
    handshake = server(request() + b"x")
    handshake.receive_data(b"more")
    handshake.receive_eof()
    assert handshake.state is HandshakeState.UPGRADE
    assert handshake.leftover == b"xmore"


def test_server_hands_on_the_handshake_timeout() -> None:
    assert ServerHandshake(timeout=2.5).timeout == 2.5
    assert ServerHandshake().timeout is None


# -- server: refusing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "header"),
    [
        (request(start="POST /chat HTTP/1.1"), 405, b"Allow: GET"),
        (request("-Upgrade"), 426, b"Upgrade: websocket"),
        (request("Sec-WebSocket-Version: 8"), 426, b"Sec-WebSocket-Version: 13"),
        (request("-Connection"), 400, None),
        (request("-Host"), 400, None),
        (request("Sec-WebSocket-Key: short"), 400, None),
        (request(start="GET /chat HTTP/1.0"), 400, None),
        (request(start="GET /chat"), 400, None),
        (request(" folded"), 400, None),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, None),
    ],
    ids=["post", "no-upgrade", "version", "no-connection", "no-host", "key", "http10", "line", "fold", "tls"],
)
def test_server_refuses_bad_requests_with_their_status(
    data: bytes, status: int, header: bytes | None
) -> None:
    handshake = server(data)
    assert handshake.state is HandshakeState.REFUSED
    assert isinstance(handshake.error, HandshakeError)
    assert handshake.error.status == status
    assert handshake.status == status
    out = handshake.data_to_send()
    assert out.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Connection: close\r\n" in out
    if header is not None:
        assert header + b"\r\n" in out


@SPLITS
@given(cuts=cut_lists, size=st.integers(min_value=200, max_value=400))
def test_server_refuses_an_oversize_head_with_431_however_cut(cuts: list[int], size: int) -> None:
    data = request("X-Pad: " + "a" * 600)
    handshake = ServerHandshake(max_header_size=size)
    for piece in pieces(data, cuts):
        handshake.receive_data(piece)
        if handshake.state is not HandshakeState.READING:
            break
    assert handshake.state is HandshakeState.REFUSED
    assert isinstance(handshake.error, InvalidMessage)
    assert handshake.status == 431
    assert handshake.data_to_send().startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_server_takes_a_head_of_exactly_max_header_size() -> None:
    data = request()
    assert server(data, max_header_size=len(data)).state is HandshakeState.UPGRADE
    assert server(data, max_header_size=len(data) - 1).status == 431


def test_server_refuses_too_many_headers_with_431() -> None:
    handshake = server(request("A: 1", "B: 2"), max_headers=6)
    assert handshake.status == 431


def test_server_eof_before_the_head_fails_without_a_response() -> None:
    handshake = server(request()[:20])
    handshake.receive_eof()
    assert handshake.state is HandshakeState.FAILED
    assert isinstance(handshake.error, InvalidMessage)
    assert handshake.error.status is None
    assert handshake.data_to_send() == b""


def test_server_admission_full_is_503() -> None:
    handshake = server(request())
    assert not handshake.admit(True)
    assert handshake.status == 503
    assert handshake.data_to_send().startswith(b"HTTP/1.1 503 Service Unavailable\r\n")


@pytest.mark.parametrize(
    ("origins", "line", "admitted"),
    [
        (["https://a.example"], "Origin: https://a.example", True),
        (["https://a.example"], "Origin: https://b.example", False),
        (["https://a.example"], "X: no origin", False),
        ([None], "X: no origin", True),
        (None, "Origin: https://b.example", True),
    ],
)
def test_server_checks_the_origin(origins: list[str | None] | None, line: str, admitted: bool) -> None:
    handshake = server(request(line), origins=origins)
    assert handshake.admit(False) is admitted
    if not admitted:
        assert handshake.status == 403


@pytest.mark.parametrize(
    ("verdict", "status", "header", "problem"),
    [
        (False, 403, None, False),
        (401, 401, None, False),
        ((401, {"WWW-Authenticate": "Basic"}), 401, b"WWW-Authenticate: Basic\r\n", False),
        ((429, [("Retry-After", "1")]), 429, b"Retry-After: 1\r\n", False),
        ("yes", 500, None, True),
        (200, 500, None, True),
    ],
)
def test_server_applies_verify_client(
    verdict: object, status: int, header: bytes | None, problem: bool
) -> None:
    handshake = server(request())
    assert not handshake.verify(verdict)
    assert handshake.state is HandshakeState.REFUSED
    assert handshake.status == status
    assert (handshake.problem is not None) is problem
    out = handshake.data_to_send()
    assert out.startswith(f"HTTP/1.1 {status} ".encode())
    if header is not None:
        assert header in out


def test_server_refuse_is_open_to_the_io_layer() -> None:
    handshake = server(request())
    handshake.refuse(HandshakeError("verify_client raised", 500))
    assert handshake.state is HandshakeState.REFUSED
    assert handshake.data_to_send() == build_error_response(500)


# -- server: plain HTTP ----------------------------------------------------------


def plain(method: str = "GET") -> bytes:
    return f"{method} /health HTTP/1.1\r\nHost: example.com\r\n\r\n".encode()


def test_server_without_http_handler_refuses_plain_http_with_426() -> None:
    handshake = server(plain())
    assert handshake.status == 426
    assert b"Upgrade: websocket\r\n" in handshake.data_to_send()


def test_server_hands_plain_http_to_http_handler() -> None:
    handshake = server(plain(), http=True)
    assert handshake.state is HandshakeState.HTTP
    assert handshake.answer_http((200, {"X-A": "1"}, "ok"))
    assert state(handshake) is HandshakeState.ANSWERED
    assert handshake.status == 200
    assert handshake.data_to_send() == build_error_response(200, [("X-A", "1")], b"ok")


def test_server_http_handler_none_is_426_and_head_gets_no_body() -> None:
    handshake = server(plain("HEAD"), http=True)
    assert handshake.answer_http(None)
    assert handshake.status == 426
    out = handshake.data_to_send()
    assert out.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert out.endswith(b"\r\n\r\n")
    assert b"Content-Length: " in out


def test_server_upgrade_requests_skip_http_handler() -> None:
    assert server(request(), http=True).state is HandshakeState.UPGRADE


@pytest.mark.parametrize("result", [(200, [], 5), (99, [], b""), "ok", (200, [("X", "a\r\nb")], b"")])
def test_server_bad_http_handler_answer_is_500(result: object) -> None:
    handshake = server(plain("HEAD"), http=True)
    assert not handshake.answer_http(result)
    assert handshake.state is HandshakeState.REFUSED
    assert handshake.problem is not None and handshake.problem.startswith("bad http_handler response: ")
    # Not cut to its head: the 500 is a refusal, not the answer to the HEAD.
    assert handshake.data_to_send() == build_error_response(500)


# -- client ---------------------------------------------------------------------


URL = parse_url("ws://user:pw@example.com:8080/chat?x=1")


def client(**kwargs: object) -> ClientHandshake:
    return ClientHandshake(URL, key=KEY, **kwargs)  # type: ignore[arg-type]


def answer(*lines: str, status: str = "101 Switching Protocols") -> bytes:
    head = [f"HTTP/1.1 {status}", *lines]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def upgrade(*lines: str) -> bytes:
    accept = f"Sec-WebSocket-Accept: {accept_key(KEY)}"
    return answer("Upgrade: websocket", "Connection: Upgrade", accept, *lines)


def test_client_request_carries_the_options() -> None:
    handshake = client(protocols=["a", "b"], headers=[("X-Token", "t")], deflate=DeflateConfig())
    out = server(handshake.data_to_send(), deflate=DeflateConfig())
    assert out.state is HandshakeState.UPGRADE
    assert out.request is not None
    headers = out.request.headers
    assert out.request.path == "/chat?x=1"
    assert headers["host"] == "example.com:8080"
    assert headers["sec-websocket-key"] == KEY
    assert headers["x-token"] == "t"
    assert headers["authorization"].startswith("Basic ")
    assert headers["sec-websocket-extensions"].startswith("permessage-deflate")
    assert out.offered == ["a", "b"]
    assert handshake.data_to_send() == b""


def test_client_makes_a_fresh_key_unless_given() -> None:
    first, second = ClientHandshake(URL), ClientHandshake(URL)
    assert first.key != second.key
    assert len(first.key) == 24


@SPLITS
@given(cuts=cut_lists, compress=st.booleans(), protocols=st.sampled_from([[], ["a"], ["a", "b"]]))
def test_client_and_server_agree_however_the_bytes_are_cut(
    cuts: list[int], compress: bool, protocols: list[str]
) -> None:
    config = DeflateConfig() if compress else None
    side = client(protocols=protocols, deflate=config)
    srv = ServerHandshake(deflate=config)
    for piece in pieces(side.data_to_send(), cuts):
        srv.receive_data(piece)
    assert srv.accept(srv.offered[-1] if srv.offered else None)
    frames = b"\x81\x02hi"
    for piece in pieces(srv.data_to_send() + frames, cuts):
        side.receive_data(piece)
    assert side.state is HandshakeState.ACCEPTED
    assert side.protocol == srv.protocol == (protocols[-1] if protocols else None)
    assert (side.deflate is not None) is compress is (srv.deflate is not None)
    assert side.leftover == frames
    assert side.response is not None and side.response.status == 101


def test_client_fails_on_a_refusal_with_its_status() -> None:
    handshake = client()
    handshake.receive_data(answer("Content-Length: 0", status="403 Forbidden"))
    assert handshake.state is HandshakeState.FAILED
    assert isinstance(handshake.error, InvalidStatus)
    assert handshake.error.status == 403
    assert handshake.response is not None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (answer("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: x"), InvalidUpgrade),
        (upgrade("Sec-WebSocket-Protocol: z"), NegotiationError),
        (upgrade("Sec-WebSocket-Extensions: permessage-deflate"), NegotiationError),
        (b"HTTP/1.1 abc\r\n\r\n", InvalidMessage),
    ],
    ids=["accept", "protocol", "extension", "status-line"],
)
def test_client_fails_on_a_bad_answer(data: bytes, error: type[HandshakeError]) -> None:
    handshake = client()
    handshake.receive_data(data)
    assert handshake.state is HandshakeState.FAILED
    assert type(handshake.error) is error
    assert handshake.error.status is None


def test_client_requires_one_of_its_protocols() -> None:
    handshake = client(protocols=["a"])
    handshake.receive_data(upgrade())
    assert isinstance(handshake.error, NegotiationError)


@pytest.mark.parametrize("follow", [True, False])
def test_client_redirects_only_when_following(follow: bool) -> None:
    handshake = client(redirects=follow)
    handshake.receive_data(answer("Location: ws://other.example/", status="302 Found"))
    assert handshake.response is not None and handshake.response.status == 302
    if follow:
        assert handshake.state is HandshakeState.REDIRECT
        assert handshake.error is None
    else:
        assert handshake.state is HandshakeState.FAILED
        assert isinstance(handshake.error, InvalidStatus) and handshake.error.status == 302


def test_client_fails_on_an_oversize_answer_without_a_status() -> None:
    handshake = client(max_header_size=100)
    handshake.receive_data(upgrade("X-Pad: " + "a" * 200))
    assert handshake.state is HandshakeState.FAILED
    assert isinstance(handshake.error, InvalidMessage)
    assert handshake.error.status is None


def test_client_eof_before_the_answer_fails() -> None:
    handshake = client()
    handshake.receive_data(b"HTTP/1.1 101")
    handshake.receive_eof()
    assert handshake.state is HandshakeState.FAILED
    assert str(handshake.error) == "the server closed the connection during the handshake"


def test_client_hands_on_the_handshake_timeout() -> None:
    assert client(timeout=3.0).timeout == 3.0


# -- from the I/O layers' options ---------------------------------------------------


def test_server_from_options() -> None:
    options = merge_options(
        ServerOptions,
        None,
        {"max_header_size": 300, "origins": ["https://a.example"], "http_handler": lambda r: None,
         "handshake_timeout": 4, "compression": False},
    )
    handshake = ServerHandshake.from_options(options)
    assert handshake.timeout == 4
    handshake.receive_data(plain())
    assert handshake.state is HandshakeState.HTTP
    refused = ServerHandshake.from_options(options)
    refused.receive_data(request("Origin: https://b.example", "Sec-WebSocket-Extensions: permessage-deflate"))
    assert not refused.admit(False)
    assert refused.status == 403
    oversize = ServerHandshake.from_options(options)
    oversize.receive_data(request("X-Pad: " + "a" * 300))
    assert oversize.status == 431


@pytest.mark.parametrize("cross_origin", [False, True])
def test_client_from_options(cross_origin: bool) -> None:
    options = merge_options(
        ClientOptions,
        None,
        {"protocols": ["a"], "extra_headers": {"Cookie": "c=1", "X-A": "1"}, "max_redirects": 0,
         "handshake_timeout": 6},
    )
    handshake = ClientHandshake.from_options(URL, options, cross_origin=cross_origin, key=KEY)
    assert handshake.timeout == 6
    assert handshake.key == KEY
    seen = server(handshake.data_to_send(), deflate=DeflateConfig())
    assert seen.request is not None
    headers = seen.request.headers
    assert seen.offered == ["a"]
    assert headers["x-a"] == "1"
    assert "sec-websocket-extensions" in headers
    # Credentials stay behind when a redirect left the first origin.
    assert ("cookie" in headers) is not cross_origin
    handshake.receive_data(answer("Location: ws://other.example/", status="302 Found"))
    assert handshake.state is HandshakeState.FAILED  # max_redirects=0: a redirect is not followed
