"""HTTP/1.1 heads without I/O and without WebSocket rules: the bounds, the header
syntax (RFC 9110 section 5), the parsed :class:`Request`/:class:`Response` shapes.

:mod:`wsevents.protocol.handshake` builds the opening handshake on these and
re-exports every public name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn, TypeVar, overload

from ..errors import InvalidMessage

__all__ = [
    "MAX_HEAD_SIZE",
    "MAX_HEADERS",
    "STATUS_REASONS",
    "Headers",
    "Request",
    "Response",
    "check_header_field",
    "check_request_start",
    "find_head_end",
    "is_token",
]

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
# Header names every upgrade request carries, lower-cased: found here, a name needs no
# character-by-character token check (a latin-1 name lower-cases to one of these only if it
# is one of them in some letter case, so it is a token), and the headers a connection keeps
# share this copy of the name instead of holding one of their own.
_COMMON_NAMES = {name: name for name in (
    "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
    "sec-websocket-protocol", "sec-websocket-extensions", "origin", "user-agent", "cookie",
    "authorization", "accept", "accept-encoding", "accept-language", "cache-control", "pragma",
)}
# The same for the values of the usual upgrade request's headers.
_COMMON_VALUES = {value: value for value in ("websocket", "Upgrade", "upgrade", "13")}

_T = TypeVar("_T")


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive HTTP headers; names are stored lower-cased.

    A header that appears several times maps to its values joined by ``", "``
    (RFC 9110 section 5.3); :meth:`get_all` returns them one by one.
    """

    __slots__ = ("_items", "_map")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] | None = [(k.lower(), v) for k, v in items]
        self._map = _merge(self._items)

    @classmethod
    def _parsed(cls, items: list[tuple[str, str]] | None, merged: dict[str, str]) -> Headers:
        """Headers from a parse that already lower-cased the names and merged the repeats.

        ``items`` is None when no name came twice: the lines are then ``merged``'s items, and
        a connection keeps its request's headers without a second copy of them.
        """
        headers = cls.__new__(cls)
        headers._items = items
        headers._map = merged
        return headers

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str | _T) -> str | _T: ...

    def get(self, name: str, /, default: object = None) -> object:
        """The value of ``name`` (repeats joined by ``", "``), or ``default``."""
        # Mapping.get would go through __getitem__ and a KeyError; the handshake reads several.
        return self._map.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in the order received."""
        name = name.lower()
        if self._items is None:
            return [self._map[name]] if name in self._map else []
        return [v for k, v in self._items if k == name]

    def raw_items(self) -> list[tuple[str, str]]:
        """The header lines as received (names lower-cased), repeats included."""
        return list(self._map.items() if self._items is None else self._items)

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


def _has_token(value: str, token: str) -> bool:
    """Whether the comma-separated ``value`` lists ``token`` (lower-case), in any letter case."""
    # The usual value is the token alone: no list to build.
    return value.lower() == token or token in _tokens(value)


def _merge(items: list[tuple[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in items:
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _parse_header_lines(lines: list[str], max_headers: int, status: int) -> Headers:
    if len(lines) > max_headers:
        raise InvalidMessage(f"more than {max_headers} header lines", 431 if status else None)
    # The lines one by one are kept only once a name comes twice (Headers._parsed).
    items: list[tuple[str, str]] | None = None
    merged: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        lower = name.lower()
        common = _COMMON_NAMES.get(lower)
        if not sep or (common is None and (not name or not _TOKEN_CHARS.issuperset(name))):
            _bad_header_line(line, status)
        lower = common or lower
        value = value.strip(" \t")
        value = _COMMON_VALUES.get(value, value)
        if lower in merged:
            if items is None:
                items = list(merged.items())
            merged[lower] = f"{merged[lower]}, {value}"
        else:
            merged[lower] = value
        if items is not None:
            items.append((lower, value))
    return Headers._parsed(items, merged)


def _bad_header_line(line: str, status: int) -> NoReturn:
    """Raise the error for a header line whose name is not a token (or that has no colon)."""
    # A line starting with white space is a folded continuation (its name would start with it).
    if line[:1] in (" ", "\t"):
        raise InvalidMessage("obsolete header line folding", status or None)
    raise InvalidMessage(f"malformed header line {line[:40]!r}", status or None)


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
    if version == "HTTP/1.1":
        return True
    parsed = _http_version(version)
    return parsed is not None and parsed >= (1, 1)


def _render_headers(headers: Iterable[tuple[str, str]]) -> str:
    out = []
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains a line break")
        out.append(f"{name}: {value}\r\n")
    return "".join(out)
