"""picows: ``WSListener`` callbacks; ``on_ws_frame`` sends the payload straight back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from common import BCAST_TEXT, BLOB, CONTROL_PATH, MAX_SIZE, TEXT


async def serve(ready: Callable[[int], None], *, compression: bool, style: str = "") -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

    if compression:
        raise ValueError("picows has no permessage-deflate")
    transports: set[WSTransport] = set()
    bcast = BCAST_TEXT.encode()
    control_path = CONTROL_PATH.encode()

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: WSTransport) -> None:
            transports.add(transport)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            transports.discard(transport)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            msg_type = frame.msg_type
            if msg_type == WSMsgType.TEXT or msg_type == WSMsgType.BINARY:
                transport.send(msg_type, frame.get_payload_as_memoryview())
            elif msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

    class Control(Echo):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                for other in transports:
                    other.send(WSMsgType.TEXT, bcast)
            else:
                super().on_ws_frame(transport, frame)

    def factory(request: WSUpgradeRequest) -> WSListener:
        return Control() if request.path == control_path else Echo()

    server = await ws_create_server(factory, "127.0.0.1", 0, max_frame_size=MAX_SIZE)
    ready(server.sockets[0].getsockname()[1])
    try:
        await asyncio.Event().wait()
    finally:
        server.close()


async def client(url: str, scenario: str, seconds: float, max_count: int) -> float:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    loop = asyncio.get_running_loop()
    msg_type: Any = WSMsgType.TEXT if scenario == "rtt" else WSMsgType.BINARY
    payload = TEXT.encode() if scenario == "rtt" else BLOB

    class Client(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.count = 0
            self.stop_at = 0.0
            self.end = 0.0
            self.done: asyncio.Future[None] = loop.create_future()

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type != msg_type:
                return
            self.count += 1
            if self.count < max_count and time.perf_counter() < self.stop_at:
                transport.send(msg_type, payload)
            elif not self.done.done():
                self.end = time.perf_counter()
                self.done.set_result(None)

    transport, listener = await ws_connect(Client, url, max_frame_size=MAX_SIZE)
    try:
        start = time.perf_counter()
        listener.stop_at = start + seconds
        transport.send(msg_type, payload)
        await asyncio.wait_for(listener.done, seconds + 30)
        elapsed = listener.end - start
    finally:
        transport.send_close()
        transport.disconnect()
    count = listener.count
    return count / elapsed if scenario == "rtt" else count * len(BLOB) / elapsed / (1 << 20)
