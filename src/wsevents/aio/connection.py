"""One WebSocket connection: the asyncio protocol, the core, the events and awaitables.

A :class:`Connection` is the ``asyncio.Protocol`` of its socket. During the
opening handshake it collects the HTTP head (bounded by ``max_header_size``)
and hands it to the server or client code that created it; once open, the
transport's ``data_received`` goes straight to the sans-I/O core, whose
handler calls become the Node-style events (``"text"``, ``"binary"``,
``"message"``, ``"pong"``, ``"close"``, ``"error"``) or, when nobody listens
for any message event, entries in the queue that :meth:`Connection.recv` reads.

Closing (RFC 6455 section 7): the side that receives a close frame answers
it; the server then closes TCP at once, the client half-closes its side and
waits up to ``close_timeout`` for the server to finish. ``"close"`` is
emitted exactly once, after the socket is gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from .._connection import _ClosingInfo, _SendByKind
from .._types import DONE, BytesLike, Failed, SendCallback
from ..emitter import EventEmitter
from ..errors import (
    ConcurrencyError,
    ConnectionClosed,
    HandshakeError,
    HandshakeTimeout,
    InvalidState,
    MessageTooBig,
    ProtocolError,
    WebSocketError,
)
from ..protocol.closecodes import CloseCode, check_close_order, may_send
from ..protocol.core import ReadyState, WebSocketCore
from ..protocol.deflate import PerMessageDeflate
from ..protocol.events import BINARY, BINARY_START, CLOSE, PING, PONG, TEXT, Event, append_piece
from ..protocol.frames import MAX_CLOSE_REASON, check_control_payload
from ..protocol.handshake import Headers
from ..protocol.opening import ClientHandshake, HandshakeState, ServerHandshake
from . import runner
from .options import ClientOptions, ServerOptions
from .streams import InStream, OutStream

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Connection", "ReadyState"]

logger = logging.getLogger("wsevents")

# Sentinel queued for recv() when the connection ends.
_END = object()

# How the ready state may move (a connection that ended never reopens).
_READY_STATE_MOVES: dict[ReadyState, tuple[ReadyState, ...]] = {
    ReadyState.CONNECTING: (ReadyState.OPEN, ReadyState.CLOSED),
    ReadyState.OPEN: (ReadyState.CLOSING, ReadyState.CLOSED),
    ReadyState.CLOSING: (ReadyState.CLOSED,),
    ReadyState.CLOSED: (),
}

# The events that take messages: with a listener on any of them, nothing is queued for recv().
_MESSAGE_EVENTS = ("text", "binary", "message")

# Seconds a full recv() queue may keep reading stopped, on a connection whose recv() was never
# called, before a WARNING says so: without it such a connection stalls silently (its close
# frame is never read and the peer ends with 1006).
_QUEUE_STALL_WARNING_DELAY = 1.0


def close_args(code: int | None, reason: str | None) -> tuple[int | None, str]:
    """The arguments of ``close(code, reason)``, checked; a reason without a code goes with 1000.

    Raises:
        ValueError: a code that may not be sent, or a reason over 123 bytes of UTF-8.
        TypeError: a str as the code, or a reason that is not a str.
    """
    check_close_order(code, reason)
    if reason is not None and code is None:
        code = CloseCode.NORMAL.value
    if code is not None:
        if isinstance(code, bool) or not isinstance(code, int) or not may_send(code):
            raise ValueError(f"close code {code!r} may not be sent")
    reason = reason or ""
    if not isinstance(reason, str):
        raise TypeError("reason must be a str")
    if len(reason.encode("utf-8")) > MAX_CLOSE_REASON:
        raise ValueError(f"close reason is over {MAX_CLOSE_REASON} bytes of UTF-8")
    return code, reason


class _DrainWaiter:
    """What every send returns while writing is paused: one per drain, not one per send.

    All the sends made before the transport drains share one future; each
    ``await`` gets its own shield of it, so a cancelled or timed-out awaiter
    (``wait_for(send(...), t)``) cannot cancel the others' wait.
    """

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.shield(self.future).__await__()

    def done(self) -> bool:
        """Whether the data has been handed to the operating system (or the connection ended)."""
        return self.future.done()

    def __repr__(self) -> str:
        return f"<DrainWaiter {self.future!r}>"


class Connection(EventEmitter, _ClosingInfo, _SendByKind, asyncio.Protocol):
    """A WebSocket connection, on the server side or the client side.

    Events: ``"connect"()``, ``"text"(str)``, ``"binary"(InStream)``,
    ``"message"(str or bytes)``, ``"pong"(str)``, ``"close"(code, reason)``,
    ``"error"(exc)``.

    A text message goes to the ``"text"`` listeners, a binary one to the
    ``"binary"`` listeners (as a stream), and every message, whole, to the
    ``"message"`` listeners. With none of these three listeners, messages are
    queued for :meth:`recv` / ``async for``; messages queued and unread past
    ``max_buffer_length`` bytes stop reading from the socket until the
    application catches up. With some of them but none for a message's kind,
    that message is dropped (a WARNING is logged once per connection).

    A coroutine listener that raises is logged and closes the connection
    with 1011 (internal error): nobody is left to serve the peer.

    Send calls return an awaitable that completes when the frame has been
    handed to the operating system; ``callback(error_or_None)`` is called at
    the same moment. A misuse (sending while not open, text during a binary
    stream) is reported to ``callback`` if given, else as ``"error"`` if
    anyone listens, else raised at the call.
    """

    _events = frozenset({"connect", "text", "binary", "message", "pong", "close", "error"})

    CONNECTING = ReadyState.CONNECTING
    OPEN = ReadyState.OPEN
    CLOSING = ReadyState.CLOSING
    CLOSED = ReadyState.CLOSED

    def __init__(
        self,
        *,
        client: bool,
        loop: asyncio.AbstractEventLoop,
        options: ServerOptions | ClientOptions,
        server: Server | None = None,
        handshake: ServerHandshake | None = None,
        on_handshake: Callable[[Connection, Any], None] | None = None,
    ) -> None:
        EventEmitter.__init__(self)
        self._client = client
        self._loop = loop
        self._options = options
        # The opening handshake (a client sets its own at each connect) and who acts on
        # its outcome once the head is in: the server, or the client connection itself.
        self._handshake: ServerHandshake | ClientHandshake | None = handshake
        self._on_handshake = on_handshake
        #: The :class:`Server` that accepted this connection, else ``None``.
        self.server = server
        # Read it anywhere; it changes only through _set_ready_state (along _READY_STATE_MOVES).
        #: The ready state: CONNECTING, OPEN, CLOSING or CLOSED.
        self.ready_state = ReadyState.CONNECTING
        #: The request target (server side) or the path asked for (client side).
        self.path = ""
        #: Request headers (server side) or response headers (client side).
        self.headers: Mapping[str, str] = Headers()
        #: The subprotocols the client asked for, most preferred first.
        self.protocols: list[str] = []
        #: The agreed subprotocol, or ``None``.
        self.protocol: str | None = None
        #: The binary stream being sent, or ``None``.
        self.out_stream: OutStream | None = None
        self.max_buffer_length = options.buffer_limit()
        # None: the option, else the module default at begin_binary() time (as in Node).
        self._binary_fragmentation: int | None = None

        self._transport: asyncio.Transport | None = None
        self._core: WebSocketCore | None = None
        #: The permessage-deflate codec agreed in the handshake, or None.
        self.deflate: PerMessageDeflate | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Receiving.
        self._in_stream: InStream | None = None
        self._parts: list[bytes] | None = None
        self._receiver: _Receiver | None = None
        self._queue: deque[object] = deque()
        self._queued_bytes = 0
        self._recv_waiter: asyncio.Future[None] | None = None
        self._pause_reasons: set[object] = set()
        self._dropped_kinds: set[str] = set()
        self._recv_called = False
        self._queue_stall_timer: asyncio.TimerHandle | None = None
        # Sending: while paused, one shared waiter and the callbacks in send order.
        self._write_paused = False
        self._drain_waiter: _DrainWaiter | None = None
        self._drain_callbacks: list[SendCallback] = []
        # Closing.
        self._close_code: int | None = None
        self._close_reason = ""
        self._failed: WebSocketError | None = None
        self._closed: asyncio.Future[None] = loop.create_future()
        self._close_emitted = False
        self._debug = False
        # Keepalive: one timer, either "next ping" or "pong deadline".
        self._ka_timer: asyncio.TimerHandle | None = None
        self._ka_payload: bytes | None = None
        self._ka_sent = 0.0
        #: Round-trip time of the last keepalive ping, in seconds (0.0 until measured).
        self.latency = 0.0
        # When the socket connected (server side): the handshake time histogram starts here.
        self._made_at = 0.0
        if server is None:
            # A server-side connection holds the loop from connection_made on: after a
            # failed TLS handshake asyncio calls neither connection_made nor connection_lost.
            runner.hold(loop, self)

    # -- properties ------------------------------------------------------------

    def _set_ready_state(self, state: ReadyState) -> None:
        """The one place the ready state changes: only along ``_READY_STATE_MOVES``, else nothing."""
        if state in _READY_STATE_MOVES[self.ready_state]:
            self.ready_state = state

    @property
    def socket(self) -> Any:
        """The underlying socket (``transport.get_extra_info("socket")``), or ``None``."""
        if self._transport is None:
            return None
        return self._transport.get_extra_info("socket")

    @property
    def binary_fragmentation(self) -> int:
        """Minimum frame size of the next ``begin_binary()`` stream.

        Unless set on this connection, the server/client option, else the
        module default as it is when ``begin_binary()`` is called (so
        ``set_binary_fragmentation`` also applies to open connections, as in Node).
        """
        return self._binary_fragmentation or self._options.fragment_size()

    @binary_fragmentation.setter
    def binary_fragmentation(self, nbytes: int) -> None:
        self._binary_fragmentation = nbytes

    @property
    def transport(self) -> asyncio.Transport | None:
        """The asyncio transport, once connected."""
        return self._transport

    @property
    def remote_address(self) -> Any:
        """The peer's address as the socket reports it (``peername``)."""
        if self._transport is None:
            return None
        return self._transport.get_extra_info("peername")

    def _state_name(self) -> str:
        return self.ready_state.name

    # -- rooms -------------------------------------------------------------------

    def join(self, room: str) -> None:
        """Join ``room``: :meth:`Server.publish` to it reaches this connection (idempotent).

        A connection that has ended is in no room: joining then does nothing.

        Raises:
            TypeError: ``room`` is not a str.
            InvalidState: a client connection (rooms belong to a server).
        """
        server = self._room_server(room)
        if self in server._live:
            server._rooms.join(self, room)

    def leave(self, room: str) -> None:
        """Leave ``room`` (nothing happens if this connection is not in it).

        Raises:
            TypeError: ``room`` is not a str.
            InvalidState: a client connection.
        """
        self._room_server(room)._rooms.leave(self, room)

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this connection is in (a snapshot; empty once it has ended)."""
        if self.server is None:
            return frozenset()
        return self.server._rooms.of(self)

    def _room_server(self, room: object) -> Server:
        if not isinstance(room, str):
            raise TypeError(f"a room is a str, not {type(room).__name__}")
        if self.server is None:
            raise InvalidState("rooms belong to a server: a client connection cannot join or leave one")
        return self.server

    # -- asyncio.Protocol --------------------------------------------------------

    # Every asyncio callback is guarded: an exception in one would otherwise go to the
    # loop's exception handler and leave the connection (and its peer) waiting forever.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio.Protocol callback (not for application use)."""
        try:
            self._made(transport)
        except Exception as exc:
            self._internal_error("connection_made", exc)

    def _made(self, transport: asyncio.BaseTransport) -> None:
        """What ``connection_made`` does; subclasses extend this (it is guarded)."""
        # Not an isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)
        transport = self._transport
        if self.server is not None:
            self._made_at = time.perf_counter()
            runner.hold(self._loop, self)
            self.server._connection_made(self)
        # A zero high-water mark makes pause_writing/resume_writing tell exactly
        # whether everything written so far has been handed to the OS.
        transport.set_write_buffer_limits(high=0)
        timeout = self._handshake.timeout if self._handshake is not None else None
        if timeout is not None and self.ready_state is ReadyState.CONNECTING:
            self._timer = self._later(timeout, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        """asyncio.Protocol callback: the handshake head first, then frames for the core."""
        try:
            core = self._core
            if core is not None:
                core.receive_data(data)
                assert self._receiver is not None
                self._receiver.pump()
                return
            self._head_received(data)
        except Exception as exc:
            self._internal_error("data_received", exc)

    def _head_received(self, data: bytes) -> None:
        handshake = self._handshake
        if handshake is None or self.ready_state is not ReadyState.CONNECTING:
            return
        reading = handshake.state is HandshakeState.READING
        # Bytes after the head (while a hook decides) wait in the handshake's leftover.
        handshake.receive_data(data)
        if reading and handshake.state is not HandshakeState.READING and self._on_handshake is not None:
            self._on_handshake(self, handshake)

    def eof_received(self) -> bool | None:
        """asyncio.Protocol callback (not for application use)."""
        try:
            if self._core is not None:
                self._core.receive_eof()
        except Exception as exc:
            self._internal_error("eof_received", exc)
        # Returning None lets asyncio close the transport; a client that already
        # half-closed, or a server, has nothing more to say.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio.Protocol callback (not for application use)."""
        try:
            self._lost(exc)
        except Exception as error:
            self._internal_error("connection_lost", error)
            # Whatever failed, the connection is over: readers and wait_closed() must learn it.
            self._set_ready_state(ReadyState.CLOSED)
            self._queue.append(_END)
            self._wake_recv()
            self._finish()

    def _lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._ka_timer is not None:
            self._ka_timer.cancel()
            self._ka_timer = None
        previous = self.ready_state
        self._set_ready_state(ReadyState.CLOSED)
        if self._core is not None:
            self._core.receive_eof()
        if self._close_code is None:
            self._close_code = CloseCode.ABNORMAL.value
            self._close_reason = ""
        closed = ConnectionClosed(self._close_code, self._close_reason)
        # Pending sends: what was not handed over is lost.
        self._release_senders(closed)
        if self._in_stream is not None:
            stream, self._in_stream = self._in_stream, None
            # A stream failed for its size tells its reader so, not just "closed".
            stream._abort(self._failed if isinstance(self._failed, MessageTooBig) else closed)
        if self.out_stream is not None:
            self.out_stream._abort(closed)
            self.out_stream = None
        self._queue.append(_END)
        self._wake_recv()
        if previous is ReadyState.CONNECTING:
            lost = ConnectionClosed(CloseCode.ABNORMAL.value, "connection lost during the handshake")
            self._connect_failed(exc or lost)
        elif exc is not None and self._failed is None and self.listener_count("error"):
            self._emit_safe("error", exc)
        self._finish()

    def pause_writing(self) -> None:
        """asyncio.Protocol callback: the transport holds unsent bytes."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """asyncio.Protocol callback: everything written has been handed to the OS."""
        try:
            self._release_senders(None)
        except Exception as exc:
            self._internal_error("resume_writing", exc)

    def _release_senders(self, error: ConnectionClosed | None) -> None:
        """Complete every send made while writing was paused (in send order), with ``error`` or success."""
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        callbacks, self._drain_callbacks = self._drain_callbacks, []
        if waiter is not None and not waiter.future.done():
            if error is None:
                waiter.future.set_result(None)
            else:
                waiter.future.set_exception(error)
                waiter.future.exception()  # mark retrieved: fire-and-forget senders never look
        for callback in callbacks:
            self._call_safe(callback, error)

    # -- failures inside callbacks, timers and coroutine listeners ----------------

    def _later(self, delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        """``loop.call_later`` with the same guard as the protocol callbacks."""
        return self._loop.call_later(delay, self._guarded, fn)

    def _guarded(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:
            self._internal_error(getattr(fn, "__name__", "a timer"), exc)

    def _internal_error(self, where: str, exc: Exception) -> None:
        """An exception escaped an asyncio callback: fail the connection with it, never lose it.

        During the handshake the connect awaitable fails with a
        ``HandshakeError`` caused by ``exc``; once open, ``"error"`` is emitted
        (if anyone listens) and the connection is closed with 1011.
        """
        logger.error("internal error in %s of %r", where, self, exc_info=exc)
        state = self.ready_state
        if state is ReadyState.CLOSED:
            return
        if state is ReadyState.CONNECTING:
            failure = HandshakeError(f"the opening handshake failed: {type(exc).__name__}: {exc}")
            failure.__cause__ = exc
            self._failed = failure
            self._abort()
            return
        if self.listener_count("error"):
            self._emit_safe("error", exc)
        try:
            self._abandon(CloseCode.INTERNAL_ERROR.value, "internal error")
        except Exception:  # the core itself is broken: no close frame, just the socket
            self._loop.call_soon(self._abort)

    def _listener_failed(self, event: str, args: tuple[Any, ...], exc: BaseException) -> None:
        """A coroutine listener raised: log it once and close with 1011 (as websockets does)."""
        if isinstance(exc, ConnectionClosed) and self.ready_state is not ReadyState.OPEN:
            # A handler that read past the end of its own connection: nothing went wrong here.
            logger.debug("coroutine listener of %r ended with %r: %r", event, exc, self)
            return
        super()._listener_failed(event, args, exc)
        if self.ready_state is ReadyState.OPEN:
            self.close(CloseCode.INTERNAL_ERROR.value, "internal error")

    # -- handshake plumbing (used by server.py and client.py) ---------------------

    def _open(self, leftover: bytes) -> None:
        """The handshake succeeded: start the core and feed what followed the head."""
        self._cancel_timer()
        # Its head buffer and request are not needed any more.
        self._handshake = None
        assert self._transport is not None
        core = WebSocketCore(
            client=self._client, max_message_size=self.max_buffer_length, extension=self.deflate
        )
        self._core = core
        receiver = self._receiver = _Receiver(self, core)
        # Frames are logged at DEBUG; the check is made once, not per frame.
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self._set_ready_state(ReadyState.OPEN)
        if self._options.ping_interval is not None:
            self._ka_timer = self._later(self._options.ping_interval, self._keepalive_ping)
        if self.server is not None:
            self.server._connection_opened(self)
        self._emit_safe("connect")
        if leftover and self.ready_state is ReadyState.OPEN:
            core.receive_data(leftover)
            receiver.pump()

    def _write(self, data: bytes) -> None:
        transport = self._transport
        # Once asyncio has seen the socket fail, writes are pointless and it logs
        # "socket.send() raised exception." for each: drop them quietly.
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self.ready_state is ReadyState.CONNECTING:
            logger.debug("handshake timed out: %r", self)
            self._failed = HandshakeTimeout("opening handshake timed out")
            self._abort()

    def _connect_failed(self, error: BaseException) -> None:
        """Hook for the client: the handshake never completed."""

    # -- receiving (called by _Receiver) -----------------------------------------

    def _message(self, message: str | bytes, event: str, size: int, streamed: bool = False) -> None:
        """A whole message arrived (``streamed``: its ``"binary"`` listeners already had the stream)."""
        if self._debug:
            logger.debug("%r received %s message of %d bytes", self, event, size)
        delivered = streamed
        if event == "text" and self.listener_count("text"):
            self._emit_safe("text", message)
            delivered = True
        if self.listener_count("message"):
            self._emit_safe("message", message)
            delivered = True
        if delivered:
            return
        listened = self._message_listener()
        if listened is not None:
            self._drop(event, listened)
            return
        self._queue.append(message)
        self._queued_bytes += size
        if self._queued_bytes > self.max_buffer_length or len(self._queue) >= self._options.max_queue:
            self._pause_reading("queue")
            self._watch_queue_stall()
        self._wake_recv()

    def _watch_queue_stall(self) -> None:
        if self._recv_called or self._queue_stall_timer is not None:
            return
        self._queue_stall_timer = self._loop.call_later(_QUEUE_STALL_WARNING_DELAY, self._check_queue_stall)

    def _check_queue_stall(self) -> None:
        if self._recv_called or "queue" not in self._pause_reasons or self.ready_state is ReadyState.CLOSED:
            return  # the timer stays set: one warning at most per connection
        logger.warning(
            "%r stalled: %d messages wait for a recv() that was never called, so reading from the "
            "socket stays paused (and a close from the peer is not seen); read them with recv() or "
            "async for, or add a 'message' listener",
            self,
            len(self._queue),
        )

    def _message_listener(self) -> str | None:
        """The first message event that has listeners, or ``None`` (messages then go to recv())."""
        for event in _MESSAGE_EVENTS:
            if self.listener_count(event):
                return event
        return None

    def _drop(self, kind: str, listened: str) -> None:
        """A ``kind`` message nobody listens for, while others do: not queued for a recv() nobody calls."""
        if kind in self._dropped_kinds:
            return
        self._dropped_kinds.add(kind)
        logger.warning(
            "%r: %s messages are dropped: there is a %r listener but none for %r or 'message' "
            "(add a %r or 'message' listener to receive them)",
            self,
            kind,
            listened,
            kind,
            kind,
        )

    def _listener_added(self, event: str) -> None:
        if event not in _MESSAGE_EVENTS:
            return
        # A recv() already waiting would wait forever: messages now go to the listener.
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._recv_conflict(event))
        # The queue no longer grows, so a full one must not keep reading stopped.
        self._resume_reading("queue")

    @staticmethod
    def _recv_conflict(event: str) -> InvalidState:
        return InvalidState(
            f"recv() cannot be used while a {event!r} listener is attached: messages go to "
            f"the listeners (remove them with remove_all_listeners({event!r}) to use recv())"
        )

    def _wake_recv(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause_reading(self, reason: object) -> None:
        """Backpressure: stop reading the socket, and pulling the core's events after this one."""
        if not self._pause_reasons and self._transport is not None:
            self._transport.pause_reading()
        self._pause_reasons.add(reason)

    def _resume_reading(self, reason: object) -> None:
        if reason in self._pause_reasons:
            self._pause_reasons.discard(reason)
            if not self._pause_reasons:
                if self._receiver is not None:
                    # What the core holds first; it may pause again.
                    self._receiver.pump()
                transport = self._transport
                if not self._pause_reasons and transport is not None and not transport.is_closing():
                    transport.resume_reading()

    def _peer_closed(self, code: int, reason: str) -> None:
        self._close_code = code
        self._close_reason = reason
        self._set_ready_state(ReadyState.CLOSING)
        self._after_close_handshake()

    def _after_close_handshake(self) -> None:
        """Both close frames are exchanged: server closes TCP, client half-closes and waits."""
        transport = self._transport
        if transport is None:
            return
        # Reading must go on to see the EOF even if the application paused it.
        self._pause_reasons.clear()
        if not transport.is_closing():
            transport.resume_reading()
        if not self._client:
            transport.close()
            return
        if transport.can_write_eof():
            try:
                transport.write_eof()
            except OSError:  # pragma: no cover - the peer vanished meanwhile
                transport.close()
                return
        else:
            transport.close()
            return
        self._start_close_timer()

    def _fail(self, error: ProtocolError) -> None:
        """The core failed the connection; the close frame is written."""
        self._failed = error
        self._close_code = error.code
        self._close_reason = str(error)
        self._set_ready_state(ReadyState.CLOSING)
        logger.debug("failing %r: %s (%d)", self, error, error.code)
        if self.listener_count("error"):
            self._emit_safe("error", error)
        if self._transport is not None:
            self._pause_reasons.clear()
            self._transport.close()

    # -- keepalive and local failures ------------------------------------------

    def _keepalive_ping(self) -> None:
        self._ka_timer = None
        if self.ready_state is not ReadyState.OPEN or self._core is None:
            return
        payload = os.urandom(4)
        self._ka_payload = payload
        # Not loop.time(): uvloop's is cached per iteration, in milliseconds, so a
        # loopback round trip would measure 0.
        self._ka_sent = time.perf_counter()
        self._core.send_ping(payload)
        self._core.write_to(self._write)
        timeout = self._options.ping_timeout
        if timeout is not None:
            self._ka_timer = self._later(timeout, self._keepalive_expired)

    def _keepalive_expired(self) -> None:
        self._ka_timer = None
        logger.info("keepalive ping timeout: %r", self)
        if self.server is not None:
            self.server.stats["keepalive_timeouts"] += 1
        self._abandon(CloseCode.INTERNAL_ERROR.value, "keepalive ping timeout")

    def _pong(self, payload: bytes) -> None:
        if self._ka_payload is not None and payload == self._ka_payload:
            # Our keepalive's answer: measure, schedule the next one, tell nobody.
            self._ka_payload = None
            self.latency = time.perf_counter() - self._ka_sent
            if self.server is not None:
                self.server.metrics.keepalive_rtt_seconds.observe(self.latency)
            if self._ka_timer is not None:
                self._ka_timer.cancel()
            interval = self._options.ping_interval
            if interval is not None and self.ready_state is ReadyState.OPEN:
                self._ka_timer = self._later(interval, self._keepalive_ping)
            return
        self._emit_safe("pong", payload.decode("utf-8", "replace"))

    def _write_overflow(self) -> None:
        """The peer does not read while the application keeps sending: drop the connection."""
        size = self._transport.get_write_buffer_size() if self._transport is not None else 0
        logger.warning(
            "%r: %d bytes wait to be sent, over max_write_buffer (%d): closing with 1008",
            self,
            size,
            self._options.max_write_buffer,
        )
        if self.server is not None:
            self.server.stats["write_overflows"] += 1
        self._abandon(CloseCode.POLICY_VIOLATION.value, "write buffer overflow: the peer does not read")

    def _abandon(self, code: int, reason: str) -> None:
        """End the connection from this side without waiting for the peer (dead or not reading).

        The close frame is written for form's sake; the socket is aborted at
        once, and ``"close"`` reports ``code`` and ``reason``.
        """
        if self.ready_state is ReadyState.CLOSED:
            return
        if self._close_code is None:
            self._close_code = code
            self._close_reason = reason
        self._set_ready_state(ReadyState.CLOSING)
        if self._core is not None:
            self._core.send_close(code, reason)
            self._core.write_to(self._write)
        self._loop.call_soon(self._abort)

    # -- closing -------------------------------------------------------------

    def _start_close_timer(self) -> None:
        self._cancel_timer()
        timeout = self._options.close_timeout
        if timeout is not None:
            self._timer = self._later(timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._timer = None
        logger.debug("closing handshake timed out: %r", self)
        self._abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        else:
            # Never connected: nothing will call connection_lost.
            self.connection_lost(None)

    def _finish(self) -> None:
        if self._close_emitted:
            return
        self._close_emitted = True
        if self.server is not None:
            self.server._connection_closed(self)
        if not self._closed.done():
            self._closed.set_result(None)
        runner.release(self._loop, self)
        if self._core is not None or self._client:
            self._emit_safe("close", self._close_code, self._close_reason)
        if self.server is not None:
            # The server's "close" follows its last connection's "close".
            self.server._maybe_emit_close()

    def close(self, code: int | None = None, reason: str | None = None) -> Awaitable[None]:
        """Start the closing handshake; the result can be awaited until CLOSED.

        With no ``code`` the close frame has an empty body (the peer sees
        1005); a ``reason`` without a code uses 1000. Calling it again, or on a
        closed connection, only returns the awaitable.

        Raises:
            ValueError: a code that may not be sent (e.g. 1005, 1006, 1015,
                or outside 1000-4999) or a reason over 123 bytes of UTF-8.
            TypeError: a str as the code (``close("bye")``): the code comes first.
        """
        code, reason = close_args(code, reason)
        state = self.ready_state
        if state is ReadyState.CONNECTING:
            self._failed = ConnectionClosed(CloseCode.ABNORMAL.value, "closed during the handshake")
            self._abort()
        elif state is ReadyState.OPEN:
            self._set_ready_state(ReadyState.CLOSING)
            assert self._core is not None
            if self.out_stream is not None:
                self.out_stream._abort(InvalidState("the connection was closed during the stream"))
                self.out_stream = None
            self._core.send_close(code, reason)
            self._core.write_to(self._write)
            self._start_close_timer()
        # Shielded: wait_for(close(), t) timing out must not cancel what wait_closed() waits on.
        return asyncio.shield(self._closed)

    def _shutdown(self) -> None:
        """Called by ``run()`` on SIGINT/SIGTERM: close with 1001."""
        if self.ready_state is ReadyState.OPEN:
            self.close(CloseCode.GOING_AWAY.value, "going away")
        elif self.ready_state is ReadyState.CONNECTING:
            self.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is CLOSED."""
        await asyncio.shield(self._closed)

    # -- sending -------------------------------------------------------------

    def _misuse(self, error: WebSocketError, callback: SendCallback | None) -> Awaitable[None]:
        if callback is not None:
            callback(error)
            return Failed(error)
        if self.listener_count("error"):
            self._emit_safe("error", error)
            return Failed(error)
        raise error

    def _check_open(self) -> WebSocketError | None:
        if self._write_paused and self.ready_state is ReadyState.OPEN:
            # Sending more while over max_write_buffer: backpressure was ignored.
            transport = self._transport
            if transport is not None and transport.get_write_buffer_size() > self._options.max_write_buffer:
                self._write_overflow()
        if self.ready_state is ReadyState.CONNECTING:
            return InvalidState(
                "cannot send: the connection is not open yet (CONNECTING); "
                "await connect() first, or send from a 'connect' listener"
            )
        if self.ready_state is not ReadyState.OPEN:
            return InvalidState(f"cannot send: the connection is {self.ready_state.name}")
        return None

    def _sent(self, callback: SendCallback | None) -> Awaitable[None]:
        if not self._write_paused:
            if callback is not None:
                callback(None)
            return DONE
        # Bounded memory: every send until the next drain shares one waiter.
        if callback is not None:
            self._drain_callbacks.append(callback)
        waiter = self._drain_waiter
        if waiter is None:
            waiter = self._drain_waiter = _DrainWaiter(self._loop.create_future())
        return waiter

    def send_text(self, text: str, callback: SendCallback | None = None) -> Awaitable[None]:
        """Send ``text`` as one text frame.

        Not allowed while a binary stream (:meth:`begin_binary`) is being sent.
        """
        if not isinstance(text, str):
            raise TypeError(f"send_text takes a str, not {type(text).__name__}")
        error = self._check_open()
        if error is None and self.out_stream is not None:
            error = InvalidState("cannot send text while a binary stream is being sent")
        if error is not None:
            return self._misuse(error, callback)
        core = self._core
        assert core is not None
        core.send_text(text)
        core.write_to(self._write)
        if self._debug:
            logger.debug("%r sent text message of %d characters", self, len(text))
        return self._sent(callback)

    def send_binary(self, data: BytesLike, callback: SendCallback | None = None) -> Awaitable[None]:
        """Send ``data`` (bytes-like) as one binary frame."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_binary takes a bytes-like object, not {type(data).__name__}")
        error = self._check_open()
        if error is None and self.out_stream is not None:
            error = InvalidState("cannot send a binary message while a binary stream is being sent")
        if error is not None:
            return self._misuse(error, callback)
        core = self._core
        assert core is not None
        # A mutable buffer could change after the call while asyncio still holds it.
        core.send_binary(data if type(data) is bytes else bytes(data))
        core.write_to(self._write)
        if self._debug:
            logger.debug("%r sent binary message of %d bytes", self, len(data))
        return self._sent(callback)

    def send_ping(self, data: str | BytesLike = "", callback: SendCallback | None = None) -> Awaitable[None]:
        """Send a ping with ``data`` (at most 125 bytes); the answer arrives as ``"pong"``."""
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        check_control_payload(payload, "ping")
        error = self._check_open()
        if error is not None:
            return self._misuse(error, callback)
        assert self._core is not None
        self._core.send_ping(payload)
        self._core.write_to(self._write)
        return self._sent(callback)

    def begin_binary(self) -> OutStream:
        """Start a binary message sent as a stream of frames; see :class:`OutStream`.

        Raises:
            InvalidState: not open, or another stream is still being sent.
                It is always raised (there is no stream to return), never
                emitted as ``"error"``.
        """
        error = self._check_open()
        if error is None and self.out_stream is not None:
            error = InvalidState("a binary stream is already being sent")
        if error is not None:
            raise error
        stream = OutStream(self._send_stream_frame, self.binary_fragmentation, self._stream_ended)
        self.out_stream = stream
        return stream

    def _send_prebuilt(self, frame: bytes, opcode: int = 2, size: int = 0) -> bool:
        """Write an already serialised frame if a message may be sent now (for broadcasts).

        ``opcode`` and ``size`` (the payload's length) count it in the metrics.
        """
        if self._check_open() is not None or self.out_stream is not None or self._core is None:
            return False
        self._core.send_prebuilt(frame, opcode, size)
        self._core.write_to(self._write)
        return True

    def _send_stream_frame(self, opcode: int, payload: bytes, fin: bool) -> Awaitable[None]:
        if self._check_open() is not None or self._core is None:
            return Failed(ConnectionClosed(self._close_code or CloseCode.ABNORMAL.value, self._close_reason))
        self._core.send_data_frame(opcode, payload, fin)
        self._core.write_to(self._write)
        return self._sent(None)

    def _stream_ended(self) -> None:
        self.out_stream = None

    # -- receiving, the async way ----------------------------------------------

    async def recv(self) -> str | bytes:
        """The next whole message (``str`` for text, ``bytes`` for binary).

        Messages are queued for ``recv`` only while no ``"text"``, ``"binary"``
        or ``"message"`` listener is attached. Cancelling a ``recv`` loses no
        message.

        Raises:
            ConnectionClosed: the connection is closed (with its code and reason).
            ConcurrencyError: another ``recv()`` (or ``async for``) is already waiting.
            InvalidState: a ``"text"``, ``"binary"`` or ``"message"`` listener is
                attached (also raised in a waiting ``recv()`` when one is added).
        """
        if self._recv_waiter is not None:
            raise ConcurrencyError(
                "another coroutine is already waiting in recv() or async for on this connection; "
                "only one may read at a time"
            )
        listened = self._message_listener()
        if listened is not None:
            raise self._recv_conflict(listened)
        self._recv_called = True
        while not self._queue:
            if self.ready_state is ReadyState.CLOSED:
                raise ConnectionClosed(self._close_code or CloseCode.ABNORMAL.value, self._close_reason)
            self._recv_waiter = self._loop.create_future()
            try:
                await self._recv_waiter
            finally:
                self._recv_waiter = None
        message = self._queue[0]
        if message is _END:
            raise ConnectionClosed(self._close_code or CloseCode.ABNORMAL.value, self._close_reason)
        self._queue.popleft()
        assert isinstance(message, (str, bytes))
        self._queued_bytes -= len(message)
        if self._queued_bytes <= self.max_buffer_length and len(self._queue) < self._options.max_queue:
            self._resume_reading("queue")
        return message

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                message = await self.recv()
            except ConnectionClosed as exc:
                if exc.code in (CloseCode.NORMAL, CloseCode.GOING_AWAY):
                    return
                raise
            yield message

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def _call_safe(callback: SendCallback, error: BaseException | None) -> None:
        try:
            callback(error)
        except Exception:
            logger.exception("exception in a send callback")

    # -- awaitable / async context manager (client side) -------------------------

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._wait_open().__await__()

    async def _wait_open(self) -> Connection:
        raise InvalidState("only a client connection can be awaited")

    async def __aenter__(self) -> Connection:
        return await self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.ready_state is not ReadyState.CLOSED:
            await self.close(CloseCode.NORMAL.value if exc is None else CloseCode.INTERNAL_ERROR.value)
        else:
            await self.wait_closed()


class _Receiver:
    """The receive dispatcher: pulls the core's events and turns them into the connection's behaviour."""

    __slots__ = ("conn", "core", "_pumping")

    def __init__(self, conn: Connection, core: WebSocketCore) -> None:
        self.conn = conn
        self.core = core
        self._pumping = False

    def pump(self) -> None:
        """Pull and dispatch the core's events until it has none or reading is paused.

        A listener that resumes reading while this runs needs no pump of its
        own: the loop in progress goes on, so events never overtake each other.
        """
        if self._pumping:
            return
        next_event = self.core.next_event
        dispatch = self.dispatch
        paused = self.conn._pause_reasons
        self._pumping = True
        try:
            while not paused:
                event = next_event()
                if event is None:
                    return
                dispatch(event)
        finally:
            self._pumping = False

    def dispatch(self, event: Event) -> None:
        """Act on one event of the core (see :mod:`wsevents.protocol.events`)."""
        kind = event[0]
        conn = self.conn
        if kind == TEXT:
            conn._message(event[1], "text", len(event[1]))
            return
        if kind >= CLOSE:
            # The core's answer (a pong, the echoed or failing close) is written before anyone hears of it.
            self.core.write_to(conn._write)
        if kind == BINARY:
            self.on_binary_data(event[1], event[2])
        elif kind == BINARY_START:
            if not self.on_binary_start():
                self.core.unbound_message()
        elif kind == PING:
            self.on_ping()
        elif kind == PONG:
            conn._pong(event[1])
        elif kind == CLOSE:
            conn._peer_closed(event[1], event[2])
        else:
            conn._fail(event[1])

    def on_binary_start(self) -> bool:
        """Stream to ``"binary"``, collect for ``"message"`` or ``recv()`` (bounded), or drop."""
        conn = self.conn
        streamed = conn.listener_count("binary") > 0
        whole = conn.listener_count("message") > 0
        if streamed:
            stream = InStream(
                lambda: conn._pause_reading(stream),
                lambda: conn._resume_reading(stream),
                conn.max_buffer_length,
                self._fail_stream,
                owner=conn,
            )
            conn._in_stream = stream
            conn._emit_safe("binary", stream)
        listened = conn._message_listener()
        if whole or listened is None:
            conn._parts = []
            return True
        if not streamed:
            conn._drop("binary", listened)
        return False

    def _fail_stream(self, error: MessageTooBig) -> None:
        core = self.core
        if core.reading:
            failure = core.fail(error.code, str(error))
            core.write_to(self.conn._write)
            self.conn._fail(failure)

    def on_binary_data(self, data: bytes, fin: bool) -> None:
        conn = self.conn
        stream = conn._in_stream
        if stream is not None:
            stream._feed(data)
            if fin:
                # The stream keeps its own backpressure until its data is consumed.
                conn._in_stream = None
                stream._end()
        parts = conn._parts
        if parts is None:
            return  # streamed only, or dropped
        append_piece(parts, data)
        if fin:
            conn._parts = None
            message = parts[0] if len(parts) == 1 else b"".join(parts)
            conn._message(message, "binary", len(message), streamed=stream is not None)

    def on_ping(self) -> None:
        # The core's pong is written: pongs count against max_write_buffer like any
        # send, so a peer that floods pings without reading the answers is dropped (1008).
        conn = self.conn
        transport = conn._transport
        if (
            conn._write_paused
            and transport is not None
            and conn.ready_state is ReadyState.OPEN
            and transport.get_write_buffer_size() > conn._options.max_write_buffer
        ):
            conn._write_overflow()
