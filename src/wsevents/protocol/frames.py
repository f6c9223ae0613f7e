"""Frame-level constants and serialisation (RFC 6455 section 5).

Parsing lives in :mod:`wsevents.protocol.core`, which works on offsets into its
buffer; this module builds frames and close payloads and holds the rules both
directions share.
"""

from __future__ import annotations

import os
import struct
from enum import IntEnum

from ..errors import ProtocolError
from ._mask import mask
from .closecodes import is_valid_wire_code
from .utf8 import InvalidUtf8, Utf8Decoder

__all__ = [
    "Opcode",
    "MAX_CONTROL_PAYLOAD",
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
) -> tuple[bytes, bytes]:
    """Serialise one frame as ``(header, payload_on_the_wire)``.

    The two parts are returned separately so that a large payload need not be
    copied into one buffer with its header; callers join them when small.
    With ``mask_key`` (client side) the payload is masked and the key is part
    of the header.
    """
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
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
    try:
        reason = Utf8Decoder().feed(payload[2:], final=True)
    except InvalidUtf8:
        raise ProtocolError("close reason is not valid UTF-8", 1007) from None
    return code, reason
