"""What the core's events mean to a threaded connection (in the reader thread)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..protocol.events import BINARY, CLOSE, FAIL, PONG, TEXT, Event, append_piece

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Receiver"]

logger = logging.getLogger("wsevents")


class Receiver:
    """Acts on the core's events: runs in the reader thread, with the core lock held.

    Every binary message is bounded by ``max_buffer_length`` (the core's
    default), so ``BINARY_START`` needs nothing; pings are answered by the core.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._parts: list[bytes] = []

    def dispatch(self, event: Event) -> None:
        """Act on one event (see :mod:`wsevents.protocol.events`)."""
        kind = event[0]
        conn = self._conn
        if kind == TEXT:
            conn._message(event[1])
        elif kind == BINARY:
            self._binary(event[1], event[2])
        elif kind == PONG:
            # Set the events of the pings this pong answers.
            conn._pong(event[1])
        elif kind == CLOSE:
            # The peer closed (the core has queued the echo): no more messages.
            conn._ended(event[1], event[2])
        elif kind == FAIL:
            # The core failed the connection (its close frame is queued): no more messages.
            error = event[1]
            logger.debug("failing %r: %s (%d)", conn, error, error.code)
            self._parts.clear()
            conn._ended(error.code, str(error))

    def _binary(self, data: bytes, fin: bool) -> None:
        """Gather the pieces; queue the whole message at its end."""
        parts = self._parts
        append_piece(parts, data)
        if fin:
            message = parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            self._conn._message(message)
