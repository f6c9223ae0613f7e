"""Silences between a process and Redis: a reader whose connection stops carrying data without
being closed (packets dropped, a half-open connection) must say so within seconds and resume, and
a publisher's first message must not wait for a connection's handshake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import wsevents
from wsevents.aio import redis_broker
from wsevents.aio.redis_broker import RedisBroker

from .conftest import RedisServer, member

Until = Callable[..., Awaitable[None]]


class StallingRelay:
    """A TCP relay to Redis; ``stall()`` stops carrying bytes (connections stay open) until ``resume()``.

    ``latency``: how long each chunk from Redis takes to arrive (a slow link, or a busy process).
    """

    def __init__(self, target_port: int, latency: float = 0.0) -> None:
        self.target_port = target_port
        self.latency = latency
        self.port = 0
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

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def close(self) -> None:
        self.flowing.set()  # pipes held by a stall finish (into aborted transports)
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
        except OSError:
            pass
        finally:
            writer.transport.abort()


def broker_of(server: wsevents.Server) -> RedisBroker:
    assert isinstance(server.broker, RedisBroker)
    return server.broker


async def test_a_reader_whose_connection_stops_answering_says_so_and_resumes(
    redis_server: RedisServer,
    make_server: Any,
    until: Until,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without a bound of its own, the reader waited redis-py's 30 s socket timeout: 30 s in which
    # nothing from the other processes arrived and nothing was logged.
    monkeypatch.setattr(redis_broker, "ANSWER_TIMEOUT", 2.0)
    relay = StallingRelay(redis_server.port)
    await relay.start()
    try:
        publisher = await make_server(broker=redis_server.url)
        reader = await make_server(broker=relay.url)
        await until(lambda: broker_of(publisher).connected and broker_of(reader).connected, 10)
        far = await member(reader)
        publisher.publish("r", "before")
        await until(lambda: far.got == ["before"], 10)
        caplog.set_level(logging.WARNING, "wsevents")
        relay.stall()
        publisher.publish("r", "during")
        await until(lambda: reader.stats["broker_outages"] >= 1, 10)
        assert "unreachable" in caplog.text and not broker_of(reader).connected
        assert far.got == ["before"]
        relay.resume()
        await until(lambda: far.got == ["before", "during"], 15)
        await until(lambda: broker_of(reader).connected)
        assert reader.stats["broker_gaps"] == 0
    finally:
        with contextlib.suppress(OSError):
            await relay.close()


async def test_a_publishers_first_message_waits_one_round_trip_not_a_handshake(
    redis_server: RedisServer, make_server: Any, until: Until
) -> None:
    # The writer used to connect at the first publish: the handshake's round trips (and a check of
    # Redis's instance) came first. In a process busy delivering its own publishes to a large room,
    # each round trip waited for the loop, and the other processes got nothing for 30 s.
    latency = 0.4
    relay = StallingRelay(redis_server.port, latency)
    await relay.start()
    try:
        publisher = await make_server(broker=relay.url)
        reader = await make_server(broker=redis_server.url)
        # The publisher's reader needs a round trip more than its writer's connection and check.
        await until(lambda: broker_of(publisher).connected and broker_of(reader).connected, 20)
        far = await member(reader)
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        publisher.publish("r", "first")
        await until(lambda: far.got == ["first"], 10)
        # One round trip to Redis (XADD); a handshake first would take several.
        assert loop.time() - sent_at < 3 * latency
    finally:
        with contextlib.suppress(OSError):
            await relay.close()
