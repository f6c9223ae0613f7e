"""Scenario 8: each library's *client* against one fixed server (the raw server).

    python benchmarks/clients.py LIB PORT SECONDS [--uvloop]

Prints JSON: ``rtt`` (serial 64-byte text round trips per second) and ``big``
(MiB/s of serial 1 MiB binary echoes).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

TEXT = "x" * 64
BLOB = bytes(range(256)) * 4096


async def bench_wsevents(url: str, seconds: float) -> dict[str, float]:
    import wsevents

    out: dict[str, float] = {}
    compression = os.environ.get("BENCH_COMPRESSION") == "1"
    async with wsevents.connect(
        url, compression=compression, ping_interval=None, max_buffer_length=4 << 20
    ) as conn:
        for name, message, unit in (("rtt", TEXT, 1.0), ("big", BLOB, 1.0)):
            count = 0
            stop_at = time.perf_counter() + seconds
            start = time.perf_counter()
            while time.perf_counter() < stop_at:
                conn.send(message)
                await conn.recv()
                count += 1
            out[name] = count * unit / (time.perf_counter() - start)
    return out


async def bench_websockets(url: str, seconds: float) -> dict[str, float]:
    from websockets.asyncio.client import connect

    out: dict[str, float] = {}
    compression = "deflate" if os.environ.get("BENCH_COMPRESSION") == "1" else None
    async with connect(url, compression=compression, ping_interval=None, max_size=4 << 20) as ws:
        for name, message in (("rtt", TEXT), ("big", BLOB)):
            count = 0
            stop_at = time.perf_counter() + seconds
            start = time.perf_counter()
            while time.perf_counter() < stop_at:
                await ws.send(message)
                await ws.recv()
                count += 1
            out[name] = count / (time.perf_counter() - start)
    return out


async def bench_aiohttp(url: str, seconds: float) -> dict[str, float]:
    import aiohttp

    out: dict[str, float] = {}
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=4 << 20) as ws:
        for name, message in (("rtt", TEXT), ("big", BLOB)):
            count = 0
            stop_at = time.perf_counter() + seconds
            start = time.perf_counter()
            while time.perf_counter() < stop_at:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(message)
                await ws.receive()
                count += 1
            out[name] = count / (time.perf_counter() - start)
    return out


async def bench_picows(url: str, seconds: float) -> dict[str, float]:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    out: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    class Listener(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.count = 0
            self.stop_at = 0.0
            self.msg_type: Any = WSMsgType.TEXT
            self.payload = TEXT.encode()
            self.done: asyncio.Future[None] = loop.create_future()

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            self.count += 1
            if time.perf_counter() < self.stop_at:
                transport.send(self.msg_type, self.payload)
            elif not self.done.done():
                self.done.set_result(None)

    transport, listener = await ws_connect(Listener, url, max_frame_size=8 << 20)
    for name, msg_type, payload in (("rtt", WSMsgType.TEXT, TEXT.encode()), ("big", WSMsgType.BINARY, BLOB)):
        listener.count, listener.msg_type, listener.payload = 0, msg_type, payload
        listener.done = loop.create_future()
        start = time.perf_counter()
        listener.stop_at = start + seconds
        transport.send(msg_type, payload)
        await asyncio.wait_for(listener.done, seconds + 30)
        out[name] = listener.count / (time.perf_counter() - start)
    transport.send_close()
    transport.disconnect()
    return out


CLIENTS = {
    "wsevents": bench_wsevents,
    "websockets": bench_websockets,
    "aiohttp": bench_aiohttp,
    "picows": bench_picows,
}


def main() -> None:
    lib, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.install()
    result = asyncio.run(CLIENTS[lib](f"ws://127.0.0.1:{port}/", seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
