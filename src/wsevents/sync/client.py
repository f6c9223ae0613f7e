"""The blocking client: TCP/TLS connect and the client side of the handshake, then a :class:`Connection`."""

from __future__ import annotations

import logging
import socket
import ssl as _ssl
import urllib.request
from typing import Any

from ..errors import HandshakeError, HandshakeTimeout, InvalidStatus, ProxyError
from ..options import ClientOptions, merge_options
from ..protocol.handshake import Response, parse_response
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
from ..unix import unix_error, unix_url
from .connection import Connection, start
from .handshake import Deadline, read_head, receive_head

__all__ = ["connect"]

logger = logging.getLogger("wsevents")


# Options of the asyncio client that the threaded one does not implement: refused by name
# rather than accepted and ignored.
_ASYNC_ONLY = (
    "reconnect",
    "reconnect_delay",
    "reconnect_max_delay",
    "reconnect_stop_codes",
    "reconnect_queue",
)


def _refuse_async_only(options: dict[str, Any]) -> None:
    given = [name for name in _ASYNC_ONLY if name in options]
    if given:
        raise TypeError(
            f"wsevents.sync.connect() does not reconnect ({', '.join(given)}): use wsevents.connect(url, "
            "reconnect=True) from asyncio, or catch ConnectionClosed and call wsevents.sync.connect() again"
        )


def connect(url: str, **options: Any) -> Connection:
    """Open a WebSocket connection to ``url`` (``ws://`` or ``wss://``) and return it once open.

    ``ws+unix:///path/to.sock:/resource`` (or the ``unix_path`` option)
    connects to a Unix socket. Takes the options of :func:`wsevents.connect`
    (``protocols``, ``extra_headers``, ``compression``, ``ssl``, ``host``, ``port``, ``unix_path``,
    ``handshake_timeout``, ``close_timeout``, ``max_buffer_length``,
    ``ping_interval``, ``ping_timeout``, ``max_queue``, ``max_header_size``,
    ``max_headers``, ``proxy``, ``max_redirects``, ...), checked before any I/O.
    Like the asyncio client it goes through the environment's proxy
    (``https_proxy``, ``http_proxy``, ``all_proxy``, ``no_proxy``) and
    follows redirects of the handshake.

    Raises:
        TypeError, ValueError: an unknown option, a bad value, a malformed URL,
            or a ``reconnect*`` option (only the asyncio client reconnects).
        HandshakeError: the server refused the upgrade (``.status``), answered
            something that is not a WebSocket handshake, or did not finish it
            within ``handshake_timeout``.
        OSError: the TCP or TLS connection failed (e.g. ``ConnectionRefusedError``).
    """
    _refuse_async_only(options)
    opts: ClientOptions = merge_options(ClientOptions, None, options)
    parsed = unix_url(parse_url(url), opts)
    if opts.ssl is not None and not parsed.secure:
        raise ValueError(f"an ssl context was given for {url!r}: use a wss:// URL for TLS")
    deadline = Deadline(opts.handshake_timeout)
    redirects, cross_origin = 0, False
    while True:
        answer = _attempt(parsed, opts, deadline, cross_origin)
        if isinstance(answer, Connection):
            return answer
        # A redirect (only returned while max_redirects > 0).
        if redirects >= opts.max_redirects:
            limit = opts.max_redirects
            raise InvalidStatus(f"too many redirects: more than max_redirects={limit}", answer.status)
        target = redirect_target(parsed, answer)
        redirects += 1
        cross_origin = cross_origin or not same_origin(parsed, target)
        logger.info("redirect %d: %s%s -> %s%s", answer.status, parsed.host_header, parsed.path,
                    target.host_header, target.path)
        parsed = target


def _attempt(
    parsed: WebSocketURL, opts: ClientOptions, deadline: Deadline, cross_origin: bool
) -> Connection | Response:
    """One connection and handshake: the open connection, or the response of a redirect to follow."""
    host = opts.host or parsed.host
    port = opts.port or parsed.port
    proxy = None
    try:
        if parsed.unix_path is not None:
            sock = _connect_unix(parsed.unix_path, opts.handshake_timeout)
        else:
            proxy = select_proxy(parsed, opts.proxy, urllib.request.getproxies())
            if proxy is not None and proxy.scheme == "https" and parsed.secure:
                # ssl.SSLSocket cannot carry a second TLS session.
                raise HandshakeError(
                    f"wss:// through the https:// proxy {proxy} (TLS inside TLS) needs the asyncio client"
                )
            sock = _connect_tcp(host, port, proxy, opts, deadline)
    except TimeoutError:
        via = f" through proxy {proxy}" if proxy is not None else ""
        where = parsed.unix_path or f"{host}:{port}"
        raise HandshakeTimeout(f"timed out connecting to {where}{via}") from None
    try:
        if parsed.secure:
            sock = _wrap_tls(sock, parsed, opts, deadline)
        answer = _handshake(sock, parsed, opts, deadline, cross_origin)
    except TimeoutError:
        sock.close()
        raise HandshakeTimeout(f"timed out in the opening handshake with {host}:{port}") from None
    except BaseException:
        sock.close()
        raise
    if isinstance(answer, Response):
        sock.close()
    return answer


def _connect_tcp(
    host: str, port: int, proxy: ProxyURL | None, opts: ClientOptions, deadline: Deadline
) -> socket.socket:
    """A socket to ``host:port``, directly or through a tunnel of ``proxy``."""
    if proxy is None:
        return socket.create_connection((host, port), timeout=opts.handshake_timeout)
    if proxy.is_socks:
        return _socks_connect(proxy, host, port, opts.handshake_timeout)
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=opts.handshake_timeout)
    except OSError as exc:
        if isinstance(exc, (TimeoutError, socket.gaierror)):
            raise
        raise type(exc)(exc.errno, f"cannot connect to proxy {proxy}: {exc.strerror or exc}") from exc
    try:
        if proxy.scheme == "https":
            context = opts.ssl or _ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=proxy.host)
        deadline.apply(sock)
        sock.sendall(build_connect_request(host, port, proxy.user_info))
        head, _ = read_head(sock, deadline, opts.max_header_size, response=True)
        check_connect_response(parse_response(head, opts.max_headers), proxy)
    except BaseException:
        sock.close()
        raise
    return sock


def _socks_connect(proxy: ProxyURL, host: str, port: int, timeout: float | None) -> socket.socket:
    try:
        from python_socks import ProxyError as SocksError
        from python_socks import ProxyType
        from python_socks.sync import Proxy
    except ImportError:
        raise proxy.socks_missing() from None
    try:
        socks = Proxy.create(ProxyType[proxy.socks_version], **proxy.socks_arguments())
        sock: socket.socket = socks.connect(host, port, timeout=timeout)
    except SocksError as exc:
        raise ProxyError(f"proxy {proxy} refused the tunnel: {exc}") from exc
    return sock


def _connect_unix(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if isinstance(exc, TimeoutError):
            raise
        raise unix_error(exc, path) from exc
    return sock


def _wrap_tls(
    sock: socket.socket, url: WebSocketURL, opts: ClientOptions, deadline: Deadline
) -> socket.socket:
    context = opts.ssl or _ssl.create_default_context()
    tls = context.wrap_socket(sock, server_hostname=url.host, do_handshake_on_connect=False)
    try:
        deadline.apply(tls)
        tls.do_handshake()
    except BaseException:
        # wrap_socket() took the socket over: closing the plain one would not close this one.
        tls.close()
        raise
    return tls


def _handshake(
    sock: socket.socket, url: WebSocketURL, opts: ClientOptions, deadline: Deadline, cross_origin: bool
) -> Connection | Response:
    handshake = ClientHandshake.from_options(url, opts, cross_origin=cross_origin)
    deadline.apply(sock)
    sock.sendall(handshake.data_to_send())
    receive_head(sock, deadline, handshake)
    response = handshake.response
    if handshake.state is HandshakeState.REDIRECT:
        assert response is not None
        return response
    if handshake.state is not HandshakeState.ACCEPTED:
        assert handshake.error is not None
        raise handshake.error
    assert response is not None
    sock.settimeout(None)
    conn = Connection(
        sock,
        client=True,
        options=opts,
        path=url.path,
        headers=response.headers,
        protocol=handshake.protocol,
        deflate=handshake.deflate,
    )
    logger.info("connected to %s%s", url.host_header, url.path)
    start(conn, handshake.leftover)
    return conn
