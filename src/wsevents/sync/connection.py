"""One open WebSocket connection over a blocking socket, driven by threads.

A background thread reads the socket, feeds the sans-I/O core
(:class:`~wsevents.protocol.core.WebSocketCore`) and takes its events;
whole messages wait in a queue for :meth:`Connection.recv`. Every call into
the core holds one lock (the core is not thread-safe); the bytes it produces go into an outgoing
queue that is written to the socket under a second lock, in order, so that
a send blocked on a slow peer never keeps the reader from the core.
The reader thread and what the core's events do are in :mod:`wsevents.sync.reading`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from .._connection import _ClosingInfo
from ..errors import OK_CLOSE_CODES, ConcurrencyError, ConnectionClosed, InvalidState
from ..protocol.closecodes import CloseCode
from ..protocol.core import ReadyState, WebSocketCore
from ..protocol.deflate import PerMessageDeflate
from .reading import MAX_PENDING_FRAMES as MAX_PENDING_FRAMES
from .reading import _Reading
from .receiver import Receiver

__all__ = ["Connection", "ReadyState"]

logger = logging.getLogger("wsevents")

BytesLike = bytes | bytearray | memoryview


class Connection(_ClosingInfo, _Reading):
    """An open WebSocket connection, usable from any thread.

    Made by :func:`wsevents.sync.connect` (client side) or handed to the
    handler of :func:`wsevents.sync.serve` (server side). Sends may come
    from several threads at once (they are serialised); one thread at a time
    may read with :meth:`recv` or iteration.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        client: bool,
        options: Any,
        path: str,
        headers: Mapping[str, str],
        protocol: str | None = None,
        deflate: PerMessageDeflate | None = None,
    ) -> None:
        #: The request path (query included).
        self.path = path
        #: The headers of the other side's handshake message (request or response).
        self.headers = headers
        #: The agreed subprotocol, or None.
        self.protocol = protocol
        #: The permessage-deflate codec when compression was agreed, else None.
        self.deflate = deflate
        #: The round-trip time of the last keepalive ping, in seconds (None before one).
        self.latency: float | None = None
        self._sock = sock
        self._client = client
        self._options = options
        try:
            self.remote_address: Any = sock.getpeername()
        except OSError:  # pragma: no cover - the peer vanished during the handshake
            self.remote_address = None
        self._core_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._out: deque[bytes] = deque()
        self._core = WebSocketCore(client=client, max_message_size=options.buffer_limit(), extension=deflate)
        self._receiver = Receiver(self)
        self._cond = threading.Condition()
        self._messages: deque[str | bytes] = deque()
        self._queued_bytes = 0
        self._reader_busy = False
        self._state = ReadyState.OPEN
        self._close_code: int | None = None
        self._close_reason = ""
        self._input_ended = False
        self._pings: dict[bytes, threading.Event] = {}
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ka_answered: threading.Event | None = None
        self._draining = False

    def _start(self, leftover: bytes) -> None:
        """Start the reader (and the keepalive) thread; ``leftover`` followed the handshake."""
        name = f"{id(self):x}"
        reader = threading.Thread(target=self._read_loop, args=(leftover,), name=f"wsevents-read-{name}")
        reader.daemon = True
        self._threads.append(reader)
        reader.start()
        if self._options.ping_interval is not None:
            keepalive = threading.Thread(target=self._keepalive, name=f"wsevents-ping-{name}")
            keepalive.daemon = True
            self._threads.append(keepalive)
            keepalive.start()

    # -- state ---------------------------------------------------------------

    @property
    def state(self) -> ReadyState:
        """OPEN, CLOSING (a close frame went one way) or CLOSED (TCP closed)."""
        return self._state

    _repr_name = "wsevents.sync.Connection"

    def _state_name(self) -> str:
        return self._state.name

    # -- sending -------------------------------------------------------------

    def send_text(self, text: str) -> None:
        """Send ``text`` as one text message; returns once it is handed to the socket.

        Raises:
            InvalidState: the connection is not open (a close frame was sent or received).
            ConnectionClosed: the socket broke while sending (code 1006).
        """
        if not isinstance(text, str):
            raise TypeError(f"send_text takes a str, not {type(text).__name__}")
        self._call_core(self._core.send_text, text)

    def send_binary(self, data: BytesLike) -> None:
        """Send ``data`` as one binary message (see :meth:`send_text` for errors)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_binary takes a bytes-like object, not {type(data).__name__}")
        self._call_core(self._core.send_binary, bytes(data))

    def send(self, message: str | BytesLike) -> None:
        """Send a ``str`` as a text message, bytes as a binary one."""
        if isinstance(message, str):
            self.send_text(message)
        else:
            self.send_binary(message)

    def ping(self, data: str | BytesLike | None = None) -> threading.Event:
        """Send a ping; return an event set when its pong arrives.

        Without ``data`` a random 4-byte payload is used. A pong also answers
        every earlier ping still waiting. The event stays unset if the
        connection closes first: ``event.wait(timeout)`` returns False.
        It never blocks: while a send is stuck on a peer that does not read,
        the ping waits to go out after it (and its pong does not come).
        """
        if data is None:
            payload = os.urandom(4)
        else:
            payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        event = threading.Event()
        with self._cond:
            if payload in self._pings:
                raise InvalidState("a ping with this payload is already waiting for its pong")
            self._pings[payload] = event
        try:
            # Not waiting for the socket: the keepalive must be able to tell a stuck peer.
            self._call_core(self._core.send_ping, payload, wait=False)
        except BaseException:
            with self._cond:
                self._pings.pop(payload, None)
            raise
        return event

    def _call_core(self, send: Any, *args: Any, wait: bool = True) -> None:
        with self._core_lock:
            if self._state is not ReadyState.OPEN:
                raise InvalidState(f"cannot send: the connection is {self._state.name}")
            send(*args)
            self._core.write_to(self._out.append)
        try:
            self._flush(wait)
        except OSError as exc:
            # The reader sees the end too and records how the connection ended.
            self._abort()
            raise ConnectionClosed(CloseCode.ABNORMAL, f"the connection broke while sending: {exc}") from exc

    def _flush(self, wait: bool = True) -> None:
        """Write what the core produced, in order, whoever produced it.

        Without ``wait`` (the reader thread) nothing blocks: if a sender is
        writing, it also writes what was queued meanwhile (it checks again
        after letting go of the lock), so the reader goes on reading.
        """
        out = self._out
        while out:
            if not self._send_lock.acquire(blocking=wait):
                return
            try:
                while out:
                    self._sock.sendall(out.popleft())
            finally:
                self._send_lock.release()

    # -- receiving -----------------------------------------------------------

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next whole message: ``str`` for text, ``bytes`` for binary.

        Messages received before the close are all delivered first.

        Raises:
            TimeoutError: none arrived within ``timeout`` seconds.
            ConnectionClosed: the connection is closed (with its code and reason).
            ConcurrencyError: another thread is already in ``recv()`` (or iterating).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._reader_busy:
                raise ConcurrencyError(
                    "another thread is already waiting in recv() on this connection; "
                    "only one may read at a time"
                )
            self._reader_busy = True
            try:
                return self._next_message(deadline)
            finally:
                self._reader_busy = False

    def _next_message(self, deadline: float | None) -> str | bytes:
        while not self._messages:
            if self._input_ended:
                raise ConnectionClosed(self._close_code or CloseCode.ABNORMAL, self._close_reason)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("no message arrived in time")
            self._cond.wait(remaining)
        message = self._messages.popleft()
        self._queued_bytes -= len(message)
        # The reader may wait for room in the queue.
        self._cond.notify_all()
        return message

    def __iter__(self) -> Iterator[str | bytes]:
        """Yield messages until the connection closes; a normal close (1000, 1001) ends it quietly."""
        while True:
            try:
                message = self.recv()
            except ConnectionClosed as exc:
                if exc.code in OK_CLOSE_CODES:
                    return
                raise
            yield message

    # -- closing -------------------------------------------------------------

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the connection: send a close frame, wait for the peer's (``close_timeout``), close TCP.

        Returns when the socket is closed. Calling it again, or after the
        peer closed, does nothing more.
        """
        self._send_close(code, reason)
        self._wait_closed(self._options.close_timeout)

    def _send_close(self, code: int | None, reason: str) -> None:
        with self._core_lock:
            if not self._core.close_sent and self._state is not ReadyState.CLOSED:
                self._core.send_close(code, reason)
                self._core.write_to(self._out.append)
                with self._cond:
                    if self._state is ReadyState.OPEN:
                        self._state = ReadyState.CLOSING
                    # A reader held back by a full queue must go on to see the peer's close.
                    self._cond.notify_all()
        self._flush_bounded()

    def _flush_bounded(self) -> None:
        """Write the close frame, but give up after ``close_timeout``.

        A peer that does not read leaves a sender blocked in ``sendall`` with
        the send lock held (or the close frame itself finds the socket's buffer
        full): closing would otherwise wait forever. Dropping TCP wakes the
        blocked write with an error.
        """
        timeout = self._options.close_timeout
        watchdog: threading.Timer | None = None
        if timeout is not None:
            watchdog = threading.Timer(timeout, self._abort)
            watchdog.daemon = True
            watchdog.start()
        try:
            self._flush()
        except OSError:
            self._abort()
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _wait_closed(self, timeout: float | None) -> None:
        if not self._closed.wait(timeout):
            logger.debug("%r: closing handshake timed out", self)
            self._abort()
        self._closed.wait()
        self._stop_threads()

    def _abort(self) -> None:
        """Drop TCP at once; the reader thread wakes up and finishes."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # Already closed or never connected: nothing to wake.
        with self._cond:
            if self._state is ReadyState.OPEN:
                self._state = ReadyState.CLOSING
            # A reader waiting for room in the queue must go and see the end of the socket.
            self._cond.notify_all()

    def _abandon(self, code: int, reason: str) -> None:
        """End from this side without waiting for the peer (it is dead or silent)."""
        with self._cond:
            if self._close_code is None:
                self._close_code, self._close_reason = code, reason
        self._send_close(code, reason)
        self._abort()

    def _stop_threads(self) -> None:
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join()

    def _keepalive(self) -> None:
        interval = self._options.ping_interval
        timeout = self._options.ping_timeout
        while not self._closed.wait(interval):
            sent = time.perf_counter()
            try:
                answered = self.ping()
            except (InvalidState, ConnectionClosed):
                return
            self._ka_answered = answered
            if self._closed.is_set():
                return
            if timeout is not None and not answered.wait(timeout):
                if self._state is ReadyState.OPEN:
                    logger.info("keepalive ping timeout: %r", self)
                    self._abandon(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                return
            if self._closed.is_set():
                return
            if answered.is_set():
                self.latency = time.perf_counter() - sent

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(CloseCode.NORMAL if exc_type is None else CloseCode.INTERNAL_ERROR)


# -- what the server and the client ask of a connection -------------------------------------
# The whole interface, named: sync/server.py and sync/client.py call no private name of a
# Connection. Internal API: not exported, not for applications.


def start(conn: Connection, leftover: bytes) -> None:
    """The opening handshake succeeded: start ``conn``'s threads; ``leftover`` (what followed
    the head) is read first."""
    conn._start(leftover)


def shut_down(conn: Connection, timeout: float | None) -> None:
    """``Server.shutdown()``: close ``conn`` with 1001, waiting up to ``timeout`` for the
    closing handshake before dropping TCP."""
    conn._send_close(CloseCode.GOING_AWAY, "server shutting down")
    conn._wait_closed(timeout)
