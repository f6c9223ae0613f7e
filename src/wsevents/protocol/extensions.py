"""The interface between the core and a negotiated extension (RFC 6455 section 9).

The core knows extensions only through :class:`Extension`: which reserved
bits it may see on a message's first frame, and how a message's payload is
decoded on the way in and encoded on the way out. permessage-deflate
(:class:`~wsevents.protocol.deflate.PerMessageDeflate`) is the one
implementation; the core has no other knowledge of compression.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Extension"]


class Extension(Protocol):
    """What the core asks of the extension agreed in the handshake.

    An implementation keeps its own per-message state (e.g. whether the
    message being streamed out is compressed); the core calls it in message
    order, from one thread at a time.
    """

    #: The RSV bits (as in a frame's first byte, 0x40 for RSV1) that mark a
    #: message as encoded; allowed on a data message's first frame only.
    rsv: int

    def decode(self, data: bytes | memoryview, last: bool, limit: int | None) -> bytes:
        """The next piece of an encoded message, decoded; ``last`` marks its end.

        Raises:
            MessageTooBig: the decoded piece would exceed ``limit`` bytes.
            ProtocolError: the data cannot be decoded (1007).
        """

    def encode_message(self, payload: bytes) -> tuple[bytes, int]:
        """One whole message to send: ``(payload on the wire, RSV bits of its frame)``."""

    def encode_frame(self, data: bytes, first: bool, fin: bool) -> tuple[bytes, int]:
        """One frame of a message sent in pieces: ``(payload on the wire, RSV bits)``.

        ``first`` marks the message's first frame (where the RSV bits go),
        ``fin`` its last.
        """
