"""The receiving half of the core: frames parsed on demand into events.

The parser keeps an offset into the received bytes and hands data-frame
payloads on as they arrive, so a frame never has to be whole in memory: a
text message is validated as UTF-8 piece by piece (failing fast, RFC 6455
section 8.1) and a binary message comes out in pieces. Only a partial frame
header or a partial control frame (at most 131 bytes) is kept between reads
once the events are pulled.

Each pull runs one step at a time: the header step (:func:`~.frames.check_header`
and the length), then payload steps, one per piece that has arrived. A pull
decodes (inflates) at most one received piece, so an I/O layer that stops
pulling stops all the work.

With the compiled speed-up, a pull between messages first lets
:data:`._mask.scan` parse the run of whole, plain data frames that follows
(at most 64 frames or 64 KiB at once) into the same events, kept in
``_pending`` and handed out one per pull; it stops before anything else, which
these steps then parse as ever. Whatever stops parsing drops them, as it drops
the received bytes, and the counts move as each one is pulled.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import MessageTooBig, ProtocolError
from ._mask import Collector, Scan, mask, scan
from .closecodes import CloseCode
from .events import BINARY, BINARY_START, TEXT, Event, append_piece
from .extensions import Extension
from .frames import check_header, header_length, payload_length
from .utf8 import InvalidUtf8, Utf8Decoder

__all__ = ["FrameReader", "COUNT_FIELDS"]

#: What ``WebSocketCore.counts`` holds, in order. The core indexes it with literals (0 to 7):
#: a global's lookup per message would cost more than the increment.
COUNT_FIELDS = (
    "text_in", "text_in_bytes", "binary_in", "binary_in_bytes",
    "text_out", "text_out_bytes", "binary_out", "binary_out_bytes",
)

_EMPTY = memoryview(b"")

# The view of a parser that has stopped (close frame, failure, EOF): received bytes are dropped.
_STOPPED = memoryview(b"")

# A plain int: the code reaches users, where an enum member would print as its name on Python 3.10.
_INVALID_DATA = int(CloseCode.INVALID_DATA)

# What a parsing step returns when it consumed something that is no event: go on.
_AGAIN: Event = ()

_BINARY_START: Event = (BINARY_START,)

# First bytes of a message's first frame with no RSV bit: valid whatever the state but
# inside a fragmented message (the header step's fast check; check_header does the rest).
_PLAIN_FIRST = frozenset({TEXT, BINARY, 0x80 | TEXT, 0x80 | BINARY})


class FrameReader:
    """Parses received bytes into events; :class:`~.core.WebSocketCore` adds state and sending.

    The parser asks its subclass for :attr:`reading`, and hands control
    frames to :meth:`_control` and rule violations to :meth:`_fail`.
    """

    __slots__ = (
        "_client",
        "max_message_size",
        "_ext",
        "_ext_rsv",
        "_mask_in",
        "_view",
        "_pos",
        "_remaining",
        "_fin",
        "_key",
        "_key_pos",
        "_limit_pending",
        "_msg_opcode",
        "_msg_size",
        "_msg_limited",
        "_msg_encoded",
        "_decoded",
        "_decoder",
        "_text_parts",
        "_sink",
        "_pending",
        "counts",
    )

    # The compiled scan, or None; a subclass setting None parses on the pure path alone (the
    # tests compare both paths in one process that way).
    _scan: ClassVar[Scan | None] = scan

    def __init__(self, *, client: bool, max_message_size: int | None, extension: Extension | None) -> None:
        self._client = client
        self.max_message_size = max_message_size
        self._ext = extension
        self._ext_rsv = 0 if extension is None else extension.rsv
        # The MASK bit frames must carry: set from a client, clear from a server (RFC 6455 section 5.1).
        self._mask_in = 0 if client else 0x80
        # The received bytes not parsed yet: a view from _pos on (never resized while held).
        self._view = _EMPTY
        self._pos = 0
        # Frame state: _remaining < 0 between frames, else payload bytes still to come.
        self._remaining = -1
        self._fin = True
        self._key: bytes | None = None
        self._key_pos = 0
        self._limit_pending = False
        # Message state: _msg_opcode is 0 between messages.
        self._msg_opcode = 0
        self._msg_size = 0
        self._msg_limited = False
        self._msg_encoded = False
        self._decoded = 0
        self._decoder: Utf8Decoder | None = None
        self._text_parts: list[str] = []
        self._sink: Collector | None = None
        # Events parsed ahead by the compiled scan, each followed by a size, in reverse order.
        self._pending: list[Any] = []
        #: Messages and payload bytes (before encoding) by direction and kind, indexed by
        #: :data:`COUNT_FIELDS`: plain list increments keep the metrics cheap per message.
        self.counts = [0] * len(COUNT_FIELDS)

    # -- what the core provides ------------------------------------------------

    @property
    def reading(self) -> bool:
        """Whether received bytes are still parsed."""
        raise NotImplementedError

    def _control(self, opcode: int, payload: bytes) -> Event:
        raise NotImplementedError

    def _fail(self, error: ProtocolError) -> Event:
        raise NotImplementedError

    # -- receiving -----------------------------------------------------------

    @property
    def in_message(self) -> bool:
        """Whether a fragmented message is partly received."""
        # A pending BINARY is the rest of a message whose BINARY_START was pulled.
        pending = self._pending
        return self._msg_opcode != 0 or (bool(pending) and pending[-1][0] == BINARY)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes received from the peer; nothing is parsed until events are pulled.

        Ignored once :attr:`reading` is False.
        """
        view = self._view
        if view is _STOPPED or not data:
            return
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse its buffer
        if self._pos < len(view):
            # A partial frame (or what the I/O layer has not pulled yet) goes first.
            rest = bytearray(view[self._pos :])
            rest += data
            data = rest
        self._view = memoryview(data)
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Received bytes not parsed yet."""
        # Frames parsed ahead count until their events are pulled.
        pending = self._pending
        return len(self._view) - self._pos + (_pending_size(pending, self._mask_in) if pending else 0)

    def unbound_message(self) -> None:
        """At a ``BINARY_START`` event: do not bound this message by ``max_message_size``
        (the I/O layer streams it and applies its own backpressure)."""
        self._msg_limited = False

    def events_received(self) -> list[Event]:
        """Every event the bytes received so far hold, in order (see :meth:`next_event`)."""
        events = []
        event = self.next_event()
        while event is not None:
            events.append(event)
            event = self.next_event()
        return events

    def next_event(self) -> Event | None:
        """Parse on demand: the next event, or None until more bytes arrive.

        An I/O layer that applies backpressure simply stops calling this: the
        bytes stay here, unparsed, until it goes on.
        """
        pending = self._pending
        if not pending and self._remaining < 0:
            if len(self._view) - self._pos < 2:
                return None  # no header yet: the usual end of a read, without a scan or a step
            if self._scan is not None and not self._msg_opcode:
                pending, self._pos = self._scan(self._view, self._pos, self._mask_in, self.max_message_size)
                self._pending = pending
        if pending:
            ahead: Event = pending.pop()
            n = pending.pop()
            kind = ahead[0]
            if kind == TEXT:
                counts = self.counts
                counts[0] += 1
                counts[1] += n
            elif kind == BINARY:
                counts = self.counts
                counts[2] += 1
                counts[3] += n
            return ahead
        while True:
            if self._remaining < 0:
                event = self._header_step()
            elif self._limit_pending:
                event = self._check_limit()
            else:
                event = self._payload_step()
            if event is not _AGAIN:
                return event

    def _header_step(self) -> Event | None:
        """Parse the frame header at the current offset (and a whole payload that is there with it)."""
        view = self._view
        pos = self._pos
        avail = len(view) - pos
        if avail < 2:
            return None
        b0 = view[pos]
        b1 = view[pos + 1]
        if b0 not in _PLAIN_FIRST or b1 & 0x80 != self._mask_in or self._msg_opcode:
            # Anything but a message's plain first frame: the full rules, and control frames.
            event = self._unusual_header(b0, b1)
            if event is not _AGAIN:
                return event
        n = b1 & 0x7F
        if n < 126:
            hl = 6 if b1 & 0x80 else 2
            if avail < hl:
                return None
        else:
            hl = header_length(b1)
            if avail < hl:
                return None
            try:
                n = payload_length(view, pos, b1)
            except ProtocolError as exc:
                return self._fail(exc)
        key = bytes(view[pos + hl - 4 : pos + hl]) if b1 & 0x80 else None
        self._pos = pos = pos + hl
        event = self._begin_frame(b0, n, key)
        if event is not None:
            return event
        if avail - hl >= n:
            # The whole payload is here: the common, fast case. (b0 & 0x8F > 0x80: a FIN first frame.)
            self._pos = pos + n
            chunk = view[pos : pos + n]
            return self._deliver(mask(chunk, key) if key else chunk, b0 & 0x80 != 0, b0 & 0x8F > 0x80)
        self._set_payload(n, b0 & 0x80 != 0, key)
        return _AGAIN

    def _unusual_header(self, b0: int, b1: int) -> Event | None:
        """Check a header against every rule; parse a control frame. ``_AGAIN``: a valid data frame."""
        in_message = self._msg_opcode != 0
        error = check_header(b0, b1, client=self._client, ext_rsv=self._ext_rsv, in_message=in_message)
        if error is not None:
            return self._fail(error)
        if b0 & 0x08:
            return self._control_frame(b0 & 0x0F, b1, header_length(b1))
        return _AGAIN

    def _begin_frame(self, b0: int, n: int, key: bytes | None) -> Event | None:
        """Account for a data frame of ``n`` bytes: ``BINARY_START``, a failure (too big), or None."""
        opcode = b0 & 0x0F
        if opcode:
            self._msg_opcode = opcode
            self._msg_size = n
            self._msg_encoded = b0 & 0x70 != 0
            self._msg_limited = True
            self._decoded = 0
            if opcode == BINARY:
                # The I/O layer hears of the message (and may unbound it) before the size check.
                self._set_payload(n, b0 & 0x80 != 0, key)
                self._limit_pending = True
                return _BINARY_START
        else:
            self._msg_size += n
        limit = self.max_message_size
        if limit is not None and self._msg_size > limit and self._msg_limited:
            return self._fail(MessageTooBig(f"message of over {limit} bytes"))
        return None

    def _control_frame(self, opcode: int, b1: int, hl: int) -> Event | None:
        """A control frame is only parsed whole (it is at most 131 bytes)."""
        view = self._view
        pos = self._pos
        n = b1 & 0x7F
        if len(view) - pos < hl + n:
            return None
        self._pos = pos + hl + n
        payload = view[pos + hl : pos + hl + n]
        key = bytes(view[pos + 2 : pos + 6]) if b1 & 0x80 else None
        return self._control(opcode, mask(payload, key) if key else bytes(payload))

    def _set_payload(self, n: int, fin: bool, key: bytes | None) -> None:
        self._remaining = n
        self._fin = fin
        self._key = key
        self._key_pos = 0

    def _over_limit(self) -> bool:
        limit = self.max_message_size
        return self._msg_limited and limit is not None and self._msg_size > limit

    def _check_limit(self) -> Event:
        """After ``BINARY_START``: the size check, now that the I/O layer has said whether it applies."""
        self._limit_pending = False
        if self._over_limit():
            return self._fail(MessageTooBig(f"message of over {self.max_message_size} bytes"))
        return _AGAIN

    def _payload_step(self) -> Event | None:
        """Hand on the next piece of a data frame's payload that arrived (or arrives) in pieces."""
        view = self._view
        pos = self._pos
        remaining = self._remaining
        take = min(remaining, len(view) - pos)
        if take == 0 and remaining:
            return None
        self._pos = pos + take
        piece: bytes | memoryview = view[pos : pos + take]
        key = self._key
        if key is not None:
            k = self._key_pos
            if k:
                key = key[k:] + key[:k]
            self._key_pos = (k + take) & 3
        remaining -= take
        self._remaining = remaining or -1
        if self._sink is not None:  # a message collected whole (core.collect_message): into it
            self._sink.add(piece, key, remaining)
            self.counts[3] += take
            piece = b""
        elif key is not None:
            piece = mask(piece, key)
        return self._deliver(piece, not remaining and self._fin, False)

    def _decode(self, piece: bytes | memoryview, last: bool) -> bytes | memoryview:
        """Run a piece of an encoded message through the extension, within the size bound.

        Raises:
            ProtocolError: the extension refused it (1007), or it decodes past the bound (1009).
        """
        assert self._ext is not None
        limit = self.max_message_size
        if limit is not None:
            if self._msg_limited:
                limit -= self._decoded
            else:
                # An unbounded message is not bounded as a whole, but one received piece
                # may not decode past its own size plus the bound: the I/O layer's
                # backpressure only acts between pieces.
                limit += len(piece)
        out = self._ext.decode(piece, last, limit)
        self._decoded += len(out)
        return out

    def _deliver(self, piece: bytes | memoryview, last: bool, whole: bool) -> Event:
        """The event for one piece of the current message's payload (``_AGAIN`` if none yet)."""
        if self._msg_encoded:
            try:
                piece = self._decode(piece, last)
            except ProtocolError as exc:
                return self._fail(exc)
        counts = self.counts
        if self._msg_opcode != TEXT:
            counts[3] += len(piece)
            if last:
                self._msg_opcode = 0
                self._sink = None
                counts[2] += 1
            if type(piece) is memoryview:
                # A piece that is all of one received bytes object (a client's unmasked payload,
                # read after read) is handed on as that object instead of a copy of it.
                owner = piece.obj
                if type(owner) is bytes and len(owner) == len(piece):
                    return (BINARY, owner, last)
            return (BINARY, bytes(piece), last)
        counts[1] += len(piece)
        if whole:
            self._msg_opcode = 0
            try:
                text = str(piece, "utf-8")
            except UnicodeDecodeError:
                return self._fail(ProtocolError("invalid UTF-8 in text message", _INVALID_DATA))
            counts[0] += 1
            return (TEXT, text)
        return self._text_piece(piece, last)

    def _text_piece(self, piece: bytes | memoryview, last: bool) -> Event:
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = Utf8Decoder()
        try:
            part = decoder.feed(piece, last)
        except InvalidUtf8:
            decoder.reset()
            return self._fail(ProtocolError("invalid UTF-8 in text message", _INVALID_DATA))
        parts = self._text_parts
        if part:
            append_piece(parts, part)
        if not last:
            return _AGAIN
        self._msg_opcode = 0
        text = "".join(parts)
        parts.clear()
        self.counts[0] += 1
        return (TEXT, text)

    def _stop_input(self) -> None:
        """Parse nothing more: drop what is held and what comes."""
        self._view = _STOPPED
        self._pos = 0
        self._pending.clear()

    def _stop_parsing(self) -> None:
        self._stop_input()
        self._remaining = -1
        self._limit_pending = False
        self._msg_opcode = 0
        self._text_parts.clear()


def _pending_size(pending: list[Any], mask_bit: int) -> int:
    """The received bytes that the events parsed ahead stand for (the scan takes only
    minimal-length headers, so a header's size follows from its payload's)."""
    total = 0
    for i in range(0, len(pending), 2):
        n = pending[i]
        total += n
        if pending[i + 1][0] == TEXT:
            total += (2 if n < 126 else 4 if n < 65536 else 10) + (4 if mask_bit else 0)
    return total
