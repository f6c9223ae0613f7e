"""The sending side of a connection: the send calls, what they return, and flow control.

Writing pauses when the transport holds unsent bytes (its high-water mark is zero);
every send made until it drains shares one waiter, completed in send order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Generator
from typing import Any

from .._types import DONE, BytesLike, Failed, SendCallback
from ..errors import ConnectionClosed, InvalidState, WebSocketError
from ..protocol.closecodes import CloseCode
from ..protocol.core import ReadyState
from ..protocol.frames import check_control_payload
from .conn_base import _ConnectionBase
from .streams import OutStream

__all__ = ["_DrainWaiter", "_SendSide"]

logger = logging.getLogger("wsevents")

# A drain waiter not settled yet.
_PENDING = object()

# Bound once: on Python 3.11 reading an enum member through its class costs about ten times a
# global's read, and send_text / _send_prebuilt test the state on every message.
_OPEN = ReadyState.OPEN


class _DrainWaiter:
    """What every send returns while writing is paused: one per drain, not one per send.

    All the sends made before the transport drains share one future; each
    ``await`` gets its own shield of it, so a cancelled or timed-out awaiter
    (``wait_for(send(...), t)``) cannot cancel the others' wait. Made with a
    loop instead of a future, the future is only created if someone awaits
    before it is settled: the sends of one read (see receiving.data_received) usually
    complete with their one write, and then cost no future.
    """

    __slots__ = ("future", "_loop", "_outcome")

    def __init__(
        self, future: asyncio.Future[None] | None, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.future = future
        self._loop = loop
        self._outcome: object = _PENDING

    def settle(self, error: BaseException | None) -> None:
        """Complete it (once): with success, or ``error``."""
        if self._outcome is not _PENDING:
            return
        self._outcome = error
        future = self.future
        if future is not None and not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
                future.exception()  # mark retrieved: fire-and-forget senders never look

    def __await__(self) -> Generator[Any, None, None]:
        future = self.future
        if future is None:
            outcome = self._outcome
            if isinstance(outcome, BaseException):
                return Failed(outcome).__await__()
            if outcome is None:
                return DONE.__await__()
            assert self._loop is not None
            future = self.future = self._loop.create_future()
        return asyncio.shield(future).__await__()

    def done(self) -> bool:
        """Whether the data has been handed to the operating system (or the connection ended)."""
        return self._outcome is not _PENDING or (self.future is not None and self.future.done())

    def __repr__(self) -> str:
        return f"<DrainWaiter {'pending' if self._outcome is _PENDING else 'settled'}>"


class _SendSide(_ConnectionBase):
    """``send_text``, ``send_binary``, ``send_ping``, ``begin_binary`` and the drain waiters."""

    __slots__ = ()

    def _init_sending(self) -> None:
        self._write_paused = False
        self._drain_waiter = None
        self._drain_callbacks = []
        self._in_read = False
        self._corked = None
        self._corked_size = 0

    def _release_senders(self, error: ConnectionClosed | None) -> None:
        """Complete every send made while writing was paused (in send order), with ``error`` or success."""
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None:
            waiter.settle(error)
        callbacks = self._drain_callbacks
        if callbacks:
            self._drain_callbacks = []
            for callback in callbacks:
                self._call_safe(callback, error)

    def _check_open(self) -> WebSocketError | None:
        if self._write_paused and self._ready_state is ReadyState.OPEN:
            # Sending more while over max_write_buffer: backpressure was ignored.
            transport = self._transport
            if transport is not None and transport.get_write_buffer_size() > self._options.max_write_buffer:
                self._write_overflow()
        if self._ready_state is ReadyState.CONNECTING:
            return InvalidState(
                "cannot send: the connection is not open yet (CONNECTING); "
                "await connect() first, or send from a 'connect' listener"
            )
        if self._ready_state is not ReadyState.OPEN:
            return InvalidState(f"cannot send: the connection is {self._ready_state.name}")
        return None

    def _sent(self, callback: SendCallback | None) -> Awaitable[None]:
        # A send held in the cork (made while a read is dispatched and more of it is to come) is
        # not yet with the transport: it completes when the cork is written (end of
        # receiving.data_received), like one made while paused.
        if not self._write_paused and self._corked is None:
            if callback is not None:
                callback(None)
            return DONE
        # Bounded memory: every send until the next drain shares one waiter.
        if callback is not None:
            self._drain_callbacks.append(callback)
        waiter = self._drain_waiter
        if waiter is None:
            waiter = self._drain_waiter = _DrainWaiter(None, self._loop)
        return waiter

    def send_text(self, text: str, callback: SendCallback | None = None) -> Awaitable[None]:
        """Send ``text`` as one text frame.

        Not allowed while a binary stream (:meth:`begin_binary`) is being sent.
        """
        if not isinstance(text, str):
            raise TypeError(f"send_text takes a str, not {type(text).__name__}")
        if self._ready_state is not _OPEN or self._write_paused or self.out_stream is not None:
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
        if self._ready_state is not _OPEN or self._write_paused or self.out_stream is not None:
            if self._check_open() is not None or self.out_stream is not None:
                return False
        core = self._core
        if core is None:
            return False
        core.send_prebuilt(frame, opcode, size)
        core.write_to(self._write)
        return True

    def _send_stream_frame(self, opcode: int, payload: bytes, fin: bool) -> Awaitable[None]:
        if self._check_open() is not None or self._core is None:
            return Failed(ConnectionClosed(self._close_code or CloseCode.ABNORMAL.value, self._close_reason))
        self._core.send_data_frame(opcode, payload, fin)
        self._core.write_to(self._write)
        return self._sent(None)

    def _stream_ended(self) -> None:
        self.out_stream = None

    @staticmethod
    def _call_safe(callback: SendCallback, error: BaseException | None) -> None:
        try:
            callback(error)
        except Exception:
            logger.exception("exception in a send callback")

    def _write_overflow(self) -> None:
        """The peer does not read while the application keeps sending: drop the connection."""
        size = self._transport.get_write_buffer_size() if self._transport is not None else 0
        logger.warning(
            "%r: %d bytes wait to be sent, over max_write_buffer (%d): closing with 1008",
            self,
            size,
            self._options.max_write_buffer,
        )
        self._host.count("write_overflows")
        self._abandon(CloseCode.POLICY_VIOLATION.value, "write buffer overflow: the peer does not read")

