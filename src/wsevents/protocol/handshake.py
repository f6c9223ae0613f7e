"""The HTTP/1.1 opening handshake (RFC 6455 section 4), both sides, without I/O.

The server side: :func:`find_head_end` on the bytes received so far, then
:func:`parse_request`, :func:`check_request` and :func:`build_accept_response`
(or :func:`build_error_response`). The client side: :func:`build_request`,
then :func:`parse_response` and :func:`check_response`.

Every failure raises a :class:`~wsevents.errors.HandshakeError` subclass carrying the HTTP
status the server answers with (400, 405, 426, 431) or, on the client side,
the status the server sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..errors import InvalidMessage, InvalidStatus, InvalidUpgrade, NegotiationError

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

#: Default bound on the request or response head (request line + headers).
MAX_HEAD_SIZE = 16384
#: Default bound on the number of header lines.
MAX_HEADERS = 128

STATUS_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive HTTP headers; names are stored lower-cased.

    A header that appears several times maps to its values joined by ``", "``
    (RFC 9110 section 5.3); :meth:`get_all` returns them one by one.
    """

    __slots__ = ("_items", "_map")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(k.lower(), v) for k, v in items]
        merged: dict[str, str] = {}
        for name, value in self._items:
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        self._map = merged

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in the order received."""
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def raw_items(self) -> list[tuple[str, str]]:
        """The header lines as received (names lower-cased), repeats included."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._map!r})"


@dataclass(frozen=True)
class Request:
    """A parsed HTTP request head."""

    method: str
    path: str
    version: str
    headers: Headers


@dataclass(frozen=True)
class Response:
    """A parsed HTTP response head."""

    status: int
    reason: str
    version: str
    headers: Headers


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_key() -> str:
    """A fresh random ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def find_head_end(buf: bytes | bytearray, max_size: int = MAX_HEAD_SIZE, response: bool = False) -> int:
    """Where the head ends (index just past ``CRLF CRLF``), or -1 if not yet.

    Raises:
        InvalidMessage: once ``max_size`` bytes arrived without the end: 431
            for a request head, status None for a ``response`` head (the
            client reads it; the server sent no 431).
    """
    # The head counts its final CRLF CRLF: whole within max_size bytes, or refused,
    # however the bytes were split into reads.
    end = buf.find(b"\r\n\r\n", 0, max_size)
    if end >= 0:
        return end + 4
    if len(buf) >= max_size:
        if response:
            raise InvalidMessage(f"response head over {max_size} bytes (max_header_size)")
        raise InvalidMessage(f"request head over {max_size} bytes", 431)
    return -1


def check_request_start(buf: bytes | bytearray) -> None:
    """Fail early on bytes that cannot begin a request line (e.g. a TLS ClientHello on a plain port).

    Without this, such a client (which waits for an answer and sends no
    ``CRLF CRLF``) would only be dropped by the handshake timeout.

    Raises:
        InvalidMessage: 400 unless ``buf`` starts with a method token (at most
            32 characters) followed, once it arrived, by a space.
    """
    space = buf.find(b" ", 0, 33)
    method = bytes(buf[:space] if space >= 0 else buf[:33]).decode("iso-8859-1")
    if space == 0 or len(method) > 32 or not _TOKEN_CHARS.issuperset(method):
        raise InvalidMessage("not an HTTP request", 400)


def is_token(value: str) -> bool:
    """Whether ``value`` is an HTTP token (RFC 9110 section 5.6.2): a header name, a subprotocol."""
    return bool(value) and _TOKEN_CHARS.issuperset(value)


def check_header_field(name: object, value: object) -> tuple[str, str]:
    """Check one header to be sent; return it as ``(name, value)`` strings.

    Raises:
        TypeError: a name that is not a str, or a value that is neither a str nor an int.
        ValueError: a name that is not a token, or a value with CR, LF, NUL
            (which would end the header, or the head, early) or a character
            outside ISO-8859-1.
    """
    if not isinstance(name, str):
        raise TypeError(f"header name must be a str, not {type(name).__name__}")
    if not is_token(name):
        raise ValueError(f"header name {name!r} is not a token (letters, digits and !#$%&'*+-.^_`|~)")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError(f"header {name!r}: the value must be a str, not {type(value).__name__}")
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"header {name!r}: the value {value!r} contains a line break or NUL")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"header {name!r}: the value {value!r} is not ISO-8859-1 (percent-encode it)"
        ) from None
    return name, value


def _tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",") if t.strip()}


def _parse_header_lines(lines: list[str], max_headers: int, status: int) -> Headers:
    if len(lines) > max_headers:
        raise InvalidMessage(f"more than {max_headers} header lines", 431 if status else None)
    items: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            raise InvalidMessage("obsolete header line folding", status or None)
        name, sep, value = line.partition(":")
        if not sep or not name or not _TOKEN_CHARS.issuperset(name):
            raise InvalidMessage(f"malformed header line {line[:40]!r}", status or None)
        items.append((name, value.strip(" \t")))
    return Headers(items)


def _split_head(head: bytes | bytearray, status: int) -> list[str]:
    try:
        text = bytes(head).decode("iso-8859-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise InvalidMessage("undecodable head", status or None) from None
    if text.endswith("\r\n\r\n"):
        text = text[:-4]
    return text.split("\r\n")


def _http_version(version: str) -> tuple[int, int] | None:
    """``(major, minor)`` of ``HTTP/x.y``, or None when it is not one."""
    if not version.startswith("HTTP/"):
        return None
    major, _, minor = version[5:].partition(".")
    if not (major.isascii() and major.isdigit() and minor.isascii() and minor.isdigit()):
        return None
    return int(major), int(minor)


def _http_version_ok(version: str) -> bool:
    parsed = _http_version(version)
    return parsed is not None and parsed >= (1, 1)


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
    return "websocket" in _tokens(request.headers.get("upgrade", ""))


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
    if "upgrade" not in _tokens(headers.get("connection", "")):
        raise InvalidUpgrade("missing 'Connection: Upgrade'", 400)
    if "host" not in headers:
        raise InvalidUpgrade("missing Host header", 400)
    key = headers.get("sec-websocket-key")
    if key is None or len(headers.get_all("sec-websocket-key")) != 1:
        raise InvalidUpgrade("missing or repeated Sec-WebSocket-Key", 400)
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidUpgrade("Sec-WebSocket-Key is not base64", 400) from None
    if len(raw) != 16:
        raise InvalidUpgrade("Sec-WebSocket-Key is not 16 bytes", 400)
    if headers.get("sec-websocket-version", "").strip() != "13":
        raise InvalidUpgrade("unsupported Sec-WebSocket-Version (only 13)", 426)
    return key


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


def _render_headers(headers: Iterable[tuple[str, str]]) -> str:
    out = []
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains a line break")
        out.append(f"{name}: {value}\r\n")
    return "".join(out)


def build_accept_response(
    key: str, protocol: str | None = None, extra_headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """The ``101 Switching Protocols`` answer to a request with ``key``."""
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
    if "websocket" not in _tokens(headers.get("upgrade", "")):
        raise InvalidUpgrade("Invalid handshake: missing 'Upgrade: websocket'")
    if "upgrade" not in _tokens(headers.get("connection", "")):
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
