"""The asyncio side of a connection: the ``asyncio.Protocol`` callbacks and the guard around them.

Bytes read go to the handshake until it is done (``_head_received``), then to the core
and the receive dispatcher (``receiving.py``, which has ``data_received``). What is
written while a read is dispatched and more of it is to come is corked here and goes out
as one write at the end of the read. Writing
paused or resumed by the transport settles the sends waiting on it (``sending.py``); the
end of the socket goes to ``closing.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from ..errors import ConnectionClosed, HandshakeError
from ..protocol.closecodes import CloseCode
from ..protocol.core import ReadyState
from ..protocol.opening import HandshakeState
from . import runner
from .conn_base import _ConnectionBase
from .receiving import _END

__all__ = ["CORK_LIMIT", "_TransportAdapter"]

logger = logging.getLogger("wsevents")

#: Bytes written while a read is dispatched that are joined into one write; past it they go
#: out at once (a large message is written as it is, never copied into a join).
CORK_LIMIT = 64 * 1024


class _TransportAdapter(_ConnectionBase):
    """The asyncio protocol: connection_made/data_received/eof/lost, pause/resume writing."""

    __slots__ = ()

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
            self._host.connection_made(self)
        # A zero high-water mark makes pause_writing/resume_writing tell exactly
        # whether everything written so far has been handed to the OS.
        transport.set_write_buffer_limits(high=0)
        timeout = self._handshake.timeout if self._handshake is not None else None
        if timeout is not None and self._ready_state is ReadyState.CONNECTING:
            self._timer = self._later(timeout, self._handshake_timed_out)

    def _head_received(self, data: bytes) -> None:
        handshake = self._handshake
        if handshake is None or self._ready_state is not ReadyState.CONNECTING:
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
            if self._queue is not None:
                self._queue.append(_END)
            self._wake_recv()
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
        state = self._ready_state
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
        if isinstance(exc, ConnectionClosed) and self._ready_state is not ReadyState.OPEN:
            # A handler that read past the end of its own connection: nothing went wrong here.
            logger.debug("coroutine listener of %r ended with %r: %r", event, exc, self)
            return
        super()._listener_failed(event, args, exc)
        if self._ready_state is ReadyState.OPEN:
            self.close(CloseCode.INTERNAL_ERROR.value, "internal error")

    def _write(self, data: bytes) -> None:
        corked = self._corked
        if corked is None:
            core = self._core
            if not self._in_read or core is None or not core.has_buffered:
                # Outside a read, or its last part: nothing follows to join this write.
                self._write_now(data)
                return
            corked = self._corked = []
        if len(data) < CORK_LIMIT:
            corked.append(data)
            self._corked_size += len(data)
            if self._corked_size >= CORK_LIMIT:
                self._write_out(corked)
            return
        self._flush()  # what came before goes first; a big write is not copied
        self._write_now(data)

    def _write_now(self, data: bytes) -> None:
        transport = self._transport
        # Once asyncio has seen the socket fail, writes are pointless and it logs
        # "socket.send() raised exception." for each: drop them quietly.
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _write_out(self, corked: list[bytes]) -> None:
        """Write what the cork holds, as one write, and empty it."""
        data = corked[0] if len(corked) == 1 else b"".join(corked)
        corked.clear()
        self._corked_size = 0
        self._write_now(data)

    def _flush(self) -> None:
        """Hand what the read being dispatched has written so far to the transport, in order.

        Called before the transport is closed, half-closed or aborted, so that a corked
        close frame is not lost.
        """
        if self._corked:
            self._write_out(self._corked)
