"""The echo servers under test, one per contender, each written the way its library is fastest.

    python benchmarks/servers.py NAME PORT_FILE [--uvloop]

Every server echoes text and binary messages, and on the text message
``!bcast`` sends one 64-byte text message to every connected client (the
broadcast scenario). ``raw`` is the ceiling: a bare asyncio protocol that
answers with pre-built frames and does only what echo needs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

BCAST = "!bcast"
BCAST_MESSAGE = "B" * 64


async def serve_wsevents(ready: Any) -> None:
    import wsevents

    def on_connection(conn: wsevents.Connection) -> None:
        def on_text(text: str) -> None:
            if text == BCAST:
                server.broadcast(BCAST_MESSAGE)
            else:
                conn.send_text(text)

        async def on_binary(stream: wsevents.InStream) -> None:
            conn.send_binary(await stream.read())

        conn.on("text", on_text)
        conn.on("binary", on_binary)
        conn.on("error", lambda exc: None)

    compression = os.environ.get("BENCH_COMPRESSION") == "1"
    server = wsevents.create_server(
        on_connection,
        compression=compression,
        max_buffer_length=4 << 20,
        ping_interval=None,
        max_queue=10_000,
    )
    await server.listen(0, "127.0.0.1")
    ready(server.port)
    await asyncio.Event().wait()


async def serve_websockets(ready: Any) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            if message == BCAST:
                broadcast(server.connections, BCAST_MESSAGE)
            else:
                await ws.send(message)

    compression = "deflate" if os.environ.get("BENCH_COMPRESSION") == "1" else None
    async with serve(
        handler, "127.0.0.1", 0, compression=compression, max_size=4 << 20, ping_interval=None
    ) as server:
        ready(next(iter(server.sockets)).getsockname()[1])
        await asyncio.Event().wait()


async def serve_aiohttp(ready: Any) -> None:
    from aiohttp import WSMsgType, web

    clients: set[web.WebSocketResponse] = set()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 << 20, autoping=True)
        await ws.prepare(request)
        clients.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if msg.data == BCAST:
                        for other in list(clients):
                            await other.send_str(BCAST_MESSAGE)
                    else:
                        await ws.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
        finally:
            clients.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ready(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.Event().wait()


async def serve_picows(ready: Any) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

    transports: set[WSTransport] = set()
    bcast = BCAST.encode()
    message = BCAST_MESSAGE.encode()

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: WSTransport) -> None:
            transports.add(transport)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            transports.discard(transport)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif frame.msg_type == WSMsgType.TEXT and frame.get_payload_as_bytes() == bcast:
                for other in transports:
                    other.send(WSMsgType.TEXT, message)
            elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
                transport.send(frame.msg_type, frame.get_payload_as_memoryview())

    def factory(request: WSUpgradeRequest) -> Listener:
        return Listener()

    server = await ws_create_server(factory, "127.0.0.1", 0, max_frame_size=8 << 20)
    ready(server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


class RawServer(asyncio.Protocol):
    """The ceiling: handshake by hand, then echo with the least work possible."""

    clients: set[RawServer] = set()
    GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    SMALL = bytes((0x81, 64)) + b"x" * 64
    BROADCAST = bytes((0x81, 64)) + BCAST_MESSAGE.encode()

    def connection_made(self, transport: Any) -> None:
        self.t = transport
        self.buf = b""
        self.open = False

    def connection_lost(self, exc: Exception | None) -> None:
        RawServer.clients.discard(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            key = [
                line.split(b":", 1)[1].strip()
                for line in buf[:end].split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            ][0]
            accept = base64.b64encode(hashlib.sha1(key + self.GUID).digest())
            self.t.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.open = True
            RawServer.clients.add(self)
            buf = buf[end + 4 :]
        pos, n_buf, out = 0, len(buf), []
        while n_buf - pos >= 6:
            b0, b1 = buf[pos], buf[pos + 1]
            n, hl = b1 & 0x7F, 6
            if n == 126:
                if n_buf - pos < 8:
                    break
                n, hl = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 8
            elif n == 127:
                if n_buf - pos < 14:
                    break
                n, hl = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 14
            if n_buf - pos < hl + n:
                break
            opcode = b0 & 0x0F
            if opcode == 8:
                self.t.write(b"\x88\x02\x03\xe8")
                self.t.close()
                return
            if opcode == 1 and n == 64:
                out.append(self.SMALL)  # the pre-built answer
            else:
                key = buf[pos + hl - 4 : pos + hl]
                payload = buf[pos + hl : pos + hl + n]
                value = int.from_bytes(payload, "little") ^ int.from_bytes((key * (n // 4 + 1))[:n], "little")
                payload = value.to_bytes(n, "little")
                if opcode == 1 and payload == BCAST.encode():
                    for client in RawServer.clients:
                        client.t.write(self.BROADCAST)
                else:
                    header = (
                        bytes((0x80 | opcode, n))
                        if n < 126
                        else (
                            bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
                            if n < 65536
                            else bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
                        )
                    )
                    out.append(header + payload)
            pos += hl + n
        if out:
            self.t.write(b"".join(out))
        self.buf = buf[pos:]


async def serve_raw(ready: Any) -> None:
    server = await asyncio.get_running_loop().create_server(RawServer, "127.0.0.1", 0)
    ready(server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


SERVERS = {
    "wsevents": serve_wsevents,
    "websockets": serve_websockets,
    "aiohttp": serve_aiohttp,
    "picows": serve_picows,
    "raw": serve_raw,
}


def main() -> None:
    name, port_file = sys.argv[1], sys.argv[2]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.install()

    def ready(port: int) -> None:
        Path(port_file).write_text(str(port))

    asyncio.run(SERVERS[name](ready))


if __name__ == "__main__":
    main()
