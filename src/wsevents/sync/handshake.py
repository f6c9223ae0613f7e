"""Blocking reads of the opening handshake, bounded by a deadline."""

from __future__ import annotations

import socket
import time
from typing import Any

from ..errors import InvalidMessage
from ..protocol.handshake import find_head_end
from ..protocol.opening import ClientHandshake, HandshakeState, ServerHandshake

__all__ = ["Deadline", "read_head", "receive_head"]

# How much one read takes from the socket.
READ_SIZE = 65536


class Deadline:
    """A point in time that socket operations may not pass (None: no limit)."""

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + seconds

    def apply(self, sock: socket.socket) -> None:
        """Bound the next blocking operation on ``sock`` by the time left.

        Raises:
            TimeoutError: no time is left.
        """
        if self._end is None:
            sock.settimeout(None)
            return
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline passed")
        sock.settimeout(left)


def read_head(
    sock: socket.socket, deadline: Deadline, max_size: int, *, response: bool, check: Any = None
) -> tuple[bytes, bytes]:
    """Read an HTTP head from ``sock``; return it and the bytes that came after it.

    ``check(buffer)`` (if given) sees the bytes so far after every read.

    Raises:
        HandshakeError: from :func:`~wsevents.protocol.handshake.find_head_end`,
            or (status None) when the socket ends first.
        TimeoutError: the deadline passed.
    """
    buf = bytearray()
    while True:
        end = find_head_end(buf, max_size, response)
        if end >= 0:
            return bytes(buf[:end]), bytes(buf[end:])
        deadline.apply(sock)
        data = sock.recv(READ_SIZE)
        if not data:
            side = "server" if response else "client"
            raise InvalidMessage(f"the {side} closed the connection during the handshake")
        buf += data
        if check is not None:
            check(buf)


def receive_head(
    sock: socket.socket, deadline: Deadline, handshake: ServerHandshake | ClientHandshake
) -> None:
    """Feed ``handshake`` from ``sock`` until it has the whole head, failed, or the peer closed.

    Raises:
        TimeoutError: the deadline passed.
        OSError: the socket failed.
    """
    while handshake.state is HandshakeState.READING:
        deadline.apply(sock)
        data = sock.recv(READ_SIZE)
        if data:
            handshake.receive_data(data)
        else:
            handshake.receive_eof()
