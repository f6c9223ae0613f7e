"""Binary messages as streams: :class:`InStream` (received) and :class:`OutStream` (sent).

Streams know nothing of the connection: an ``InStream`` gets ``pause`` and
``resume`` callables that stop and restart reading from the socket, and an
``OutStream`` (in :mod:`wsevents.aio.outstream`, importable from here too) gets a
callable that sends one frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from ..emitter import EventEmitter
from ..errors import ConcurrencyError, MessageTooBig
from ..protocol._mask import Collector, new_collector
from ..protocol.events import append_piece
from .outstream import FrameSender, OutStream

__all__ = ["FrameSender", "InStream", "OutStream"]

logger = logging.getLogger("wsevents")

# Seconds an InStream that nothing has read yet may hold the connection paused
# before a warning says so: a "binary" listener that ignores its stream stalls the
# connection for good, while a coroutine listener that starts reading a little late
# does not deserve a warning. A stream read once is never warned about.
_STALL_WARNING_DELAY = 1.0


class InStream(EventEmitter):
    """A binary message being received, as a readable stream.

    Two ways to consume it, as in Node: listen for ``"data"`` (flowing mode:
    each piece is emitted as it arrives, unless :meth:`pause` d) and
    ``"end"``; or read it with ``await stream.read()``, ``await stream.read(n)``
    or ``async for chunk in stream``. Data that nobody consumes yet is held;
    once more than ``limit`` bytes are held, reading from the socket stops
    (backpressure) until the application consumes some.

    ``"end"`` is emitted once the whole message has arrived and every held
    piece has been consumed. If the connection closes before the message
    ends, readers raise :class:`~wsevents.errors.ConnectionClosed` and
    ``"error"`` is emitted if anyone listens for it.

    One coroutine reads at a time: a second ``read()`` (or ``async for``)
    while one waits raises :class:`~wsevents.errors.ConcurrencyError`. If a
    stream that nothing has read holds the connection paused for a second, a
    WARNING names the connection (``owner``).
    """

    _events = frozenset({"data", "end", "error"})

    def __init__(
        self,
        pause_reading: Callable[[], None],
        resume_reading: Callable[[], None],
        limit: int,
        fail: Callable[[MessageTooBig], None] | None = None,
        owner: object = None,
        collect: Callable[[Collector | None], bool] | None = None,
    ) -> None:
        super().__init__()
        self._pause_reading = pause_reading
        self._resume_reading = resume_reading
        self._fail = fail
        self._owner = owner
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._paused = False
        self._pressure = False
        self._ended = False
        self._end_emitted = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._flush_scheduled = False
        # Set while a chunk taken from the buffer is on its way to the application:
        # data fed meanwhile (releasing backpressure resumes the core at once) is
        # buffered behind it instead of being emitted first.
        self._holding = False
        self._in_read = False
        # While read() waits for the whole message, what it has taken so far (else None): a
        # piece then wakes it only at the end or once that plus what is held passes the limit,
        # not once per piece read from the socket.
        self._read_all_taken: int | None = None
        # Asks the connection to unmask the rest of the message straight into a whole-message
        # read's buffer (False: it cannot), or to stop (None); _collecting: that buffer meanwhile.
        self._collect = collect
        self._collecting: Collector | None = None
        self._consumed = 0
        self._stall_timer: asyncio.TimerHandle | None = None
        self._stall_warned = False
        #: Bytes of the message that have arrived so far, counting those the stream still holds:
        #: it runs ahead of what ``"data"``, ``read()`` and ``async for`` have delivered (by up to
        #: about ``limit``); to know that, add up the lengths of the chunks taken.
        self.bytes_received = 0

    # -- fed by the connection -------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self.bytes_received += len(data)
        if not self._chunks and not self._paused and not self._holding and self.listener_count("data"):
            self._deliver(data)
            if self._chunks:
                # A listener made the core feed more while it ran: that waits its turn.
                self._schedule_flush()
            else:
                self._maybe_end()
            return
        if data:
            append_piece(self._chunks, data)
            self._held += len(data)
            if self._held > self.limit and not self._pressure:
                self._pressure = True
                self._pause_reading()
                self._watch_stall()
        taken = self._read_all_taken
        if taken is None or self._pressure or self._held + taken > self.limit:
            self._wake()

    def _collected(self, data: bytes) -> None:
        """A piece for the whole-message read's buffer: the connection unmasked it straight in
        there (``data`` is then empty) or hands it on as ``data``."""
        sink = self._collecting
        assert sink is not None and self._read_all_taken is not None
        sink.add(data)
        size = sink.size
        grown = size - self._read_all_taken
        self.bytes_received += grown
        self._consumed += grown
        self._read_all_taken = size
        if size > self.limit:
            # As when held pieces pass the limit: nothing more is read before the read fails.
            if not self._pressure:
                self._pressure = True
                self._pause_reading()
            self._wake()

    def _end(self) -> None:
        self._collecting = None  # the connection collects nothing more for this message
        self._ended = True
        self._maybe_end()
        self._wake()

    def _abort(self, error: BaseException) -> None:
        if self._ended:
            return
        self._collecting = None
        self._ended = True
        self._error = error
        self._stop_stall_watch()
        self._release_pressure()
        if self.listener_count("error"):
            self._emit_safe("error", error)
        self._wake()

    # -- helpers -------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release_pressure(self) -> None:
        if self._pressure and self._held <= self.limit:
            self._pressure = False
            self._stop_stall_watch()
            self._resume_reading()

    def _deliver(self, data: bytes) -> None:
        """Emit ``data``; whatever is fed while its listeners run is buffered behind it."""
        self._holding = True
        try:
            self._emit_safe("data", data)
        finally:
            self._holding = False
        self._consumed += len(data)

    def _take_read(self, n: int = -1) -> bytes:
        """Take up to ``n`` bytes for a reader, then release backpressure behind them."""
        data = self._take(n)
        self._consumed += len(data)
        self._after_take()
        return data

    def _take_into(self, message: Collector) -> None:
        """Move every held piece into a whole-message read's buffer."""
        chunks = self._chunks
        for chunk in chunks:
            message.add(chunk)  # the first one is kept as it is: taken, not copied
        chunks.clear()
        self._consumed += self._held
        self._held = 0
        self._after_take()

    def _start_collecting(self, message: Collector) -> None:
        """Have the rest of the message unmasked straight into ``message`` (a waiting whole read's),
        unless ``"data"`` listeners take pieces meanwhile, as they do from a waiting read."""
        collect = self._collect
        if collect is not None and not self.listener_count("data") and collect(message):
            self._collecting = message

    def _stop_collecting(self) -> None:
        if self._collecting is not None:
            self._collecting = None
            assert self._collect is not None
            self._collect(None)
            self._after_take()  # a read that stops (cancelled) does not leave reading paused

    def _after_take(self) -> None:
        """Release backpressure behind what a reader took; held pieces go on to ``"data"``."""
        self._holding = True
        try:
            self._release_pressure()
        finally:
            self._holding = False
        if self._chunks and not self._paused and self.listener_count("data"):
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _watch_stall(self) -> None:
        if self._consumed or self._stall_warned or self._stall_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # fed outside a loop (tests driving the stream by hand)
            return
        self._stall_timer = loop.call_later(_STALL_WARNING_DELAY, self._check_stall)

    def _stop_stall_watch(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _check_stall(self) -> None:
        self._stall_timer = None
        if not self._pressure or self._consumed or self._error is not None:
            return
        if self._paused:
            # Paused on purpose: the application knows; look again later.
            self._watch_stall()
            return
        self._stall_warned = True
        logger.warning(
            "%s stalled: a binary message holds %d unread bytes (over max_buffer_length %d) and "
            "nothing has read its InStream, so reading from the socket stays paused; consume it "
            '("data" listener, await stream.read() or async for)',
            "an InStream" if self._owner is None else repr(self._owner),
            self._held,
            self.limit,
        )

    def _maybe_end(self) -> None:
        # Only once someone listens: an "end" listener added later (e.g. by a
        # coroutine "binary" listener) still gets it, via _listener_added.
        if (
            self._ended
            and not self._chunks
            and not self._holding
            and not self._end_emitted
            and self._error is None
            and self.listener_count("end")
        ):
            self._end_emitted = True
            self._emit_safe("end")

    def _take(self, n: int = -1) -> bytes:
        chunks = self._chunks
        if n < 0 or n >= self._held:
            data = b"".join(chunks)
            chunks.clear()
        else:
            parts = []
            need = n
            while need:
                head = chunks[0]
                if len(head) <= need:
                    parts.append(chunks.popleft())
                    need -= len(head)
                else:
                    parts.append(head[:need])
                    chunks[0] = head[need:]
                    need = 0
            data = b"".join(parts)
        self._held -= len(data)
        return data

    def _listener_added(self, event: str) -> None:
        if event == "data":
            # Pieces go to the listener from now on (what a waiting read took stays its own).
            self._stop_collecting()
            if self._chunks:
                self._schedule_flush()
        elif event == "end" and self._ended and not self._chunks:
            self._maybe_end()

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._chunks and not self._paused and self.listener_count("data"):
            self._deliver(self._take())
            # Only once that chunk is out: what the resumed core feeds comes after it.
            self._release_pressure()
        self._maybe_end()

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # -- public --------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """Whether the whole message has arrived."""
        return self._ended

    @property
    def paused(self) -> bool:
        """Whether :meth:`pause` is in effect."""
        return self._paused

    def pause(self) -> None:
        """Stop emitting ``"data"``; pieces are held (and bound the socket) until :meth:`resume`."""
        self._paused = True

    def resume(self) -> None:
        """Emit held pieces, then go on emitting as data arrives."""
        if not self._paused:
            return
        self._paused = False
        if self._chunks:
            self._schedule_flush()
        else:
            self._maybe_end()

    async def read(self, n: int = -1) -> bytes:
        """Read the rest of the message (``n < 0``), or up to ``n`` bytes as soon as any are here.

        ``read()`` returns ``b""`` only for an empty message; ``read(n)``
        returns ``b""`` at the end. Reading the whole message assembles it in
        memory: past the connection's ``max_buffer_length`` the connection is
        closed with 1009 and :class:`~wsevents.errors.MessageTooBig` is raised.

        Raises:
            ConnectionClosed: the connection closed before the message ended.
            ConcurrencyError: another coroutine is already reading this stream.
        """
        if self._in_read:
            raise ConcurrencyError(
                "another coroutine is already reading this InStream; read it from one place only"
            )
        if n == 0:
            return b""
        self._in_read = True
        try:
            return await self._read(n)
        finally:
            self._in_read = False

    async def _read(self, n: int) -> bytes:
        if n < 0:
            self._read_all_taken = 0
            try:
                return await self._read_all()
            finally:
                self._read_all_taken = None
        while not self._chunks:
            if self._ended:
                if self._error is not None:
                    raise self._error
                self._maybe_end()
                return b""
            await self._wait()
        data = self._take_read(n)
        self._maybe_end()
        return data

    async def _read_all(self) -> bytes:
        """The rest of the message in one buffer: the held pieces are taken into it, and while
        the read waits, the connection unmasks each piece that arrives straight into it."""
        message = new_collector()
        try:
            while True:
                if self._chunks:
                    self._take_into(message)
                    self._read_all_taken = message.size
                if message.size > self.limit:
                    error = MessageTooBig(f"binary message of over {self.limit} bytes")
                    if self._fail is not None:
                        self._fail(error)
                    raise error
                if self._chunks:
                    continue  # taking resumed reading, which fed more
                if self._ended:
                    if self._error is not None:
                        raise self._error
                    self._maybe_end()
                    return message.finish()
                if self._collecting is None:
                    self._start_collecting(message)
                await self._wait()
        finally:
            self._stop_collecting()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.read(1 << 30)
            if not chunk:
                return
            yield chunk
