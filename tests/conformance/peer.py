"""The raw peer of the conformance suite: byte-exact frames, and no wsevents code at all.

The peer speaks WebSocket by hand over asyncio streams, so that it can send
what no well-behaved library would (reserved bits, unknown opcodes, invalid
UTF-8, lying lengths) and cut the bytes wherever a case says:

* :func:`open_client` connects to a wsevents server and does the HTTP upgrade
  by hand; :class:`RawServer` accepts one wsevents client and answers its
  upgrade by hand. Both hand back a :class:`RawPeer`.
* :meth:`RawPeer.run` plays a list of steps (:class:`Send`, :class:`Wait`,
  :class:`FailFast`, :class:`Sleep`) while a reader task collects everything
  the wsevents side sends, then finishes the closing handshake as a
  conforming endpoint would and returns a :class:`PeerResult`: the messages
  (reassembled from their frames), pongs, close frames, whether and how TCP
  was closed, and every rule the wsevents side's frames broke.

Frames are built with :func:`helpers.frame` (header) and masked here with a
big-integer XOR, so that multi-megabyte payloads stay cheap. The
``extensions`` arguments and :attr:`RawPeer.allow_rsv1` are the hooks for
permessage-deflate cases: the header is offered (as a client) or agreed (as a
server) verbatim, and RSV1 on the first frame of a received message is then
accepted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from helpers import BINARY, CLOSE, CONT, PING, PONG, TEXT, frame

__all__ = [
    "WAIT",
    "FrameSpec",
    "Send",
    "Wait",
    "FailFast",
    "Sleep",
    "Step",
    "PeerResult",
    "RawPeer",
    "RawServer",
    "open_client",
    "render",
    "xor_mask",
]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Bound (seconds) on each wait for the wsevents side: a close frame, the TCP close, the handshake.
WAIT = 5.0


def _accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode("ascii")).digest()).decode("ascii")


def xor_mask(data: bytes, key: bytes) -> bytes:
    """Mask (or unmask) ``data`` with the 4-byte ``key``, with one big-integer XOR."""
    n = len(data)
    if n == 0:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


# -- what a case sends ------------------------------------------------------------


@dataclass(frozen=True)
class FrameSpec:
    """One frame to send; masked or not according to the peer's side.

    ``length`` announces a length other than ``len(payload)``: a header that
    promises more than is ever sent (for limits decided from the header).
    """

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    length_form: int | None = None
    length: int | None = None


@dataclass(frozen=True)
class Send:
    """Write frames, whole or in pieces.

    ``chop``: pieces of that many bytes, with one event-loop turn (or
    ``delay`` seconds) between pieces, so that the other side reads them one
    by one. ``cuts_from_end``: cut before the last N bytes, for each N.
    ``fail_fast``: before writing the last piece, wait (bounded) for the
    wsevents side's close frame and record whether it came (see
    :class:`FailFast`).
    """

    frames: tuple[FrameSpec, ...]
    chop: int | None = None
    cuts_from_end: tuple[int, ...] = ()
    fail_fast: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class Wait:
    """Wait (bounded) until this many messages and pongs in all have come back."""

    messages: int = 0
    pongs: int = 0
    timeout: float = 15.0


@dataclass(frozen=True)
class FailFast:
    """The close frame must arrive before anything after this step is sent.

    Waits for it up to ``timeout`` (returning at once when it comes) and
    records whether it came; the case fails if it did not.
    """

    timeout: float = 2.0


@dataclass(frozen=True)
class Sleep:
    """A short pause (the other side sees the following bytes later)."""

    seconds: float


Step = Send | Wait | FailFast | Sleep


def render(spec: FrameSpec, key: bytes | None) -> bytes:
    """The bytes of one frame; masked with ``key`` unless it is None."""
    n = len(spec.payload) if spec.length is None else spec.length
    header = frame(
        spec.opcode,
        b"",
        fin=spec.fin,
        mask=key if key is not None else False,
        rsv=spec.rsv,
        length_form=spec.length_form,
        length=n,
    )
    return header + (spec.payload if key is None else xor_mask(spec.payload, key))


# -- what comes back ---------------------------------------------------------------


@dataclass
class PeerResult:
    """Everything the peer saw of the wsevents side."""

    #: Whole messages, ``(opcode, payload)``, reassembled from their frames, in order.
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    pings: list[bytes] = field(default_factory=list)
    #: Payloads of the close frames received.
    close_frames: list[bytes] = field(default_factory=list)
    #: Frames received after the first close frame.
    frames_after_close: int = 0
    #: Rules of RFC 6455 that the wsevents side's bytes broke.
    violations: list[str] = field(default_factory=list)
    #: The wsevents side closed TCP (EOF or reset seen) and how ("eof" / "reset").
    tcp_closed: bool = False
    tcp_close_how: str = ""
    #: One entry per fail-fast point: whether the close frame had arrived there.
    fail_fast: list[bool] = field(default_factory=list)
    #: The close frame the peer sent, and whether it sent it before receiving one.
    sent_close: bytes | None = None
    closed_first: bool = False
    #: The headers of the wsevents side's handshake message (names lower-cased).
    handshake: dict[str, str] = field(default_factory=dict)
    #: Timeouts and send failures, for the failure message.
    notes: list[str] = field(default_factory=list)
    #: A short log of the frames received (opcode, fin, rsv, length), capped.
    log: list[str] = field(default_factory=list)


class RawPeer:
    """One end of an open WebSocket connection, driven step by step.

    Args:
        client: True when the peer is the client (its frames are masked and
            the wsevents side's must not be), False when it is the server.
        allow_rsv1: accept RSV1 on the first frame of a received message
            (permessage-deflate agreed).
        on_eof: called with the result when the wsevents side's TCP close is
            seen, before the peer closes its own side.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client: bool,
        allow_rsv1: bool = False,
        on_eof: Callable[[PeerResult], None] | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.client = client
        self.allow_rsv1 = allow_rsv1
        self.on_eof = on_eof
        self.result = PeerResult()
        self._changed = asyncio.Event()
        self._nkeys = 0
        self._msg_opcode: int | None = None
        self._msg_parts: list[bytes] = []
        self._msg_compressed = False
        # One inflater for the connection: it also reads senders that drop their context.
        self._inflater = zlib.decompressobj(-15)
        self._broken = False

    # -- sending -------------------------------------------------------------

    def _key(self) -> bytes | None:
        if not self.client:
            return None
        self._nkeys += 1
        # Fixed, varied, never-zero keys: reproducible runs.
        return struct.pack("!I", (0x9E3779B1 * self._nkeys) & 0xFFFFFFFF | 0x01010101)

    def _write(self, data: bytes) -> bool:
        if self._broken or self.writer.transport.is_closing():
            self._broken = True
            return False
        self.writer.write(data)
        return True

    async def _drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            if not self._broken:
                self.result.notes.append(f"sending failed: {exc!r}")
            self._broken = True

    async def _send(self, step: Send) -> None:
        r = self.result
        rendered = []
        for spec in step.frames:
            if spec.opcode == CLOSE and r.sent_close is None:
                r.sent_close = spec.payload
                r.closed_first = not r.close_frames
            rendered.append(render(spec, self._key()))
        data = b"".join(rendered)
        if step.chop:
            pieces = [data[i : i + step.chop] for i in range(0, len(data), step.chop)]
        elif step.cuts_from_end:
            cuts = sorted({len(data) - n for n in step.cuts_from_end if 0 < n < len(data)})
            bounds = [0, *cuts, len(data)]
            pieces = [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        else:
            pieces = [data]
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            if i == last and step.fail_fast:
                await self._fail_fast(FailFast())
            if not self._write(piece):
                return
            await self._drain()
            if i < last:
                await asyncio.sleep(step.delay)

    async def _fail_fast(self, step: FailFast) -> None:
        r = self.result
        await self._wait_for(lambda: bool(r.close_frames) or r.tcp_closed, step.timeout, "fail fast")
        r.fail_fast.append(bool(r.close_frames))

    # -- receiving -------------------------------------------------------------

    async def _read_loop(self) -> None:
        r = self.result
        reader = self.reader
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await reader.readexactly(8))
                masked = bool(b1 & 0x80)
                key = await reader.readexactly(4) if masked else b""
                payload = await reader.readexactly(n)
                if masked:
                    payload = xor_mask(payload, key)
                self._on_frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, payload)
                self._changed.set()
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                r.violations.append("TCP closed in the middle of a frame")
            r.tcp_close_how = "eof"
        except (ConnectionError, OSError) as exc:
            r.tcp_close_how = f"reset ({type(exc).__name__})"
        r.tcp_closed = True
        self._changed.set()

    def _on_frame(self, fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes) -> None:
        r = self.result
        if len(r.log) < 50:
            r.log.append(f"op={opcode:#x} fin={int(fin)} rsv={rsv} len={len(payload)}")
        if r.close_frames:
            r.frames_after_close += 1
            return
        if masked == self.client:
            r.violations.append(
                "masked frame from the server" if masked else "unmasked frame from the client"
            )
        if rsv:
            first = opcode in (TEXT, BINARY)
            if not (rsv == 0b100 and self.allow_rsv1 and first):
                r.violations.append(f"reserved bits {rsv:03b} set on opcode {opcode:#x}")
        if opcode & 0x08:
            if not fin:
                r.violations.append("fragmented control frame")
            if len(payload) > 125:
                r.violations.append("control frame over 125 bytes")
            if opcode == CLOSE:
                r.close_frames.append(payload)
                self._check_close_body(payload)
            elif opcode == PING:
                r.pings.append(payload)
            elif opcode == PONG:
                r.pongs.append(payload)
            else:
                r.violations.append(f"reserved control opcode {opcode:#x}")
            return
        if opcode == CONT:
            if self._msg_opcode is None:
                r.violations.append("continuation frame without a message")
                return
        elif opcode in (TEXT, BINARY):
            if self._msg_opcode is not None:
                r.violations.append("new message inside a fragmented message")
            self._msg_opcode = opcode
            self._msg_parts = []
            self._msg_compressed = rsv == 0b100 and self.allow_rsv1
        else:
            r.violations.append(f"reserved data opcode {opcode:#x}")
            return
        self._msg_parts.append(payload)
        if fin:
            assert self._msg_opcode is not None
            whole = b"".join(self._msg_parts)
            if self._msg_compressed:
                try:
                    whole = self._inflater.decompress(whole + b"\x00\x00\xff\xff")
                except zlib.error as exc:
                    r.violations.append(f"compressed message that does not inflate: {exc}")
            if self._msg_opcode == TEXT:
                try:
                    whole.decode("utf-8")
                except UnicodeDecodeError:
                    r.violations.append("text message that is not UTF-8")
            r.messages.append((self._msg_opcode, whole))
            self._msg_opcode = None
            self._msg_parts = []

    def _check_close_body(self, payload: bytes) -> None:
        r = self.result
        if len(payload) == 1:
            r.violations.append("close frame with a 1-byte body")
        elif len(payload) >= 2:
            (code,) = struct.unpack("!H", payload[:2])
            if not (code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999):
                r.violations.append(f"close code {code} may not be sent")
            try:
                payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                r.violations.append("close reason that is not UTF-8")

    async def _wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.result.notes.append(f"timed out after {timeout} s waiting for {what}")
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return True

    # -- the run ---------------------------------------------------------------

    async def run(self, steps: Sequence[Step]) -> PeerResult:
        """Play ``steps``, finish the closing handshake, close TCP; return what was seen.

        After the steps, the peer waits for the wsevents side's close frame
        (answering it with the same code if the peer had not sent one), then
        for the wsevents side to close (or half-close) TCP, and only then
        closes its own side: a server that waits for the client's FIN
        (RFC 6455 section 7.1.1).
        """
        r = self.result
        reader_task = asyncio.get_running_loop().create_task(self._read_loop())
        try:
            for step in steps:
                if isinstance(step, Send):
                    await self._send(step)
                elif isinstance(step, Wait):
                    await self._wait_for(
                        lambda s=step: (
                            (len(r.messages) >= s.messages and len(r.pongs) >= s.pongs)  # type: ignore[misc]
                            or r.tcp_closed
                        ),
                        step.timeout,
                        f"{step.messages} message(s) and {step.pongs} pong(s)",
                    )
                elif isinstance(step, FailFast):
                    await self._fail_fast(step)
                else:
                    await asyncio.sleep(step.seconds)
            await self._wait_for(lambda: bool(r.close_frames) or r.tcp_closed, WAIT, "a close frame")
            if r.close_frames and r.sent_close is None:
                body = r.close_frames[0][:2]
                r.sent_close = body
                if self._write(render(FrameSpec(CLOSE, body), self._key())):
                    await self._drain()
            await self._wait_for(lambda: r.tcp_closed, WAIT, "the TCP close")
            if r.tcp_closed and self.on_eof is not None:
                self.on_eof(r)
        finally:
            self.writer.close()
            if not reader_task.done():
                reader_task.cancel()
            await asyncio.gather(reader_task, return_exceptions=True)
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 1)
            except (asyncio.TimeoutError, OSError):
                pass
        return r


# -- the two ways in -----------------------------------------------------------------


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return lines[0], headers


def _tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",")}


async def open_client(
    port: int,
    *,
    host: str = "127.0.0.1",
    path: str = "/",
    extensions: str | None = None,
    allow_rsv1: bool = False,
) -> RawPeer:
    """Connect to a wsevents server and do the upgrade by hand; the peer is the client.

    ``extensions`` is sent as ``Sec-WebSocket-Extensions`` (an offer).

    Raises:
        AssertionError: the server did not answer with a valid 101.
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        status, headers = _parse_head(head)
        assert status.startswith("HTTP/1.1 101 "), f"not a 101: {head!r}"
        assert "websocket" in _tokens(headers.get("upgrade")), head
        assert "upgrade" in _tokens(headers.get("connection")), head
        assert headers.get("sec-websocket-accept") == _accept(key), head
    except BaseException:
        writer.transport.abort()
        raise
    peer = RawPeer(reader, writer, client=True, allow_rsv1=allow_rsv1)
    peer.result.handshake = headers
    return peer


class RawServer:
    """Accepts one wsevents client on 127.0.0.1, answers its upgrade by hand, plays ``steps``.

    ``extensions`` is answered as ``Sec-WebSocket-Extensions`` (the
    agreement); ``on_eof`` goes to the :class:`RawPeer`. Use as an async
    context manager; :meth:`result` waits for the run to end.
    """

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        extensions: str | None = None,
        allow_rsv1: bool = False,
        on_eof: Callable[[PeerResult], None] | None = None,
    ) -> None:
        self.steps = steps
        self.extensions = extensions
        self.allow_rsv1 = allow_rsv1
        self.on_eof = on_eof
        self.port = 0
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[PeerResult] | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RawServer:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def result(self, timeout: float = 60.0) -> PeerResult:
        """The run's result, once the connection is over."""
        assert self._result is not None
        return await asyncio.wait_for(asyncio.shield(self._result), timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        assert self._result is not None
        if self._task is not None:
            writer.transport.abort()  # one connection per case
            return
        self._task = asyncio.current_task()  # type: ignore[assignment]
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
            request, headers = _parse_head(head)
            assert request.startswith("GET ") and request.endswith(" HTTP/1.1"), head
            assert "websocket" in _tokens(headers.get("upgrade")), head
            assert "upgrade" in _tokens(headers.get("connection")), head
            assert headers.get("sec-websocket-version") == "13", head
            key = headers.get("sec-websocket-key", "")
            assert len(base64.b64decode(key)) == 16, head
            lines = [
                "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Accept: {_accept(key)}",
            ]
            if self.extensions is not None:
                lines.append(f"Sec-WebSocket-Extensions: {self.extensions}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            peer = RawPeer(reader, writer, client=False, allow_rsv1=self.allow_rsv1, on_eof=self.on_eof)
            peer.result.handshake = headers
            result = await peer.run(self.steps)
        except BaseException as exc:
            if not self._result.done():
                self._result.set_exception(exc)
                self._result.exception()
            if not isinstance(exc, Exception):
                raise
            return
        if not self._result.done():
            self._result.set_result(result)
