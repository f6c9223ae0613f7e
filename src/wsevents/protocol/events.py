"""What the core reports as it parses: events as small tuples, pulled by the I/O layer.

An event is a tuple whose first item is its kind; the kinds are plain ints so
that dispatching on them costs one comparison:

* ``(TEXT, str)``: a whole, valid text message;
* ``(BINARY_START,)``: a binary message begins; the I/O layer may then call
  :meth:`~wsevents.protocol.core.WebSocketCore.unbound_message` before it
  pulls the next event (the message is bounded by ``max_message_size`` otherwise);
* ``(BINARY, bytes, fin)``: the next piece of the binary message, ``fin`` on its last (``b""``
  for a piece the core put straight into the message's collector: see
  :meth:`~wsevents.protocol.core.WebSocketCore.collect_message`);
* ``(PING, bytes)``: a ping arrived (its pong is already queued to be sent);
* ``(PONG, bytes)``: a pong arrived;
* ``(CLOSE, code, reason)``: the peer's close frame (1005 when it had no code);
  nothing more is parsed and the answering close frame is queued;
* ``(FAIL, ProtocolError)``: the peer broke a rule; the close frame with the
  error's code is queued and nothing more is parsed.

This module also holds the rule, shared by every layer that gathers message
pieces, for joining tiny pieces as they come (:func:`append_piece`).
"""

from __future__ import annotations

from collections.abc import MutableSequence
from typing import Any, TypeVar

__all__ = [
    "TEXT", "BINARY", "BINARY_START", "PING", "PONG", "CLOSE", "FAIL", "Event", "TINY_PIECE", "append_piece",
]

# The data kinds share their opcodes' numbers, the others are apart from every opcode; the kinds
# from CLOSE on are those after which the core may have queued bytes to send.
TEXT = 0x1
BINARY = 0x2
BINARY_START = 0x3
CLOSE = 0x8
PING = 0x9
PONG = 0xA
FAIL = 0x10

#: One event: its kind first, then what that kind carries (see the module docstring).
Event = tuple[Any, ...]

#: Pieces under this many bytes (or characters) are joined to a tiny previous piece.
TINY_PIECE = 256

_Piece = TypeVar("_Piece", str, bytes)


def append_piece(parts: MutableSequence[_Piece], piece: _Piece) -> None:
    """Append ``piece`` to the pieces of a message being gathered, joining tiny ones.

    A message that arrives in millions of tiny pieces would otherwise take
    many times its size in object headers.
    """
    if len(piece) < TINY_PIECE and parts and len(parts[-1]) < TINY_PIECE:
        parts[-1] += piece
    else:
        parts.append(piece)
