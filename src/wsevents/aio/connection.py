"""One WebSocket connection: the public class, put together from one mixin per job.

A :class:`Connection` is the ``asyncio.Protocol`` of its socket (``transport.py``).
During the opening handshake it collects the HTTP head (bounded by ``max_header_size``)
and hands it to the server or client code that created it; once open, the transport's
``data_received`` goes straight to the sans-I/O core, whose events the receive
dispatcher (``receiving.py``) turns into the Node-style events (``"text"``, ``"binary"``,
``"message"``, ``"pong"``, ``"close"``, ``"error"``) or, when nobody listens for any
message event, entries in the queue that :meth:`Connection.recv` reads. Sending and flow
control are in ``sending.py``, the keepalive in ``keepalive.py``, how a connection ends
in ``closing.py``; the attributes they share are declared in ``conn_base.py``.

Mixins rather than helper objects: they share one object, so the message path
(``data_received`` to the listener, ``send_text`` to the transport) makes the same calls
and allocations as before the split, and every public name stays on ``Connection``.
A server-side connection talks to its server only through a
:class:`~wsevents.aio.host.ConnectionHost`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..emitter import EventEmitter
from ..errors import HandshakeTimeout, InvalidState
from ..protocol.closecodes import CloseCode
from ..protocol.core import ReadyState, WebSocketCore
from ..protocol.handshake import Headers
from ..protocol.opening import ServerHandshake
from . import runner
from .closing import _CloseSide
from .host import NO_HOST, ConnectionHost
from .keepalive import _Keepalive
from .options import ClientOptions, ServerOptions
from .receiving import _Receiver, _ReceiveSide
from .sending import _SendSide
from .transport import _TransportAdapter

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Connection", "ReadyState"]

logger = logging.getLogger("wsevents")

# Headers are read-only: every connection starts with this one until its handshake sets its own.
_NO_HEADERS = Headers()


class Connection(_TransportAdapter, _ReceiveSide, _SendSide, _Keepalive, _CloseSide):
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
    the same moment. What listeners send while one read from the socket is
    dispatched (the echoes of a pipelining peer, with the pongs and the close
    answer the connection writes itself) goes out in order as one write: what
    is sent while more of that read remains to be dispatched is held until its
    listeners have run, and those sends complete then (a read of one message
    is answered at once). A misuse
    (sending while not open, text during a binary stream) is reported to
    ``callback`` if given, else as ``"error"`` if anyone listens, else
    raised at the call.
    """

    # Its state is in slots (conn_base.py); attributes an application sets go to a __dict__
    # made on first use, and a connection can still be weakly referenced.
    __slots__ = ("__dict__", "__weakref__")

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
        host: ConnectionHost = NO_HOST,
    ) -> None:
        EventEmitter.__init__(self)
        self._client = client
        self._loop = loop
        self._options = options
        # The opening handshake (a client sets its own at each connect) and who acts on
        # its outcome once the head is in: the server, or the client connection itself.
        self._handshake = handshake
        self._on_handshake = on_handshake
        # All this connection tells its server, or nothing (a client connection).
        self._host = host
        #: The :class:`Server` that accepted this connection, else ``None``.
        self.server = server
        # Read as ready_state; it changes only through _set_ready_state (along _READY_STATE_MOVES).
        self._ready_state = ReadyState.CONNECTING
        #: The request target (server side) or the path asked for (client side).
        self.path = ""
        #: Request headers (server side) or response headers (client side).
        self.headers: Mapping[str, str] = _NO_HEADERS
        #: The subprotocols the client asked for, most preferred first.
        self.protocols: list[str] = []
        #: The agreed subprotocol, or ``None``.
        self.protocol: str | None = None
        #: The binary stream being sent, or ``None``.
        self.out_stream = None
        self.max_buffer_length = options.buffer_limit()
        # None: the option, else the module default at begin_binary() time (as in Node).
        self._binary_fragmentation: int | None = None
        self._transport = None
        self._core = None
        #: The permessage-deflate codec agreed in the handshake, or None.
        self.deflate = None
        self._debug = False
        #: Round-trip time of the last keepalive ping, in seconds (0.0 until measured).
        self.latency = 0.0
        # When the socket connected (server side): the handshake time histogram starts here.
        self._made_at = 0.0
        self._init_receiving()
        self._init_sending()
        self._init_closing()
        self._init_keepalive()
        if server is None:
            # A server-side connection holds the loop from connection_made on: after a
            # failed TLS handshake asyncio calls neither connection_made nor connection_lost.
            runner.hold(loop, self)

    # -- properties ------------------------------------------------------------

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
        return self._ready_state.name

    # -- rooms -------------------------------------------------------------------

    def join(self, room: str) -> None:
        """Join ``room``: :meth:`Server.publish` to it reaches this connection (idempotent).

        A connection that has ended is in no room: joining then does nothing.

        Raises:
            TypeError: ``room`` is not a str.
            InvalidState: a client connection (rooms belong to a server).
        """
        self._host.join_room(self, _room(room))

    def leave(self, room: str) -> None:
        """Leave ``room`` (nothing happens if this connection is not in it).

        Raises:
            TypeError: ``room`` is not a str.
            InvalidState: a client connection.
        """
        self._host.leave_room(self, _room(room))

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this connection is in (a snapshot; empty once it has ended)."""
        return self._host.rooms_of(self)

    # -- handshake plumbing (used by server.py and client.py) ---------------------

    def _open(self, leftover: bytes) -> None:
        """The handshake succeeded: start the core and feed what followed the head."""
        self._cancel_timer()
        assert self._transport is not None
        # Its head buffer and request are not needed any more.
        self._handshake = None
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
        self._host.connection_opened(self, time.perf_counter() - self._made_at)
        if self._listeners.get("connect"):
            self._emit_safe("connect")
        if leftover and self._ready_state is ReadyState.OPEN:
            core.receive_data(leftover)
            receiver.pump()

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self._ready_state is ReadyState.CONNECTING:
            logger.debug("handshake timed out: %r", self)
            self._failed = HandshakeTimeout("opening handshake timed out")
            self._abort()

    def _connect_failed(self, error: BaseException) -> None:
        """Hook for the client: the handshake never completed."""

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
        if self._ready_state is not ReadyState.CLOSED:
            await self.close(CloseCode.NORMAL.value if exc is None else CloseCode.INTERNAL_ERROR.value)
        else:
            await self.wait_closed()


def _room(room: object) -> str:
    if not isinstance(room, str):
        raise TypeError(f"a room is a str, not {type(room).__name__}")
    return room
