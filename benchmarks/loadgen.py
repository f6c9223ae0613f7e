"""The load generator used for every server: raw asyncio protocols sending pre-built, pre-masked frames.

It does no WebSocket work beyond counting frame boundaries, so that each figure
measures the server; the ``raw`` server shows the ceiling this generator (and
the kernel) allow. Run under uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

KEY = b"\x12\x34\x56\x78"
HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + base64.b64encode(b"0123456789abcdef") + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    value = int.from_bytes(payload, "little") ^ int.from_bytes((KEY * (n // 4 + 1))[:n], "little")
    return header + KEY + value.to_bytes(n, "little")


SMALL = masked_frame(1, b"x" * 64)
BIG = masked_frame(2, bytes(range(256)) * 4096)  # 1 MiB
BCAST = masked_frame(1, b"!bcast")
CLOSE = masked_frame(8, b"\x03\xe8")


class Client(asyncio.Protocol):
    """A raw client; ``on_frame`` is called once per whole frame received."""

    def __init__(self) -> None:
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.skip = 0  # payload bytes of the current frame still to come
        self.frames = 0
        self.on_frame = lambda: None
        self.t: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        self.t.write(HANDSHAKE)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            data = self.buf + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            self.buf = b""
            self.opened.set_result(None)
            data = data[end + 4 :]
        pos, n = 0, len(data)
        if self.skip:
            take = min(self.skip, n)
            self.skip -= take
            pos = take
            if self.skip == 0:
                self.frames += 1
                self.on_frame()
        if self.buf:
            data, pos, n = self.buf + data[pos:], 0, len(self.buf) + n - pos
            self.buf = b""
        while pos < n:
            if n - pos < 2:
                self.buf = data[pos:]
                return
            length, hl = data[pos + 1] & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    self.buf = data[pos:]
                    return
                length, hl = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    self.buf = data[pos:]
                    return
                length, hl = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if n - pos - hl < length:
                self.skip = length - (n - pos - hl)
                return
            pos += hl + length
            self.frames += 1
            self.on_frame()


async def connect(port: int) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(Client, "127.0.0.1", port)
    await asyncio.wait_for(client.opened, 10)
    return client


async def _serial(clients: list[Client], frame: bytes, seconds: float, in_flight: int = 1) -> float:
    """Each client keeps ``in_flight`` frames outstanding; returns frames echoed per second."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    start = time.perf_counter()
    stop_at = start + seconds
    total = [0]

    def make(client: Client) -> None:
        def on_frame() -> None:
            total[0] += 1
            if time.perf_counter() < stop_at:
                client.t.write(frame)
            elif not done.done():
                done.set_result(None)

        client.on_frame = on_frame

    for client in clients:
        make(client)
        client.t.write(frame * in_flight)
    await asyncio.wait_for(done, seconds + 30)
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.05)  # let the last frames in flight land
    for client in clients:
        client.on_frame = lambda: None
    return total[0] / elapsed


async def _close_all(clients: list[Client]) -> None:
    for client in clients:
        client.t.abort()
    await asyncio.sleep(0.05)


async def rtt(port: int, seconds: float) -> float:
    clients = [await connect(port)]
    try:
        return await _serial(clients, SMALL, seconds)
    finally:
        await _close_all(clients)


async def pipelined(port: int, seconds: float) -> float:
    clients = [await connect(port)]
    try:
        return await _serial(clients, SMALL, seconds, in_flight=100)
    finally:
        await _close_all(clients)


async def many(port: int, seconds: float) -> float:
    clients = list(await asyncio.gather(*(connect(port) for _ in range(100))))
    try:
        return await _serial(clients, SMALL, seconds)
    finally:
        await _close_all(clients)


async def big(port: int, seconds: float) -> float:
    """MiB/s of 1 MiB binary echoes."""
    clients = [await connect(port)]
    try:
        return await _serial(clients, BIG, seconds)
    finally:
        await _close_all(clients)


async def handshakes(port: int, seconds: float) -> float:
    """Open + close (closing handshake, TCP close) per second, 10 at a time."""
    count = [0]
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            client = await connect(port)
            client.t.write(CLOSE)
            try:
                await asyncio.wait_for(client.closed, 5)
            finally:
                client.t.abort()
            count[0] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(10)))
    return count[0] / (time.perf_counter() - start)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def idle_memory(port: int, pid: int, n: int) -> float:
    """Server RSS added per idle connection, in KiB."""
    warm = [await connect(port) for _ in range(20)]  # first-connection allocations out of the way
    await asyncio.sleep(0.2)
    before = rss_kib(pid)
    clients: list[Client] = []
    for i in range(0, n, 100):
        clients += await asyncio.gather(*(connect(port) for _ in range(min(100, n - i))))
    await asyncio.sleep(0.5)
    after = rss_kib(pid)
    await _close_all(clients + warm)
    await asyncio.sleep(0.3)
    return (after - before) / n


async def broadcast(port: int, n: int, rounds: int) -> float:
    """Deliveries per second: one message to ``n`` clients, ``rounds`` times, each round waited for."""
    clients: list[Client] = []
    for i in range(0, n, 100):
        clients += await asyncio.gather(*(connect(port) for _ in range(min(100, n - i))))
    loop = asyncio.get_running_loop()
    try:
        remaining = [0]
        round_done: list[asyncio.Future[None]] = [loop.create_future()]

        def on_frame() -> None:
            remaining[0] -= 1
            if remaining[0] == 0 and not round_done[0].done():
                round_done[0].set_result(None)

        for client in clients:
            client.on_frame = on_frame
        start = time.perf_counter()
        for _ in range(rounds):
            remaining[0] = n
            round_done[0] = loop.create_future()
            clients[0].t.write(BCAST)
            await asyncio.wait_for(round_done[0], 30)
        return n * rounds / (time.perf_counter() - start)
    finally:
        await _close_all(clients)


def use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    uvloop.install()
    return "uvloop"


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
