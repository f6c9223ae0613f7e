"""aiohttp: ``web.WebSocketResponse`` handler, ``async for msg in ws`` and ``send_str`` / ``send_bytes``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from common import BCAST_TEXT, BLOB, CONTROL_PATH, MAX_SIZE, TEXT


async def serve(ready: Callable[[int], None], *, compression: bool, style: str = "") -> None:
    from aiohttp import WSMsgType, web

    clients: set[web.WebSocketResponse] = set()

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=compression, max_msg_size=MAX_SIZE)
        await ws.prepare(request)
        clients.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
        finally:
            clients.discard(ws)
        return ws

    async def control(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=compression, max_msg_size=MAX_SIZE)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for other in list(clients):
                    await other.send_str(BCAST_TEXT)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    app.router.add_get(CONTROL_PATH, control)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ready(runner.addresses[0][1])
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def client(url: str, scenario: str, seconds: float, max_count: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=MAX_SIZE, autoping=True) as ws:
            count = 0
            start = time.perf_counter()
            stop_at = start + seconds
            while count < max_count and time.perf_counter() < stop_at:
                if scenario == "rtt":
                    await ws.send_str(TEXT)
                else:
                    await ws.send_bytes(BLOB)
                await ws.receive()
                count += 1
            elapsed = time.perf_counter() - start
    return count / elapsed if scenario == "rtt" else count * len(BLOB) / elapsed / (1 << 20)
