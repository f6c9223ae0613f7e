"""What a connection asks of the server that accepted it: the whole interface, named.

A server-side :class:`~wsevents.aio.connection.Connection` reports its life (socket made,
opened, closed) and a few counts to its :class:`ConnectionHost`, and reaches its server's
rooms through it; it calls nothing else on the server. ``Server`` gives each connection
its host (``server.py``); a client connection has :data:`NO_HOST`, so what differs
between the two sides here is decided once, at construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import InvalidState

if TYPE_CHECKING:
    from ..protocol.core import WebSocketCore
    from .conn_base import _ConnectionBase as Connection

__all__ = ["NO_HOST", "ConnectionHost"]


class ConnectionHost(Protocol):
    """The calls a connection makes to its server."""

    def connection_made(self, conn: Connection) -> None:
        """The socket is connected; the opening handshake starts."""

    def connection_opened(self, conn: Connection, handshake_seconds: float) -> None:
        """The handshake succeeded, ``handshake_seconds`` after the socket connected (before the
        connection's ``"connect"``)."""

    def connection_closed(self, conn: Connection, core: WebSocketCore | None) -> None:
        """The connection ended (before its ``"close"`` is emitted); ``core``: its protocol core,
        with its counts, or ``None`` when it never opened."""

    def close_emitted(self, conn: Connection) -> None:
        """The connection's ``"close"`` was emitted (the server's own may follow)."""

    def count(self, what: str) -> None:
        """One more ``what`` in the server's stats (``"keepalive_timeouts"``, ``"write_overflows"``)."""

    def keepalive_rtt(self, seconds: float) -> None:
        """A keepalive ping's round trip, for the metrics."""

    def join_room(self, conn: Connection, room: str) -> None:
        """Put ``conn`` in ``room`` (nothing once ``conn`` has ended)."""

    def leave_room(self, conn: Connection, room: str) -> None:
        """Take ``conn`` out of ``room``."""

    def rooms_of(self, conn: Connection) -> frozenset[str]:
        """The rooms ``conn`` is in."""


class _NoHost:
    """The host of a client connection: nothing to tell, and no rooms."""

    __slots__ = ()

    def connection_made(self, conn: Connection) -> None:
        pass

    def connection_opened(self, conn: Connection, handshake_seconds: float) -> None:
        pass

    def connection_closed(self, conn: Connection, core: WebSocketCore | None) -> None:
        pass

    def close_emitted(self, conn: Connection) -> None:
        pass

    def count(self, what: str) -> None:
        pass

    def keepalive_rtt(self, seconds: float) -> None:
        pass

    def join_room(self, conn: Connection, room: str) -> None:
        raise InvalidState("rooms belong to a server: a client connection cannot join or leave one")

    def leave_room(self, conn: Connection, room: str) -> None:
        self.join_room(conn, room)

    def rooms_of(self, conn: Connection) -> frozenset[str]:
        return frozenset()


#: The host of every client connection.
NO_HOST: ConnectionHost = _NoHost()
