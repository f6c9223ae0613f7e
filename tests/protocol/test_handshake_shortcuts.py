"""The opening handshake's shortcuts for the usual request answer exactly as the general path does.

Header names every upgrade request carries skip the character-by-character token check, the
usual key skips base64 decoding, the usual Upgrade/Connection values skip the token list, the
usual 101 is not rendered header by header, and a head that arrives in one read is not copied
through the buffer. Each is checked here against the general rule it stands for.
"""

from __future__ import annotations

import base64
import binascii
import random
import string
from typing import cast

import pytest

from wsevents.errors import HandshakeError
from wsevents.protocol.handshake import build_accept_response, check_request, parse_request
from wsevents.protocol.head import HeadBuffer
from wsevents.protocol.http import _COMMON_NAMES, _TOKEN_CHARS, Headers, _has_token, _tokens

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
B64 = string.ascii_letters + string.digits + "+/"


def request(*lines: str) -> bytes:
    return ("\r\n".join(["GET / HTTP/1.1", *lines]) + "\r\n\r\n").encode("latin-1")


def upgrade(key: str) -> bytes:
    return request("Host: h", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                   "Sec-WebSocket-Version: 13")


def refusal(data: bytes) -> tuple[int | None, str]:
    with pytest.raises(HandshakeError) as info:
        check_request(parse_request(data))
    return info.value.status, str(info.value)


# -- header names ---------------------------------------------------------------------------


def test_the_common_names_are_lower_case_tokens() -> None:
    for name in _COMMON_NAMES:
        assert name == name.lower() and _TOKEN_CHARS.issuperset(name)


@pytest.mark.parametrize("name", sorted(_COMMON_NAMES))
def test_a_common_name_in_any_case_is_stored_lower_cased(name: str) -> None:
    headers = parse_request(request(f"{name.upper()}: a", f"{name.title()}: b", f"{name}: c")).headers
    assert headers.raw_items() == [(name, "a"), (name, "b"), (name, "c")]
    assert headers[name] == "a, b, c"


@pytest.mark.parametrize("name", sorted(_COMMON_NAMES))
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{name}", "malformed header line"),  # no colon
        ("{name} : v", "malformed header line"),
        ("{name}\x00: v", "malformed header line"),
        ("{name}\xe9: v", "malformed header line"),
        (" {name}: v", "obsolete header line folding"),
        ("\t{name}: v", "obsolete header line folding"),
        (" {name}", "obsolete header line folding"),
    ],
)
def test_a_common_name_is_still_checked(name: str, line: str, message: str) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_request(request("Host: h", line.format(name=name)))
    assert info.value.status == 400
    assert str(info.value).startswith(message)


# -- Upgrade / Connection tokens -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["websocket", "WebSocket", "WEBSOCKET", " websocket", "websocket ", "h2c, websocket", "websocket,",
     "web socket", "websockets", "", ",", "upgrade", "keep-alive, Upgrade", "Upgrade", "UPGRADE ,x",
     "websocket\t", "\xe9websocket"],
)
def test_has_token_is_membership_in_the_token_list(value: str) -> None:
    for token in ("websocket", "upgrade"):
        assert _has_token(value, token) is (token in _tokens(value))


# -- the key ---------------------------------------------------------------------------------


def general_key_check(key: str) -> tuple[int | None, str] | None:
    """The rule the shortcut stands for: base64 (strict) of exactly 16 bytes."""
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return 400, "Sec-WebSocket-Key is not base64"
    if len(raw) != 16:
        return 400, "Sec-WebSocket-Key is not 16 bytes"
    return None


def keys() -> list[str]:
    rng = random.Random(11)
    found = [KEY, "A" * 22 + "==", "/" * 22 + "==", "+" * 22 + "==", "A" * 21 + "===", "A" * 24,
             "A" * 23 + "=", "A" * 22 + "=A", "A" * 20 + "=" + "A==", "A" * 22 + "==\t",
             " " + "A" * 21 + "==", "A" * 21 + "\xe9==", "A" * 21 + "-==", "A" * 21 + "_==", "A" * 26 + "==",
             "A" * 18 + "=="]
    found += ["A" * 20 + a + b + "==" for a in B64 for b in B64]
    alphabet = B64 + "=-_ .é"
    found += ["".join(rng.choice(alphabet) for _ in range(rng.choice((22, 23, 24, 25)))) for _ in range(2000)]
    return [k for k in found if k.strip() == k and "," not in k]  # header values are stripped


def test_the_key_shortcut_answers_as_base64_decoding_does() -> None:
    for key in keys():
        expected = general_key_check(key)
        if expected is None:
            assert check_request(parse_request(upgrade(key))) == key, key
        else:
            assert refusal(upgrade(key)) == expected, key


def test_a_key_with_a_comma_said_once_is_not_base64_and_a_repeated_one_is_repeated() -> None:
    assert refusal(upgrade("abc,def")) == (400, "Sec-WebSocket-Key is not base64")
    assert refusal(upgrade(f"{KEY}, {KEY}")) == (400, "Sec-WebSocket-Key is not base64")
    twice = request("Host: h", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}",
                    f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13")
    assert refusal(twice) == (400, "missing or repeated Sec-WebSocket-Key")


# -- Headers.get -----------------------------------------------------------------------------


def test_headers_get_is_case_insensitive_with_a_default() -> None:
    headers = Headers([("X-A", "1"), ("x-a", "2"), ("Host", "h")])
    assert headers.get("x-A") == "1, 2"
    assert headers.get("HOST") == "h"
    assert headers.get("missing") is None
    assert headers.get("missing", "d") == "d"
    assert headers.get("Host", "d") == "h"
    assert dict(headers) == {"x-a": "1, 2", "host": "h"}


@pytest.mark.parametrize(
    "lines",
    [
        ["Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "X-A: 1"],
        ["Host: h", "X-A: 1", "x-a:  2", "Upgrade: websocket", "X-A: 3", "Cookie: c"],
        ["X-A: 1", "X-A: 2"],
        [],
    ],
)
def test_parsed_headers_keep_their_lines_once_and_read_as_the_general_headers(lines: list[str]) -> None:
    # Without a name said twice the parse keeps no list of lines: the merged map is the lines.
    parsed = parse_request(request(*lines)).headers
    split = (line.partition(":") for line in lines)
    general = Headers((name, value.strip(" \t")) for name, _, value in split)
    assert parsed.raw_items() == general.raw_items()
    assert dict(parsed) == dict(general)
    for name in ["host", "X-A", "upgrade", "missing"]:
        assert parsed.get_all(name) == general.get_all(name)
    assert (parsed._items is None) == (len(general) == len(lines))


# -- the 101 answer --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY, "A" * 22 + "==", "/+" * 11 + "=="])
def test_the_usual_101_is_the_general_rendering(key: str) -> None:
    general = build_accept_response(key, None, iter([]))  # an iterator: rendered header by header
    assert build_accept_response(key) == general
    assert build_accept_response(key, None, []) == general
    assert build_accept_response(key, "", ()) == general


# -- a head in one read ----------------------------------------------------------------------

HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_head_in_one_read_is_its_bytes_and_the_rest_is_left_over() -> None:
    buffer = HeadBuffer(1024)
    head = buffer.feed(HEAD + b"\x81\x00", response=False)
    assert head == HEAD and type(head) is bytes
    assert buffer.leftover == b"\x81\x00"
    assert buffer.buffer == b""


def test_a_head_in_one_bytearray_read_is_bytes_too() -> None:
    buffer = HeadBuffer(1024)
    head = buffer.feed(cast(bytes, bytearray(HEAD + b"xy")), response=False)  # typed bytes; takes any buffer
    assert head == HEAD and type(head) is bytes
    assert buffer.leftover == b"xy" and type(buffer.leftover) is bytes


@pytest.mark.parametrize("response", [False, True])
def test_a_head_in_one_read_keeps_its_bound(response: bool) -> None:
    assert HeadBuffer(len(HEAD)).feed(HEAD + b"more", response=response) == HEAD
    with pytest.raises(HandshakeError) as info:
        HeadBuffer(len(HEAD) - 1).feed(HEAD, response=response)
    assert info.value.status == (None if response else 431)
