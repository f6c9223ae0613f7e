"""websockets (its asyncio implementation): ``serve``, ``async for message in ws: await ws.send(message)``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from common import BCAST_TEXT, BLOB, CONTROL_PATH, MAX_SIZE, TEXT


async def serve(ready: Callable[[int], None], *, compression: bool, style: str = "") -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws: ServerConnection) -> None:
        try:
            if ws.request is not None and ws.request.path == CONTROL_PATH:
                async for _ in ws:
                    broadcast(server.connections, BCAST_TEXT)
            else:
                async for message in ws:
                    await ws.send(message)
        except ConnectionClosed:
            pass

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression="deflate" if compression else None,
        max_size=MAX_SIZE,
        ping_interval=None,
    ) as server:
        ready(next(iter(server.sockets)).getsockname()[1])
        await asyncio.Event().wait()


async def client(url: str, scenario: str, seconds: float, max_count: int) -> float:
    from websockets.asyncio.client import connect

    message: str | bytes = TEXT if scenario == "rtt" else BLOB
    async with connect(url, compression=None, max_size=MAX_SIZE, ping_interval=None) as ws:
        count = 0
        start = time.perf_counter()
        stop_at = start + seconds
        while count < max_count and time.perf_counter() < stop_at:
            await ws.send(message)
            await ws.recv()
            count += 1
        elapsed = time.perf_counter() - start
    return count / elapsed if scenario == "rtt" else count * len(BLOB) / elapsed / (1 << 20)
