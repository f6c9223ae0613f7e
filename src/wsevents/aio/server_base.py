"""What one asyncio :class:`~wsevents.aio.server.Server` holds, in one place.

``Server`` is put together from mixins (``listening.py``: binding and listening;
``server_handshake.py``: the server side of the opening handshake, its hooks and
refusals) and its own module (closing, the connection sets, broadcast and rooms).
They share one object, so its attributes are declared here once.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from ..emitter import EventEmitter
from ..metrics import ServerMetrics
from . import rooms
from .broker import Broker
from .host import ConnectionHost
from .options import ServerOptions
from .unix import UnixFile

if TYPE_CHECKING:
    from .connection import Connection
    from .listening import _Bind

__all__ = ["_ServerBase", "_resolve"]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _ServerBase(EventEmitter):
    """The state of a server; no behaviour of its own."""

    options: ServerOptions
    _loop: asyncio.AbstractEventLoop
    _ssl: ssl.SSLContext | None
    _server: asyncio.Server | None
    # The listen() or close() that await waits for.
    _op: asyncio.Future[None] | None
    _bind: _Bind | None
    _held: bool
    _open: dict[Connection, None]
    _admitting: set[Connection]
    _live: set[Connection]
    _lingering: asyncio.TimerHandle | None
    _listening: bool
    _closing: bool
    _close_emitted: bool
    port: int | None
    address: str | None
    _unix_file: UnixFile | None
    stats: dict[str, int]
    metrics: ServerMetrics
    broker: Broker | None
    _rooms: rooms.Rooms
    _broker_stop: asyncio.Task[None] | None
    _host: ConnectionHost

    if TYPE_CHECKING:
        # What one mixin calls on another (Server has them all).
        def _make_connection(self) -> Connection: ...
        def _maybe_emit_close(self) -> None: ...
        def _shutdown(self) -> None: ...
