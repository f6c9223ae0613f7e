"""The Node-shaped entry points: ``create_server``, ``connect`` and the module defaults.

Options may be given as a dict (as in Node), as keyword arguments, or both
(keywords win); a callable in the options position is taken as the callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, overload

from .aio.client import ClientConnection, open_connection
from .aio.connection import Connection
from .aio.reconnect import ReconnectingConnection
from .aio.runner import get_loop
from .aio.server import Server
from .options import DEFAULTS, ClientOptions, ServerOptions, merge_options

__all__ = ["create_server", "connect", "set_binary_fragmentation", "set_max_buffer_length"]


def _split(
    options: Mapping[str, Any] | Callable[..., Any] | None,
    callback: Callable[..., Any] | None,
) -> tuple[Mapping[str, Any] | None, Callable[..., Any] | None]:
    if callable(options) and not isinstance(options, Mapping):
        if callback is not None:
            raise TypeError("two callbacks given")
        return None, options
    return options, callback


def create_server(
    options: Mapping[str, Any] | Callable[..., Any] | None = None,
    callback: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> Server:
    """A new :class:`Server`; ``callback`` becomes a ``"connection"`` listener.

    Call :meth:`Server.listen` to start accepting. Options: TLS (``secure``
    with ``certfile``/``keyfile``, or ``ssl``), ``valid_protocols``,
    ``select_protocol``, ``http_handler``, ``verify_client``, ``origins``,
    ``max_connections`` and the options common to both sides: ``compression``,
    ``max_buffer_length``, ``binary_fragmentation``, ``max_queue``,
    ``max_write_buffer``, ``close_timeout``, ``handshake_timeout``,
    ``ping_interval``, ``ping_timeout``, ``max_header_size``, ``max_headers``
    (each with its default in the options table of ``docs/reference.md``).

    Raises:
        TypeError: an unknown option (named in the message, with what was
            probably meant: ``port`` goes to :meth:`Server.listen`), or an
            option value of the wrong type.
        ValueError: an option value out of range or malformed (e.g. a
            subprotocol that is not a token).
        FileNotFoundError: ``certfile`` or ``keyfile`` does not exist (named).
        ssl.SSLError: the certificate or key cannot be used (the files named).
    """
    opts, cb = _split(options, callback)
    server = Server(merge_options(ServerOptions, opts, kwargs), get_loop())
    if cb is not None:
        server.on("connection", cb)
    return server


@overload
def connect(
    url: str,
    options: Mapping[str, Any] | Callable[..., Any] | None = None,
    callback: Callable[..., Any] | None = None,
    *,
    reconnect: Literal[True],
    **kwargs: Any,
) -> ReconnectingConnection: ...
@overload
def connect(
    url: str,
    options: Mapping[str, Any] | Callable[..., Any] | None = None,
    callback: Callable[..., Any] | None = None,
    *,
    reconnect: Literal[False] = False,
    **kwargs: Any,
) -> Connection: ...
@overload
def connect(
    url: str,
    options: Mapping[str, Any] | Callable[..., Any] | None = None,
    callback: Callable[..., Any] | None = None,
    *,
    reconnect: bool,
    **kwargs: Any,
) -> Connection | ReconnectingConnection: ...


def connect(
    url: str,
    options: Mapping[str, Any] | Callable[..., Any] | None = None,
    callback: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> Connection | ReconnectingConnection:
    """A client :class:`Connection` to ``url`` (``ws://`` or ``wss://``; ``ws+unix:///path/to.sock:/resource``
    or ``wss+unix://`` for a Unix socket).

    It connects in the background; ``callback`` becomes a ``"connect"``
    listener. The connection is awaitable (``await connect(url)`` returns it
    once open and raises :class:`~wsevents.errors.HandshakeError` or the
    ``OSError`` on failure) and an async context manager that closes it.
    Options: ``extra_headers``, ``protocols``, ``ssl``, ``host``, ``port``, ``unix_path``
    and the options common to both sides (see :func:`create_server`).

    With ``reconnect=True`` it returns a :class:`ReconnectingConnection`
    instead, which opens a new connection after each drop (``callback`` is
    then called at each ``"connect"``): options ``reconnect_delay`` and
    ``reconnect_max_delay`` (the backoff, in seconds), ``reconnect_stop_codes``
    (close codes from the server that end reconnection) and
    ``reconnect_queue`` (messages held while disconnected; 0: sends raise).

    Every option is checked here, before any I/O.

    Raises:
        ValueError: a malformed URL or one that is not ``ws://``/``wss://``;
            an option value out of range or malformed (a header name that is
            not a token, a header value with CR, LF or NUL, a subprotocol
            listed twice, ``ssl`` with a ``ws://`` URL, ...).
        TypeError: an unknown option (with what was probably meant, e.g.
            ``max_buffer_length`` for ``maxBufferLength``, or "server-only"),
            or an option value of the wrong type.
    """
    opts, cb = _split(options, callback)
    client_options = merge_options(ClientOptions, opts, kwargs)
    conn: ClientConnection | ReconnectingConnection
    if client_options.reconnect:
        conn = ReconnectingConnection(url, client_options, get_loop())
    else:
        conn = open_connection(url, client_options, get_loop())
    if cb is not None:
        conn.on("connect", cb)
    return conn


def set_binary_fragmentation(nbytes: int) -> None:
    """Default minimum size of one frame sent by an ``OutStream`` (initially 512 KiB)."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0:
        raise ValueError("binary fragmentation must be a positive int")
    DEFAULTS.binary_fragmentation = nbytes


def set_max_buffer_length(nbytes: int) -> None:
    """Default bound on data held for a connection and not yet consumed (initially 2 MiB)."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0:
        raise ValueError("max buffer length must be a positive int")
    DEFAULTS.max_buffer_length = nbytes
