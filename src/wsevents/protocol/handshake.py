"""The HTTP/1.1 opening handshake (RFC 6455 section 4), both sides, without I/O.

The server side: :func:`find_head_end` on the bytes received so far, then
:func:`parse_request`, :func:`check_request` and :func:`build_accept_response`
(or :func:`build_error_response`). The client side: :func:`build_request`,
then :func:`parse_response` and :func:`check_response`.

Every failure raises a :class:`~wsevents.errors.HandshakeError` subclass carrying the HTTP
status the server answers with (400, 405, 426, 431) or, on the client side,
the status the server sent.

The HTTP/1.1 head syntax under it (bounds, headers, :class:`Request` and
:class:`Response`) is :mod:`wsevents.protocol.http`; its public names are
importable from here too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable

from ..errors import InvalidMessage, InvalidStatus, InvalidUpgrade, NegotiationError
from .http import (
    MAX_HEAD_SIZE,
    MAX_HEADERS,
    STATUS_REASONS,
    Headers,
    Request,
    Response,
    _has_token,
    _http_version,
    _http_version_ok,
    _parse_header_lines,
    _render_headers,
    _split_head,
    check_header_field,
    check_request_start,
    find_head_end,
    is_token,
)

__all__ = [
    "GUID",
    "MAX_HEAD_SIZE",
    "MAX_HEADERS",
    "Headers",
    "Request",
    "Response",
    "accept_key",
    "generate_key",
    "find_head_end",
    "check_request_start",
    "parse_request",
    "check_request",
    "build_accept_response",
    "build_error_response",
    "build_request",
    "parse_response",
    "check_response",
    "is_upgrade",
    "is_token",
    "check_header_field",
    "parse_protocols",
    "choose_protocol",
    "STATUS_REASONS",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
# The 101 answer up to the accept key, when there is no subprotocol and no extension to add.
_ACCEPT_HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


def generate_key() -> str:
    """A fresh random ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def parse_request(head: bytes | bytearray, max_headers: int = MAX_HEADERS) -> Request:
    """Parse a request head (with or without its final blank line).

    Raises:
        InvalidMessage: 400 for anything malformed, 431 for too many headers.
    """
    lines = _split_head(head, 400)
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise InvalidMessage(f"malformed request line {lines[0][:60]!r}", 400)
    method, path, version = parts
    if not _http_version_ok(version):
        raise InvalidMessage(f"unsupported HTTP version {version[:20]!r}", 400)
    return Request(method, path, version, _parse_header_lines(lines[1:], max_headers, 400))


def is_upgrade(request: Request) -> bool:
    """Whether the request asks for a WebSocket upgrade at all."""
    return _has_token(request.headers.get("upgrade", ""), "websocket")


def check_request(request: Request) -> str:
    """Validate an upgrade request (RFC 6455 section 4.2.1); return its key.

    Raises:
        InvalidUpgrade: 405 for a method other than GET, 426 without
            ``Upgrade: websocket`` or with a version other than 13, 400 for a
            missing ``Host``, ``Connection: Upgrade`` or a bad key.
    """
    headers = request.headers
    if request.method != "GET":
        raise InvalidUpgrade(f"method {request.method[:20]} is not GET", 405)
    if not is_upgrade(request):
        raise InvalidUpgrade("missing 'Upgrade: websocket'", 426)
    if not _has_token(headers.get("connection", ""), "upgrade"):
        raise InvalidUpgrade("missing 'Connection: Upgrade'", 400)
    if "host" not in headers:
        raise InvalidUpgrade("missing Host header", 400)
    key = headers.get("sec-websocket-key")
    # Repeats are joined with ", ": without a comma the key came once.
    if key is None or ("," in key and len(headers.get_all("sec-websocket-key")) != 1):
        raise InvalidUpgrade("missing or repeated Sec-WebSocket-Key", 400)
    _check_key(key)
    if headers.get("sec-websocket-version", "").strip() != "13":
        raise InvalidUpgrade("unsupported Sec-WebSocket-Version (only 13)", 426)
    return key


def _check_key(key: str) -> None:
    """A ``Sec-WebSocket-Key`` must be the base64 of 16 bytes (400 otherwise)."""
    # 22 base64 digits and "==" are always 16 bytes: the usual key needs no decoding.
    if len(key) == 24 and key[22:] == "==" and _BASE64_CHARS.issuperset(key[:22]):
        return
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidUpgrade("Sec-WebSocket-Key is not base64", 400) from None
    if len(raw) != 16:
        raise InvalidUpgrade("Sec-WebSocket-Key is not 16 bytes", 400)


def parse_protocols(value: str | None) -> list[str]:
    """The subprotocols of a ``Sec-WebSocket-Protocol`` header, in order."""
    if not value:
        return []
    return [p.strip() for p in value.split(",") if p.strip()]


def choose_protocol(offered: list[str], valid: Iterable[str]) -> str | None:
    """The client's most preferred offered protocol that is also valid, or None."""
    accepted = set(valid)
    for protocol in offered:
        if protocol in accepted:
            return protocol
    return None


def build_accept_response(
    key: str, protocol: str | None = None, extra_headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """The ``101 Switching Protocols`` answer to a request with ``key``."""
    if not protocol and isinstance(extra_headers, (list, tuple)) and not extra_headers:
        # The usual answer: a base64 accept key needs no line-break check.
        return b"%sSec-WebSocket-Accept: %s\r\n\r\n" % (_ACCEPT_HEAD, accept_key(key).encode("ascii"))
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if protocol:
        headers.append(("Sec-WebSocket-Protocol", protocol))
    headers.extend(extra_headers)
    return f"HTTP/1.1 101 Switching Protocols\r\n{_render_headers(headers)}\r\n".encode("latin-1")


def build_error_response(
    status: int,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """A complete HTTP response that refuses the upgrade and closes the connection."""
    reason = STATUS_REASONS.get(status, "Error")
    if body is None:
        body = f"{status} {reason}\n".encode()
    hs = list(headers)
    names = {n.lower() for n, _ in hs}
    if "content-type" not in names:
        hs.append(("Content-Type", "text/plain; charset=utf-8"))
    hs.append(("Content-Length", str(len(body))))
    hs.append(("Connection", "close"))
    return f"HTTP/1.1 {status} {reason}\r\n{_render_headers(hs)}\r\n".encode("latin-1") + body


def build_request(
    host: str,
    path: str,
    key: str,
    protocols: Iterable[str] = (),
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The client's upgrade request; ``host`` is the ``Host`` header value."""
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    protocols = list(protocols)
    if protocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
    headers.extend(extra_headers)
    return f"GET {path} HTTP/1.1\r\n{_render_headers(headers)}\r\n".encode("latin-1")


def parse_response(head: bytes | bytearray, max_headers: int = MAX_HEADERS) -> Response:
    """Parse a response head.

    An HTTP/1.0 response parses too, so that a plain web server's answer is
    reported as such by :func:`check_response`.

    Raises:
        InvalidMessage: (status None) when it is not a well-formed HTTP/1.x response.
    """
    lines = _split_head(head, 0)
    version, _, rest = lines[0].partition(" ")
    status_text, _, reason = rest.partition(" ")
    # Three ASCII digits, 100 to 599 (RFC 9110 section 15); str.isdigit() alone admits "²".
    digits = len(status_text) == 3 and status_text.isascii() and status_text.isdigit()
    parsed = _http_version(version)
    if parsed is None or parsed[0] != 1 or not digits or not 100 <= int(status_text) <= 599:
        raise InvalidMessage(f"malformed status line {lines[0][:60]!r}")
    if status_text == "101" and parsed < (1, 1):
        raise InvalidMessage(f"malformed status line {lines[0][:60]!r}: only HTTP/1.1 upgrades")
    return Response(int(status_text), reason, version, _parse_header_lines(lines[1:], max_headers, 0))


def check_response(
    response: Response, key: str, protocols: list[str], extensions_offered: bool = False
) -> str | None:
    """Validate the server's answer (RFC 6455 section 4.1); return the agreed protocol.

    Raises:
        InvalidStatus: with the response's status when it is not 101.
        InvalidUpgrade: (status None) a wrong Upgrade/Connection/accept key.
        NegotiationError: (status None) an extension we did not offer, or a
            protocol problem. With
            ``extensions_offered`` the ``Sec-WebSocket-Extensions`` answer is
            left for the caller to check against its offer.
    """
    if 200 <= response.status < 300:
        # An ordinary web page (or API) at that address.
        raise InvalidStatus(
            f"the server answered {response.status} without upgrading: not a WebSocket endpoint",
            response.status,
        )
    if response.status != 101:
        raise InvalidStatus(
            f"Invalid handshake: server answered {response.status} {response.reason}".rstrip(),
            response.status,
        )
    headers = response.headers
    if not _has_token(headers.get("upgrade", ""), "websocket"):
        raise InvalidUpgrade("Invalid handshake: missing 'Upgrade: websocket'")
    if not _has_token(headers.get("connection", ""), "upgrade"):
        raise InvalidUpgrade("Invalid handshake: missing 'Connection: Upgrade'")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise InvalidUpgrade("Invalid handshake: wrong Sec-WebSocket-Accept")
    if headers.get("sec-websocket-extensions") and not extensions_offered:
        raise NegotiationError("Invalid handshake: server chose an extension that was not offered")
    chosen = headers.get("sec-websocket-protocol")
    if chosen is not None:
        chosen = chosen.strip()
        if chosen not in protocols:
            raise NegotiationError(
                f"Invalid handshake: server chose protocol {chosen!r} that was not offered"
            )
        return chosen
    if protocols:
        raise NegotiationError("Invalid handshake: no protocol was negotiated")
    return None
