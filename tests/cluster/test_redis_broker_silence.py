"""Silences between a process and Redis: a reader whose connection stops carrying data without
being closed (packets dropped, a half-open connection) must say so within seconds and resume, and
a publisher's first message must not wait for a connection's handshake."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import wsevents
from wsevents.aio import redis_broker
from wsevents.aio.redis_broker import RedisBroker

from .conftest import Proxy, RedisServer, member

Until = Callable[..., Awaitable[None]]


def broker_of(server: wsevents.Server) -> RedisBroker:
    assert isinstance(server.broker, RedisBroker)
    return server.broker


async def test_a_reader_whose_connection_stops_answering_says_so_and_resumes(
    redis_server: RedisServer,
    make_server: Any,
    proxy: Proxy,
    until: Until,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without a bound of its own, the reader waited redis-py's 30 s socket timeout: 30 s in which
    # nothing from the other processes arrived and nothing was logged.
    monkeypatch.setattr(redis_broker, "ANSWER_TIMEOUT", 2.0)
    publisher = await make_server(broker=redis_server.url)
    reader = await make_server(broker=proxy.url)
    await until(lambda: broker_of(publisher).connected and broker_of(reader).connected, 10)
    far = await member(reader)
    publisher.publish("r", "before")
    await until(lambda: far.got == ["before"], 10)
    caplog.set_level(logging.WARNING, "wsevents")
    proxy.stall()
    publisher.publish("r", "during")
    await until(lambda: reader.stats["broker_outages"] >= 1, 10)
    assert "unreachable" in caplog.text and not broker_of(reader).connected
    assert far.got == ["before"]
    proxy.resume()
    await until(lambda: far.got == ["before", "during"], 15)
    await until(lambda: broker_of(reader).connected)
    assert reader.stats["broker_gaps"] == 0


async def test_a_publishers_first_message_waits_one_round_trip_not_a_handshake(
    redis_server: RedisServer, make_server: Any, proxy: Proxy, until: Until
) -> None:
    # The writer used to connect at the first publish: the handshake's round trips (and a check of
    # Redis's instance) came first. In a process busy delivering its own publishes to a large room,
    # each round trip waited for the loop, and the other processes got nothing for 30 s.
    latency = proxy.latency = 0.4
    publisher = await make_server(broker=proxy.url)
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
