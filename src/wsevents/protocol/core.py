"""The frame-level state machine of one WebSocket connection, without I/O.

Bytes go in through :meth:`WebSocketCore.receive_data`; what they mean comes
out as calls on a :class:`Handler`; frames to send come out through the
``write`` callable given to the constructor. The asyncio layer owns the
socket and the timers; the opening handshake is :mod:`.handshake`'s job.

The parser keeps an offset into the received bytes and hands data-frame
payloads on as they arrive, so a frame never has to be whole in memory: a
text message is validated as UTF-8 piece by piece (failing fast, RFC 6455
section 8.1) and a binary message streams to the handler. Only a partial
frame header or a partial control frame (at most 131 bytes) is ever kept
between calls.

Rule violations fail the connection (RFC 6455 section 7.1.7): a close frame
with the matching code is written, reading stops, and
:meth:`Handler.on_fail` is called with the :class:`~wsevents.errors.ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Protocol

from ..errors import InvalidState, MessageTooBig, ProtocolError
from ._mask import mask
from .deflate import PerMessageDeflate
from .frames import (
    MAX_CONTROL_PAYLOAD,
    MaskKeys,
    Opcode,
    build_close_payload,
    build_frame,
    parse_close_payload,
)
from .utf8 import InvalidUtf8, Utf8Decoder

__all__ = ["ReadyState", "Handler", "WebSocketCore", "COUNT_FIELDS"]

# Payloads up to this size are joined with their header into one write.
_JOIN_LIMIT = 16384

#: What ``WebSocketCore.counts`` holds, in order. The core indexes it with literals (0 to 7):
#: a global's lookup per message would cost more than the increment.
COUNT_FIELDS = (
    "text_in", "text_in_bytes", "binary_in", "binary_in_bytes",
    "text_out", "text_out_bytes", "binary_out", "binary_out_bytes",
)


class ReadyState(IntEnum):
    """The ``readyState`` of a connection, numbered as in the browser API."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Handler(Protocol):
    """What the core calls as it understands the received bytes."""

    def on_text(self, text: str) -> None:
        """A whole, valid text message."""

    def on_binary_start(self) -> bool:
        """A binary message begins; return True to bound it by ``max_message_size``."""

    def on_binary_data(self, data: bytes, fin: bool) -> None:
        """The next piece of the binary message; ``fin`` marks its end."""

    def on_ping(self, payload: bytes) -> None:
        """A ping arrived (the core has already answered it)."""

    def on_pong(self, payload: bytes) -> None:
        """A pong arrived."""

    def on_close_frame(self, code: int, reason: str) -> None:
        """The peer's close frame arrived (1005 when it had no code); reading has stopped."""

    def on_fail(self, error: ProtocolError) -> None:
        """The connection was failed; a close frame with ``error.code`` has been written."""


class WebSocketCore:
    """Parses received frames and serialises sent ones for one side of a connection.

    Args:
        client: True on the client side (sent frames are masked, received ones
            must not be), False on the server side (the reverse).
        handler: receives what the peer sent.
        write: takes the bytes to send, in order.
        max_message_size: bound on a text message, and on a binary one whose
            ``on_binary_start`` asked for it; past it the connection fails
            with 1009 as soon as a frame header announces the excess. For a
            compressed message it bounds both the bytes on the wire and the
            inflated size, checked piece by piece while inflating; for a
            streamed (unbounded) binary message, each received piece may
            inflate to at most its own size plus this bound.
        deflate: the permessage-deflate codec when the handshake agreed on it;
            only then may a message's first frame carry RSV1.
    """

    __slots__ = (
        "_client",
        "_handler",
        "_write",
        "max_message_size",
        "_keys",
        "_buf",
        "_reading",
        "_paused",
        "_parsing",
        "_close_sent",
        "_close_received",
        "_remaining",
        "_fin",
        "_key",
        "_key_pos",
        "_msg_opcode",
        "_msg_size",
        "_msg_limited",
        "_decoder",
        "_text_parts",
        "_deflate",
        "_msg_compressed",
        "_inflated",
        "_out_compressed",
        "_raised_at",
        "counts",
        "close_code_sent",
        "close_code_received",
    )

    def __init__(
        self,
        *,
        client: bool,
        handler: Handler,
        write: Callable[[bytes], object],
        max_message_size: int | None = None,
        deflate: PerMessageDeflate | None = None,
    ) -> None:
        self._client = client
        self._handler = handler
        self._write = write
        self.max_message_size = max_message_size
        self._keys = MaskKeys() if client else None
        self._buf = bytearray()
        self._reading = True
        self._paused = False
        self._parsing = False
        self._close_sent = False
        self._close_received = False
        # Parser state: _remaining < 0 while waiting for a frame header.
        self._remaining = -1
        self._fin = True
        self._key: bytes | None = None
        self._key_pos = 0
        # Message state: _msg_opcode is 0 between messages.
        self._msg_opcode = 0
        self._msg_size = 0
        self._msg_limited = False
        self._decoder: Utf8Decoder | None = None
        self._text_parts: list[str] = []
        self._deflate = deflate
        self._msg_compressed = False
        self._inflated = 0
        self._out_compressed = False
        # Where parsing stopped when a handler raised (see _parse_view).
        self._raised_at = 0
        #: Messages and payload bytes (uncompressed) by direction and kind, indexed by
        #: :data:`COUNT_FIELDS`: plain list increments keep the metrics cheap per message.
        self.counts = [0] * len(COUNT_FIELDS)
        #: The code of the close frame sent / received (1005 for an empty one), once there was one.
        self.close_code_sent: int | None = None
        self.close_code_received: int | None = None

    # -- state ---------------------------------------------------------------

    @property
    def close_sent(self) -> bool:
        """Whether a close frame has been written."""
        return self._close_sent

    @property
    def close_received(self) -> bool:
        """Whether the peer's close frame has arrived."""
        return self._close_received

    @property
    def reading(self) -> bool:
        """False once a close frame arrived or the connection was failed."""
        return self._reading

    @property
    def in_message(self) -> bool:
        """Whether a fragmented message is partly received."""
        return self._msg_opcode != 0

    # -- receiving -----------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the peer; calls the handler as frames complete.

        While :meth:`pause` is in effect the bytes are only held (the caller
        has stopped reading from the socket, so that is at most one read).

        An exception raised by a handler method (or by ``write``) propagates
        to the caller. The event it was raised for counts as delivered, and
        the bytes after it are kept: the next call (``receive_data(b"")`` will
        do) goes on with the next event. Nothing is delivered twice or lost.
        """
        if not self._reading:
            return
        buf = self._buf
        if self._paused:
            buf += data
            return
        if buf:
            buf += data
            data = buf
            # Never resize that buffer again: a view of it may outlive the parse (in the
            # traceback of an exception the handler keeps), and resizing would raise.
            self._buf = bytearray()
        mv = memoryview(data)
        self._parsing = True
        try:
            consumed = self._parse_view(mv)
        except BaseException:
            # A handler (or a write) raised: what it was told about, and all before,
            # stays consumed; the rest is kept for the next call; the caller gets the error.
            consumed = self._raised_at
            raise
        finally:
            self._parsing = False
            if consumed < len(mv) and self._reading:
                # A partial frame, or what pause() held back; once failed or closed
                # nothing more will be parsed, so nothing is kept.
                self._buf += mv[consumed:]
            mv.release()

    def pause(self) -> None:
        """Stop handing on frames (backpressure): parsing stops at the next frame
        boundary, or within a payload, and the rest is held until :meth:`resume`."""
        self._paused = True

    def resume(self) -> None:
        """Go on parsing what :meth:`pause` held back."""
        if not self._paused:
            return
        self._paused = False
        # Called from a handler during parsing, the parse loop in progress simply goes on.
        if self._buf and not self._parsing:
            self.receive_data(b"")

    def receive_eof(self) -> None:
        """The peer closed its side of TCP; nothing more will be parsed."""
        self._reading = False

    def _parse_view(self, mv: memoryview) -> int:
        """Consume as much of ``mv`` as possible; return how many bytes were used."""
        end = len(mv)
        pos = 0
        client = self._client
        started: BaseException | None = None
        try:
            while self._reading and not self._paused:
                remaining = self._remaining
                if remaining >= 0:
                    # Inside a data frame's payload that arrived in pieces.
                    take = min(remaining, end - pos)
                    if take == 0 and remaining:
                        return pos
                    chunk = mv[pos : pos + take]
                    pos += take
                    remaining -= take
                    key = self._key
                    if key is not None:
                        k = self._key_pos
                        if k:
                            key = key[k:] + key[:k]
                        self._key_pos = (k + take) & 3
                        piece: bytes | memoryview = mask(chunk, key)
                    else:
                        piece = chunk
                    if remaining == 0:
                        self._remaining = -1
                        self._deliver(piece, self._fin, False)
                    else:
                        self._remaining = remaining
                        self._deliver(piece, False, False)
                    continue

                if end - pos < 2:
                    return pos
                b0 = mv[pos]
                b1 = mv[pos + 1]
                opcode = b0 & 0x0F
                fin = b0 & 0x80
                n = b1 & 0x7F
                rsv = b0 & 0x70
                if rsv and (rsv != 0x40 or self._deflate is None or not 1 <= opcode <= 2):
                    # RSV1 means "compressed", on a message's first frame only (RFC 7692 section 6).
                    self._fail(ProtocolError("reserved bits set without a negotiated extension"))
                    return pos
                masked = b1 & 0x80
                if client:
                    if masked:
                        self._fail(ProtocolError("masked frame from server"))
                        return pos
                elif not masked:
                    self._fail(ProtocolError("unmasked frame from client"))
                    return pos

                if opcode & 0x08:
                    # Control frame (RFC 6455 section 5.5): whole, short, never fragmented.
                    if opcode > Opcode.PONG:
                        self._fail(ProtocolError(f"unknown opcode {opcode:#x}"))
                        return pos
                    if not fin:
                        self._fail(ProtocolError("fragmented control frame"))
                        return pos
                    if n > MAX_CONTROL_PAYLOAD:
                        self._fail(ProtocolError("control frame payload over 125 bytes"))
                        return pos
                    hl = 6 if masked else 2
                    if end - pos < hl + n:
                        return pos
                    if masked:
                        payload = mask(mv[pos + hl : pos + hl + n], bytes(mv[pos + 2 : pos + 6]))
                    else:
                        payload = bytes(mv[pos + hl : pos + hl + n])
                    pos += hl + n
                    self._control(opcode, payload)
                    continue

                # Data frame (RFC 6455 section 5.4 on fragmentation).
                if opcode == Opcode.CONTINUATION:
                    if not self._msg_opcode:
                        self._fail(ProtocolError("continuation frame without a message to continue"))
                        return pos
                elif opcode <= Opcode.BINARY:
                    if self._msg_opcode:
                        self._fail(ProtocolError("new data frame inside a fragmented message"))
                        return pos
                else:
                    self._fail(ProtocolError(f"unknown opcode {opcode:#x}"))
                    return pos
                hl = 2
                if n == 126:
                    hl = 4
                elif n == 127:
                    hl = 10
                if masked:
                    hl += 4
                if end - pos < hl:
                    return pos
                if n == 126:
                    n = (mv[pos + 2] << 8) | mv[pos + 3]
                elif n == 127:
                    n = int.from_bytes(mv[pos + 2 : pos + 10], "big")
                    if n >> 63:
                        self._fail(ProtocolError("64-bit payload length with its top bit set"))
                        return pos
                if opcode:
                    self._msg_opcode = opcode
                    self._msg_size = n
                    self._msg_compressed = bool(rsv)
                    self._inflated = 0
                    if opcode == Opcode.TEXT:
                        self._msg_limited = True
                    else:
                        try:
                            self._msg_limited = self._handler.on_binary_start()
                        except BaseException as exc:
                            # The message has begun all the same: bound it (the safe
                            # choice), take the header, then let the error through.
                            self._msg_limited = True
                            started = exc
                else:
                    self._msg_size += n
                limit = self.max_message_size
                if self._msg_limited and limit is not None and self._msg_size > limit:
                    self._fail(MessageTooBig(f"message of over {limit} bytes"))
                    if started is not None:
                        raise started
                    return pos
                key = bytes(mv[pos + hl - 4 : pos + hl]) if masked else None
                pos += hl
                if started is not None:
                    # The payload comes on the next call, as if it had not arrived yet.
                    self._fin = bool(fin)
                    self._key = key
                    self._key_pos = 0
                    self._remaining = n
                    raise started
                if end - pos >= n:
                    # The whole payload is here: the common, fast case.
                    chunk = mv[pos : pos + n]
                    pos += n
                    self._deliver(mask(chunk, key) if key else chunk, bool(fin), bool(opcode and fin))
                else:
                    self._fin = bool(fin)
                    self._key = key
                    self._key_pos = 0
                    self._remaining = n
        except BaseException:
            # Each frame (or piece of one) is consumed, and the parser state moved
            # past it, before the handler hears of it: when a handler raises, ``pos``
            # is exactly what has been consumed, and nothing is replayed or lost.
            self._raised_at = pos
            raise
        return pos

    def _deliver(self, piece: bytes | memoryview, last: bool, whole: bool) -> None:
        """Hand on one piece of the current message's payload."""
        if self._msg_compressed:
            assert self._deflate is not None
            limit = self.max_message_size
            if limit is not None:
                if self._msg_limited:
                    limit -= self._inflated
                else:
                    # A streamed message is not bounded as a whole, but one received
                    # piece may not inflate past its own size plus the bound: the
                    # handler's backpressure only acts between pieces.
                    limit += len(piece)
            try:
                piece = self._deflate.decompress(piece, last, limit)
            except ProtocolError as exc:
                self._fail(exc)
                return
            self._inflated += len(piece)
        counts = self.counts
        if self._msg_opcode == Opcode.TEXT:
            counts[1] += len(piece)
            if whole:
                self._msg_opcode = 0
                try:
                    text = str(piece, "utf-8")
                except UnicodeDecodeError:
                    self._fail(ProtocolError("invalid UTF-8 in text message", 1007))
                    return
                counts[0] += 1
                self._handler.on_text(text)
                return
            decoder = self._decoder
            if decoder is None:
                decoder = self._decoder = Utf8Decoder()
            try:
                part = decoder.feed(piece, last)
            except InvalidUtf8:
                decoder.reset()
                self._fail(ProtocolError("invalid UTF-8 in text message", 1007))
                return
            parts = self._text_parts
            if part:
                if len(part) < 256 and parts and len(parts[-1]) < 256:
                    # Tiny pieces are joined as they come: millions of small str
                    # objects would take many times max_message_size.
                    parts[-1] += part
                else:
                    parts.append(part)
            if last:
                self._msg_opcode = 0
                text = "".join(parts)
                parts.clear()
                counts[0] += 1
                self._handler.on_text(text)
        else:
            counts[3] += len(piece)
            if last:
                self._msg_opcode = 0
                counts[2] += 1
            self._handler.on_binary_data(bytes(piece), last)

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == Opcode.PING:
            if not self._close_sent:
                self._send(Opcode.PONG, payload)
            self._handler.on_ping(payload)
        elif opcode == Opcode.PONG:
            self._handler.on_pong(payload)
        else:
            try:
                code, reason = parse_close_payload(payload)
            except ProtocolError as exc:
                self._fail(exc)
                return
            self.close_code_received = code
            self._close_received = True
            self._reading = False
            if not self._close_sent:
                # Echo the code (RFC 6455 section 5.5.1); an empty close gets an empty one.
                self.send_close(None if code == 1005 else code)
            self._handler.on_close_frame(code, reason)

    def _fail(self, error: ProtocolError) -> None:
        """Fail the connection: close frame with the error's code, stop reading."""
        self._reading = False
        self._msg_opcode = 0
        self._text_parts.clear()
        if not self._close_sent:
            reason = str(error).encode("utf-8")[:123].decode("utf-8", "ignore")
            self.send_close(error.code, reason)
        self._handler.on_fail(error)

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection from above (e.g. a limit the asyncio layer enforces)."""
        if code == 1009:
            self._fail(MessageTooBig(reason))
        else:
            self._fail(ProtocolError(reason, code))

    # -- sending -------------------------------------------------------------

    def _send(self, opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> None:
        n = len(payload)
        if n < 126 and self._keys is None and fin and not rsv1:
            # The common small server frame: a 2-byte header, one write.
            self._write(bytes((0x80 | opcode, n)) + payload)
            return
        if self._keys is not None:
            header, body = build_frame(opcode, payload, fin, self._keys.next(), rsv1)
        else:
            header, body = build_frame(opcode, payload, fin, None, rsv1)
        if len(body) <= _JOIN_LIMIT:
            self._write(header + body)
        else:
            self._write(header)
            self._write(body)

    def _check_can_send(self) -> None:
        if self._close_sent:
            raise InvalidState("a close frame was already sent")

    def _send_message(self, opcode: int, payload: bytes) -> None:
        deflate = self._deflate
        if deflate is not None and len(payload) >= deflate.threshold and deflate.can_compress:
            self._send(opcode, deflate.compress(payload), True, True)
        else:
            self._send(opcode, payload)

    def send_text(self, text: str) -> None:
        """Send one whole text message (compressed when agreed and not under the threshold)."""
        self._check_can_send()
        payload = text.encode("utf-8")
        counts = self.counts
        counts[4] += 1
        counts[5] += len(payload)
        self._send_message(Opcode.TEXT, payload)

    def send_binary(self, data: bytes) -> None:
        """Send one whole binary message (compressed when agreed and not under the threshold)."""
        self._check_can_send()
        counts = self.counts
        counts[6] += 1
        counts[7] += len(data)
        self._send_message(Opcode.BINARY, data)

    def send_data_frame(self, opcode: int, data: bytes, fin: bool) -> None:
        """Send one frame of a fragmented message (``opcode`` 0 for continuations).

        With permessage-deflate agreed, a streamed message is compressed as a
        whole: RSV1 on its first frame, each frame's data flushed so that the
        peer can inflate it as it arrives.
        """
        self._check_can_send()
        # A stream is binary (the only kind sent in frames): counted as one message at its end.
        counts = self.counts
        counts[7] += len(data)
        if fin:
            counts[6] += 1
        deflate = self._deflate
        if opcode:
            self._out_compressed = deflate is not None and deflate.can_compress
        if self._out_compressed:
            assert deflate is not None
            self._send(opcode, deflate.compress(data, fin), fin, bool(opcode))
        else:
            self._send(opcode, data, fin)

    def send_prebuilt(self, frame: bytes, opcode: int = Opcode.BINARY, size: int = 0) -> None:
        """Send a whole frame serialised elsewhere (a broadcast encodes once for many peers).

        ``opcode`` and ``size`` (the payload's length) only count it as a message.
        """
        self._check_can_send()
        index = 4 if opcode == Opcode.TEXT else 6
        counts = self.counts
        counts[index] += 1
        counts[index + 1] += size
        self._write(frame)

    def send_ping(self, payload: bytes = b"") -> None:
        """Send a ping (at most 125 bytes)."""
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("a ping payload is at most 125 bytes")
        self._check_can_send()
        self._send(Opcode.PING, payload)

    def send_pong(self, payload: bytes = b"") -> None:
        """Send an unsolicited pong (at most 125 bytes)."""
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("a pong payload is at most 125 bytes")
        self._check_can_send()
        self._send(Opcode.PONG, payload)

    def send_close(self, code: int | None = None, reason: str = "") -> None:
        """Send the close frame (once; later calls do nothing)."""
        if self._close_sent:
            return
        self._close_sent = True
        self.close_code_sent = 1005 if code is None else code
        self._send(Opcode.CLOSE, build_close_payload(code, reason))
