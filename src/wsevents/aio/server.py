"""The server: listening sockets, TLS, the server side of the handshake, the connection set."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket as _socket
import time
from collections.abc import Callable, Collection, Coroutine, Generator, Iterable
from typing import Any

from ..emitter import EventEmitter
from ..errors import HandshakeError
from ..metrics import ServerMetrics
from ..protocol.core import ReadyState
from ..protocol.hooks import HttpRequest, choose, error_response
from ..protocol.opening import LINGER_BYTES, LINGER_SECONDS, HandshakeState, ServerHandshake
from . import rooms, runner
from .broker import Broker
from .broker_option import make_broker
from .connection import Connection
from .host import ConnectionHost
from .options import ServerOptions
from .unix import UnixFile, bind_unix

__all__ = ["Server", "HttpRequest", "reject"]

logger = logging.getLogger("wsevents")


def reject(conn: Connection, error: HandshakeError, headers: list[tuple[str, str]] | None = None) -> None:
    """Answer a failed upgrade request with ``error.status`` and close the socket (see :func:`respond`)."""
    logger.debug("rejecting handshake from %s: %s (%d)", conn.remote_address, error, error.status or 400)
    if conn.server is not None:
        conn.server.metrics._refuse(error.status or 400)
    respond(conn, error_response(error, headers))


def _refused(conn: Connection, handshake: ServerHandshake) -> None:
    """Write the refusal ``handshake`` holds and close the socket (see :func:`respond`)."""
    status = handshake.status or 400
    logger.debug("rejecting handshake from %s: %s (%d)", conn.remote_address, handshake.error, status)
    if conn.server is not None:
        conn.server.metrics._refuse(status)
    respond(conn, handshake.data_to_send())


def respond(conn: Connection, response: bytes) -> None:
    """Write a final HTTP ``response`` and close the socket without losing it to a reset.

    Closing a socket whose input was not all read makes the kernel answer
    with a reset, and a client still sending (say, a head over
    ``max_header_size``) would see that instead of the response. So the
    sending side is shut down first (when the transport can: not over TLS),
    then what the client still sends is read and thrown away, at most
    :data:`LINGER_BYTES` for at most ``close_timeout`` seconds
    (:data:`LINGER_SECONDS` when that is None), until the client closes.
    """
    transport = conn.transport
    server = conn.server
    if server is not None:
        server._admitting.discard(conn)
    if transport is None or transport.is_closing():
        return
    transport.write(response)
    limit = server.options.close_timeout if server is not None else None
    linger = _Lingering(conn, transport)
    try:
        if transport.can_write_eof():
            transport.write_eof()
        transport.set_protocol(linger)
        transport.resume_reading()
    except (OSError, RuntimeError, NotImplementedError):  # pragma: no cover - the peer vanished meanwhile
        transport.close()
        return
    linger.timer = conn._loop.call_later(LINGER_SECONDS if limit is None else limit, transport.close)


class _Lingering(asyncio.Protocol):
    """The socket's protocol after a final response: discard input (bounded), pass the end on."""

    def __init__(self, conn: Connection, transport: asyncio.Transport) -> None:
        self.conn = conn
        self.transport = transport
        self.left = LINGER_BYTES
        self.timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        self.left -= len(data)
        if self.left < 0:
            self.transport.close()

    def eof_received(self) -> bool | None:
        # None: asyncio closes the transport; the client has read the response or gave up.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.conn.connection_lost(exc)


def _hook_failed(conn: Connection, handshake: ServerHandshake, hook: str, exc: Exception) -> None:
    """An application hook raised: log it with its traceback and answer 500."""
    logger.error("%s raised", hook, exc_info=exc)
    handshake.refuse(HandshakeError(f"{hook} raised {exc!r}", 500))
    _refused(conn, handshake)


def _http_request(conn: Connection, handshake: ServerHandshake) -> HttpRequest:
    """The request as the hooks see it."""
    request = handshake.request
    assert request is not None
    return HttpRequest(request.method, request.path, request.headers, conn.remote_address)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _dual_stack_socket(port: int) -> _socket.socket:
    """One socket for all IPv6 and IPv4 addresses (so that port 0 means one port)."""
    if _socket.has_ipv6:
        try:
            sock = _socket.socket(_socket.AF_INET6, _socket.SOCK_STREAM)
        except OSError:
            pass
        else:
            try:
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 0)
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                sock.bind(("::", port))
                return sock
            except OSError:
                sock.close()
                raise
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def _literal_address(host: str, port: int) -> tuple[int, Any] | None:
    """``(family, sockaddr)`` when ``host`` is an IP literal (no DNS is asked), else None."""
    try:
        infos = _socket.getaddrinfo(
            host, port, type=_socket.SOCK_STREAM, flags=_socket.AI_PASSIVE | _socket.AI_NUMERICHOST
        )
    except (_socket.gaierror, UnicodeError):
        return None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _bind_now(port: int, host: str | None) -> _socket.socket | None:
    """Bind and listen at once when that needs no name resolution (``host`` None or an IP literal).

    A socket that listens queues connections in the kernel before asyncio
    serves it, so a client started right after ``listen()`` is not refused
    (as in Node, whose ``listen()`` on an address binds synchronously).
    Returns None for a host name, which must be resolved first.
    """
    if host is None:
        try:
            sock = _dual_stack_socket(port)
        except OSError as exc:
            raise _bind_error(exc, ("::", port)) from None
    else:
        literal = _literal_address(host, port)
        if literal is None:
            return None
        family, sockaddr = literal
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if family == _socket.AF_INET6:
                # As asyncio does for an explicit host: "::" means IPv6 only here.
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
        except OSError as exc:
            sock.close()
            raise _bind_error(exc, sockaddr) from None
    try:
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


_BACKLOG = 511


def _unix_path(path: str | os.PathLike[str] | None, port: int, host: str | None) -> str | None:
    """``listen()``'s ``path`` as a str (None: no Unix socket), refused with a port or a host."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    if port or host is not None:
        raise ValueError("listen(path=...) takes no port or host: a Unix socket is named by its path alone")
    unix_path = os.fspath(path)
    if not unix_path:
        raise ValueError("path must not be empty")
    return unix_path


def _bind_error(exc: OSError, sockaddr: Any) -> OSError:
    """The bind error with the address in its message, as asyncio words it."""
    reason = (exc.strerror or str(exc)).lower()
    return OSError(exc.errno, f"error while attempting to bind on address {sockaddr[:2]!r}: {reason}")


class _Bind:
    """One ``listen()`` call until its socket serves (or fails, or ``close()`` calls it off)."""

    __slots__ = ("port", "host", "path", "fut", "sock", "error", "cancelled", "awaited", "started")

    def __init__(
        self, port: int, host: str | None, fut: asyncio.Future[None], path: str | None = None
    ) -> None:
        self.port = port
        self.host = host
        self.path = path
        self.fut = fut
        self.sock: _socket.socket | None = None
        self.error: OSError | None = None
        self.cancelled = False
        self.awaited = False
        # asyncio owns ``sock`` from create_server() on.
        self.started = False

    def describe(self) -> str:
        if self.path is not None:
            return f"listen(path={self.path!r})"
        host = "" if self.host is None else f", {self.host!r}"
        return f"listen({self.port}{host})"


class _ServerHost:
    """A server as its connections see it: the :class:`ConnectionHost` interface.

    ``conn`` is always one of this server's connections (typed ``Any``: the interface names
    the base that the connection's mixins share, the server's sets hold ``Connection``).
    """

    __slots__ = ("server",)

    def __init__(self, server: Server) -> None:
        self.server = server

    def connection_made(self, conn: Any) -> None:
        self.server._connection_made(conn)

    def connection_opened(self, conn: Any) -> None:
        self.server._connection_opened(conn)

    def connection_closed(self, conn: Any) -> None:
        self.server._connection_closed(conn)

    def close_emitted(self, conn: Any) -> None:
        self.server._maybe_emit_close()

    def count(self, what: str) -> None:
        self.server.stats[what] += 1

    def keepalive_rtt(self, seconds: float) -> None:
        self.server.metrics.keepalive_rtt_seconds.observe(seconds)

    def join_room(self, conn: Any, room: str) -> None:
        server = self.server
        if conn in server._live:
            server._rooms.join(conn, room)

    def leave_room(self, conn: Any, room: str) -> None:
        self.server._rooms.leave(conn, room)

    def rooms_of(self, conn: Any) -> frozenset[str]:
        return self.server._rooms.of(conn)


class Server(EventEmitter):
    """A WebSocket server, much like Node's ``http.Server``.

    Events: ``"listening"()``, ``"connection"(conn)`` after each completed
    handshake, ``"error"(exc)`` (e.g. a bind error), ``"close"()`` once the
    server has stopped listening and its last connection has ended.

    :meth:`listen` and :meth:`close` return the server itself, which is
    awaitable: ``await server.listen(8000)`` returns once bound and raises
    the bind error.
    """

    _events = frozenset({"listening", "connection", "error", "close"})

    def __init__(self, options: ServerOptions, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.options = options
        self._loop = loop
        self._ssl = options.ssl_context()
        self._server: asyncio.Server | None = None
        self._op: asyncio.Future[None] | None = None
        self._bind: _Bind | None = None
        self._held = False
        self._open: dict[Connection, None] = {}
        # Admitted by the checks, handshake not finished (an async hook may be deciding).
        self._admitting: set[Connection] = set()
        self._live: set[Connection] = set()
        self._lingering: asyncio.TimerHandle | None = None
        self._listening = False
        self._closing = False
        self._close_emitted = False
        self.port: int | None = None
        self.address: str | None = None
        self._unix_file: UnixFile | None = None
        #: Counters of what the server refused or cut short, for monitoring.
        self.stats: dict[str, int] = {
            "rejected": 0,
            "write_overflows": 0,
            "keepalive_timeouts": 0,
        }
        #: Counters, gauges and histograms of what this server did (a ``wsevents.metrics.ServerMetrics``):
        #: ``render()`` is their Prometheus text exposition, ``register()`` adds them to prometheus_client.
        self.metrics = ServerMetrics(self.stats, self._live_codecs, lambda: len(self._open))
        #: The broker that carries ``publish``/``broadcast`` to other servers (``broker`` option), or None.
        self.broker: Broker | None = make_broker(options.broker, options.cluster)
        self._rooms = rooms.Rooms()
        self._broker_stop: asyncio.Task[None] | None = None
        # What its connections may ask of it (they call nothing else on it).
        self._host: ConnectionHost = _ServerHost(self)

    def _live_codecs(self) -> list[tuple[Any, Any]]:
        """The metrics' view of the connections that have not ended: ``(core, codec)``."""
        return [(conn._core, conn.deflate) for conn in self._live]

    @property
    def socket(self) -> asyncio.Server | None:
        """The underlying ``asyncio.Server``, once listening."""
        return self._server

    @property
    def connections(self) -> list[Connection]:
        """A snapshot of the open connections (handshake completed, not yet closed)."""
        return list(self._open)

    @property
    def listening(self) -> bool:
        """Whether the server is accepting connections."""
        return self._listening

    @property
    def secure(self) -> bool:
        """Whether it serves ``wss://``."""
        return self._ssl is not None

    def __repr__(self) -> str:
        if self._bind is not None and self.address is None:
            return f"<Server {self._bind.describe()} binding>"
        if self._unix_file is not None:
            return f"<Server unix:{self.address} listening={self._listening}>"
        return f"<Server {self.address}:{self.port} listening={self._listening}>"

    # -- listen / close ----------------------------------------------------------

    def listen(
        self,
        port: int = 0,
        host: str | None = None,
        callback: Callable[[], Any] | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> Server:
        """Start accepting on ``port`` (0: a free one) and ``host`` (None: every address, IPv4 and IPv6).

        With ``path``, on that Unix socket instead (``address`` is the path,
        ``port`` None), bound before ``listen`` returns; the file gets the
        permissions the umask leaves and is removed by :meth:`close`. A socket
        file left there by a server that is gone is replaced; a live one, or
        another kind of file, is an ``OSError`` naming the path.

        With ``host`` None or an IP address the socket is bound before
        ``listen`` returns (``port`` is known and a client may connect at
        once); a host name is resolved first, and clients of the same loop
        wait for that bind. ``callback`` is added as a ``"listening"``
        listener. A bind error is emitted as ``"error"`` and raised by
        ``await``; with neither, :func:`wsevents.run` raises it.
        """
        if self._server is not None or (self._bind is not None and not self._bind.cancelled):
            raise RuntimeError("the server is already listening")
        if self._bind is not None:
            raise RuntimeError(
                "the server is still calling off its last listen(): await server.close() first"
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, not {port!r}")
        unix_path = _unix_path(path, port, host)
        if callback is not None:
            self.once("listening", callback)
        self._closing = False
        self._close_emitted = False
        self._hold()
        fut: asyncio.Future[None] = self._loop.create_future()
        self._op = fut
        bind = self._bind = _Bind(port, host, fut, unix_path)
        try:
            if unix_path is not None:
                bind.sock, self._unix_file = bind_unix(unix_path, _BACKLOG)
            else:
                bind.sock = _bind_now(port, host)
        except OSError as exc:
            bind.error = exc
        if bind.sock is not None and unix_path is not None:
            self.address, self.port = unix_path, None
        elif bind.sock is not None:
            self.address, self.port = bind.sock.getsockname()[:2]
        elif bind.error is None:
            runner.binding(self._loop, fut)
        self._loop.create_task(self._listen(bind))
        return self

    def _listen_socket(self, sock: _socket.socket, callback: Callable[[], Any] | None = None) -> Server:
        """Accept on ``sock``, already bound and listening (a worker's socket, from
        :mod:`wsevents.workers`); otherwise as :meth:`listen`. ``sock`` is the server's from now on."""
        if self._server is not None or self._bind is not None:
            raise RuntimeError("the server is already listening")
        if callback is not None:
            self.once("listening", callback)
        self._closing = False
        self._close_emitted = False
        self._hold()
        fut: asyncio.Future[None] = self._loop.create_future()
        self._op = fut
        bind = self._bind = _Bind(0, None, fut)
        sock.setblocking(False)
        bind.sock = sock
        self.address, self.port = sock.getsockname()[:2]
        self._loop.create_task(self._listen(bind))
        return self

    async def _listen(self, bind: _Bind) -> None:
        try:
            server = await self._serve(bind)
        except Exception as exc:
            self._bind = None
            self._bind_failed(bind, exc)
            return
        except asyncio.CancelledError:
            # The loop is being torn down (asyncio.run's end, or the interpreter's exit).
            self._bind = None
            if bind.sock is not None:
                bind.sock.close()
            self._remove_unix_file()
            self._release()
            raise
        self._bind = None
        if server is None or bind.cancelled:
            # close() came first: never accept anything.
            if server is not None:
                server.close()
            self._bind_settled(bind)
            return
        self._server = server
        self._listening = True
        if self.broker is not None:
            self.broker.attach(self)
        _resolve(bind.fut)
        if bind.path is not None:
            logger.info("listening on the Unix socket %s", self.address)
        else:
            sockname = server.sockets[0].getsockname()
            self.address, self.port = sockname[0], sockname[1]
            logger.info("listening on %s port %d", self.address, self.port)
        self._emit_safe("listening")

    async def _serve(self, bind: _Bind) -> asyncio.Server | None:
        """The asyncio server for ``bind`` (None when it was called off before it started)."""
        if bind.error is not None:
            raise bind.error
        if bind.cancelled:
            return None
        bind.started = True
        if bind.path is not None and bind.sock is not None:
            return await self._loop.create_unix_server(
                self._make_connection, sock=bind.sock, ssl=self._ssl, backlog=_BACKLOG
            )
        if bind.sock is not None:
            return await self._loop.create_server(
                self._make_connection, sock=bind.sock, ssl=self._ssl, backlog=_BACKLOG
            )
        return await self._loop.create_server(
            self._make_connection,
            host=bind.host,
            port=bind.port,
            ssl=self._ssl,
            backlog=_BACKLOG,
            reuse_address=True,
        )

    def _bind_failed(self, bind: _Bind, exc: Exception) -> None:
        """The bind failed: ``"error"`` if anyone listens, else the awaiter, else ``run()`` raises it."""
        if bind.sock is not None:
            bind.sock.close()
        self._remove_unix_file()
        if bind.cancelled:
            self._bind_settled(bind)
            return
        self._release()
        fut = bind.fut
        fut.set_exception(exc)
        if self.listener_count("error"):
            fut.exception()
            self._emit_safe("error", exc)
        elif not bind.awaited:
            fut.exception()
            runner.report(self._loop, exc, f"server.{bind.describe()} failed")

    def _bind_settled(self, bind: _Bind) -> None:
        """A bind that ``close()`` called off is over: release the loop, finish the close."""
        _resolve(bind.fut)
        self._release()
        self._maybe_emit_close()

    def _hold(self) -> None:
        if not self._held:
            self._held = True
            runner.hold(self._loop, self)

    def _release(self) -> None:
        if self._held:
            self._held = False
            runner.release(self._loop, self)

    def close(
        self,
        callback: Callable[[], Any] | None = None,
        *,
        graceful: bool = False,
        timeout: float | None = None,
    ) -> Server:
        """Stop accepting; open connections stay. ``"close"`` follows their end.

        With ``graceful=True`` every connection is also closed with 1001
        ("going away"): what was already sent goes out first, then the close
        frame; connections whose closing handshake has not finished after
        ``timeout`` seconds (default: ``close_timeout``) are aborted. Without
        it, connections still open after ``close_timeout`` are named in an
        INFO log. A ``listen()`` still binding is called off.
        ``callback`` is added as a ``"close"`` listener. ``await`` waits for ``"close"``.
        """
        if graceful:
            for conn in list(self._live):
                conn._shutdown()
            limit = timeout if timeout is not None else self.options.close_timeout
            if limit is not None and self._live:
                self._loop.call_later(limit, self._abort_stragglers)
        if callback is not None:
            self.once("close", callback)
        fut: asyncio.Future[None] = self._loop.create_future()
        self._op = fut
        if self._closing or (self._server is None and self._bind is None and self._close_emitted):
            if self._close_emitted:
                fut.set_result(None)
            else:
                self.once("close", lambda: _resolve(fut))
            return self
        self._closing = True
        self.once("close", lambda: _resolve(fut))
        bind = self._bind
        if bind is not None and not bind.cancelled:
            bind.cancelled = True
            if bind.sock is not None and not bind.started:
                # Refuse connections from now on; the bind task only settles.
                bind.sock.close()
        if self._server is not None:
            self._server.close()
            self._server = None
            logger.info("stopped listening on %s port %s", self.address, self.port)
        self._remove_unix_file()
        if self._listening:
            self._listening = False
            self._release()
        if not graceful and self._live and self.options.close_timeout is not None:
            self._lingering = self._loop.call_later(self.options.close_timeout, self._report_lingering)
        self._maybe_emit_close()
        return self

    def _remove_unix_file(self) -> None:
        if self._unix_file is not None:
            self._unix_file.remove()
            self._unix_file = None

    def _report_lingering(self) -> None:
        """``close()`` waits for connections the application has not closed: say which."""
        self._lingering = None
        if self._close_emitted or not self._live:
            return
        conns = sorted(self._live, key=repr)
        logger.info(
            "server.close() waits for %d connection(s) to end (as in Node): %s; "
            "close them, or use server.close(graceful=True) to close them with 1001",
            len(conns),
            ", ".join(f"{conn!r} from {conn.remote_address}" for conn in conns),
        )

    def _shutdown(self) -> None:
        """Called by ``run()`` on SIGINT/SIGTERM: a graceful close."""
        self.close(graceful=True)

    def _abort_stragglers(self) -> None:
        for conn in list(self._live):
            if conn.ready_state is not ReadyState.CLOSED:
                logger.info("graceful close timed out: aborting %r", conn)
                conn._abort()

    def _maybe_emit_close(self) -> None:
        if self._closing and not self._live and self._bind is None and not self._close_emitted:
            # The broker serves the connections until the last one ends; "close" follows its stop.
            if self._broker_stop is not None:
                return
            if self.broker is not None and self in self.broker.servers:
                stopping = self.broker.detach(self)
                if stopping is not None:
                    self._broker_stop = stopping
                    stopping.add_done_callback(self._broker_stopped)
                    return
            self._close_emitted = True
            if self._lingering is not None:
                self._lingering.cancel()
                self._lingering = None
            self._emit_safe("close")

    def _broker_stopped(self, task: asyncio.Task[None]) -> None:
        self._broker_stop = None
        if not task.cancelled() and task.exception() is not None:
            logger.error("stopping %r failed", self.broker, exc_info=task.exception())
        self._maybe_emit_close()

    def __await__(self) -> Generator[Any, None, Server]:
        return self._wait().__await__()

    async def _wait(self) -> Server:
        op = self._op
        if op is not None:
            bind = self._bind
            if bind is not None and op is bind.fut:
                bind.awaited = True
            # Shared by every awaiter: one that gives up (wait_for) must not cancel it for the others.
            await asyncio.shield(op)
        return self

    async def __aenter__(self) -> Server:
        return await self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- connections -------------------------------------------------------------

    def _make_connection(self) -> Connection:
        return Connection(
            client=False,
            loop=self._loop,
            options=self.options,
            server=self,
            handshake=ServerHandshake.from_options(self.options),
            on_handshake=self._on_request,
            host=self._host,
        )

    def _connection_made(self, conn: Connection) -> None:
        self._live.add(conn)

    def _on_request(self, conn: Connection, handshake: ServerHandshake) -> None:
        """The request head is in: answer plain HTTP, refuse, or run the hooks and accept."""
        request = handshake.request
        if request is not None:
            conn.path = request.path
            conn.headers = request.headers
        if handshake.state is HandshakeState.HTTP:
            self._serve_http(conn, handshake)
            return
        if not self._admitted(conn, handshake):
            return
        verdict: Any = True
        if self.options.verify_client is not None:
            try:
                verdict = self.options.verify_client(_http_request(conn, handshake))
            except Exception as exc:
                _hook_failed(conn, handshake, "verify_client", exc)
                return
        if inspect.isawaitable(verdict):
            self._later(conn, self._finish_async(conn, handshake, verdict))
            return
        if not self._verdict_ok(conn, handshake, verdict):
            return
        try:
            chosen = self._choose(conn)
        except Exception as exc:
            _hook_failed(conn, handshake, "select_protocol", exc)
            return
        if inspect.isawaitable(chosen):
            self._later(conn, self._finish_async(conn, handshake, True, chosen))
            return
        self._accept(conn, handshake, chosen)

    def _admitted(self, conn: Connection, handshake: ServerHandshake) -> bool:
        """A valid upgrade request within ``max_connections`` and ``origins``; else it is refused."""
        if handshake.state is HandshakeState.UPGRADE:
            conn.protocols = handshake.offered
            limit = self.options.max_connections
            handshake.admit(limit is not None and len(self._open) + len(self._admitting) >= limit)
        if handshake.state is not HandshakeState.UPGRADE:
            self.stats["rejected"] += 1
            _refused(conn, handshake)
            return False
        # Counted against max_connections until it opens or ends: async hooks take time.
        self._admitting.add(conn)
        return True

    def _later(self, conn: Connection, step: Coroutine[Any, Any, None]) -> None:
        """A hook answered with an awaitable: hold the socket's bytes until ``step`` is done."""
        if conn.transport is not None:
            conn.transport.pause_reading()
        self._loop.create_task(step)

    def _verdict_ok(self, conn: Connection, handshake: ServerHandshake, verdict: Any) -> bool:
        """Apply ``verify_client``'s answer: True, False (403), a status, or (status, headers)."""
        if handshake.verify(verdict):
            return True
        if handshake.problem is not None:
            logger.error("%s", handshake.problem)
        self.stats["rejected"] += 1
        _refused(conn, handshake)
        return False

    def _serve_http(self, conn: Connection, handshake: ServerHandshake) -> None:
        """Answer a plain HTTP request with ``http_handler`` (None: 426, as without it)."""
        assert self.options.http_handler is not None
        try:
            result = self.options.http_handler(_http_request(conn, handshake))
        except Exception as exc:
            _hook_failed(conn, handshake, "http_handler", exc)
            return
        if inspect.isawaitable(result):
            self._later(conn, self._serve_http_async(conn, handshake, result))
            return
        self._answer_http(conn, handshake, result)

    async def _serve_http_async(self, conn: Connection, handshake: ServerHandshake, pending: Any) -> None:
        try:
            result = await pending
        except Exception as exc:
            _hook_failed(conn, handshake, "http_handler", exc)
            return
        self._answer_http(conn, handshake, result)

    def _answer_http(self, conn: Connection, handshake: ServerHandshake, result: Any) -> None:
        if not handshake.answer_http(result):
            logger.error("%s", handshake.problem)
            _refused(conn, handshake)
            return
        if result is not None:
            logger.info("HTTP %d for %s %s", handshake.status, conn.remote_address, conn.path)
        respond(conn, handshake.data_to_send())

    def broadcast(
        self,
        message: str | bytes | bytearray | memoryview,
        exclude: Connection | Iterable[Connection] | None = None,
    ) -> int:
        """Send ``message`` to every open connection but ``exclude``; return how many got it here.

        The frame is serialised once and the same bytes are written to every
        peer, except to connections that compress the message (their
        compression context is their own). Connections that are not open, or
        that are sending an ``OutStream``, are skipped; one over
        ``max_write_buffer`` is closed with 1008; one peer's fault never
        raises nor holds up the others. With a broker, every server of the
        cluster sends it to its connections too (``exclude`` names
        connections of this process only).

        Raises:
            TypeError: ``message`` is neither text nor bytes, or ``exclude``
                neither a connection nor an iterable of connections.
            wsevents.aio.broker.BrokerBacklogFull: (a ``ConnectionError``) the
                broker is unreachable and its backlog is full; nobody got the message.
            InvalidState: the server has a broker and is not listening (before
                ``listen()`` or after ``close()``), so the broker is stopped.
        """
        return self._publish(rooms.encode(None, message, "broadcast"), exclude)

    def publish(
        self,
        room: str,
        message: str | bytes | bytearray | memoryview,
        exclude: Connection | Iterable[Connection] | None = None,
    ) -> int:
        """Send ``message`` to every member of ``room`` but ``exclude``; return how many got it here.

        As :meth:`broadcast`, for the connections that joined ``room``
        (:meth:`Connection.join`). A room nobody is in is not an error.

        Raises:
            TypeError: ``room`` is not a str (None included), ``message``
                neither text nor bytes, or ``exclude`` not connections.
            UnicodeEncodeError: ``room`` or the text holds a lone surrogate.
            BrokerBacklogFull, InvalidState: as for :meth:`broadcast`.
        """
        if not isinstance(room, str):  # None especially: a Message without a room is a broadcast
            raise TypeError(f"a room is a str, not {type(room).__name__}")
        return self._publish(rooms.encode(room, message, "publish"), exclude)

    def _publish(self, message: rooms.Message, exclude: Connection | Iterable[Connection] | None) -> int:
        skip = rooms.excluded(exclude)
        if self.broker is None:
            return self._deliver(message, skip)
        return self.broker.publish(message, self, skip)

    def _deliver(self, message: rooms.Message, skip: Collection[Connection] = ()) -> int:
        """``message`` to this server's connections (a room's members, or all of them)."""
        conns = list(self._open) if message.room is None else self._rooms.members(message.room)
        return rooms.fan_out(conns, message, skip)

    def _choose(self, conn: Connection) -> Any:
        opts = self.options
        return choose(conn.protocols, opts.valid_protocols, opts.select_protocol, conn)

    async def _finish_async(
        self, conn: Connection, handshake: ServerHandshake, verdict: Any, chosen: Any = None
    ) -> None:
        """The handshake's remaining steps when a hook answered with an awaitable."""
        step = "verify_client"
        try:
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if conn.transport is None or conn.transport.is_closing():
                return
            if not self._verdict_ok(conn, handshake, verdict):
                return
            step = "select_protocol"
            if chosen is None:
                chosen = self._choose(conn)
            if inspect.isawaitable(chosen):
                chosen = await chosen
        except Exception as exc:
            _hook_failed(conn, handshake, step, exc)
            return
        if conn.transport is None or conn.transport.is_closing():
            return
        conn.transport.resume_reading()
        self._accept(conn, handshake, chosen)

    def _accept(self, conn: Connection, handshake: ServerHandshake, chosen: Any) -> None:
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        if not handshake.accept(chosen):
            logger.error("%s", handshake.problem)
            _refused(conn, handshake)
            return
        conn.protocol = handshake.protocol
        conn.deflate = handshake.deflate
        transport.write(handshake.data_to_send())
        logger.info("connection from %s to %s", conn.remote_address, conn.path)
        conn._open(handshake.leftover)

    def _connection_opened(self, conn: Connection) -> None:
        self._admitting.discard(conn)
        self._open[conn] = None
        metrics = self.metrics
        metrics.connections_total += 1
        metrics.handshake_seconds.observe(time.perf_counter() - conn._made_at)
        self._emit_safe("connection", conn)

    def _connection_closed(self, conn: Connection) -> None:
        """``conn`` ended: it leaves the sets; it calls ``_maybe_emit_close`` after its own "close"."""
        if conn in self._live:
            self.metrics._ended_connection(conn._core, conn.deflate)
        self._open.pop(conn, None)
        self._rooms.forget(conn)
        self._admitting.discard(conn)
        self._live.discard(conn)

    def _listener_failed(self, event: str, args: tuple[Any, ...], exc: BaseException) -> None:
        # An async "connection" handler that raised leaves nobody to serve its
        # connection: that connection logs it and closes with 1011.
        if event == "connection" and args and isinstance(args[0], Connection):
            args[0]._listener_failed(event, args, exc)
            return
        super()._listener_failed(event, args, exc)
