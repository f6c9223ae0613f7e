"""The client: URL parsing, TCP/TLS connect, the client side of the handshake."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as _ssl

from ..errors import HandshakeError
from ..protocol.deflate import client_accept, client_offer
from ..protocol.handshake import build_request, check_response, generate_key, parse_response
from ..protocol.url import WebSocketURL, client_headers, parse_url
from . import runner
from .connection import Connection, ReadyState
from .options import ClientOptions

__all__ = ["ClientConnection", "WebSocketURL", "parse_url", "open_connection"]

logger = logging.getLogger("wsevents")


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
        config = self._options.deflate_config()
        offer = client_offer(config) if config is not None else None
        headers = client_headers(self.url, self._options.header_items(), offer)
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


def open_connection(
    url: str,
    options: ClientOptions,
    loop: asyncio.AbstractEventLoop,
    cls: type[ClientConnection] = ClientConnection,
) -> ClientConnection:
    """Create a client connection (a ``cls``) to ``url`` and start connecting in the background.

    Raises:
        ValueError: a malformed URL, or an ``ssl`` context for a ``ws://`` URL.
    """
    parsed = parse_url(url)
    if options.ssl is not None and not parsed.secure:
        raise ValueError(f"an ssl context was given for {url!r}: use a wss:// URL for TLS")
    conn = cls(parsed, options, loop)
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
