"""What the core tells a threaded connection, as it parses (in the reader thread)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ProtocolError

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Receiver"]

logger = logging.getLogger("wsevents")


class Receiver:
    """The core's handler: runs in the reader thread, with the core lock held."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._parts: list[bytes] = []

    def on_text(self, text: str) -> None:
        """A whole text message: queue it for recv()."""
        self._conn._message(text)

    def on_binary_start(self) -> bool:
        """A binary message begins; it is bounded by ``max_buffer_length``."""
        return True

    def on_binary_data(self, data: bytes, fin: bool) -> None:
        """Gather the pieces; queue the whole message at its end."""
        self._parts.append(data)
        if fin:
            message = b"".join(self._parts)
            self._parts.clear()
            self._conn._message(message)

    def on_ping(self, payload: bytes) -> None:
        """The core has answered it; nothing else to do."""

    def on_pong(self, payload: bytes) -> None:
        """Set the events of the pings this pong answers."""
        self._conn._pong(payload)

    def on_close_frame(self, code: int, reason: str) -> None:
        """The peer closed (the core has echoed its close frame): no more messages."""
        self._conn._ended(code, reason)

    def on_fail(self, error: ProtocolError) -> None:
        """The core failed the connection (its close frame is queued): no more messages."""
        logger.debug("failing %r: %s (%d)", self._conn, error, error.code)
        self._parts.clear()
        self._conn._ended(error.code, str(error))
