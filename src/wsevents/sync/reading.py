"""The receive side of a threaded :class:`~wsevents.sync.connection.Connection`.

The reader thread reads the socket, feeds the core under the core lock, has the
:class:`~wsevents.sync.receiver.Receiver` act on its events (whole messages go to
the ``recv()`` queue, pongs answer pings, a close ends the input), holds back while
that queue is full, and closes the socket when the input is over.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from ..protocol.closecodes import CloseCode
from ..protocol.core import ReadyState, WebSocketCore
from .handshake import READ_SIZE
from .receiver import Receiver

__all__ = ["MAX_PENDING_FRAMES"]

logger = logging.getLogger("wsevents")

# Frames (pongs, mostly) the reader may leave queued behind a send that holds the socket.
MAX_PENDING_FRAMES = 1024


class _Reading:
    """The reader thread and what the core's events do to the connection.

    A mixin of ``Connection``, which sets every attribute declared here.
    """

    _sock: socket.socket
    _client: bool
    _options: Any
    _core: WebSocketCore
    _core_lock: threading.Lock
    _send_lock: threading.Lock
    _out: deque[bytes]
    _receiver: Receiver
    _cond: threading.Condition
    _messages: deque[str | bytes]
    _queued_bytes: int
    _state: ReadyState
    _close_code: int | None
    _close_reason: str
    _input_ended: bool
    _pings: dict[bytes, threading.Event]
    _closed: threading.Event
    _ka_answered: threading.Event | None
    _draining: bool

    if TYPE_CHECKING:
        # Connection's writer, shared with the senders.
        def _flush(self, wait: bool = True) -> None: ...

    # -- the reader thread -----------------------------------------------------

    def _read_loop(self, leftover: bytes) -> None:
        try:
            data = leftover
            while True:
                if data:
                    self._feed(data)
                    self._wait_for_room()
                if self._after_input():
                    break
                try:
                    data = self._sock.recv(READ_SIZE)
                except OSError:
                    data = b""
                if not data:
                    break
        except Exception:  # pragma: no cover - a bug in the core, not the peer
            logger.exception("%r: the reader failed", self)
        finally:
            self._last_flush()
            self._lost()

    def _last_flush(self) -> None:
        """Before TCP closes: let a sender finish its write, and write what is queued (an echoed close).

        A sender may hold the send lock with the last frames popped but not yet
        written; closing under it would lose them. Bounded by ``close_timeout``.
        """
        timeout = self._options.close_timeout
        if not self._send_lock.acquire(timeout=-1 if timeout is None else timeout):
            return
        try:
            self._sock.settimeout(timeout)
            while self._out:
                self._sock.sendall(self._out.popleft())
        except OSError:
            pass  # The peer is gone: nothing more can reach it.
        finally:
            self._send_lock.release()

    def _feed(self, data: bytes) -> None:
        with self._core_lock:
            core = self._core
            core.receive_data(data)
            events = core.events_received()
            # Pongs and the answering close frame, queued in order with the senders' frames.
            core.write_to(self._out.append)
            dispatch = self._receiver.dispatch
            for event in events:
                dispatch(event)
        try:
            # While a send is stuck, the pongs owed to a peer that pings without reading pile up:
            # past a bound the reader waits for the socket too, so it stops reading the flood.
            self._flush(wait=len(self._out) > MAX_PENDING_FRAMES)
        except OSError:
            pass  # The reader will see the end of the socket next.

    def _wait_for_room(self) -> None:
        """Backpressure: stop reading while ``max_queue`` messages, or more than
        ``max_buffer_length`` bytes (characters for text), wait for ``recv()``."""
        count, size = self._options.max_queue, self._options.buffer_limit()
        with self._cond:
            # Once closing, reading goes on: the peer's close frame must be seen.
            while (
                len(self._messages) >= count or self._queued_bytes > size
            ) and self._state is ReadyState.OPEN:
                self._cond.wait()

    def _after_input(self) -> bool:
        """Whether reading must stop now that the core has stopped parsing.

        After the close frames crossed, the server closes TCP at once and the
        client waits (bounded) for that (RFC 6455 section 7.1.1). After a
        failure, the close frame is written and the sending side shut down,
        and what the peer still sends is read and dropped until it closes
        (bounded): closing with unread input would reset the connection, and
        the peer could lose the close frame that says why.
        """
        if self._core.reading:
            return False
        if self._core.close_received and not self._client:
            return True
        try:
            if not self._core.close_received and not self._draining:
                if isinstance(self._sock, ssl.SSLSocket):
                    return True  # A TLS socket cannot half-close: close it.
                self._draining = True
                self._last_flush()
                self._sock.shutdown(socket.SHUT_WR)
            self._sock.settimeout(self._options.close_timeout)
        except OSError:
            return True
        return False

    def _lost(self) -> None:
        """The socket is done with: close it, wake every waiter, record 1006 if nothing else."""
        with self._cond:
            if self._state is ReadyState.CLOSED:
                return
            self._state = ReadyState.CLOSED
            self._input_ended = True
            if self._close_code is None:
                self._close_code, self._close_reason = CloseCode.ABNORMAL, ""
            self._cond.notify_all()
        if self._ka_answered is not None:
            # Wake the keepalive thread so that it sees the end now, not after ping_timeout.
            self._ka_answered.set()
        try:
            self._sock.close()
        finally:
            self._closed.set()

    # -- what the core tells --------------------------------------------------

    def _message(self, message: str | bytes) -> None:
        with self._cond:
            self._messages.append(message)
            self._queued_bytes += len(message)
            self._cond.notify_all()

    def _pong(self, payload: bytes) -> None:
        with self._cond:
            if payload not in self._pings:
                return
            # Pings are answered in order: this pong answers the earlier ones too.
            for key in list(self._pings):
                self._pings.pop(key).set()
                if key == payload:
                    break

    def _ended(self, code: int, reason: str) -> None:
        """A close frame arrived, or the core failed the connection: no more messages."""
        with self._cond:
            if self._close_code is None:
                self._close_code, self._close_reason = code, reason
            self._input_ended = True
            if self._state is ReadyState.OPEN:
                self._state = ReadyState.CLOSING
            self._cond.notify_all()
