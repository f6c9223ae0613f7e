"""The frame-level state machine of one WebSocket connection, without I/O.

Bytes go in through :meth:`WebSocketCore.receive_data` and
:meth:`~WebSocketCore.receive_eof`; what they mean is pulled out as events
(:mod:`.events`) with :meth:`~WebSocketCore.next_event` (one at a time,
parsed on demand) or :meth:`~WebSocketCore.events_received` (all there are);
the bytes to write (answers to pings and closes, and every ``send_*``) are
taken with :meth:`~WebSocketCore.data_to_send` or
:meth:`~WebSocketCore.write_to`. No code of the caller runs inside the core,
so an exception in the I/O layer or the application cannot leave it half way
through a frame. The opening handshake is :mod:`.handshake`'s job.

Parsing (:class:`~.reader.FrameReader`) is lazy and streams payloads: an
I/O layer that stops pulling (backpressure) stops the parser, and one pull
inflates at most one received piece of a compressed message, so that a
small read cannot turn into unbounded events before the I/O layer can react.
Frames are serialised by :mod:`.frames`; an agreed extension is reached only
through :class:`~.extensions.Extension`.

State (RFC 6455 section 7), set in one place (:meth:`WebSocketCore._set_state`)::

    OPEN --send_close / fail--> CLOSING (closer LOCAL)
    OPEN --close frame received--> CLOSING (closer REMOTE; the close is echoed)
    any --receive_eof--> CLOSED

Rule violations fail the connection (RFC 6455 section 7.1.7): a close frame
with the matching code is queued, parsing stops, and a ``FAIL`` event
carries the :class:`~wsevents.errors.ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, IntEnum

from ..errors import InvalidState, MessageTooBig, ProtocolError
from ._mask import Collector, mask
from .closecodes import CloseCode
from .events import BINARY, CLOSE, FAIL, PING, PONG, Event
from .extensions import Extension
from .frames import (
    JOIN_LIMIT,
    MaskKeys,
    Opcode,
    build_close_payload,
    build_frame,
    check_control_payload,
    parse_close_payload,
    truncate_reason,
)
from .reader import COUNT_FIELDS, FrameReader

__all__ = ["ReadyState", "Side", "WebSocketCore", "COUNT_FIELDS"]

# Plain ints: codes reach users (close events, metrics labels), where an enum member
# would print as its name on Python 3.10.
_NO_STATUS = int(CloseCode.NO_STATUS)
_MESSAGE_TOO_BIG = int(CloseCode.MESSAGE_TOO_BIG)
# Bound once: on Python 3.11 reading an enum member through its class costs about ten times a
# global's read, and these are read on every message sent.
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY


class ReadyState(IntEnum):
    """The ``readyState`` of a connection, numbered as in the browser API."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Side(Enum):
    """Who started the closing handshake (or failed the connection)."""

    LOCAL = "local"
    REMOTE = "remote"


class WebSocketCore(FrameReader):
    """Parses received frames and serialises sent ones for one side of an open connection.

    Args:
        client: True on the client side (sent frames are masked, received ones
            must not be), False on the server side (the reverse).
        max_message_size: bound on a text message, and on a binary one unless
            :meth:`unbound_message` is called at its ``BINARY_START``; past it
            the connection fails with 1009 as soon as a frame header announces
            the excess. For an encoded (compressed) message it bounds both the
            bytes on the wire and the decoded size, checked piece by piece;
            for an unbounded binary message, each received piece may decode to
            at most its own size plus this bound.
        extension: the extension agreed in the handshake (permessage-deflate),
            or None; only then may a message's first frame carry RSV bits.
    """

    __slots__ = ("_keys", "state", "closer", "failure", "_out", "close_code_sent", "close_code_received")

    def __init__(
        self,
        *,
        client: bool,
        max_message_size: int | None = None,
        extension: Extension | None = None,
    ) -> None:
        super().__init__(client=client, max_message_size=max_message_size, extension=extension)
        self._keys = MaskKeys() if client else None
        #: OPEN, CLOSING (a close frame went one way) or CLOSED (the peer's EOF).
        self.state = ReadyState.OPEN
        #: Who started the closing handshake, once one started.
        self.closer: Side | None = None
        #: Why this side failed the connection, if it did.
        self.failure: ProtocolError | None = None
        self._out: list[bytes] = []
        #: The code of the close frame sent / received (1005 for an empty one), once there was one.
        self.close_code_sent: int | None = None
        self.close_code_received: int | None = None

    # -- state ---------------------------------------------------------------

    def _set_state(self, state: ReadyState, closer: Side | None = None) -> None:
        """The one place the state changes: OPEN -> CLOSING (with who closed) -> CLOSED."""
        if state is ReadyState.CLOSING:
            if self.state is not ReadyState.OPEN:
                return
            self.closer = closer
        self.state = state

    @property
    def close_sent(self) -> bool:
        """Whether a close frame has been queued."""
        return self.close_code_sent is not None

    @property
    def close_received(self) -> bool:
        """Whether the peer's close frame has arrived."""
        return self.close_code_received is not None

    @property
    def reading(self) -> bool:
        """False once a close frame arrived, the connection was failed, or the peer's EOF came."""
        return (
            self.state is not ReadyState.CLOSED and self.close_code_received is None and self.failure is None
        )

    # -- receiving (the parser is FrameReader's) --------------------------------

    @property
    def has_buffered(self) -> bool:
        """Whether anything received waits to be pulled (:attr:`buffered` > 0, without counting it)."""
        return bool(self._pending) or self._pos < len(self._view)

    def collect_message(self, sink: Collector | None) -> bool:
        """Unmask the rest of the binary message being received straight into ``sink`` (None:
        stop), so that each piece is written once, into the message's own buffer.

        The I/O layer then adds each ``BINARY`` event's bytes to ``sink``: the pieces put there
        come as ``b""``. Returns False, changing nothing, when no binary message is being parsed
        piece by piece (one the compiled scan parsed ahead whole, or a compressed one).
        """
        if sink is not None and (self._msg_opcode != BINARY or self._msg_encoded):
            return False
        self._sink = sink
        return True

    def receive_eof(self) -> None:
        """The peer closed its side of TCP: nothing more will be parsed (idempotent)."""
        self._set_state(ReadyState.CLOSED)
        self._stop_input()

    def _control(self, opcode: int, payload: bytes) -> Event:
        if opcode == Opcode.PING:
            if self.close_code_sent is None:
                self._send(Opcode.PONG, payload)
            return (PING, payload)
        if opcode == Opcode.PONG:
            return (PONG, payload)
        try:
            code, reason = parse_close_payload(payload)
        except ProtocolError as exc:
            return self._fail(exc)
        self.close_code_received = code
        self._set_state(ReadyState.CLOSING, Side.REMOTE)
        self._stop_parsing()
        if self.close_code_sent is None:
            # Echo the code (RFC 6455 section 5.5.1); an empty close gets an empty one.
            self.send_close(None if code == _NO_STATUS else code)
        return (CLOSE, code, reason)

    def _fail(self, error: ProtocolError) -> Event:
        """Fail the connection: queue the close frame with the error's code, stop parsing."""
        self.failure = error
        self._stop_parsing()
        if self.close_code_sent is None:
            self.send_close(error.code, truncate_reason(str(error)))
        self._set_state(ReadyState.CLOSING, Side.LOCAL)
        return (FAIL, error)

    def fail(self, code: int, reason: str) -> ProtocolError:
        """Fail the connection from above (e.g. a limit the I/O layer enforces).

        The close frame is queued and parsing stops, as for a failure found
        here; the error is returned (no ``FAIL`` event is produced for it).
        """
        error = MessageTooBig(reason) if code == _MESSAGE_TOO_BIG else ProtocolError(reason, code)
        self._fail(error)
        return error

    # -- sending -------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """The bytes to write, in order, since the last call (each item one write)."""
        out = self._out
        if not out:
            return []
        self._out = []
        return out

    def write_to(self, write: Callable[[bytes], object]) -> None:
        """Hand the bytes to write to ``write``, in order (:meth:`data_to_send` without a list)."""
        out = self._out
        if out:
            for data in out:
                write(data)
            out.clear()

    def _send(self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> None:
        n = len(payload)
        keys = self._keys
        if n < 126 and fin and not rsv:
            if keys is None:
                # The common small server frame: a 2-byte header, one write.
                self._out.append(bytes((0x80 | opcode, n)) + payload)
            else:
                # The common small client frame: the same with the MASK bit and key (RFC 6455 5.3).
                fresh = keys.next()
                self._out.append(bytes((0x80 | opcode, 0x80 | n)) + fresh + mask(payload, fresh))
            return
        key = None if keys is None else keys.next()
        header, body = build_frame(opcode, payload, fin, key, rsv=rsv)
        if len(body) <= JOIN_LIMIT:
            self._out.append(header + body)
        else:
            self._out += (header, body)

    def _check_can_send(self) -> None:
        if self.close_code_sent is not None:
            raise InvalidState("a close frame was already sent")

    def _send_message(self, opcode: int, payload: bytes) -> None:
        ext = self._ext
        if ext is None:
            self._send(opcode, payload)
        else:
            payload, rsv = ext.encode_message(payload)
            self._send(opcode, payload, True, rsv)

    def send_text(self, text: str) -> None:
        """Queue one whole text message (encoded by the extension if there is one)."""
        if self.close_code_sent is not None:
            self._check_can_send()
        payload = text.encode("utf-8")
        counts = self.counts
        counts[4] += 1
        counts[5] += len(payload)
        self._send_message(_TEXT, payload)

    def send_binary(self, data: bytes) -> None:
        """Queue one whole binary message (encoded by the extension if there is one)."""
        self._check_can_send()
        counts = self.counts
        counts[6] += 1
        counts[7] += len(data)
        self._send_message(_BINARY, data)

    def send_data_frame(self, opcode: int, data: bytes, fin: bool) -> None:
        """Queue one frame of a fragmented message (``opcode`` 0 for continuations).

        With an extension, the message is encoded as a whole (for
        permessage-deflate: RSV1 on its first frame, each frame's data flushed
        so that the peer can inflate it as it arrives).
        """
        self._check_can_send()
        # A stream is binary (the only kind sent in frames): counted as one message at its end.
        counts = self.counts
        counts[7] += len(data)
        if fin:
            counts[6] += 1
        ext = self._ext
        if ext is None:
            self._send(opcode, data, fin)
        else:
            payload, rsv = ext.encode_frame(data, bool(opcode), fin)
            self._send(opcode, payload, fin, rsv)

    def send_prebuilt(self, frame: bytes, opcode: int = Opcode.BINARY, size: int = 0) -> None:
        """Queue a whole frame serialised elsewhere (a broadcast encodes once for many peers).

        ``opcode`` and ``size`` (the payload's length) only count it as a message.
        """
        if self.close_code_sent is not None:
            self._check_can_send()
        index = 4 if opcode == _TEXT else 6
        counts = self.counts
        counts[index] += 1
        counts[index + 1] += size
        self._out.append(frame)

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a ping (at most 125 bytes)."""
        check_control_payload(payload, "ping")
        self._check_can_send()
        self._send(Opcode.PING, payload)

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited pong (at most 125 bytes)."""
        check_control_payload(payload, "pong")
        self._check_can_send()
        self._send(Opcode.PONG, payload)

    def send_close(self, code: int | None = None, reason: str = "") -> None:
        """Queue the close frame (once; later calls do nothing); the state becomes CLOSING."""
        if self.close_code_sent is not None:
            return
        self.close_code_sent = _NO_STATUS if code is None else code
        self._set_state(ReadyState.CLOSING, Side.LOCAL)
        self._send(Opcode.CLOSE, build_close_payload(code, reason))
