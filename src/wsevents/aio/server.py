"""The server: its connection sets, closing, broadcast and rooms, and what its connections may ask of it.

Listening is in ``listening.py``, the server side of the handshake in
``server_handshake.py``, the attributes they share in ``server_base.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Generator, Iterable
from typing import Any

from ..metrics import ServerMetrics, record_ended
from ..protocol.core import ReadyState, WebSocketCore
from ..protocol.hooks import HttpRequest
from ..protocol.opening import ServerHandshake
from . import rooms
from .broker import Broker
from .broker_option import make_broker
from .connection import Connection
from .deadlines import Deadlines
from .host import ConnectionHost
from .listening import _Listening
from .options import ServerOptions
from .server_base import _resolve
from .server_handshake import _HandshakeDriver, reject
from .server_side import abort, core_of, handshake_timed_out, listener_failed, shut_down
from .unix import UnixFile

__all__ = ["Server", "HttpRequest", "reject"]

logger = logging.getLogger("wsevents")


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

    def connection_opened(self, conn: Any, handshake_seconds: float) -> None:
        self.server._connection_opened(conn, handshake_seconds)

    def connection_closed(self, conn: Any, core: WebSocketCore | None) -> None:
        self.server._connection_closed(conn, core)

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


class Server(_Listening, _HandshakeDriver):
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
        self._bind = None
        self._held = False
        self._open: dict[Connection, None] = {}
        # Admitted by the checks, handshake not finished (an async hook may be deciding).
        self._admitting: set[Connection] = set()
        self._live: set[Connection] = set()
        self._lingering: asyncio.TimerHandle | None = None
        # handshake_timeout of every connection still in its handshake, on one timer.
        self._deadlines: Deadlines[Connection] = Deadlines(loop, handshake_timed_out)
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
        return [(core_of(conn), conn.deflate) for conn in self._live]

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
            self._close_connections(timeout)
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
        self._stop_listening()
        if not graceful and self._live and self.options.close_timeout is not None:
            self._lingering = self._loop.call_later(self.options.close_timeout, self._report_lingering)
        self._maybe_emit_close()
        return self

    def _close_connections(self, timeout: float | None) -> None:
        """``close(graceful=True)``: 1001 to every connection; abort those not ended after ``timeout``."""
        for conn in list(self._live):
            shut_down(conn)
        limit = timeout if timeout is not None else self.options.close_timeout
        if limit is not None and self._live:
            self._loop.call_later(limit, self._abort_stragglers)

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
                abort(conn)

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
            self._deadlines.cancel()
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
        handshake = ServerHandshake.from_options(self.options)
        # The server's deadlines enforce handshake_timeout (_connection_made), not a timer of
        # the connection's own.
        handshake.timeout = None
        return Connection(
            client=False,
            loop=self._loop,
            options=self.options,
            server=self,
            handshake=handshake,
            on_handshake=self._on_request,
            host=self._host,
        )

    def _connection_made(self, conn: Connection) -> None:
        self._live.add(conn)
        timeout = self.options.handshake_timeout
        if timeout is not None:
            self._deadlines.add(conn, timeout)

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

    def _connection_opened(self, conn: Connection, handshake_seconds: float) -> None:
        self._deadlines.discard(conn)
        self._admitting.discard(conn)
        self._open[conn] = None
        metrics = self.metrics
        metrics.connections_total += 1
        metrics.handshake_seconds.observe(handshake_seconds)
        self._emit_safe("connection", conn)

    def _connection_closed(self, conn: Connection, core: WebSocketCore | None) -> None:
        """``conn`` ended: it leaves the sets; it calls ``_maybe_emit_close`` after its own "close"."""
        if conn in self._live:
            record_ended(self.metrics, core, conn.deflate)
        self._open.pop(conn, None)
        self._rooms.forget(conn)
        self._admitting.discard(conn)
        self._live.discard(conn)
        self._deadlines.discard(conn)

    def _listener_failed(self, event: str, args: tuple[Any, ...], exc: BaseException) -> None:
        # An async "connection" handler that raised leaves nobody to serve its
        # connection: that connection logs it and closes with 1011.
        if event == "connection" and args and isinstance(args[0], Connection):
            listener_failed(args[0], event, args, exc)
            return
        super()._listener_failed(event, args, exc)
