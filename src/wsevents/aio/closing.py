"""How a connection ends (RFC 6455 section 7): the closing handshake, failures, timeouts.

The side that receives a close frame answers it; the server then closes TCP at once, the
client half-closes its side and waits up to ``close_timeout`` for the server to finish.
``"close"`` is emitted exactly once, after the socket is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from ..errors import ConnectionClosed, InvalidState, MessageTooBig, ProtocolError
from ..protocol.closecodes import CloseCode, check_close_order, may_send
from ..protocol.core import ReadyState
from ..protocol.frames import MAX_CLOSE_REASON
from . import runner
from .conn_base import _ConnectionBase
from .receiving import _END

__all__ = ["_CloseSide", "close_args"]

logger = logging.getLogger("wsevents")


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


class _CloseSide(_ConnectionBase):
    """The close state machine: ``close()``, the peer's close, failures, the close timer, ``"close"``."""

    __slots__ = ()

    def _init_closing(self) -> None:
        self._close_code = None
        self._close_reason = ""
        self._failed = None
        # Made when close() or wait_closed() is first called: most connections never need one.
        self._closed = None
        self._close_emitted = False
        self._timer = None

    def _lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._ka_timer is not None:
            self._ka_timer.cancel()
            self._ka_timer = None
        previous = self._ready_state
        self._set_ready_state(ReadyState.CLOSED)
        if self._core is not None:
            self._core.receive_eof()
        if self._close_code is None:
            self._close_code = CloseCode.ABNORMAL.value
            self._close_reason = ""
        self._write_paused = False
        # The error is built only for what waits on it: sends not handed over, streams.
        pending = self._drain_waiter is not None or self._drain_callbacks
        if pending or self._in_stream is not None or self.out_stream is not None:
            self._fail_pending(ConnectionClosed(self._close_code, self._close_reason))
        if self._queue is not None:
            self._queue.append(_END)
        self._wake_recv()
        if previous is ReadyState.CONNECTING:
            lost = ConnectionClosed(CloseCode.ABNORMAL.value, "connection lost during the handshake")
            self._connect_failed(exc or lost)
        elif exc is not None and self._failed is None and self.listener_count("error"):
            self._emit_safe("error", exc)
        self._finish()

    def _fail_pending(self, closed: ConnectionClosed) -> None:
        """The connection ended: sends not handed over and both streams fail with ``closed``."""
        self._release_senders(closed)
        if self._in_stream is not None:
            stream, self._in_stream = self._in_stream, None
            # A stream failed for its size tells its reader so, not just "closed".
            stream._abort(self._failed if isinstance(self._failed, MessageTooBig) else closed)
        if self.out_stream is not None:
            self.out_stream._abort(closed)
            self.out_stream = None

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
        self._flush()  # the close answer, if it is still corked, goes before the TCP close
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
            self._flush()
            self._transport.close()

    def _abandon(self, code: int, reason: str) -> None:
        """End the connection from this side without waiting for the peer (dead or not reading).

        The close frame is written for form's sake; the socket is aborted at
        once, and ``"close"`` reports ``code`` and ``reason``.
        """
        if self._ready_state is ReadyState.CLOSED:
            return
        if self._close_code is None:
            self._close_code = code
            self._close_reason = reason
        self._set_ready_state(ReadyState.CLOSING)
        if self._core is not None:
            self._core.send_close(code, reason)
            self._core.write_to(self._write)
        self._loop.call_soon(self._abort)

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
            self._flush()  # a corked close frame may still reach the peer before the reset
            self._transport.abort()
        else:
            # Never connected: nothing will call connection_lost.
            self.connection_lost(None)

    def _finish(self) -> None:
        if self._close_emitted:
            return
        self._close_emitted = True
        self._host.connection_closed(self, self._core)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        runner.release(self._loop, self)
        if (self._core is not None or self._client) and self._listeners.get("close"):
            self._emit_safe("close", self._close_code, self._close_reason)
        # The server's "close" follows its last connection's "close".
        self._host.close_emitted(self)

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
        state = self._ready_state
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
        return asyncio.shield(self._closed_future())

    def _closed_future(self) -> asyncio.Future[None]:
        """What close() and wait_closed() wait on: done once ``"close"`` is due."""
        closed = self._closed
        if closed is None:
            closed = self._closed = self._loop.create_future()
            if self._close_emitted:
                closed.set_result(None)
        return closed

    def _shutdown(self) -> None:
        """Called by ``run()`` on SIGINT/SIGTERM: close with 1001."""
        if self._ready_state is ReadyState.OPEN:
            self.close(CloseCode.GOING_AWAY.value, "going away")
        elif self._ready_state is ReadyState.CONNECTING:
            self.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is CLOSED."""
        await asyncio.shield(self._closed_future())

