"""Rooms in one process: join/leave/rooms, publish, broadcast, and servers sharing a LocalBroker."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import wsevents
from wsevents.aio.broker import LocalBroker
from wsevents.aio.rooms import Rooms

KiB = 1024
Until = Callable[..., Awaitable[None]]


class Member:
    """A client connection and its server side, with what the client received."""

    def __init__(self, client: wsevents.Connection, side: wsevents.Connection) -> None:
        self.client = client
        self.side = side
        self.got: list[str | bytes] = []
        client.on("message", self.got.append)


async def members(server: wsevents.Server, n: int, **options: Any) -> list[Member]:
    """``n`` clients of ``server``, each with its server-side connection."""
    accepted: asyncio.Queue[wsevents.Connection] = asyncio.Queue()
    server.on("connection", accepted.put_nowait)
    made = []
    for _ in range(n):
        client = await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{server.port}/", **options), 5)
        made.append(Member(client, await asyncio.wait_for(accepted.get(), 5)))
    server.off("connection", accepted.put_nowait)
    return made


async def close_all(group: list[Member]) -> None:
    for m in group:
        if m.client.ready_state is wsevents.Connection.OPEN:
            await asyncio.wait_for(m.client.close(1000), 5)


async def test_join_leave_and_rooms_snapshot(make_server: Any) -> None:
    server = await make_server()
    [m] = await members(server, 1)
    assert m.side.rooms == frozenset()
    m.side.join("a")
    m.side.join("a")  # idempotent
    m.side.join("b")
    snapshot = m.side.rooms
    assert snapshot == frozenset({"a", "b"})
    m.side.leave("a")
    m.side.leave("a")
    m.side.leave("never joined")
    assert snapshot == frozenset({"a", "b"})  # a snapshot, not a view
    assert m.side.rooms == frozenset({"b"})
    await close_all([m])


async def test_publish_reaches_members_only_and_in_order(make_server: Any, until: Until) -> None:
    server = await make_server()
    a, b, c = await members(server, 3)
    a.side.join("room")
    b.side.join("room")
    assert server.publish("room", "one") == 2
    assert server.publish("room", b"\x00two") == 2
    await until(lambda: len(a.got) == 2 and len(b.got) == 2)
    assert a.got == b.got == ["one", b"\x00two"]
    assert server.broadcast("all") == 3
    await until(lambda: len(c.got) == 1 and len(a.got) == 3)
    assert c.got == ["all"]
    await close_all([a, b, c])


async def test_exclude_one_or_many(make_server: Any, until: Until) -> None:
    server = await make_server()
    group = await members(server, 3)
    for m in group:
        m.side.join("r")
    assert server.publish("r", "not to 0", exclude=group[0].side) == 2
    assert server.publish("r", "only to 2", exclude=[group[0].side, group[1].side]) == 1
    assert server.broadcast("not to 1", exclude={group[1].side}) == 2
    await until(lambda: [len(m.got) for m in group] == [1, 1, 3])
    assert group[0].got == ["not to 1"]
    assert group[1].got == ["not to 0"]
    assert group[2].got == ["not to 0", "only to 2", "not to 1"]
    await close_all(group)


async def test_publish_to_an_empty_or_unknown_room(make_server: Any) -> None:
    server = await make_server()
    assert server.publish("nobody", "hello") == 0
    [m] = await members(server, 1)
    m.side.join("r")
    m.side.leave("r")
    assert server.publish("r", "hello") == 0
    assert len(server._rooms) == 0  # nothing is kept for an empty room
    await close_all([m])


async def test_a_closed_connection_has_left_every_room(make_server: Any, until: Until) -> None:
    server = await make_server()
    stays, goes = await members(server, 2)
    for m in (stays, goes):
        m.side.join("r")
        m.side.join("other")
    await asyncio.wait_for(goes.client.close(1000), 5)
    await asyncio.wait_for(goes.side.wait_closed(), 5)
    assert goes.side.rooms == frozenset()
    assert server._rooms.members("r") == [stays.side]
    goes.side.join("late")  # an ended connection joins nothing
    assert goes.side.rooms == frozenset()
    assert server._rooms.members("late") == []
    assert server.publish("r", "x") == 1
    await close_all([stays])


async def test_rooms_refuse_misuse(make_server: Any, ws_connect: Any) -> None:
    server = await make_server()
    [m] = await members(server, 1)
    with pytest.raises(TypeError, match="room is a str"):
        m.side.join(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="room is a str"):
        server.publish(b"r", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="publish takes a str or a bytes-like"):
        server.publish("r", 1)  # type: ignore[arg-type]
    with pytest.raises(wsevents.InvalidState, match="rooms belong to a server"):
        m.client.join("r")
    assert m.client.rooms == frozenset()
    await close_all([m])


async def test_publish_to_none_is_refused_not_a_broadcast(make_server: Any, until: Until) -> None:
    # A room of None used to make the message a broadcast, to every connection of the server.
    server = await make_server()
    outsider, member = await members(server, 2)
    member.side.join("r")
    with pytest.raises(TypeError, match="room is a str, not NoneType"):
        server.publish(None, "to nobody")  # type: ignore[arg-type]
    assert server.publish("r", "to the room") == 1
    await until(lambda: member.got == ["to the room"])
    assert server.broadcast("to all") == 2
    await until(lambda: outsider.got == ["to all"])  # the refused publish never reached it
    await close_all([outsider, member])


@pytest.mark.parametrize("exclude", [5, "abc", b"ab", ["not a connection"], [None]])
async def test_exclude_of_anything_but_connections_is_refused(make_server: Any, exclude: Any) -> None:
    # A str or a list of ids used to exclude nobody, silently; an int failed with "not iterable".
    server = await make_server()
    [m] = await members(server, 1)
    m.side.join("r")
    with pytest.raises(TypeError, match="exclude takes a Connection or an iterable of Connections"):
        server.publish("r", "x", exclude=exclude)
    with pytest.raises(TypeError, match="exclude takes a Connection or an iterable of Connections"):
        server.broadcast("x", exclude=exclude)
    assert server.publish("r", "x", exclude=iter([m.side])) == 0  # any iterable of connections
    await close_all([m])


async def test_a_slow_member_does_not_hold_up_the_room(make_server: Any, until: Until) -> None:
    server = await make_server({"compression": False, "max_write_buffer": 64 * KiB})
    stalled, *readers = await members(server, 3, compression=False)
    for m in (stalled, *readers):
        m.side.join("r")
    stalled.side.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
    assert stalled.client.transport is not None
    stalled.client.transport.pause_reading()
    closes: list[int] = []
    stalled.side.on("close", lambda code, reason: closes.append(code))
    messages = [os.urandom(32 * KiB) for _ in range(40)]
    for message in messages:
        server.publish("r", message)  # never raises for one member's fault
        await asyncio.sleep(0)
    await until(lambda: closes == [1008])
    await until(lambda: all(len(m.got) == len(messages) for m in readers), 10)
    assert [m.got for m in readers] == [messages, messages]
    assert server.stats["write_overflows"] == 1
    assert stalled.side.rooms == frozenset()
    await close_all(readers)


async def test_compressing_and_plain_members_get_the_same_message(make_server: Any, until: Until) -> None:
    server = await make_server({"compression": True})
    plain, deflating = (await members(server, 1, compression=False)) + (await members(server, 1))
    assert deflating.side.deflate is not None and plain.side.deflate is None
    text = "é" * 4000  # over the compression threshold
    for m in (plain, deflating):
        m.side.join("r")
    assert server.publish("r", text) == 2
    await until(lambda: len(plain.got) == 1 and len(deflating.got) == 1)
    assert plain.got == deflating.got == [text]
    await close_all([plain, deflating])


async def test_servers_sharing_a_local_broker_share_rooms(make_server: Any, until: Until) -> None:
    broker = LocalBroker()
    first = await make_server(broker=broker)
    second = await make_server(broker=broker)
    assert broker.servers == [first, second]
    [a] = await members(first, 1)
    [b] = await members(second, 1)
    a.side.join("r")
    b.side.join("r")
    assert first.publish("r", "from first", exclude=a.side) == 1
    assert second.broadcast("to all") == 2
    await until(lambda: len(a.got) == 1 and len(b.got) == 2)
    assert a.got == ["to all"] and b.got == ["from first", "to all"]
    assert first.stats["broker_published"] == 0  # nothing leaves the process
    await close_all([a, b])
    await asyncio.wait_for(first.close(), 5)
    assert broker.servers == [second]


def test_broker_option_is_checked_at_create_server() -> None:
    with pytest.raises(ValueError, match="redis://"):
        wsevents.create_server(broker="http://localhost")
    with pytest.raises(TypeError, match="broker must be a URL"):
        wsevents.create_server(broker=42)
    with pytest.raises(ValueError, match="cluster must be a non-empty str"):
        wsevents.create_server(cluster="")
    with pytest.raises(ValueError, match="give the cluster to the broker object"):
        broker = LocalBroker()
        broker.cluster = "a"
        wsevents.create_server(broker=broker, cluster="b")


def test_rooms_bookkeeping_both_ways() -> None:
    rooms = Rooms()
    a, b = object(), object()
    rooms.join(a, "x")  # type: ignore[arg-type]
    rooms.join(b, "x")  # type: ignore[arg-type]
    rooms.join(a, "y")  # type: ignore[arg-type]
    assert rooms.members("x") == [a, b]
    rooms.forget(a)  # type: ignore[arg-type]
    assert rooms.members("x") == [b] and rooms.members("y") == []
    assert rooms.of(a) == frozenset()  # type: ignore[arg-type]
    rooms.leave(b, "x")  # type: ignore[arg-type]
    assert len(rooms) == 0
