"""What a server asks of its connections: the whole interface, named.

The mirror of ``host.py``'s :class:`~wsevents.aio.host.ConnectionHost`: ``server.py``,
``server_handshake.py`` and ``rooms.py`` reach a server-side connection's internals only
through these calls. Internal API: not exported by ``wsevents``, not for applications.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..protocol.core import WebSocketCore
from .connection import Connection

__all__ = [
    "abort",
    "check_open",
    "core_of",
    "handshake_done",
    "handshake_timed_out",
    "listener_failed",
    "loop_of",
    "send_prebuilt",
    "shut_down",
]

# The rooms' fan-out makes these calls once per member and message: they are the connection's
# own methods, not wrappers, so the hot path costs what it did (``send_prebuilt(conn, ...)``).
#: Queue an already built frame (``opcode``, ``size`` bytes of payload); False if skipped.
send_prebuilt = Connection._send_prebuilt
#: ``None`` if a send may proceed, else why not (a peer that does not read is closed with 1008).
check_open = Connection._check_open


def handshake_done(conn: Connection, leftover: bytes) -> None:
    """The server accepted the handshake: open ``conn`` and feed it what followed the head."""
    conn._open(leftover)


def handshake_timed_out(conn: Connection) -> None:
    """``handshake_timeout`` passed since ``conn`` connected: drop it unless it opened meanwhile."""
    conn._guarded(conn._handshake_timed_out)


def shut_down(conn: Connection) -> None:
    """``server.close(graceful=True)``: close ``conn`` with 1001."""
    conn._shutdown()


def abort(conn: Connection) -> None:
    """Drop ``conn``'s socket now (a graceful close that timed out)."""
    conn._abort()


def listener_failed(conn: Connection, event: str, args: tuple[Any, ...], exc: BaseException) -> None:
    """An async listener of the server's ``event`` about ``conn`` raised: ``conn`` handles it."""
    conn._listener_failed(event, args, exc)


def loop_of(conn: Connection) -> asyncio.AbstractEventLoop:
    """The loop ``conn`` runs on."""
    return conn._loop


def core_of(conn: Connection) -> WebSocketCore | None:
    """``conn``'s protocol core, with its counts; ``None`` until it opens."""
    return conn._core
