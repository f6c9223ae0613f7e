"""Frames (RFC 6455 section 5): the :class:`Frame` type, header rules, serialisation.

The core (:mod:`wsevents.protocol.core`) parses on offsets into its buffer
with :func:`check_header` and :func:`header_length`, so that a payload never
has to be whole in memory; :meth:`Frame.parse` reads one whole frame from
bytes for everyone else. This module also builds frames and close payloads
and holds the limits both directions and every layer share.
"""

from __future__ import annotations

import os
import struct
from enum import IntEnum

from ..errors import ProtocolError
from ._mask import mask
from .closecodes import is_valid_wire_code

__all__ = [
    "Opcode",
    "Frame",
    "MAX_CONTROL_PAYLOAD",
    "MAX_CLOSE_REASON",
    "JOIN_LIMIT",
    "check_control_payload",
    "check_header",
    "header_length",
    "payload_length",
    "truncate_reason",
    "build_frame",
    "build_close_payload",
    "parse_close_payload",
    "MaskKeys",
]


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


#: Control frames carry at most 125 bytes (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125

#: A close reason is at most 123 bytes of UTF-8: the code takes 2 of the 125 (section 5.5.1).
MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2

#: Payloads up to this size are joined with their header into one write.
JOIN_LIMIT = 16384

_pack_h = struct.Struct("!BBH").pack
_pack_q = struct.Struct("!BBQ").pack


class MaskKeys:
    """Hands out 4-byte masking keys from batches of ``os.urandom``.

    RFC 6455 section 5.3 asks for unpredictable keys; one urandom call per
    1,024 frames keeps a system call off the per-frame path.
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def next(self) -> bytes:
        """The next fresh key."""
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = os.urandom(4096)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


def build_frame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    mask_key: bytes | None = None,
    rsv1: bool = False,
    rsv: int = 0,
) -> tuple[bytes, bytes]:
    """Serialise one frame as ``(header, payload_on_the_wire)``.

    The two parts are returned separately so that a large payload need not be
    copied into one buffer with its header; callers join them when small.
    With ``mask_key`` (client side) the payload is masked and the key is part
    of the header. ``rsv`` sets reserved bits as they sit in the first byte
    (0x40 is RSV1, the same as ``rsv1``).
    """
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0) | rsv
    n = len(payload)
    mbit = 0x80 if mask_key is not None else 0
    if n < 126:
        header = bytes((b0, mbit | n))
    elif n < 65536:
        header = _pack_h(b0, mbit | 126, n)
    else:
        header = _pack_q(b0, mbit | 127, n)
    if mask_key is not None:
        return header + mask_key, mask(payload, mask_key)
    return header, payload


def build_close_payload(code: int | None, reason: str = "") -> bytes:
    """The body of a close frame: empty without a code, else code + UTF-8 reason."""
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Validate a received close body; return ``(code, reason)``, 1005 when empty.

    Raises:
        ProtocolError: 1002 for a 1-byte body or a code that may not be sent,
            1007 for a reason that is not UTF-8 (RFC 6455 sections 5.5.1, 7.4).
    """
    n = len(payload)
    if n == 0:
        return 1005, ""
    if n == 1:
        raise ProtocolError("close frame with a 1-byte payload", 1002)
    code = (payload[0] << 8) | payload[1]
    if not is_valid_wire_code(code):
        raise ProtocolError(f"invalid close code {code}", 1002)
    if n == 2:
        return code, ""
    try:
        # The whole reason at once: a strict decode is what an incremental one says at its end.
        reason = str(payload[2:], "utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("close reason is not valid UTF-8", 1007) from None
    return code, reason


def check_control_payload(payload: bytes, what: str) -> None:
    """Refuse a ping or pong payload over :data:`MAX_CONTROL_PAYLOAD` bytes.

    Raises:
        ValueError: ``payload`` is too long (``what`` names the frame in the message).
    """
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError(f"a {what} payload is at most {MAX_CONTROL_PAYLOAD} bytes")


def truncate_reason(reason: str) -> str:
    """``reason`` cut to at most :data:`MAX_CLOSE_REASON` bytes of UTF-8, never inside a character."""
    return reason.encode("utf-8")[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


def check_header(b0: int, b1: int, *, client: bool, ext_rsv: int, in_message: bool) -> ProtocolError | None:
    """The rules a frame's first two bytes must follow; the error that fails the connection, or None.

    ``client``: whether the receiver is the client (frames must then be
    unmasked, section 5.1); ``ext_rsv``: the RSV bits the agreed extension
    uses, allowed on a message's first frame only (RFC 7692 section 6);
    ``in_message``: whether a fragmented message is partly received (section 5.4).
    """
    opcode = b0 & 0x0F
    rsv = b0 & 0x70
    if rsv and (rsv & ~ext_rsv or not Opcode.TEXT <= opcode <= Opcode.BINARY):
        return ProtocolError("reserved bits set without a negotiated extension")
    if client:
        if b1 & 0x80:
            return ProtocolError("masked frame from server")
    elif not b1 & 0x80:
        return ProtocolError("unmasked frame from client")
    if opcode & 0x08:
        # Control frame (section 5.5): whole, short, never fragmented.
        if opcode > Opcode.PONG:
            return ProtocolError(f"unknown opcode {opcode:#x}")
        if not b0 & 0x80:
            return ProtocolError("fragmented control frame")
        if b1 & 0x7F > MAX_CONTROL_PAYLOAD:
            return ProtocolError("control frame payload over 125 bytes")
        return None
    if opcode == Opcode.CONTINUATION:
        if not in_message:
            return ProtocolError("continuation frame without a message to continue")
    elif opcode <= Opcode.BINARY:
        if in_message:
            return ProtocolError("new data frame inside a fragmented message")
    else:
        return ProtocolError(f"unknown opcode {opcode:#x}")
    return None


def header_length(b1: int) -> int:
    """The length of a header whose second byte is ``b1``: 2 to 14 bytes."""
    n = b1 & 0x7F
    return (2 if n < 126 else 4 if n == 126 else 10) + (4 if b1 & 0x80 else 0)


def payload_length(data: bytes | memoryview, pos: int, b1: int) -> int:
    """The payload length of the header at ``pos`` (whole: :func:`header_length` bytes).

    Raises:
        ProtocolError: a 64-bit length with its top bit set (section 5.2).
    """
    n = b1 & 0x7F
    if n == 126:
        return (data[pos + 2] << 8) | data[pos + 3]
    if n == 127:
        n = int.from_bytes(data[pos + 2 : pos + 10], "big")
        if n >> 63:
            raise ProtocolError("64-bit payload length with its top bit set")
    return n


class Frame:
    """One whole frame: what :meth:`parse` reads and :meth:`serialize` writes.

    ``rsv`` holds the reserved bits as they sit in the first byte (0x40 is RSV1).
    """

    __slots__ = ("opcode", "payload", "fin", "rsv")

    def __init__(self, opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> None:
        self.opcode = opcode
        self.payload = payload
        self.fin = fin
        self.rsv = rsv

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        mine = (self.opcode, self.payload, self.fin, self.rsv)
        return mine == (other.opcode, other.payload, other.fin, other.rsv)

    def __repr__(self) -> str:
        return f"Frame({self.opcode!r}, {self.payload!r}, fin={self.fin}, rsv={self.rsv:#x})"

    def serialize(self, mask_key: bytes | None = None) -> bytes:
        """The frame's bytes on the wire, masked with ``mask_key`` when given (client side)."""
        header, body = build_frame(self.opcode, self.payload, self.fin, mask_key, rsv=self.rsv)
        return header + body

    @classmethod
    def parse(
        cls, data: bytes | memoryview, *, client: bool, ext_rsv: int = 0, in_message: bool = False
    ) -> tuple[Frame, int] | None:
        """Read the frame at the start of ``data``: ``(frame, bytes used)``, or None if incomplete.

        ``client`` is the receiving side (see :func:`check_header`); the
        payload comes unmasked.

        Raises:
            ProtocolError: the frame breaks a rule of RFC 6455 section 5.
        """
        if len(data) < 2:
            return None
        b0, b1 = data[0], data[1]
        error = check_header(b0, b1, client=client, ext_rsv=ext_rsv, in_message=in_message)
        if error is not None:
            raise error
        hl = header_length(b1)
        if len(data) < hl:
            return None
        n = payload_length(data, 0, b1)
        if len(data) < hl + n:
            return None
        payload = bytes(data[hl : hl + n])
        if b1 & 0x80:
            payload = mask(payload, bytes(data[hl - 4 : hl]))
        return cls(b0 & 0x0F, payload, bool(b0 & 0x80), b0 & 0x70), hl + n
