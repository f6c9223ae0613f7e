"""Proxy selection, the CONNECT exchange and redirect targets, without I/O."""

from __future__ import annotations

import pytest

from wsevents.errors import HandshakeError
from wsevents.protocol.handshake import Response, parse_response
from wsevents.protocol.proxy import (
    build_connect_request,
    check_connect_response,
    parse_proxy,
    proxy_for,
    redirect_target,
    select_proxy,
    strip_credentials,
)
from wsevents.protocol.url import parse_url


def test_parse_proxy_defaults_and_user_info() -> None:
    p = parse_proxy("http://al%40ice:p%3Ass@proxy.example:3128")
    assert (p.scheme, p.host, p.port, p.user_info) == ("http", "proxy.example", 3128, ("al@ice", "p:ss"))
    assert str(p) == "http://proxy.example:3128"  # no password in errors
    assert parse_proxy("proxy.example:8080").scheme == "http"
    assert parse_proxy("https://p").port == 443
    assert parse_proxy("socks5h://p").is_socks and parse_proxy("socks5h://p").port == 1080
    with pytest.raises(ValueError, match="scheme must be one of"):
        parse_proxy("ftp://p")


def test_environment_rules() -> None:
    env = {
        "http": "http://h:1",
        "https": "http://s:2",
        "all": "socks5://a:3",
        "no": "internal.example,.corp,db:5432",
    }
    assert proxy_for(parse_url("ws://x.example/"), env) == parse_proxy("http://h:1")
    assert proxy_for(parse_url("wss://x.example/"), env) == parse_proxy("http://s:2")
    assert proxy_for(parse_url("wss://x.example/"), {"all": "socks5://a:3"}) == parse_proxy("socks5://a:3")
    assert proxy_for(parse_url("ws://internal.example/"), env) is None
    assert proxy_for(parse_url("ws://a.internal.example/"), env) is None
    assert proxy_for(parse_url("ws://b.corp/"), env) is None
    assert proxy_for(parse_url("ws://db:5432/"), env) is None
    assert proxy_for(parse_url("ws://db:5433/"), env) is not None
    assert proxy_for(parse_url("ws://x/"), {}) is None
    assert select_proxy(parse_url("ws://x/"), None, env) is None
    assert select_proxy(parse_url("ws://x/"), "http://forced:9", {}) == parse_proxy("http://forced:9")


def test_connect_request_and_answers() -> None:
    assert build_connect_request("::1", 443, ("a", "b")) == (
        b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n"
    )
    proxy = parse_proxy("http://u:secret@p:1")
    check_connect_response(parse_response(b"HTTP/1.1 200 Connection established\r\n\r\n"), proxy)
    with pytest.raises(HandshakeError, match="proxy authentication required") as info:
        check_connect_response(parse_response(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"), proxy)
    assert info.value.status == 407 and "secret" not in str(info.value)
    with pytest.raises(HandshakeError, match=r"proxy http://p:1 refused the tunnel: 502 Bad Gateway"):
        check_connect_response(parse_response(b"HTTP/1.1 502 Bad Gateway\r\n\r\n"), proxy)


def _redirect(location: str, status: int = 302) -> Response:
    return parse_response(f"HTTP/1.1 {status} Found\r\nLocation: {location}\r\n\r\n".encode())


def test_redirect_targets() -> None:
    base = parse_url("ws://u:p@a.example:8080/x/y?q=1")
    same = redirect_target(base, _redirect("z"))
    assert (same.host, same.port, same.path, same.user_info) == ("a.example", 8080, "/x/z", ("u", "p"))
    other = redirect_target(base, _redirect("https://b.example/w"))
    assert (other.secure, other.host, other.port, other.path) == (True, "b.example", 443, "/w")
    assert other.user_info is None
    with pytest.raises(HandshakeError, match="give up TLS"):
        redirect_target(parse_url("wss://a/"), _redirect("ws://a/"))
    with pytest.raises(HandshakeError, match="scheme must be ws or wss"):
        redirect_target(base, _redirect("ftp://a/"))
    assert strip_credentials([("authorization", "x"), ("Cookie", "c"), ("X", "1")]) == [("X", "1")]
