"""Rooms: named groups of one server's connections, and sending one message to many connections.

A room exists while it has members; nothing is kept for an empty one. The
frame of a message sent to many connections is built once and the same bytes
are written to each of them, except to connections that compress it (each has
its own compression context). One peer's fault (not open, sending an
``OutStream``, over ``max_write_buffer``: closed with 1008) never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from ..protocol.frames import Opcode, build_frame
from .connection import Connection
from .server_side import check_open, send_prebuilt

__all__ = ["Message", "Rooms", "encode", "excluded", "fan_out"]

logger = logging.getLogger("wsevents")


@dataclass(frozen=True)
class Message:
    """One message for many connections: a room's (``room`` set) or everyone's (``room`` None)."""

    room: str | None
    opcode: Opcode
    payload: bytes


def encode(room: str | None, message: str | bytes | bytearray | memoryview, call: str) -> Message:
    """The :class:`Message` for ``message``; ``TypeError`` for anything but text or bytes.

    ``UnicodeEncodeError`` (a ``ValueError``) for a room name or text that is not valid
    Unicode (a lone surrogate).
    """
    if room is not None:
        if not isinstance(room, str):
            raise TypeError(f"a room is a str, not {type(room).__name__}")
        # A broker sends the name as UTF-8: a lone surrogate must fail here, not in its loop.
        room.encode("utf-8")
    if isinstance(message, str):
        return Message(room, Opcode.TEXT, message.encode("utf-8"))
    if isinstance(message, (bytes, bytearray, memoryview)):
        return Message(room, Opcode.BINARY, bytes(message))
    raise TypeError(f"{call} takes a str or a bytes-like object, not {type(message).__name__}")


_NOT_EXCLUDE = "exclude takes a Connection or an iterable of Connections, not {}"


def excluded(exclude: Connection | Iterable[Connection] | None) -> Collection[Connection]:
    """The ``exclude`` argument of ``publish``/``broadcast`` as a collection."""
    if exclude is None:
        return ()
    if isinstance(exclude, Connection):
        return (exclude,)
    if isinstance(exclude, (str, bytes)) or not isinstance(exclude, Iterable):
        raise TypeError(_NOT_EXCLUDE.format(type(exclude).__name__))
    skip = set(exclude)
    for conn in skip:
        if not isinstance(conn, Connection):
            # A wrong item would exclude nothing, silently.
            raise TypeError(_NOT_EXCLUDE.format(f"an iterable holding a {type(conn).__name__}"))
    return skip


def fan_out(conns: Iterable[Connection], message: Message, skip: Collection[Connection] = ()) -> int:
    """Send ``message`` to each open connection of ``conns`` but ``skip``; how many got it."""
    frame: bytes | None = None
    text: str | None = None
    size = len(message.payload)
    sent = 0
    for conn in conns:
        # Not open (or sending a stream): send_prebuilt and _send_compressed skip it themselves.
        if conn in skip:
            continue
        codec = conn.deflate
        if codec is not None and size >= codec.threshold and codec.can_compress:
            if message.opcode is Opcode.TEXT:
                if text is None:
                    text = message.payload.decode("utf-8")
                sent += _send_compressed(conn, text)
            else:
                sent += _send_compressed(conn, message.payload)
            continue
        if frame is None:
            header, body = build_frame(message.opcode, message.payload)
            frame = header + body
        if send_prebuilt(conn, frame, message.opcode, size):
            sent += 1
    return sent


def _send_compressed(conn: Connection, message: str | bytes) -> int:
    """Send to a peer with its own compression context; 1 if sent, 0 if skipped.

    A peer that does not read is closed with 1008 by ``check_open``
    (logged), and nothing is raised: the others still get the message.
    """
    if conn.out_stream is not None or check_open(conn) is not None:
        return 0
    try:
        conn.send(message)
    except Exception:
        logger.exception("sending to %r failed", conn)
        return 0
    return 1


class Rooms:
    """Which connections are in which room, both ways (a connection may be in many rooms)."""

    __slots__ = ("_members", "_joined")

    def __init__(self) -> None:
        # Insertion-ordered: members get a message in the order they joined.
        self._members: dict[str, dict[Connection, None]] = {}
        self._joined: dict[Connection, set[str]] = {}

    def join(self, conn: Connection, room: str) -> None:
        """Put ``conn`` in ``room`` (nothing happens if it is there already)."""
        self._members.setdefault(room, {})[conn] = None
        self._joined.setdefault(conn, set()).add(room)

    def leave(self, conn: Connection, room: str) -> None:
        """Take ``conn`` out of ``room`` (nothing happens if it is not there)."""
        members = self._members.get(room)
        if members is None or conn not in members:
            return
        del members[conn]
        if not members:
            del self._members[room]
        rooms = self._joined[conn]
        rooms.discard(room)
        if not rooms:
            del self._joined[conn]

    def forget(self, conn: Connection) -> None:
        """``conn`` has ended: it leaves every room."""
        for room in self._joined.pop(conn, ()):
            members = self._members[room]
            del members[conn]
            if not members:
                del self._members[room]

    def of(self, conn: Connection) -> frozenset[str]:
        """The rooms ``conn`` is in."""
        return frozenset(self._joined.get(conn, ()))

    def members(self, room: str) -> list[Connection]:
        """A snapshot of the members of ``room`` (a send may close one and so change the room)."""
        return list(self._members.get(room, ()))

    def __len__(self) -> int:
        return len(self._members)
