"""What one asyncio :class:`~wsevents.aio.connection.Connection` holds, in one place.

``Connection`` is put together from mixins, one per job (``transport.py``: the asyncio
protocol; ``receiving.py``: events to listeners, the ``recv()`` queue and streams;
``sending.py``: sends and flow control; ``keepalive.py``; ``closing.py``: how it ends).
They share one object, so every attribute is declared here once, with the methods one
mixin calls on another; each mixin sets its own attributes in its ``_init_*``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._connection import _ClosingInfo, _SendByKind
from .._types import SendCallback
from ..emitter import EventEmitter
from ..errors import ConnectionClosed, ProtocolError, WebSocketError
from ..protocol.core import ReadyState, WebSocketCore
from ..protocol.deflate import PerMessageDeflate
from ..protocol.opening import ClientHandshake, ServerHandshake
from .host import ConnectionHost
from .options import ClientOptions, ServerOptions
from .streams import InStream, OutStream

if TYPE_CHECKING:
    from ..protocol._mask import Collector
    from .receiving import _Receiver
    from .sending import _DrainWaiter
    from .server import Server

__all__ = ["_ConnectionBase"]

# How the ready state may move (a connection that ended never reopens).
_READY_STATE_MOVES: dict[ReadyState, tuple[ReadyState, ...]] = {
    ReadyState.CONNECTING: (ReadyState.OPEN, ReadyState.CLOSED),
    ReadyState.OPEN: (ReadyState.CLOSING, ReadyState.CLOSED),
    ReadyState.CLOSING: (ReadyState.CLOSED,),
    ReadyState.CLOSED: (),
}


class _ConnectionBase(EventEmitter, _ClosingInfo, _SendByKind, asyncio.Protocol):
    """The state of a connection and the ready-state rule; no behaviour of its own."""

    # Every attribute below is a slot (the mixins declare empty __slots__): an idle connection
    # holds 8 bytes per attribute, not an instance dict of 1.5 KiB. Connection adds __dict__ and
    # __weakref__, so that applications may still set attributes of their own on a connection.
    __slots__ = (
        "_client", "_loop", "_options", "_handshake", "_on_handshake", "_host", "server",
        "_ready_state", "path", "headers", "protocols", "protocol", "out_stream",
        "max_buffer_length", "_binary_fragmentation", "deflate", "latency", "_transport", "_core",
        "_debug", "_made_at",
        "_receiver", "_in_stream", "_parts", "_queue", "_queued_bytes", "_recv_waiter",
        "_pause_reasons", "_dropped_kinds", "_recv_called", "_queue_stall_timer",
        "_write_paused", "_drain_waiter", "_drain_callbacks", "_in_read", "_corked", "_corked_size",
        "_close_code", "_close_reason", "_failed", "_closed", "_close_emitted", "_timer",
        "_ka_timer", "_ka_payload", "_ka_sent",
    )

    # Set up by Connection.__init__.
    _client: bool
    _loop: asyncio.AbstractEventLoop
    _options: ServerOptions | ClientOptions
    _handshake: ServerHandshake | ClientHandshake | None
    _on_handshake: Callable[[Any, Any], None] | None
    _host: ConnectionHost
    server: Server | None
    _ready_state: ReadyState
    path: str
    headers: Mapping[str, str]
    protocols: list[str]
    protocol: str | None
    out_stream: OutStream | None
    max_buffer_length: int
    _binary_fragmentation: int | None
    deflate: PerMessageDeflate | None
    latency: float
    _transport: asyncio.Transport | None
    _core: WebSocketCore | None
    _debug: bool
    _made_at: float
    # Receiving (receiving.py).
    _receiver: _Receiver | None
    _in_stream: InStream | None
    _parts: list[bytes] | Collector | None
    _queue: deque[object] | None
    _queued_bytes: int
    _recv_waiter: asyncio.Future[None] | None
    _pause_reasons: set[object]
    _dropped_kinds: frozenset[str]
    _recv_called: bool
    _queue_stall_timer: asyncio.TimerHandle | None
    # Sending (sending.py): while paused, one shared waiter and the callbacks in send order.
    _write_paused: bool
    _drain_waiter: _DrainWaiter | None
    _drain_callbacks: list[SendCallback]
    # Whether a read is being dispatched (receiving.data_received), and the writes it holds back
    # (transport._write): None until a write finds more of the read still to come.
    _in_read: bool
    _corked: list[bytes] | None
    _corked_size: int
    # Closing (closing.py); _timer is the handshake's, then the close's deadline.
    _close_code: int | None
    _close_reason: str
    _failed: WebSocketError | None
    _closed: asyncio.Future[None] | None
    _close_emitted: bool
    _timer: asyncio.TimerHandle | None
    # Keepalive (keepalive.py): one timer, either "next ping" or "pong deadline".
    _ka_timer: asyncio.TimerHandle | None
    _ka_payload: bytes | None
    _ka_sent: float

    @property
    def ready_state(self) -> ReadyState:
        """The ready state: CONNECTING, OPEN, CLOSING or CLOSED (read-only; it only moves forward)."""
        return self._ready_state

    def _set_ready_state(self, state: ReadyState) -> None:
        """The one place the ready state changes: only along ``_READY_STATE_MOVES``, else nothing."""
        if state in _READY_STATE_MOVES[self._ready_state]:
            self._ready_state = state

    if TYPE_CHECKING:
        # What one mixin calls on another (the mixins define them; Connection has them all).
        def _write(self, data: bytes) -> None: ...
        def _flush(self) -> None: ...
        def _write_out(self, corked: list[bytes]) -> None: ...
        def _head_received(self, data: bytes) -> None: ...
        def _later(self, delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle: ...
        def _internal_error(self, where: str, exc: Exception) -> None: ...
        def _connect_failed(self, error: BaseException) -> None: ...
        def _wake_recv(self) -> None: ...
        def _message(self, message: str | bytes, event: str, size: int, streamed: bool = False) -> None: ...
        def _message_listener(self) -> str | None: ...
        def _drop(self, kind: str, listened: str) -> None: ...
        def _pause_reading(self, reason: object) -> None: ...
        def _resume_reading(self, reason: object) -> None: ...
        def _release_senders(self, error: ConnectionClosed | None) -> None: ...
        def _write_overflow(self) -> None: ...
        def _pong(self, payload: bytes) -> None: ...
        def _peer_closed(self, code: int, reason: str) -> None: ...
        def _fail(self, error: ProtocolError) -> None: ...
        def _abandon(self, code: int, reason: str) -> None: ...
        def _cancel_timer(self) -> None: ...
        def _abort(self) -> None: ...
        def _finish(self) -> None: ...
        def _start_close_timer(self) -> None: ...
        def _lost(self, exc: Exception | None) -> None: ...
        def _handshake_timed_out(self) -> None: ...
        def _shutdown(self) -> None: ...
        def close(self, code: int | None = None, reason: str | None = None) -> Awaitable[None]: ...
        @property
        def binary_fragmentation(self) -> int: ...
