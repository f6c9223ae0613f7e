"""Collecting one HTTP head (request or response) from the bytes a socket gives, within a bound.

Both sides of the opening handshake (:mod:`wsevents.protocol.opening`) feed it
what they receive; what follows the head (the first frames) is kept apart.
"""

from __future__ import annotations

from .handshake import check_request_start, find_head_end

__all__ = ["HeadBuffer"]


class HeadBuffer:
    """Collects one HTTP head in a buffer bounded by ``max_size`` bytes."""

    __slots__ = ("buffer", "max_size", "leftover")

    def __init__(self, max_size: int) -> None:
        self.buffer = bytearray()
        self.max_size = max_size
        #: The bytes that followed the head (the first frames).
        self.leftover = b""

    def feed(self, data: bytes, response: bool) -> bytes | None:
        """The whole head once it arrived, else None.

        Raises:
            HandshakeError: from :func:`~.handshake.find_head_end` and, on a
                request, :func:`~.handshake.check_request_start`.
        """
        buf = self.buffer
        if not buf and type(data) is bytes:
            # The usual case, the whole head in the first read: no copies through the buffer.
            end = data.find(b"\r\n\r\n", 0, self.max_size)
            if end >= 0:
                self.leftover = data[end + 4 :]
                return data[: end + 4]
        buf += data
        end = find_head_end(buf, self.max_size, response)
        if end < 0:
            if not response:
                check_request_start(buf)
            return None
        head = bytes(buf[:end])
        self.leftover = bytes(buf[end:])
        buf.clear()
        return head
