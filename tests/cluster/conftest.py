"""A real ``redis-server`` per test, a TCP proxy to cut one process off it or stall it, and room members.

``redis_server`` starts ``redis-server`` on 127.0.0.1, a free port and a
temporary directory, without persistence (``--save '' --appendonly no``: a
restart loses what Redis held, the hardest case for the broker), and stops it
at teardown; ``.stop()`` / ``.start()`` / ``.restart()`` keep the port.
``make test`` installs the Debian package ``redis-server`` when missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from benchmarks.redis_server import RedisServer as RedisProcess

import wsevents


class RedisServer(RedisProcess):
    """One ``redis-server`` process on a fixed port, which may be stopped and started again."""

    def client(self) -> redis.Redis:
        """A plain (synchronous) client, to look at the stream."""
        return redis.Redis(host="127.0.0.1", port=self.port)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running ``redis-server`` on 127.0.0.1 (``.url``), stopped at teardown."""
    with RedisServer(tmp_path) as server:
        yield server


class Proxy:
    """A TCP relay to Redis: a network cut, or a silence, between one process and Redis.

    ``cut()`` drops every connection and refuses new ones until ``mend()``;
    ``stall()`` stops carrying bytes (the connections stay open: packets
    dropped, a half-open connection) until ``resume()``. ``latency``: how long
    each chunk from Redis takes to arrive (a slow link, or a busy process),
    for the connections made after it is set.
    """

    def __init__(self, target_port: int, latency: float = 0.0) -> None:
        self.target_port = target_port
        self.latency = latency
        self.port = 0
        self.cut_off = False
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._writers):
            writer.transport.abort()

    def mend(self) -> None:
        self.cut_off = False

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def close(self) -> None:
        self.flowing.set()  # pipes held by a stall finish (into aborted transports)
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer, self.latency))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float = 0.0
    ) -> None:
        try:
            while data := await reader.read(65536):
                if latency:
                    await asyncio.sleep(latency)
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[Proxy]:
    """A :class:`Proxy` to ``redis_server``: a network cut, or a silence, between one process and Redis."""
    relay = Proxy(redis_server.port)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


class Member:
    """A client connection to a server, in one room, with what it received."""

    def __init__(self, client: wsevents.Connection, side: wsevents.Connection) -> None:
        self.client = client
        self.side = side
        self.got: list[str | bytes] = []
        client.on("message", self.got.append)


async def member(server: wsevents.Server, room: str | None = "r") -> Member:
    """A new client of ``server`` whose server side joined ``room``."""
    accepted: asyncio.Future[wsevents.Connection] = asyncio.get_running_loop().create_future()

    def on_connection(conn: wsevents.Connection) -> None:
        if not accepted.done():
            accepted.set_result(conn)

    server.on("connection", on_connection)
    client = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{server.port}/"), 5)
    side = await asyncio.wait_for(accepted, 5)
    server.off("connection", on_connection)
    if room is not None:
        side.join(room)
    return Member(client, side)


def stream_length(redis_server: RedisServer, cluster: str = "wsevents") -> int:
    with redis_server.client() as client:
        return int(client.xlen(f"wsevents:{cluster}"))

