"""The client: URL parsing, TCP/TLS connect, the client side of the handshake."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as _ssl
import urllib.request
from collections.abc import Awaitable
from typing import cast

from ..errors import HandshakeError, HandshakeTimeout, InvalidStatus, ProxyError
from ..protocol.handshake import Response, find_head_end, generate_key, parse_response
from ..protocol.opening import ClientHandshake, HandshakeState
from ..protocol.proxy import (
    ProxyURL,
    build_connect_request,
    check_connect_response,
    redirect_target,
    same_origin,
    select_proxy,
)
from ..protocol.url import WebSocketURL, parse_url
from . import runner
from .connection import Connection, ReadyState
from .options import ClientOptions
from .unix import unix_error, unix_url

__all__ = ["ClientConnection", "WebSocketURL", "parse_url", "open_connection"]

logger = logging.getLogger("wsevents")


class ClientConnection(Connection):
    """The client side of a connection; awaiting it waits for the handshake."""

    def __init__(self, url: WebSocketURL, options: ClientOptions, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(client=True, loop=loop, options=options, on_handshake=self._on_response)
        self.url = url
        self.path = url.path
        self.protocols = list(options.protocols)
        self._key = generate_key()
        self._opened: asyncio.Future[Connection] = loop.create_future()
        self._awaited = False
        self._redirects = 0
        # Set once a redirect left the first URL's origin: its credentials stay behind.
        self._cross_origin = False

    def _connect_timed_out(self, message: str) -> None:
        """The TCP (or proxy, or Unix socket) connect outlived ``handshake_timeout``."""
        self._failed = HandshakeTimeout(message)
        self._abort()

    def _made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request (``connection_made`` turns an exception here into a failed connect)."""
        if self.ready_state is ReadyState.CLOSED:
            # close() was called while the TCP connection was being made.
            transport.close()
            return
        assert isinstance(self._options, ClientOptions)
        # A new one at each connect: a redirect's target has its own URL, and maybe another origin.
        handshake = ClientHandshake.from_options(
            self.url, self._options, cross_origin=self._cross_origin, key=self._key
        )
        self._handshake = handshake
        super()._made(transport)
        assert self._transport is not None
        self._transport.write(handshake.data_to_send())

    def _on_response(self, conn: Connection, handshake: ClientHandshake) -> None:
        response = handshake.response
        if handshake.state is HandshakeState.REDIRECT:
            assert response is not None
            try:
                self._follow(response)
            except HandshakeError as exc:
                self._failed = exc
                self._abort()
            return
        if response is not None:
            self.headers = response.headers
        if handshake.state is not HandshakeState.ACCEPTED:
            self._failed = handshake.error
            self._abort()
            return
        self.protocol = handshake.protocol
        self.deflate = handshake.deflate
        logger.info("connected to %s%s", self.url.host_header, self.url.path)
        if not self._opened.done():
            self._opened.set_result(self)
        self._open(handshake.leftover)

    def _follow(self, response: Response) -> bool:
        """Reconnect to where a redirect leads; False when redirects are off.

        Raises:
            HandshakeError: too many redirects, or a target refused by :func:`redirect_target`.
        """
        assert isinstance(self._options, ClientOptions)
        limit = self._options.max_redirects
        if limit == 0:
            return False
        if self._redirects >= limit:
            raise InvalidStatus(f"too many redirects: more than max_redirects={limit}", response.status)
        target = redirect_target(self.url, response)
        self._redirects += 1
        logger.info("redirect %d: %s%s -> %s%s", response.status, self.url.host_header, self.url.path,
                    target.host_header, target.path)
        if not same_origin(self.url, target):
            self._cross_origin = True
        # The old socket goes away without telling this connection, which lives on.
        transport, self._transport = self._transport, None
        self._cancel_timer()
        if transport is not None:
            transport.set_protocol(asyncio.Protocol())
            transport.close()
        self.url, self.path = target, target.path
        self._loop.create_task(_connect(self, target, self._options, self._loop))
        return True

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
    parsed = unix_url(parse_url(url), options)
    if options.ssl is not None and not parsed.secure:
        raise ValueError(f"an ssl context was given for {url!r}: use a wss:// URL for TLS")
    conn = cls(parsed, options, loop)
    loop.create_task(_connect(conn, parsed, options, loop))
    return conn


async def _connect_unix(
    conn: ClientConnection, url: WebSocketURL, options: ClientOptions, loop: asyncio.AbstractEventLoop
) -> None:
    path = url.unix_path
    assert path is not None
    context = _ssl_context(url, options)
    await runner.binds_settled(loop)
    try:
        connect = loop.create_unix_connection(
            lambda: conn, path, ssl=context, server_hostname=url.host if context is not None else None
        )
        await asyncio.wait_for(connect, options.handshake_timeout)
    except asyncio.TimeoutError:
        conn._connect_timed_out(f"timed out connecting to the Unix socket {path}")
    except Exception as exc:
        logger.debug("connecting to the Unix socket %s failed: %r", path, exc)
        if conn.transport is None:
            conn.connection_lost(unix_error(exc, path))


async def _connect(
    conn: ClientConnection, url: WebSocketURL, options: ClientOptions, loop: asyncio.AbstractEventLoop
) -> None:
    if url.unix_path is not None:
        # No proxy: a Unix socket is on this machine.
        await _connect_unix(conn, url, options, loop)
        return
    host = options.host or url.host
    port = options.port or url.port
    context = _ssl_context(url, options)
    proxy = _proxy(url, options)
    # A server of this loop may still be binding (listen() on a host name): as in Node,
    # a connect made right after listen() must find it listening.
    await runner.binds_settled(loop)
    try:
        connect: Awaitable[object]
        if proxy is None:
            connect = loop.create_connection(
                lambda: conn,
                host,
                port,
                ssl=context,
                server_hostname=url.host if context is not None else None,
            )
        else:
            connect = _through_proxy(conn, proxy, host, port, url, context, options, loop)
        if options.handshake_timeout is not None:
            await asyncio.wait_for(connect, options.handshake_timeout)
        else:
            await connect
    except asyncio.TimeoutError:
        via = f" through proxy {proxy}" if proxy is not None else ""
        conn._connect_timed_out(f"timed out connecting to {host}:{port}{via}")
    except Exception as exc:
        logger.debug("connecting to %s:%s failed: %r", host, port, exc)
        if conn.transport is None:
            if proxy is not None and isinstance(exc, OSError) and not isinstance(exc, _ssl.SSLError):
                exc = _proxy_error(exc, proxy)
            conn.connection_lost(_explain(exc, host, context is not None))


def _proxy(url: WebSocketURL, options: ClientOptions) -> ProxyURL | None:
    """The proxy to go through: the ``proxy`` option's, the environment's (``True``), or None."""
    return select_proxy(url, options.proxy, urllib.request.getproxies())


def _proxy_error(exc: OSError, proxy: ProxyURL) -> OSError:
    """The same kind of error, naming the proxy it came from."""
    if isinstance(exc, socket.gaierror):
        return exc
    explained = type(exc)(exc.errno, f"cannot connect to proxy {proxy}: {exc.strerror or exc}")
    explained.__cause__ = exc
    return explained


async def _through_proxy(
    conn: ClientConnection,
    proxy: ProxyURL,
    host: str,
    port: int,
    url: WebSocketURL,
    context: _ssl.SSLContext | None,
    options: ClientOptions,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Open a tunnel to ``host:port`` through ``proxy``, then hand it (with TLS for wss://) to ``conn``."""
    hostname = url.host if context is not None else None
    if proxy.is_socks:
        sock = await _socks_connect(proxy, host, port)
        await loop.create_connection(lambda: conn, sock=sock, ssl=context, server_hostname=hostname)
        return
    tunnel = _Tunnel(build_connect_request(host, port, proxy.user_info), options.max_header_size, loop)
    # An https:// proxy is checked like the server (the ssl option's CAs, or the system's).
    proxy_context = (options.ssl or _ssl.create_default_context()) if proxy.scheme == "https" else None
    transport, _ = await loop.create_connection(
        lambda: tunnel,
        proxy.host,
        proxy.port,
        ssl=proxy_context,
        server_hostname=proxy.host if proxy_context is not None else None,
    )
    try:
        head, leftover = await tunnel.answer
        check_connect_response(parse_response(head, options.max_headers), proxy)
        if context is not None:
            tls = await loop.start_tls(transport, conn, context, server_hostname=hostname)
            assert tls is not None
            transport = tls
        else:
            transport.set_protocol(conn)
    except BaseException:
        transport.close()
        raise
    conn.connection_made(transport)
    if leftover and context is None:
        conn.data_received(leftover)


async def _socks_connect(proxy: ProxyURL, host: str, port: int) -> socket.socket:
    try:
        from python_socks import ProxyError as SocksError
        from python_socks import ProxyType
        from python_socks.async_.asyncio import Proxy
    except ImportError:
        raise proxy.socks_missing() from None

    try:
        socks = Proxy.create(ProxyType[proxy.socks_version], **proxy.socks_arguments())
        sock: socket.socket = await socks.connect(host, port)
    except SocksError as exc:
        raise ProxyError(f"proxy {proxy} refused the tunnel: {exc}") from exc
    return sock


class _Tunnel(asyncio.Protocol):
    """Sends ``CONNECT`` and reads the proxy's answer head (``answer``: head and what followed it)."""

    def __init__(self, request: bytes, max_size: int, loop: asyncio.AbstractEventLoop) -> None:
        self._request = request
        self._max_size = max_size
        self._buffer = bytearray()
        self.answer: asyncio.Future[tuple[bytes, bytes]] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(self._request)

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._buffer += data
        try:
            end = find_head_end(self._buffer, self._max_size, response=True)
        except HandshakeError as exc:
            self.answer.set_exception(exc)
            return
        if end >= 0:
            self.answer.set_result((bytes(self._buffer[:end]), bytes(self._buffer[end:])))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(
                ConnectionResetError("the proxy closed the connection before answering CONNECT")
            )


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
