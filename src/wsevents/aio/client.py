"""The client: URL parsing, TCP/TLS connect, the client side of the handshake."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl as _ssl
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from ..errors import HandshakeError
from ..protocol.deflate import client_accept, client_offer
from ..protocol.handshake import build_request, check_response, generate_key, parse_response
from . import runner
from .connection import Connection, ReadyState
from .options import ClientOptions

__all__ = ["ClientConnection", "WebSocketURL", "parse_url", "open_connection"]

logger = logging.getLogger("wsevents")


@dataclass(frozen=True)
class WebSocketURL:
    """A parsed ``ws://`` or ``wss://`` URL."""

    secure: bool
    host: str
    port: int
    path: str
    user_info: tuple[str, str] | None = None

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

    Raises:
        ValueError: naming what is wrong (not a str, scheme other than
            ``ws``/``wss``, no host, bad port, a fragment).
    """
    if not isinstance(url, str):
        raise ValueError(f"URL must be a str, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid WebSocket URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        given = scheme or "missing"
        raise ValueError(f"invalid WebSocket URL {url!r}: scheme must be ws or wss, not {given!r}")
    if not parts.hostname:
        raise ValueError(f"invalid WebSocket URL {url!r}: no host")
    if parts.fragment or url.endswith("#"):
        raise ValueError(f"invalid WebSocket URL {url!r}: fragments are not allowed")
    secure = scheme == "wss"
    if port is None:
        port = 443 if secure else 80
    elif port == 0:
        raise ValueError(f"invalid WebSocket URL {url!r}: port 0")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(c in path for c in " \r\n"):
        raise ValueError(f"invalid WebSocket URL {url!r}: whitespace in the path")
    # Only ASCII goes into the request line and the Host header.
    path = quote(path, safe=_PRINTABLE_ASCII)
    host = parts.hostname
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid WebSocket URL {url!r}: bad host name {host!r} ({exc})") from None
    user_info = None
    if parts.username is not None:
        user_info = (unquote(parts.username), unquote(parts.password or ""))
    return WebSocketURL(secure, host, port, path, user_info)


_PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))


class ClientConnection(Connection):
    """The client side of a connection; awaiting it waits for the handshake."""

    def __init__(self, url: WebSocketURL, options: ClientOptions, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(client=True, loop=loop, options=options, on_head=self._on_response)
        self.url = url
        self.path = url.path
        self.protocols = list(options.protocols)
        self._key = generate_key()
        self._opened: asyncio.Future[Connection] = loop.create_future()
        self._awaited = False

    def _made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request (``connection_made`` turns an exception here into a failed connect)."""
        if self.ready_state is ReadyState.CLOSED:
            # close() was called while the TCP connection was being made.
            transport.close()
            return
        super()._made(transport)
        assert self._transport is not None
        assert isinstance(self._options, ClientOptions)
        headers = self._options.header_items()
        if self.url.user_info is not None and not any(k.lower() == "authorization" for k, _ in headers):
            token = base64.b64encode(":".join(self.url.user_info).encode("utf-8")).decode("ascii")
            headers.append(("Authorization", f"Basic {token}"))
        config = self._options.deflate_config()
        if config is not None and not any(k.lower() == "sec-websocket-extensions" for k, _ in headers):
            headers.append(("Sec-WebSocket-Extensions", client_offer(config)))
        self._transport.write(
            build_request(self.url.host_header, self.url.path, self._key, self.protocols, headers)
        )

    def _on_response(self, conn: Connection, head: bytes, leftover: bytes) -> None:
        try:
            response = parse_response(head, self._options.max_headers)
            self.headers = response.headers
            config = self._options.deflate_config()
            self.protocol = check_response(response, self._key, self.protocols, config is not None)
            answer = response.headers.get("sec-websocket-extensions")
            if answer and config is not None:
                self.deflate = client_accept(answer, config)
        except HandshakeError as exc:
            self._handshake_failed(exc)
            return
        logger.info("connected to %s%s", self.url.host_header, self.url.path)
        if not self._opened.done():
            self._opened.set_result(self)
        self._open(leftover)

    def _connect_failed(self, error: BaseException) -> None:
        failure = self._failed if isinstance(self._failed, HandshakeError) else error
        if self._opened.done():
            return
        self._opened.set_exception(failure)
        if self.listener_count("error"):
            self._opened.exception()
            self._emit_safe("error", failure)
        elif not self._awaited:
            self._opened.exception()
            logger.warning("connection to %s failed: %s", self.url.host_header, failure)

    async def _wait_open(self) -> Connection:
        self._awaited = True
        return await asyncio.shield(self._opened)


def _ssl_context(url: WebSocketURL, options: ClientOptions) -> _ssl.SSLContext | None:
    if not url.secure:
        return None
    return options.ssl or _ssl.create_default_context()


def open_connection(url: str, options: ClientOptions, loop: asyncio.AbstractEventLoop) -> ClientConnection:
    """Create a client connection to ``url`` and start connecting in the background.

    Raises:
        ValueError: a malformed URL, or an ``ssl`` context for a ``ws://`` URL.
    """
    parsed = parse_url(url)
    if options.ssl is not None and not parsed.secure:
        raise ValueError(f"an ssl context was given for {url!r}: use a wss:// URL for TLS")
    conn = ClientConnection(parsed, options, loop)
    loop.create_task(_connect(conn, parsed, options, loop))
    return conn


async def _connect(
    conn: ClientConnection, url: WebSocketURL, options: ClientOptions, loop: asyncio.AbstractEventLoop
) -> None:
    host = options.host or url.host
    port = options.port or url.port
    context = _ssl_context(url, options)
    # A server of this loop may still be binding (listen() on a host name): as in Node,
    # a connect made right after listen() must find it listening.
    await runner.binds_settled(loop)
    try:
        connect = loop.create_connection(
            lambda: conn,
            host,
            port,
            ssl=context,
            server_hostname=url.host if context is not None else None,
        )
        if options.handshake_timeout is not None:
            await asyncio.wait_for(connect, options.handshake_timeout)
        else:
            await connect
    except asyncio.TimeoutError:
        conn._failed = HandshakeError(f"timed out connecting to {host}:{port}")
        conn._abort()
    except Exception as exc:
        logger.debug("connecting to %s:%s failed: %r", host, port, exc)
        if conn.transport is None:
            conn.connection_lost(_explain(exc, host, context is not None))


# OpenSSL's reasons for a first answer that is not a TLS record (e.g. plain HTTP).
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"})


def _explain(exc: Exception, host: str, secure: bool) -> Exception:
    """``exc`` as it is, or the same kind of error saying what it means here (caused by ``exc``)."""
    explained: OSError
    if isinstance(exc, socket.gaierror):
        explained = socket.gaierror(exc.errno, f"cannot resolve host {host!r}: {exc.strerror}")
    elif secure and isinstance(exc, _ssl.SSLError) and exc.reason in _NOT_TLS:
        explained = _ssl.SSLError(
            exc.errno, f"{exc.strerror or exc}: the server does not speak TLS (try ws://)"
        )
        explained.library, explained.reason = exc.library, exc.reason
    else:
        return exc
    explained.__cause__ = exc
    return explained
