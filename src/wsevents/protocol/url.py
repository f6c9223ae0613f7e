"""WebSocket URLs (RFC 6455 section 3): parsed and checked before any I/O.

Both I/O layers (asyncio and threads) connect with what :func:`parse_url` returns.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from ..errors import InvalidURI

__all__ = ["WebSocketURL", "parse_url", "client_headers"]


@dataclass(frozen=True)
class WebSocketURL:
    """A parsed ``ws://`` or ``wss://`` URL (or ``ws+unix://``/``wss+unix://``: ``unix_path`` set)."""

    secure: bool
    host: str
    port: int
    path: str
    user_info: tuple[str, str] | None = None
    #: The Unix socket to connect to instead of ``host``:``port`` (which still make the ``Host`` header).
    unix_path: str | None = None

    @property
    def host_header(self) -> str:
        """The ``Host`` header: brackets around IPv6 literals, default port left out."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> WebSocketURL:
    """Parse and check a WebSocket URL (RFC 6455 section 3).

    A host name outside ASCII is sent in its IDNA form, and characters
    outside ASCII in the path are percent-encoded (as browsers do).

    A ``ws+unix:///path/to.sock:/resource`` URL (the form of Node's ``ws``
    package; ``wss+unix://`` for TLS) names a Unix socket, then ``:`` and the
    request path (``/`` when left out); its ``Host`` header is ``localhost``.

    Raises:
        InvalidURI: (a ValueError) naming what is wrong (not a str, scheme other than
            ``ws``/``wss``/``ws+unix``/``wss+unix``, no host, bad port, a fragment).
    """
    if not isinstance(url, str):
        raise InvalidURI(f"URL must be a str, not {type(url).__name__}")
    if url[:9].lower() in ("ws+unix:/", "wss+unix:"):
        return _parse_unix_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(f"invalid WebSocket URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        given = scheme or "missing"
        raise InvalidURI(f"invalid WebSocket URL {url!r}: scheme must be ws or wss, not {given!r}")
    if not parts.hostname:
        raise InvalidURI(f"invalid WebSocket URL {url!r}: no host")
    _check_no_fragment(url, parts.fragment)
    secure = scheme == "wss"
    if port is None:
        port = 443 if secure else 80
    elif port == 0:
        raise InvalidURI(f"invalid WebSocket URL {url!r}: port 0")
    path = _request_path(url, parts.path or "/", parts.query)
    host = _ascii_host(url, parts.hostname)
    user_info = None
    if parts.username is not None:
        user_info = (unquote(parts.username), unquote(parts.password or ""))
    return WebSocketURL(secure, host, port, path, user_info)


_PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))


def _check_no_fragment(url: str, fragment: str) -> None:
    if fragment or url.endswith("#"):
        raise InvalidURI(f"invalid WebSocket URL {url!r}: fragments are not allowed")


def _request_path(url: str, path: str, query: str) -> str:
    """The path and query of the request line, checked; only ASCII goes into it (the rest percent-encoded)."""
    if query:
        path += "?" + query
    if any(c in path for c in " \r\n"):
        raise InvalidURI(f"invalid WebSocket URL {url!r}: whitespace in the path")
    return quote(path, safe=_PRINTABLE_ASCII)


def _ascii_host(url: str, host: str) -> str:
    """``host`` in its IDNA form when it is not ASCII (only ASCII goes into the Host header)."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURI(f"invalid WebSocket URL {url!r}: bad host name {host!r} ({exc})") from None


def _parse_unix_url(url: str) -> WebSocketURL:
    """``ws+unix:///path/to.sock:/resource`` (or ``wss+unix:``): the socket path, ``:``, the request path."""
    parts = urlsplit(url)
    if parts.netloc:
        raise InvalidURI(
            f"invalid WebSocket URL {url!r}: a {parts.scheme}:// URL takes no host "
            f"(write {parts.scheme}:///path/to.sock:/resource)"
        )
    _check_no_fragment(url, parts.fragment)
    sock_path, _, path = parts.path.partition(":")
    if not sock_path:
        raise InvalidURI(f"invalid WebSocket URL {url!r}: no socket path")
    path = path or "/"
    if not path.startswith("/"):
        raise InvalidURI(f"invalid WebSocket URL {url!r}: the request path after ':' must start with '/'")
    path = _request_path(url, path, parts.query)
    secure = parts.scheme.lower() == "wss+unix"
    # Host "localhost" as the ws package sends: the socket path means nothing to a server's routing.
    return WebSocketURL(secure, "localhost", 443 if secure else 80, path, None, unquote(sock_path))


def client_headers(
    url: WebSocketURL, headers: list[tuple[str, str]], extensions: str | None
) -> list[tuple[str, str]]:
    """The extra headers of the client's upgrade request.

    ``headers`` (the application's own) win: Basic ``Authorization`` from the
    URL's user info, and the ``Sec-WebSocket-Extensions`` offer
    ``extensions``, are added only when the application did not set them.
    """
    headers = list(headers)
    names = {name.lower() for name, _ in headers}
    if url.user_info is not None and "authorization" not in names:
        token = base64.b64encode(":".join(url.user_info).encode("utf-8")).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    if extensions is not None and "sec-websocket-extensions" not in names:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    return headers
