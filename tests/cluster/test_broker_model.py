"""At most once per connection and in order per publisher, over random publish sequences of two
publishers (one of them cut off from Redis part of the time), against a real ``redis-server``."""

from __future__ import annotations

import asyncio
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsevents
from helpers import wait_until
from wsevents.aio.redis_broker import RedisBroker

from .conftest import Member, Proxy, RedisServer, member

Op = tuple[int, bool, bool]  # publisher (0 or 1), broadcast (else publish to "r"), binary

ops_strategy = st.lists(st.tuples(st.integers(0, 1), st.booleans(), st.booleans()), min_size=1, max_size=40)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops_strategy, cut=st.none() | st.tuples(st.integers(0, 40), st.integers(0, 40)))
def test_at_most_once_in_order_per_publisher(
    redis_server: RedisServer, ops: list[Op], cut: tuple[int, int] | None
) -> None:
    asyncio.run(asyncio.wait_for(scenario(redis_server, ops, cut), 30))


async def scenario(redis_server: RedisServer, ops: list[Op], cut: tuple[int, int] | None) -> None:
    proxy = Proxy(redis_server.port)
    await proxy.start()
    cluster = uuid.uuid4().hex  # each example its own stream
    servers = [
        wsevents.create_server(broker=RedisBroker(redis_server.url, cluster=cluster)),
        wsevents.create_server(broker=RedisBroker(proxy.url, cluster=cluster)),  # the one cut off
        wsevents.create_server(broker=RedisBroker(redis_server.url, cluster=cluster)),  # reads only
    ]
    for server in servers:
        await server.listen(0, "127.0.0.1")
    try:
        await wait_until(lambda: all(s.broker is not None and s.broker.connected for s in servers), 10)
        members = [await member(server) for server in servers]
        sent: list[list[str | bytes]] = [[], []]
        cut_from, cut_to = sorted(cut) if cut is not None else (-1, -1)
        for i, (publisher, broadcast, binary) in enumerate(ops):
            if i == cut_from:
                proxy.cut()
            if i == cut_to:
                proxy.mend()
            text = f"{publisher}:{i}"
            message: str | bytes = text.encode() if binary else text
            sent[publisher].append(message)
            if broadcast:
                servers[publisher].broadcast(message)
            else:
                servers[publisher].publish("r", message)
            if i % 7 == 0:
                await asyncio.sleep(0)
        proxy.mend()
        total = len(ops)
        await wait_until(lambda: all(len(m.got) >= total for m in members), 20)
        # A barrier: once it is everywhere, whatever would come twice has come.
        servers[2].publish("r", "end")
        await wait_until(lambda: all(m.got[-1:] == ["end"] for m in members), 10)
        for m in members:
            check(m, sent)
    finally:
        for server in servers:
            for conn in server.connections:
                assert conn.transport is not None
                conn.transport.abort()
        await asyncio.wait_for(asyncio.gather(*(server.close() for server in servers)), 10)
        await proxy.close()


def check(m: Member, sent: list[list[str | bytes]]) -> None:
    got = m.got[:-1]
    assert len(got) == len(sent[0]) + len(sent[1])  # nothing twice, nothing lost
    for publisher in (0, 1):
        mine = [x for x in got if (x.decode() if isinstance(x, bytes) else x).startswith(f"{publisher}:")]
        assert mine == sent[publisher]  # in the publisher's order
