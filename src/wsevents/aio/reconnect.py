"""The reconnecting client: ``connect(url, reconnect=True)``.

Three parts. :class:`Backoff` and :class:`ReconnectPolicy` decide *when* to try
again and *whether* to stop (``reconnect_policy.py``: no I/O, no clock).
:class:`~wsevents.aio.reconnect_queue.PendingSends` keeps the messages sent
while disconnected (``reconnect_queue.py``). :class:`ReconnectingConnection`
is the thin asyncio part: it opens one
:class:`~wsevents.aio.client.ClientConnection` after another, re-emits their
events to its own listeners, queues sends while disconnected (if asked) and
waits between attempts on a loop timer.

Stop rules: a ``close()`` of the user's ends reconnection, whatever the code;
so does a close frame *from the server* with a code of
``reconnect_stop_codes`` (default: 1008, policy violation; the application
adds its own 4xxx codes), and an HTTP 4xx answer to the handshake other than
408 and 429 (coming back would be refused again). Everything else (a dropped
TCP connection, 1001 going away, 1011, 1012, an HTTP 5xx, 408 or 429, a
refused or timed-out TCP connect) is retried after the next backoff delay.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Generator
from types import TracebackType
from typing import Any

from .._connection import _SendByKind
from .._types import BytesLike, SendCallback
from ..emitter import EventEmitter
from ..errors import OK_CLOSE_CODES, ConnectionClosed, InvalidState
from ..options import ClientOptions
from ..protocol.closecodes import CloseCode
from ..protocol.core import ReadyState
from ..protocol.url import WebSocketURL, parse_url
from . import runner
from .client import ClientConnection, open_connection
from .closing import close_args
from .connection import Connection
from .reconnect_policy import RETRY_STATUSES, STABLE_AFTER, Backoff, ReconnectPolicy, is_fatal
from .reconnect_queue import PendingSends
from .streams import OutStream

__all__ = [
    "RETRY_STATUSES",
    "STABLE_AFTER",
    "Backoff",
    "ReconnectPolicy",
    "ReconnectingConnection",
    "is_fatal",
]

logger = logging.getLogger("wsevents")

# -- the asyncio part ---------------------------------------------------------------

# Events of the current connection that are re-emitted as they are ("connect" and
# "close" are the reconnecting connection's own).
_FORWARDED = ("text", "binary", "message", "pong", "error")


class _Leg(ClientConnection):
    """One connection of a reconnecting client: records who started its closing handshake."""

    def __init__(self, url: WebSocketURL, options: ClientOptions, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(url, options, loop)
        self._was_open = False
        self._peer_initiated = False
        self._forwarded: set[str] = set()
        # A failed attempt is the reconnecting client's to report, not a WARNING of its own.
        self._awaited = True

    def _peer_closed(self, code: int, reason: str) -> None:
        if self._ready_state is ReadyState.OPEN:
            self._peer_initiated = True
        super()._peer_closed(code, reason)


class ReconnectingConnection(EventEmitter, _SendByKind):
    """A client that opens a new connection after each drop: ``connect(url, reconnect=True)``.

    Events style: it is one object that emits ``"connect"`` each time a
    connection opens and ``"close"(code, reason)`` each time an open one ends
    (listeners stay across connections), and re-emits ``"text"``,
    ``"binary"``, ``"message"``, ``"pong"`` and ``"error"`` of the current
    connection. Read :attr:`ready_state` in a ``"close"`` listener:
    ``CONNECTING`` means another connection is on its way, ``CLOSED`` that
    reconnection has ended. If no connection ever opened, ``"close"`` is
    emitted once when reconnection ends.

    Async style: ``async for conn in connect(url, reconnect=True)`` yields each
    new open :class:`Connection` (one that has already ended when the loop
    asks for the next is skipped); leaving the loop does not stop
    reconnecting, :meth:`close` does. ``await`` waits until a connection is
    open and returns this object (it raises what ended reconnection, if it
    has ended); ``async with`` does the same and closes on exit.

    Between connections it waits a backoff delay with jitter
    (``reconnect_delay`` up to ``reconnect_max_delay`` seconds). It stops after
    :meth:`close`, after a close frame from the server with a code of
    ``reconnect_stop_codes``, or after an HTTP 4xx answer to the handshake
    other than 408 and 429 (then ``"error"`` is emitted, or the awaiter or
    ``async for`` raises the :class:`HandshakeError`).

    Sends while disconnected raise :class:`InvalidState` (or go to the callback
    or ``"error"``, as misuses do on a connection), unless
    ``reconnect_queue=N``: then up to N messages wait and go out in order as
    soon as the next connection opens, before its ``"connect"`` listeners run.
    """

    # A connection's events: its own two and the current connection's, re-emitted.
    _events = frozenset({"connect", "close", *_FORWARDED})

    CONNECTING = ReadyState.CONNECTING
    OPEN = ReadyState.OPEN
    CLOSING = ReadyState.CLOSING
    CLOSED = ReadyState.CLOSED

    def __init__(
        self,
        url: str,
        options: ClientOptions,
        loop: asyncio.AbstractEventLoop,
        *,
        rng: random.Random | None = None,
    ) -> None:
        EventEmitter.__init__(self)
        parsed = parse_url(url)
        if options.ssl is not None and not parsed.secure:
            raise ValueError(f"an ssl context was given for {url!r}: use a wss:// URL for TLS")
        #: The parsed URL it connects to.
        self.url = parsed
        self._ready_state = ReadyState.CONNECTING
        #: The current connection (open or opening), or ``None`` while waiting for the next attempt.
        self.connection: ClientConnection | None = None
        #: The close code of the last open connection that ended (``None`` before one has).
        self.close_code: int | None = None
        #: The close reason that goes with :attr:`close_code`.
        self.close_reason = ""
        self._url_text = url
        self._options = options
        self._loop = loop
        self._policy = ReconnectPolicy(
            Backoff(options.reconnect_delay, options.reconnect_max_delay, rng=rng),
            frozenset(options.reconnect_stop_codes),
        )
        self._timer: asyncio.TimerHandle | None = None
        self._pending = PendingSends(loop)
        self._user_closed = False
        self._ever_opened = False
        self._awaited = False
        # Why reconnection ended, raised to awaiters and async for (None: a clean end).
        self._end_error: BaseException | None = None
        self._closed: asyncio.Future[None] = loop.create_future()
        self._waiters: list[asyncio.Future[None]] = []
        runner.hold(loop, self)
        self._attempt()

    @property
    def ready_state(self) -> ReadyState:
        """``CONNECTING`` (first connection or between two), ``OPEN``, ``CLOSING`` or ``CLOSED``
        (for good); read-only."""
        return self._ready_state

    def __repr__(self) -> str:
        return f"<ReconnectingConnection {self._url_text!r} {self._ready_state.name}>"

    # -- one connection after another ------------------------------------------

    def _attempt(self) -> None:
        self._timer = None
        leg = open_connection(self._url_text, self._options, self._loop, _Leg)
        assert isinstance(leg, _Leg)
        self.connection = leg
        leg.on("connect", lambda: self._leg_opened(leg))
        leg.on("close", lambda code, reason: self._leg_closed(leg, code, reason))
        for event in _FORWARDED:
            if self.listener_count(event):
                self._forward(leg, event)

    def _forward(self, leg: _Leg, event: str) -> None:
        if event in leg._forwarded:
            return
        leg._forwarded.add(event)
        if event == "error":

            def on_error(exc: BaseException) -> None:
                # A failed attempt is not an "error": only what happens once open, and the end.
                if leg._was_open:
                    self._emit_safe("error", exc)

            leg.on("error", on_error)
        else:
            leg.on(event, lambda *args: self._emit_safe(event, *args))

    def _listener_added(self, event: str) -> None:
        leg = self.connection
        if event in _FORWARDED and isinstance(leg, _Leg):
            self._forward(leg, event)

    def _leg_opened(self, leg: _Leg) -> None:
        leg._was_open = True
        self._ever_opened = True
        self._policy.opened(self._loop.time())
        if self._user_closed:
            return
        self._ready_state = ReadyState.OPEN
        self._pending.flush(leg)  # what was queued while disconnected goes out first, in order
        self._emit_safe("connect")
        self._wake()

    def _leg_closed(self, leg: _Leg, code: int, reason: str) -> None:
        if leg is not self.connection:
            return
        self.connection = None
        error = None
        if leg._was_open:
            self.close_code, self.close_reason = code, reason
        else:
            error = _attempt_error(leg)
        if self._user_closed:
            self._end(None)
        elif leg._was_open:
            delay = self._policy.after_close(self._loop.time(), code, by_peer=leg._peer_initiated)
            if delay is None:
                clean = code in OK_CLOSE_CODES
                self._end(None if clean else ConnectionClosed(code, reason))
            else:
                self._retry_in(delay, f"connection closed with {code}")
        else:
            delay = self._policy.after_failure(error)
            if delay is None:
                self._end(error)
            else:
                self._retry_in(delay, f"connection failed: {error}")
        if leg._was_open or (self._ready_state is ReadyState.CLOSED and not self._ever_opened):
            self._emit_safe("close", code, reason)
        self._wake()

    def _retry_in(self, delay: float, why: str) -> None:
        self._ready_state = ReadyState.CONNECTING
        logger.info("%s: %s; reconnecting in %.2f s", self._url_text, why, delay)
        self._timer = self._loop.call_later(delay, self._attempt)

    def _end(self, error: BaseException | None) -> None:
        """Reconnection is over: fail what is queued, tell awaiters, let the loop go."""
        self._ready_state = ReadyState.CLOSED
        self._end_error = error
        self._pending.fail_all(ConnectionClosed(self.close_code or CloseCode.ABNORMAL, self.close_reason))
        if not self._closed.done():
            self._closed.set_result(None)
        runner.release(self._loop, self)
        if error is not None and not isinstance(error, ConnectionClosed):
            if self.listener_count("error"):
                self._emit_safe("error", error)
            elif not self._awaited:
                logger.warning("%s: reconnection stopped: %s", self._url_text, error)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _changed(self) -> None:
        """Wait for the next open connection or the end."""
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    # -- sending ---------------------------------------------------------------

    def _open_leg(self) -> ClientConnection | None:
        leg = self.connection
        if self._ready_state is ReadyState.OPEN and leg is not None and leg.ready_state is ReadyState.OPEN:
            return leg
        return None

    def _disconnected(self) -> InvalidState:
        if self._ready_state is ReadyState.CLOSED or self._user_closed:
            return InvalidState("cannot send: the connection is closed and does not reconnect any more")
        bound = self._options.reconnect_queue
        if bound == 0:
            return InvalidState(
                "cannot send: disconnected, reconnecting (connect(url, reconnect=True, "
                "reconnect_queue=N) queues up to N messages meanwhile)"
            )
        return InvalidState(
            f"cannot send: disconnected, and reconnect_queue is full "
            f"({bound} messages wait for the reconnection)"
        )

    def _send(self, data: str | bytes, callback: SendCallback | None) -> Awaitable[None]:
        leg = self._open_leg()
        if leg is not None:
            return leg.send(data, callback)
        ended = self._user_closed or self._ready_state is ReadyState.CLOSED
        if ended or len(self._pending) >= self._options.reconnect_queue:
            return self._misuse(self._disconnected(), callback)
        return self._pending.put(data, callback)

    def send_text(self, text: str, callback: SendCallback | None = None) -> Awaitable[None]:
        """Send ``text`` as one text frame on the current connection, or queue it (see the class)."""
        if not isinstance(text, str):
            raise TypeError(f"send_text takes a str, not {type(text).__name__}")
        return self._send(text, callback)

    def send_binary(self, data: BytesLike, callback: SendCallback | None = None) -> Awaitable[None]:
        """Send ``data`` (bytes-like) as one binary frame, or queue it (see the class)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_binary takes a bytes-like object, not {type(data).__name__}")
        # Copied: a queued mutable buffer could change before it goes out.
        return self._send(data if type(data) is bytes else bytes(data), callback)

    def send_ping(self, data: str | BytesLike = "", callback: SendCallback | None = None) -> Awaitable[None]:
        """Ping on the current connection; never queued (a late ping measures nothing)."""
        leg = self._open_leg()
        if leg is None:
            error = self._disconnected() if self._options.reconnect_queue == 0 else InvalidState(
                "cannot ping: disconnected, reconnecting (pings are not queued)"
            )
            return self._misuse(error, callback)
        return leg.send_ping(data, callback)

    def begin_binary(self) -> OutStream:
        """A binary stream on the current connection (see :meth:`Connection.begin_binary`).

        Raises:
            InvalidState: no connection is open (a stream is never queued).
        """
        leg = self._open_leg()
        if leg is None:
            raise InvalidState("cannot begin a binary stream: disconnected (streams are not queued)")
        return leg.begin_binary()

    # -- closing -------------------------------------------------------------

    def close(self, code: int | None = None, reason: str | None = None) -> Awaitable[None]:
        """End reconnection and close the current connection (if any) with ``code`` and ``reason``.

        The result can be awaited until the end. Queued messages that have
        not gone out fail with :class:`ConnectionClosed`.

        Raises:
            ValueError, TypeError: as :meth:`Connection.close`.
        """
        code, reason = close_args(code, reason)
        if self._ready_state is not ReadyState.CLOSED and not self._user_closed:
            self._user_closed = True
            leg = self.connection
            if leg is not None:
                self._ready_state = ReadyState.CLOSING
                leg.close(code, reason or None)
            else:
                # Waiting between attempts: nothing to close but the timer.
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._end(None)
                if not self._ever_opened:
                    self._emit_safe("close", CloseCode.ABNORMAL, "")
                self._wake()
        return asyncio.shield(self._closed)

    def _shutdown(self) -> None:
        """Called by ``run()`` on SIGINT/SIGTERM: close with 1001 and stop reconnecting."""
        if self._ready_state is ReadyState.OPEN:
            self.close(CloseCode.GOING_AWAY, "going away")
        else:
            self.close()

    async def wait_closed(self) -> None:
        """Wait until reconnection has ended and the last connection is CLOSED."""
        await asyncio.shield(self._closed)

    def _listener_failed(self, event: str, args: tuple[Any, ...], exc: BaseException) -> None:
        """A coroutine listener raised: log it and close the current connection with 1011."""
        super()._listener_failed(event, args, exc)
        leg = self._open_leg()
        if leg is not None:
            leg.close(CloseCode.INTERNAL_ERROR, "internal error")

    # -- async style -------------------------------------------------------------

    async def _wait_open(self) -> ReconnectingConnection:
        self._awaited = True
        while True:
            if self._open_leg() is not None:
                return self
            if self._ready_state is ReadyState.CLOSED:
                code = self.close_code or CloseCode.ABNORMAL
                raise self._end_error or ConnectionClosed(code, self.close_reason)
            await self._changed()

    def __await__(self) -> Generator[Any, None, ReconnectingConnection]:
        return self._wait_open().__await__()

    def __aiter__(self) -> AsyncIterator[Connection]:
        return self._connections()

    async def _connections(self) -> AsyncIterator[Connection]:
        """Each new open connection; ends after close() or a 1000/1001 stop, raises the other ends."""
        self._awaited = True
        last: Connection | None = None
        while True:
            leg = self._open_leg()
            if leg is not None and leg is not last:
                last = leg
                yield leg
                continue
            if self._ready_state is ReadyState.CLOSED:
                if self._end_error is not None:
                    raise self._end_error
                return
            await self._changed()

    async def __aenter__(self) -> ReconnectingConnection:
        return await self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(CloseCode.NORMAL if exc is None else CloseCode.INTERNAL_ERROR)


def _attempt_error(leg: ClientConnection) -> BaseException | None:
    """Why an attempt failed (retrieved, so that asyncio does not report it as never retrieved)."""
    opened = leg._opened
    if opened.done() and not opened.cancelled():
        return opened.exception()
    return None
