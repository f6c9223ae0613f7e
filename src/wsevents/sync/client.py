"""The blocking client: TCP/TLS connect and the client side of the handshake, then a :class:`Connection`."""

from __future__ import annotations

import logging
import socket
import ssl as _ssl
from typing import Any

from ..aio.options import ClientOptions, merge_options
from ..errors import HandshakeError
from ..protocol.deflate import PerMessageDeflate, client_accept, client_offer
from ..protocol.handshake import build_request, check_response, generate_key, parse_response
from ..protocol.url import WebSocketURL, client_headers, parse_url
from .connection import Connection
from .handshake import Deadline, read_head

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

    Takes the options of :func:`wsevents.connect` (``protocols``,
    ``extra_headers``, ``compression``, ``ssl``, ``host``, ``port``,
    ``handshake_timeout``, ``close_timeout``, ``max_buffer_length``,
    ``ping_interval``, ``ping_timeout``, ``max_queue``, ``max_header_size``,
    ``max_headers``, ...), checked before any I/O.

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
    parsed = parse_url(url)
    if opts.ssl is not None and not parsed.secure:
        raise ValueError(f"an ssl context was given for {url!r}: use a wss:// URL for TLS")
    host = opts.host or parsed.host
    port = opts.port or parsed.port
    deadline = Deadline(opts.handshake_timeout)
    try:
        sock = socket.create_connection((host, port), timeout=opts.handshake_timeout)
    except TimeoutError:
        raise HandshakeError(f"timed out connecting to {host}:{port}") from None
    try:
        if parsed.secure:
            sock = _wrap_tls(sock, parsed, opts, deadline)
        conn = _handshake(sock, parsed, opts, deadline)
    except TimeoutError:
        sock.close()
        raise HandshakeError(f"timed out in the opening handshake with {host}:{port}") from None
    except BaseException:
        sock.close()
        raise
    return conn


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


def _handshake(sock: socket.socket, url: WebSocketURL, opts: ClientOptions, deadline: Deadline) -> Connection:
    key = generate_key()
    config = opts.deflate_config()
    offer = client_offer(config) if config is not None else None
    headers = client_headers(url, opts.header_items(), offer)
    deadline.apply(sock)
    sock.sendall(build_request(url.host_header, url.path, key, opts.protocols, headers))
    head, leftover = read_head(sock, deadline, opts.max_header_size, response=True)
    response = parse_response(head, opts.max_headers)
    protocol = check_response(response, key, list(opts.protocols), config is not None)
    deflate: PerMessageDeflate | None = None
    answer = response.headers.get("sec-websocket-extensions")
    if answer and config is not None:
        deflate = client_accept(answer, config)
    sock.settimeout(None)
    conn = Connection(
        sock,
        client=True,
        options=opts,
        path=url.path,
        headers=response.headers,
        protocol=protocol,
        deflate=deflate,
    )
    logger.info("connected to %s%s", url.host_header, url.path)
    conn._start(leftover)
    return conn
