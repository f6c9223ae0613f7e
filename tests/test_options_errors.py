"""Options are checked at the call (connect, create_server), before any I/O; errors point at the fix."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

import wsevents
from wsevents.aio.client import parse_url

URL = "ws://127.0.0.1:9/"


async def _connect_refused_at_the_call(error: type[Exception], match: str, **options: Any) -> None:
    """``connect(URL, **options)`` raises at once, and starts nothing (no task, so no I/O)."""
    before = asyncio.all_tasks()
    with pytest.raises(error, match=match):
        wsevents.connect(URL, **options)
    assert asyncio.all_tasks() == before


# -- unknown options: what was meant ----------------------------------------------------------


@pytest.mark.parametrize("call", ["create_server", "connect"])
@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("maxBufferLength", "max_buffer_length"),  # Node's camelCase
        ("handshakeTimeout", "handshake_timeout"),
        ("max_bufer_length", "max_buffer_length"),  # a typo
        ("ping_intervall", "ping_interval"),
    ],
)
async def test_a_misspelt_option_gets_a_did_you_mean(call: str, given: str, meant: str) -> None:
    with pytest.raises(TypeError) as info:
        if call == "connect":
            wsevents.connect(URL, {given: 1})
        else:
            wsevents.create_server({given: 1})
    where = "connect()" if call == "connect" else "create_server()"
    assert str(info.value) == f"unknown option {given!r} of {where}: did you mean {meant!r}?"


@pytest.mark.parametrize("name", ["port", "host"])
def test_port_or_host_on_create_server_points_to_listen(name: str) -> None:
    with pytest.raises(TypeError) as info:
        wsevents.create_server({name: 8000})
    assert (
        str(info.value)
        == f"unknown option {name!r} of create_server(): pass the {name} to listen(port, host)"
    )


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("valid_protocols", "valid_protocols"),
        ("validProtocols", "valid_protocols"),
        ("verify_client", "verify_client"),
        ("origins", "origins"),
        ("max_connections", "max_connections"),
        ("secure", "secure"),
        ("certfile", "certfile"),
        ("http_handler", "http_handler"),
    ],
)
async def test_a_server_option_on_connect_says_server_only(given: str, name: str) -> None:
    with pytest.raises(TypeError) as info:
        wsevents.connect(URL, **{given: None})
    assert str(info.value) == (
        f"unknown option {given!r} of connect(): {name!r} is a server-only option (of create_server())"
    )


@pytest.mark.parametrize(("given", "name"), [("extra_headers", "extra_headers"), ("protocols", "protocols")])
def test_a_client_option_on_create_server_says_client_only(given: str, name: str) -> None:
    with pytest.raises(TypeError) as info:
        wsevents.create_server({given: []})
    assert str(info.value) == (
        f"unknown option {given!r} of create_server(): {name!r} is a client-only option (of connect())"
    )


def test_node_tls_names_point_at_the_path_options() -> None:
    with pytest.raises(TypeError, match=r"'cert' of create_server\(\): did you mean 'certfile'\?"):
        wsevents.create_server(secure=True, cert="cert.pem")


def test_every_unknown_option_is_explained() -> None:
    with pytest.raises(TypeError) as info:
        wsevents.create_server(maxBufferLength=1, zzz=2)
    assert str(info.value) == (
        "unknown option 'maxBufferLength' of create_server(): did you mean 'max_buffer_length'?; "
        "unknown option 'zzz' of create_server()"
    )


# -- values, checked at the call ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "error", "match"),
    [
        (
            {"X-A": "v\r\nX-B: 1"},
            ValueError,
            r"header 'X-A': the value 'v\\r\\nX-B: 1' contains a line break or NUL",
        ),
        ({"X-A": "v\nw"}, ValueError, "contains a line break"),
        ({"X-A": "v\0"}, ValueError, "contains a line break or NUL"),
        ({"X A": "v"}, ValueError, r"header name 'X A' is not a token"),
        ({"X-A:": "v"}, ValueError, "is not a token"),
        ({"": "v"}, ValueError, "is not a token"),
        ({"X-A": "κόσμε"}, ValueError, r"is not ISO-8859-1 \(percent-encode it\)"),
        ({"X-A": None}, TypeError, "the value must be a str, not NoneType"),
        ({b"X-A": "v"}, TypeError, "header name must be a str, not bytes"),
        ([("X-A", "v", "w")], TypeError, "list of .name, value. pairs"),
        ("X-A: v", TypeError, "must be a dict or a list of .name, value. pairs, not str"),
    ],
)
async def test_bad_extra_headers_are_refused_at_the_call(
    headers: Any, error: type[Exception], match: str
) -> None:
    # On e6939c4 the CRLF one raised in connection_made, inside the loop, and the caller
    # waited out handshake_timeout for "opening handshake timed out".
    await _connect_refused_at_the_call(error, match, extra_headers=headers)


def test_none_asks_for_the_empty_default_of_protocols_and_extra_headers() -> None:
    """The reference lists their default as "none": passing None must mean that, not a TypeError."""
    from wsevents.aio.options import ClientOptions, merge_options

    options = merge_options(ClientOptions, {"protocols": None}, {"extra_headers": None})
    assert options.protocols == [] and options.header_items() == []


async def test_good_extra_headers_pass() -> None:
    conn = wsevents.connect(URL, extra_headers=[("X-A", "v"), ("X-Count", 3), ("X-Name", "José")])
    await asyncio.wait_for(conn.close(), 5)


@pytest.mark.parametrize(
    ("protocols", "error", "match"),
    [
        (["chat", "chat"], ValueError, "subprotocol 'chat' is listed twice in protocols"),
        (["a b"], ValueError, r"invalid subprotocol name 'a b' in protocols: not a token"),
        (["a,b"], ValueError, "not a token"),
        ([""], ValueError, "not a token"),
        ([1], TypeError, "protocols must be a list of str, not of int"),
        ("chat", TypeError, "protocols must be a list of str, not str"),
    ],
)
async def test_bad_protocols_are_refused_at_the_call(
    protocols: Any, error: type[Exception], match: str
) -> None:
    await _connect_refused_at_the_call(error, match, protocols=protocols)


@pytest.mark.parametrize(
    ("protocols", "error", "match"),
    [
        (["chat", "chat"], ValueError, "subprotocol 'chat' is listed twice in valid_protocols"),
        (["a b"], ValueError, "not a token"),
        ("chat", TypeError, "valid_protocols must be a list of str, not str"),
    ],
)
def test_bad_valid_protocols_are_refused(protocols: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        wsevents.create_server(valid_protocols=protocols)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"port": 70000}, ValueError, r"port must be an int in 1\.\.65535, not 70000"),
        ({"port": 0}, ValueError, "port must be an int"),
        ({"port": "80"}, ValueError, "port must be an int"),
        ({"host": ""}, ValueError, "host must be a non-empty str"),
        ({"host": 127}, ValueError, "host must be a non-empty str"),
        ({"ssl": ssl.create_default_context()}, ValueError, "use a wss:// URL for TLS"),
        ({"ssl": "yes"}, TypeError, "ssl must be an ssl.SSLContext"),
        ({"handshake_timeout": "10"}, ValueError, "handshake_timeout must be a positive number of seconds"),
        ({"close_timeout": -1}, ValueError, "close_timeout must be a positive number"),
        ({"max_queue": 0}, ValueError, "max_queue must be a positive int"),
        ({"max_buffer_length": 1.5}, ValueError, "max_buffer_length must be a positive int"),
        ({"compression": "yes"}, TypeError, "compression must be True, False or a dict"),
    ],
)
async def test_bad_client_values_are_refused_at_the_call(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    await _connect_refused_at_the_call(error, match, **options)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"secure": "yes", "certfile": "c.pem"}, TypeError, "secure must be True or False"),
        ({"keyfile": "k.pem"}, ValueError, "keyfile without certfile"),
        ({"certfile": 1}, TypeError, "certfile must be a path"),
        ({"origins": ["https://a.example", 3]}, TypeError, r"origins must hold str \(or None\), not int"),
    ],
)
def test_bad_server_values_are_refused(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        wsevents.create_server(**options)


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    cert, key = tmp_path / "missing-cert.pem", tmp_path / "missing-key.pem"
    with pytest.raises(FileNotFoundError) as info:
        wsevents.create_server(secure=True, certfile=str(cert), keyfile=str(key))
    assert str(info.value) == f"[Errno 2] certfile not found: {str(cert)!r}"
    assert info.value.filename == str(cert)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    cert = tmp_path / "cert.pem"
    trustme.CA().issue_cert("localhost").cert_chain_pems[0].write_to_path(str(cert))
    key = tmp_path / "missing-key.pem"
    with pytest.raises(FileNotFoundError) as info:
        wsevents.create_server(secure=True, certfile=cert, keyfile=key)
    assert str(info.value) == f"[Errno 2] keyfile not found: {str(key)!r}"


def test_an_unusable_certificate_file_is_named(tmp_path: Path) -> None:
    cert = tmp_path / "not-a-cert.pem"
    cert.write_text("hello\n")
    with pytest.raises(ssl.SSLError) as info:
        wsevents.create_server(secure=True, certfile=str(cert))
    assert str(info.value).startswith(f"cannot use the certificate/key in {cert}: ")


# -- URLs --------------------------------------------------------------------------------------


def test_a_non_ascii_host_is_sent_in_its_idna_form() -> None:
    assert parse_url("ws://bücher.example/").host == "xn--bcher-kva.example"


def test_a_non_ascii_path_is_percent_encoded() -> None:
    assert parse_url("ws://h/κ?q=é").path == "/%CE%BA?q=%C3%A9"
    assert parse_url("ws://h/a%20b?x=1&y=~").path == "/a%20b?x=1&y=~"


async def test_a_bad_url_is_refused_at_the_call() -> None:
    before = asyncio.all_tasks()
    with pytest.raises(ValueError, match="scheme must be ws or wss, not 'http'"):
        wsevents.connect("http://127.0.0.1:9/")
    assert asyncio.all_tasks() == before
