"""What an idle server connection costs in memory (issue 11: the lowest idle memory per connection).

Measured with tracemalloc, not with the process RSS (which moves by whole pages and arenas):
the Python memory allocated under wsevents' own code, and still held, per extra open and
silent connection. The transport and socket that the event loop makes are not counted (on
uvloop they are not Python allocations at all), so the figure is the same on every loop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc

import wsevents
from helpers import MakeServer, wait_until

_SRC = os.path.dirname(os.path.abspath(wsevents.__file__))
_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
_CONNECTIONS = 100
# Bytes per idle connection: about 2,100 measured (Python 3.11, 64-bit), 5,280 before the
# connection kept its state in slots and made its recv() queue, its closed future, its set of
# dropped kinds and a second copy of its headers only when needed.
_BOUND = 2_600


async def _open(port: int, count: int) -> list[asyncio.StreamWriter]:
    """``count`` raw WebSocket connections whose handshake is done; they send nothing more."""
    writers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        writers.append(writer)
    return writers


def _held_by_wsevents() -> int:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, os.path.join(_SRC, "*"), all_frames=True)]
    )
    return sum(trace.size for trace in snapshot.traces)


async def test_an_idle_server_connection_holds_little_memory(make_server: MakeServer) -> None:
    server = await make_server(ping_interval=None)
    # Served by listeners, as an event-style application is (nothing is queued for recv()).
    server.on("connection", lambda conn: conn.on("text", conn.send_text))
    port = server.port
    assert port is not None
    warm = await _open(port, 10)
    await wait_until(lambda: len(server.connections) == 10)
    writers: list[asyncio.StreamWriter] = []
    gc.collect()
    tracemalloc.start(25)
    try:
        before = _held_by_wsevents()
        writers = await _open(port, _CONNECTIONS)
        await wait_until(lambda: len(server.connections) == 10 + _CONNECTIONS)
        gc.collect()
        per_connection = (_held_by_wsevents() - before) / _CONNECTIONS
    finally:
        tracemalloc.stop()
        for writer in warm + writers:
            writer.close()
    assert per_connection < _BOUND, f"{per_connection:.0f} bytes per idle connection"
