"""A binary message being sent, as a writable stream: :class:`OutStream`.

It knows nothing of the connection: it gets a callable that sends one frame and
one called when the message ends. :mod:`wsevents.aio.streams` re-exports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType

from .._types import DONE, BytesLike, Failed, SendCallback
from ..emitter import EventEmitter
from ..errors import ConnectionClosed, InvalidState, WebSocketError

__all__ = ["FrameSender", "OutStream"]


FrameSender = Callable[[int, bytes, bool], Awaitable[None]]


class OutStream(EventEmitter):
    """A binary message being sent as a writable stream (from ``begin_binary()``).

    Written data is held until at least ``fragment_size`` bytes are waiting,
    then goes out as one frame; :meth:`end` sends what is left as the final
    frame. ``"finish"`` is emitted after the final frame has been handed over.
    """

    _events = frozenset({"finish"})

    def __init__(self, send_frame: FrameSender, fragment_size: int, on_end: Callable[[], None]) -> None:
        super().__init__()
        self._send_frame = send_frame
        self.fragment_size = fragment_size
        self._on_end = on_end
        self._buffer = bytearray()
        self._started = False
        self._ended = False
        self._error: WebSocketError | None = None

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` has been called."""
        return self._ended

    def _check(self, data: object) -> None:
        if self._error is not None:
            raise self._error
        if self._ended:
            raise InvalidState("write after end() of an OutStream")
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"OutStream takes bytes-like data, not {type(data).__name__}")

    def _refuse(self, data: object, callback: SendCallback | None) -> Awaitable[None] | None:
        """None when ``data`` may be written; else the refusal, given to ``callback`` or raised."""
        try:
            self._check(data)
        except (WebSocketError, TypeError) as exc:
            if callback is None:
                raise
            callback(exc)
            return Failed(exc)
        return None

    def _next_opcode(self) -> int:
        """BINARY for the message's first frame, CONTINUATION after it."""
        opcode = 0 if self._started else 2
        self._started = True
        return opcode

    def write(self, data: BytesLike, callback: SendCallback | None = None) -> Awaitable[None]:
        """Add ``data`` to the message.

        Returns an awaitable that completes once the data has been handed to
        the operating system, or at once when it is only held here (at most
        ``fragment_size`` bytes are ever held).
        """
        refused = self._refuse(data, callback)
        if refused is not None:
            return refused
        self._buffer += data
        if len(self._buffer) < self.fragment_size:
            if callback is not None:
                callback(None)
            return DONE
        payload = bytes(self._buffer)
        self._buffer.clear()
        opcode = self._next_opcode()
        return self._chain(self._send_frame(opcode, payload, False), callback)

    def end(self, data: BytesLike | None = None, callback: SendCallback | None = None) -> Awaitable[None]:
        """Send what is held (plus ``data``) as the final frame of the message."""
        refused = self._refuse(data, callback)
        if refused is not None:
            return refused
        if data:
            self._buffer += data
        payload = bytes(self._buffer)
        self._buffer.clear()
        self._ended = True
        opcode = self._next_opcode()
        try:
            result = self._send_frame(opcode, payload, True)
        finally:
            self._on_end()
        if not isinstance(result, Failed):
            self.emit("finish")
        return self._chain(result, callback)

    @staticmethod
    def _chain(result: Awaitable[None], callback: SendCallback | None) -> Awaitable[None]:
        if callback is None:
            return result
        if result is DONE:
            callback(None)
            return result
        if isinstance(result, Failed):
            callback(result.error)
            return result
        fut = asyncio.ensure_future(result)

        def done(f: asyncio.Future[None]) -> None:
            callback(None if f.cancelled() else f.exception())

        fut.add_done_callback(done)
        return fut

    def _abort(self, error: WebSocketError) -> None:
        """The connection closed under the stream: later writes raise ``error``."""
        self._ended = True
        self._error = error
        self._buffer.clear()

    async def __aenter__(self) -> OutStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._ended:
            try:
                await self.end()
            except ConnectionClosed:
                if exc is None:
                    raise
