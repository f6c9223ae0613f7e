"""Byte-level helpers for tests of the sans-I/O core (and anyone else who needs raw frames).

Import with ``from helpers import ...``: pytest puts ``tests/`` on ``sys.path``
(its default "prepend" import mode, since ``tests/`` is not a package).

* :func:`frame` builds one frame exactly, including deliberately wrong ones
  (reserved bits, forced 16/64-bit length forms, a lying length).
* :func:`parse_frames` / :func:`parse_frame_details` decode what a core wrote.
* :class:`Recorder` records what the core reports, one tuple per event;
  :func:`make_core` wires one to a fresh core through a :class:`CoreDriver`,
  which pulls the core's events as an I/O layer does.
* :func:`wait_until` polls a condition with a deadline (also the ``until`` fixture of conftest);
  :func:`close_event` is a future for a connection's ``"close"``; :func:`round_trip` is a
  ping/pong barrier (everything the peer was sent before is processed when it returns).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wsevents
from wsevents.errors import ProtocolError
from wsevents.protocol import events as ev
from wsevents.protocol.core import WebSocketCore

if TYPE_CHECKING:
    from wsevents import Connection

__all__ = [
    "DEFAULT_KEY",
    "TEXT",
    "BINARY",
    "CONT",
    "CLOSE",
    "PING",
    "PONG",
    "CoreDriver",
    "Frame",
    "Recorder",
    "close_event",
    "close_payload",
    "frame",
    "make_core",
    "sent_close",
    "naive_mask",
    "parse_frame_details",
    "parse_frames",
    "round_trip",
    "wait_until",
    "wire_frame",
]

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: The masking key of the RFC 6455 section 5.7 examples; used when ``mask=True``.
DEFAULT_KEY = b"\x37\xfa\x21\x3d"


def naive_mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with ``key`` byte by byte: the obvious reference implementation."""
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(
    opcode: int,
    payload: bytes | str = b"",
    fin: bool = True,
    mask: bool | bytes = True,
    rsv: int = 0,
    length_form: int | None = None,
    length: int | None = None,
) -> bytes:
    """One frame, byte-exact.

    Args:
        opcode: 0x0-0xF, not checked (unknown opcodes are for tests too).
        payload: the unmasked payload; ``str`` is encoded as UTF-8.
        fin: the FIN bit.
        mask: False for an unmasked frame (server to client), True to mask with
            :data:`DEFAULT_KEY`, or the 4-byte key to use.
        rsv: the three reserved bits as a number, 0b100 = RSV1, 0b010 = RSV2, 0b001 = RSV3.
        length_form: None for the shortest encoding, or force one: 7 (7-bit length,
            payload <= 125), 126 (16-bit extended length) or 127 (64-bit extended length).
        length: the length to announce instead of ``len(payload)`` (to lie, e.g. a
            header whose payload is not sent, or a 64-bit length with its top bit set).
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    if length_form is None:
        length_form = 7 if n < 126 else 126 if n < 65536 else 127
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)
    mbit = 0x80 if mask is not False else 0
    if length_form == 7:
        if n > 125:
            raise ValueError("the 7-bit length form holds at most 125")
        header = bytes((b0, mbit | n))
    elif length_form == 126:
        if n > 0xFFFF:
            raise ValueError("the 16-bit length form holds at most 65535")
        header = struct.pack("!BBH", b0, mbit | 126, n)
    elif length_form == 127:
        header = struct.pack("!BBQ", b0, mbit | 127, n)
    else:
        raise ValueError(f"length_form must be None, 7, 126 or 127, not {length_form!r}")
    if mask is False:
        return header + payload
    key = DEFAULT_KEY if mask is True else mask
    if len(key) != 4:
        raise ValueError("a masking key is 4 bytes")
    return header + key + naive_mask(payload, key)


def wire_frame(client_sends: bool, opcode: int, payload: bytes | str = b"", **kwargs: Any) -> bytes:
    """A frame as the given side would put it on the wire (masked iff the client sends it)."""
    kwargs.setdefault("mask", client_sends)
    return frame(opcode, payload, **kwargs)


def close_payload(code: int | None = None, reason: str | bytes = b"") -> bytes:
    """The body of a close frame: empty without ``code``, else code + reason."""
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


@dataclass(frozen=True)
class Frame:
    """One decoded frame; ``payload`` is unmasked, ``key`` is None if unmasked."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    key: bytes | None
    payload: bytes
    raw: bytes


def parse_frame_details(data: bytes | bytearray) -> list[Frame]:
    """Decode every frame in ``data``; raises ValueError if it does not end on a frame boundary."""
    data = bytes(data)
    frames: list[Frame] = []
    pos = 0
    while pos < len(data):
        start = pos
        if len(data) - pos < 2:
            raise ValueError(f"truncated frame header at offset {pos}")
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        key = None
        if b1 & 0x80:
            key = data[pos : pos + 4]
            pos += 4
        payload = data[pos : pos + n]
        if len(payload) != n:
            raise ValueError(f"truncated payload at offset {pos}")
        pos += n
        if key is not None:
            payload = naive_mask(payload, key)
        frames.append(
            Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, key is not None, key, payload, data[start:pos])
        )
    return frames


def parse_frames(data: bytes | bytearray) -> list[tuple[bool, int, bytes]]:
    """``(fin, opcode, payload)`` of each frame in ``data``, unmasked."""
    return [(f.fin, f.opcode, f.payload) for f in parse_frame_details(data)]


def sent_close(written: list[bytes] | bytes | bytearray) -> tuple[int | None, bytes]:
    """``(code, reason bytes)`` of the one close frame among the frames written; code None if empty.

    Asserts that exactly one close frame was written and that it is the last frame.
    """
    data = b"".join(written) if isinstance(written, list) else bytes(written)
    frames = parse_frames(data)
    closes = [i for i, f in enumerate(frames) if f[1] == CLOSE]
    assert closes == [len(frames) - 1], f"expected one close frame, last; got {frames!r}"
    body = frames[-1][2]
    if not body:
        return None, b""
    return struct.unpack("!H", body[:2])[0], body[2:]


class Recorder:
    """Records each event the core reports, as a tuple in :attr:`calls`.

    ``("text", str)``, ``("binary_start",)``, ``("binary", bytes, fin)``,
    ``("ping", bytes)``, ``("pong", bytes)``, ``("close", code, reason)``,
    ``("fail", code, exception class name)``; the exceptions themselves are in
    :attr:`errors`. ``bound_binary`` is what ``on_binary_start`` returns: False
    makes the driver call ``unbound_message()``. Tests may replace a method to act
    on an event (pause the driver, raise...).
    """

    def __init__(self, bound_binary: bool = True) -> None:
        self.bound_binary = bound_binary
        self.calls: list[tuple[Any, ...]] = []
        self.errors: list[ProtocolError] = []

    def on_text(self, text: str) -> None:
        self.calls.append(("text", text))

    def on_binary_start(self) -> bool:
        self.calls.append(("binary_start",))
        return self.bound_binary

    def on_binary_data(self, data: bytes, fin: bool) -> None:
        assert isinstance(data, bytes), type(data)
        self.calls.append(("binary", data, fin))

    def on_ping(self, payload: bytes) -> None:
        self.calls.append(("ping", payload))

    def on_pong(self, payload: bytes) -> None:
        self.calls.append(("pong", payload))

    def on_close_frame(self, code: int, reason: str) -> None:
        self.calls.append(("close", code, reason))

    def on_fail(self, error: ProtocolError) -> None:
        self.errors.append(error)
        self.calls.append(("fail", error.code, type(error).__name__))

    def merged(self) -> list[tuple[Any, ...]]:
        """:attr:`calls` with consecutive ``binary`` pieces joined into one (fin of the last).

        How a binary payload is cut into pieces depends on how the bytes arrived;
        this is the split-independent view.
        """
        out: list[tuple[Any, ...]] = []
        for call in self.calls:
            if call[0] == "binary" and out and out[-1][0] == "binary" and not out[-1][2]:
                out[-1] = ("binary", out[-1][1] + call[1], call[2])
            else:
                out.append(call)
        return out

    @property
    def fails(self) -> list[tuple[Any, ...]]:
        """Only the ``fail`` calls."""
        return [c for c in self.calls if c[0] == "fail"]


class CoreDriver:
    """Drives a pull-style core as an I/O layer does, for tests written in terms of handler calls.

    :meth:`receive_data` feeds the core and pulls its events one by one into
    the :class:`Recorder`, writing what the core queued (a pong, a close)
    before each event is reported; :meth:`pause` stops the pulling and
    :meth:`resume` goes on. ``send_*`` calls go to the core and their bytes
    to ``written``; any other attribute is the core's.
    """

    def __init__(self, core: WebSocketCore, recorder: Recorder, written: list[bytes]) -> None:
        self.core = core
        self.recorder = recorder
        self.written = written
        self.paused = False
        self._pumping = False

    def __setattr__(self, name: str, value: Any) -> None:
        # The core's attributes (max_message_size) are set on the core.
        if name in ("core", "recorder", "written", "paused", "_pumping"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.core, name, value)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.core, name)
        if not name.startswith("send_"):
            return value

        def send(*args: Any, **kwargs: Any) -> None:
            value(*args, **kwargs)
            self._flush()

        return send

    def _flush(self) -> None:
        for data in self.core.data_to_send():
            self.written.append(bytes(data))

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        self.core.receive_data(data)
        self.pump()

    def receive_eof(self) -> None:
        self.core.receive_eof()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self.pump()

    def fail(self, code: int, reason: str) -> None:
        error = self.core.fail(code, reason)
        self._flush()
        self.recorder.on_fail(error)

    def pump(self) -> None:
        """Pull events until none is left or :meth:`pause`; a resume from inside goes on in this loop."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self.paused:
                event = self.core.next_event()
                self._flush()
                if event is None:
                    return
                self._dispatch(event)
        finally:
            self._pumping = False

    def _dispatch(self, event: tuple[Any, ...]) -> None:
        rec = self.recorder
        kind = event[0]
        if kind == ev.TEXT:
            rec.on_text(event[1])
        elif kind == ev.BINARY_START:
            if not rec.on_binary_start():
                self.core.unbound_message()
        elif kind == ev.BINARY:
            rec.on_binary_data(event[1], event[2])
        elif kind == ev.PING:
            rec.on_ping(event[1])
        elif kind == ev.PONG:
            rec.on_pong(event[1])
        elif kind == ev.CLOSE:
            rec.on_close_frame(event[1], event[2])
        else:
            assert kind == ev.FAIL, event
            rec.on_fail(event[1])


def scan_cores() -> tuple[type[WebSocketCore], type[WebSocketCore]]:
    """``WebSocketCore`` parsing with the compiled scan (``FastCore``) and without it
    (``PureCore``), whatever WSEVENTS_NO_SPEEDUPS says: for the tests that run the two parsers
    side by side. Needs the built speed-up, so it is imported here, not with this module."""
    from wsevents import _speedups  # type: ignore[attr-defined,unused-ignore]

    class FastCore(WebSocketCore):
        __slots__ = ()
        _scan = _speedups.scan

    class PureCore(WebSocketCore):
        __slots__ = ()
        _scan = None

    return FastCore, PureCore


def make_core(
    client: bool = False,
    max_message_size: int | None = None,
    bound_binary: bool = True,
    **kwargs: Any,
) -> tuple[Any, Recorder, list[bytes]]:
    """A fresh core behind a :class:`CoreDriver` with a :class:`Recorder`; the third item
    collects every write, in order. ``kwargs`` go to the core (``extension=``)."""
    recorder = Recorder(bound_binary)
    written: list[bytes] = []
    core = WebSocketCore(client=client, max_message_size=max_message_size, **kwargs)
    return CoreDriver(core, recorder, written), recorder, written


async def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``predicate`` (every 10 ms) until true; fail after ``timeout`` seconds."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def close_event(conn: Connection) -> asyncio.Future[tuple[int, str]]:
    """A future for the ``(code, reason)`` of ``conn``'s (first) ``"close"`` event."""
    fut: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    conn.on("close", lambda code, reason: fut.done() or fut.set_result((code, reason)))
    return fut


async def round_trip(conn: Connection, timeout: float = 5.0) -> None:
    """Ping the peer and wait for its pong: a barrier instead of a sleep.

    The peer handles frames in order, so when the pong is back it has processed everything
    ``conn`` sent before, and the loops of both ends have run meanwhile.
    """
    payload = f"barrier {id(object())}"
    pong: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_pong(data: str) -> None:
        if data == payload and not pong.done():
            pong.set_result(None)

    conn.on("pong", on_pong)
    try:
        await conn.send_ping(payload)
        await asyncio.wait_for(pong, timeout)
    finally:
        conn.off("pong", on_pong)


# -- shared by conftest and the test modules ------------------------------------------
# (Test modules import these from here, never ``from conftest``: with several conftest.py
# files on sys.path, "conftest" may name another directory's.)

MakeServer = Callable[..., Awaitable["wsevents.Server"]]
#: A metrics exposition's samples: ``(name, sorted labels) -> value``.
Figures = dict[tuple[str, tuple[tuple[str, str], ...]], float]
#: The ``servers`` fixture: servers a test made (wsevents or asyncio ones), closed at teardown.
Servers = list["wsevents.Server | asyncio.Server"]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RawServer = Callable[[Handler], Awaitable[int]]


def url_of(server: wsevents.Server, path: str = "/", scheme: str = "ws", host: str = "127.0.0.1") -> str:
    """``ws://127.0.0.1:<port><path>`` for a listening server."""
    return f"{scheme}://{host}:{server.port}{path}"


def attach_echo(conn: wsevents.Connection) -> None:
    """Make ``conn`` echo every text and binary message back."""

    @conn.on("text")
    def _text(text: str) -> None:
        if conn.ready_state == wsevents.Connection.OPEN:
            conn.send_text(text)

    @conn.on("binary")
    async def _binary(stream: wsevents.InStream) -> None:
        try:
            data = await stream.read()
        except wsevents.WebSocketError:
            return
        if conn.ready_state == wsevents.Connection.OPEN:
            conn.send_binary(data)


def metric_samples(text: str) -> Figures:
    """Every sample of a metrics exposition, as prometheus_client parses it."""
    from prometheus_client.parser import text_string_to_metric_families  # only the metrics tests need it

    families = text_string_to_metric_families(text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}
