"""The raw limit: a plain asyncio Protocol that parses just enough to echo.

A complete client frame that carries one of the benchmark payloads (the 64-byte
text, the 1 MiB binary) is answered with a pre-built server frame: its payload is
never unmasked, nor even kept (a large frame is counted through, not buffered).
Other frames (the broadcast trigger, close, ping) are unmasked and handled. So
every figure of this server is what the load generator, the event loop and the
kernel allow: the ceiling the other servers are read against.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from typing import Any

from common import BCAST_TEXT, BLOB, CONTROL_PATH, TEXT, server_frame

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: (first header byte, payload length) of a known client frame -> the pre-built answer.
PREBUILT = {
    (0x81, len(TEXT)): server_frame(1, TEXT.encode()),
    (0x82, len(BLOB)): server_frame(2, BLOB),
}
BROADCAST = server_frame(1, BCAST_TEXT.encode())
CLOSE = server_frame(8, b"\x03\xe8")


def unmask(key: bytes, payload: bytes) -> bytes:
    n = len(payload)
    value = int.from_bytes(payload, "little") ^ int.from_bytes((key * (n // 4 + 1))[:n], "little")
    return value.to_bytes(n, "little")


class RawServer(asyncio.Protocol):
    clients: set[RawServer] = set()

    def __init__(self) -> None:
        self.open = False
        self.control = False
        self.pending = b""  # an incomplete frame header (or HTTP head)
        self.skip = 0  # payload bytes of the current frame still to come
        self.reply: bytes | None = None  # what to answer when the skipped frame is complete
        self.parts: list[bytes] = []  # payload of an incomplete frame of the slow path
        self.b0 = 0
        self.key = b""
        self.t: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def connection_lost(self, exc: Exception | None) -> None:
        RawServer.clients.discard(self)

    def _handshake(self, data: bytes) -> bytes | None:
        data = self.pending + data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.pending = data
            return None
        self.pending = b""
        lines = data[:end].split(b"\r\n")
        path = lines[0].split(b" ")[1]
        key = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.t.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.open = True
        if path == CONTROL_PATH.encode():
            self.control = True
        else:
            RawServer.clients.add(self)
        return data[end + 4 :]

    def _slow(self, b0: int, key: bytes, payload: bytes) -> None:
        opcode = b0 & 0x0F
        payload = unmask(key, payload)
        if opcode == 8:
            self.t.write(CLOSE)
            self.t.close()
        elif opcode == 9:
            self.t.write(server_frame(10, payload))
        elif opcode == 1 and self.control:
            for client in RawServer.clients:
                client.t.write(BROADCAST)
        elif opcode in (1, 2):
            self.t.write(server_frame(opcode, payload))

    def data_received(self, data: bytes) -> None:
        if not self.open:
            rest = self._handshake(data)
            if rest is None:
                return
            data = rest
        pos, n = 0, len(data)
        if self.skip:
            take = self.skip if self.skip < n else n
            self.skip -= take
            pos = take
            if self.reply is None:
                self.parts.append(data[:take])
            if self.skip:
                return
            if self.reply is not None:
                self.t.write(self.reply)
                self.reply = None
            else:
                payload = b"".join(self.parts)
                self.parts = []
                self._slow(self.b0, self.key, payload)
        if self.pending:
            data, pos = self.pending + data[pos:], 0
            n = len(data)
            self.pending = b""
        out = []
        while n - pos >= 6:
            b0 = data[pos]
            length = data[pos + 1] & 0x7F
            hl = 6
            if length == 126:
                if n - pos < 8:
                    break
                length, hl = int.from_bytes(data[pos + 2 : pos + 4], "big"), 8
            elif length == 127:
                if n - pos < 14:
                    break
                length, hl = int.from_bytes(data[pos + 2 : pos + 10], "big"), 14
            end = pos + hl + length
            reply = PREBUILT.get((b0, length))
            if reply is not None:
                if end <= n:
                    out.append(reply)
                    pos = end
                    continue
                self.skip, self.reply, pos = end - n, reply, n
                break
            if out:
                self.t.write(b"".join(out))
                out = []
            if end <= n:
                self._slow(b0, data[pos + hl - 4 : pos + hl], data[pos + hl : end])
                if self.t.is_closing():
                    return
                pos = end
                continue
            self.b0, self.key = b0, data[pos + hl - 4 : pos + hl]
            self.parts = [data[pos + hl :]]
            self.skip, pos = end - n, n
            break
        if out:
            self.t.write(out[0] if len(out) == 1 else b"".join(out))
        if pos < n:
            self.pending = data[pos:]


async def serve(ready: Callable[[int], None], *, compression: bool, style: str = "") -> None:
    if compression:
        raise ValueError("the raw-limit server does no compression")
    server = await asyncio.get_running_loop().create_server(RawServer, "127.0.0.1", 0, backlog=511)
    ready(server.sockets[0].getsockname()[1])
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
