"""The receiving side of a connection: bytes read go to the core, whose events become listener
calls, streams, or entries of the ``recv()`` queue, with reading paused while the application
lags behind. One text message goes from ``data_received`` here through the core's parser
(``protocol/reader.py``) to ``emit`` (``emitter.py``) and the ``"text"`` listeners."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..errors import ConcurrencyError, ConnectionClosed, InvalidState, MessageTooBig
from ..protocol._mask import Collector, new_collector
from ..protocol.closecodes import CloseCode
from ..protocol.core import ReadyState, WebSocketCore
from ..protocol.events import BINARY, BINARY_START, CLOSE, PING, PONG, TEXT, Event, append_piece
from .conn_base import _ConnectionBase
from .streams import InStream

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["_END", "_ReceiveSide", "_Receiver"]

logger = logging.getLogger("wsevents")

# Sentinel queued for recv() when the connection ends.
_END = object()

# What _drop has warned about: none yet (replaced, never changed, so one empty set serves all).
_NO_KINDS: frozenset[str] = frozenset()

# The events that take messages: with a listener on any of them, nothing is queued for recv().
_MESSAGE_EVENTS = ("text", "binary", "message")

# Seconds a full recv() queue may keep reading stopped, on a connection whose recv() was never
# called, before a WARNING says so: without it such a connection stalls silently (its close
# frame is never read and the peer ends with 1006).
_QUEUE_STALL_WARNING_DELAY = 1.0


class _ReceiveSide(_ConnectionBase):
    """Whole messages to ``"text"``/``"message"`` listeners or the ``recv()`` queue; backpressure."""

    __slots__ = ()

    def _init_receiving(self) -> None:
        self._receiver = None
        self._in_stream = None
        self._parts = None
        # Made by the first message queued for recv(): a connection served by listeners has none.
        self._queue = None
        self._queued_bytes = 0
        self._recv_waiter = None
        self._pause_reasons = set()
        self._dropped_kinds = _NO_KINDS
        self._recv_called = False
        self._queue_stall_timer = None

    def data_received(self, data: bytes) -> None:
        """asyncio.Protocol callback: the handshake head first, then frames for the core."""
        try:
            core = self._core
            if core is not None:
                core.receive_data(data)
                assert self._receiver is not None
                # What is written while this read is dispatched (echoes, pongs, the close answer)
                # and more of the read is still to come is held back (transport._write) and goes
                # out in one write at the end: one system call, not one per message.
                self._in_read = True
                try:
                    self._receiver.pump()
                finally:
                    self._in_read = False
                    corked = self._corked
                    if corked is not None:
                        self._corked = None
                        if corked:
                            self._write_out(corked)
                    # The sends held back waited like sends made while writing is paused
                    # (sending._sent): if that one write went out whole, they are done now, else
                    # they complete when the transport drains.
                    if (self._drain_waiter is not None or self._drain_callbacks) and not self._write_paused:
                        self._release_senders(None)
                return
            self._head_received(data)
        except Exception as exc:
            self._internal_error("data_received", exc)

    def _message(self, message: str | bytes, event: str, size: int, streamed: bool = False) -> None:
        """A whole message arrived (``streamed``: its ``"binary"`` listeners already had the stream)."""
        if self._debug:
            logger.debug("%r received %s message of %d bytes", self, event, size)
        delivered = streamed
        listeners = self._listeners  # listener_count() without its two calls: once per message
        if event == "text":
            fns = listeners.get("text")
            if fns:
                self._emit_message(fns, "text", message)
                delivered = True
        fns = listeners.get("message")
        if fns:
            self._emit_message(fns, "message", message)
            delivered = True
        if delivered:
            return
        listened = self._message_listener()
        if listened is not None:
            self._drop(event, listened)
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(message)
        self._queued_bytes += size
        if self._queued_bytes > self.max_buffer_length or len(queue) >= self._options.max_queue:
            self._pause_reading("queue")
            self._watch_queue_stall()
        self._wake_recv()

    def _watch_queue_stall(self) -> None:
        if self._recv_called or self._queue_stall_timer is not None:
            return
        self._queue_stall_timer = self._loop.call_later(_QUEUE_STALL_WARNING_DELAY, self._check_queue_stall)

    def _check_queue_stall(self) -> None:
        if self._recv_called or "queue" not in self._pause_reasons or self._ready_state is ReadyState.CLOSED:
            return  # the timer stays set: one warning at most per connection
        logger.warning(
            "%r stalled: %d messages wait for a recv() that was never called, so reading from the "
            "socket stays paused (and a close from the peer is not seen); read them with recv() or "
            "async for, or add a 'message' listener",
            self,
            len(self._queue or ()),
        )

    def _message_listener(self) -> str | None:
        """The first message event that has listeners, or ``None`` (messages then go to recv())."""
        listeners = self._listeners  # twice per message with recv(): no listener_count() calls
        for event in _MESSAGE_EVENTS:
            if listeners.get(event):
                return event
        return None

    def _drop(self, kind: str, listened: str) -> None:
        """A ``kind`` message nobody listens for, while others do: not queued for a recv() nobody calls."""
        if kind in self._dropped_kinds:
            return
        self._dropped_kinds |= {kind}
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
            if self._ready_state is ReadyState.CLOSED:
                raise ConnectionClosed(self._close_code or CloseCode.ABNORMAL.value, self._close_reason)
            self._recv_waiter = self._loop.create_future()
            try:
                await self._recv_waiter
            finally:
                self._recv_waiter = None
        queue = self._queue
        assert queue is not None
        message = queue[0]
        if message is _END:
            raise ConnectionClosed(self._close_code or CloseCode.ABNORMAL.value, self._close_reason)
        queue.popleft()
        assert isinstance(message, (str, bytes))
        self._queued_bytes -= len(message)
        if (
            self._pause_reasons
            and self._queued_bytes <= self.max_buffer_length
            and len(queue) < self._options.max_queue
        ):
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
            core = self.core

            def collect(sink: Collector | None) -> bool:
                # Only for this stream's message, and not when "message" listeners need its pieces.
                if conn._in_stream is not stream or (sink is not None and conn._parts is not None):
                    return False
                return core.collect_message(sink)

            stream = InStream(
                lambda: conn._pause_reading(stream),
                lambda: conn._resume_reading(stream),
                conn.max_buffer_length,
                self._fail_stream,
                owner=conn,
                collect=collect,
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
            if stream._collecting is not None:
                stream._collected(data)  # a whole read collects the message
            else:
                stream._feed(data)
            if fin:
                # The stream keeps its own backpressure until its data is consumed.
                conn._in_stream = None
                stream._end()
        parts = conn._parts
        if parts is None:
            return  # streamed only, or dropped
        if isinstance(parts, list):
            if not fin and not parts and stream is None:
                # The first piece of a message in pieces: the core unmasks the rest straight
                # into one buffer that starts with this piece (kept, not copied).
                message = new_collector()
                message.add(data)
                if self.core.collect_message(message):
                    conn._parts = message
                    return
            append_piece(parts, data)
            if not fin:
                return
            message_bytes = parts[0] if len(parts) == 1 else b"".join(parts)
        else:
            parts.add(data)  # b"" when the core put the piece there itself
            if not fin:
                return
            message_bytes = parts.finish()
        conn._parts = None
        conn._message(message_bytes, "binary", len(message_bytes), streamed=stream is not None)

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
