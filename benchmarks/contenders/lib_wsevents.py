"""wsevents: the echo server in event style (used in the tables) or async style.

Event style, as in nodejs-websocket: ``conn.on("text", conn.send_text)``, so a text message
goes from the core's parser to the send without a task switch, and a ``"binary"`` listener
that reads the message's ``InStream`` whole and sends it back (no task per connection).
Async style: one task per connection doing ``async for message in conn: await
conn.send(message)``. The event style is the faster on rtt and 100 connections, the async
style on pipelined (run.py's style table shows both). The client (scenario 8) is in event
style too: each echo's ``"message"`` listener sends the next message, as picows's client
sends from its frame callback.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from common import BCAST_TEXT, BLOB, CONTROL_PATH, MAX_SIZE, TEXT

#: Set (to anything) by run.py's ``--aiofastnet`` row: serve on aiofastnet's transports.
AIOFASTNET_ENV = "WSEVENTS_BENCH_AIOFASTNET"


def _options(compression: bool) -> dict[str, Any]:
    return {"compression": compression, "max_buffer_length": MAX_SIZE, "ping_interval": None}


async def serve(ready: Callable[[int], None], *, compression: bool, style: str = "event") -> None:
    import wsevents

    if os.environ.get(AIOFASTNET_ENV):
        # run.py --aiofastnet: the same server on aiofastnet's transports instead of asyncio's
        # (benchmarks/README.md, "Fast transports"); without aiofastnet installed the row fails.
        import aiofastnet

        aiofastnet.patch_loop(asyncio.get_running_loop())

    def broadcast(_: object) -> None:
        if hasattr(server, "broadcast"):
            server.broadcast(BCAST_TEXT)
        else:  # before Server.broadcast existed
            for other in server.connections:
                other.send_text(BCAST_TEXT)

    async def echo_async(conn: wsevents.Connection) -> None:
        try:
            async for message in conn:
                await conn.send(message)
        except wsevents.ConnectionClosed:
            pass

    def on_connection(conn: wsevents.Connection) -> None:
        conn.on("error", lambda exc: None)
        if conn.path == CONTROL_PATH:
            conn.on("text", broadcast)
        elif style == "event":
            conn.on("text", conn.send_text)

            async def on_binary(stream: wsevents.InStream) -> None:  # a coroutine listener runs as a task
                conn.send_binary(await stream.read())

            conn.on("binary", on_binary)
        elif style == "async":
            conn.on("connect", lambda: echo_async(conn))
        else:
            raise ValueError(f"unknown style {style!r}")

    server = wsevents.create_server(on_connection, **_options(compression))
    await server.listen(0, "127.0.0.1")
    ready(server.port)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()


async def client(url: str, scenario: str, seconds: float, max_count: int) -> float:
    """Event style, as the server: each echo's ``"message"`` sends the next message (picows's
    client does the same from its frame callback; websockets and aiohttp await each call)."""
    import wsevents

    loop = asyncio.get_running_loop()
    message: str | bytes = TEXT if scenario == "rtt" else BLOB
    done: asyncio.Future[None] = loop.create_future()
    count = 0
    stop_at = end = 0.0
    async with wsevents.connect(url, **_options(False)) as conn:

        def on_message(_: object) -> None:
            nonlocal count, end
            count += 1
            if count < max_count and time.perf_counter() < stop_at:
                conn.send(message)
            elif not done.done():
                end = time.perf_counter()
                done.set_result(None)

        conn.on("message", on_message)
        start = time.perf_counter()
        stop_at = start + seconds
        conn.send(message)
        await asyncio.wait_for(done, seconds + 30)
    elapsed = end - start
    return count / elapsed if scenario == "rtt" else count * len(BLOB) / elapsed / (1 << 20)
