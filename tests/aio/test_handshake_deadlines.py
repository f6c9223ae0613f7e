"""handshake_timeout on the server: one timer for every connection still in its handshake
(aio/deadlines.py), timing each out at its own deadline as a timer per connection did."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import wsevents
from wsevents.aio.deadlines import Deadlines

# A loop may run a timer up to its clock's resolution early (uvloop's clock counts milliseconds).
EARLY = 0.002


class Expiries:
    """What a :class:`Deadlines` expired, when (loop time), and an event per connection."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.at: dict[str, float] = {}
        self.events: dict[str, asyncio.Event] = {}

    def __call__(self, conn: str) -> None:
        self.at[conn] = self.loop.time()
        self.event(conn).set()

    def event(self, conn: str) -> asyncio.Event:
        return self.events.setdefault(conn, asyncio.Event())

    async def wait(self, conn: str) -> float:
        await asyncio.wait_for(self.event(conn).wait(), 5)
        return self.at[conn]


async def test_each_connection_expires_at_its_own_deadline() -> None:
    expired = Expiries()
    deadlines: Deadlines[str] = Deadlines(expired.loop, expired)
    first = expired.loop.time()
    deadlines.add("a", 0.1)
    await asyncio.sleep(0.05)
    second = expired.loop.time()
    deadlines.add("b", 0.1)
    at_a = await expired.wait("a")
    assert "b" not in expired.at  # not taken along with the first one
    at_b = await expired.wait("b")
    assert at_a >= first + 0.1 - EARLY
    assert at_b >= second + 0.1 - EARLY
    assert len(deadlines) == 0


async def test_a_discarded_connection_does_not_expire() -> None:
    expired = Expiries()
    deadlines: Deadlines[str] = Deadlines(expired.loop, expired)
    deadlines.add("opened", 0.05)
    deadlines.add("probe", 0.1)
    deadlines.discard("opened")
    await expired.wait("probe")
    assert list(expired.at) == ["probe"]


async def test_a_shorter_timeout_added_later_expires_first() -> None:
    """handshake_timeout lowered while a connection waits: the later, shorter deadline is kept."""
    expired = Expiries()
    deadlines: Deadlines[str] = Deadlines(expired.loop, expired)
    deadlines.add("slow", 10)
    added = expired.loop.time()
    deadlines.add("fast", 0.05)
    deadlines.add("fast too", 0.05)
    assert await expired.wait("fast") >= added + 0.05 - EARLY
    await expired.wait("fast too")
    assert "slow" not in expired.at and len(deadlines) == 1
    deadlines.cancel()
    assert len(deadlines) == 0


async def test_cancel_forgets_every_deadline() -> None:
    expired = Expiries()
    deadlines: Deadlines[str] = Deadlines(expired.loop, expired)
    deadlines.add("a", 0.05)
    deadlines.cancel()
    deadlines.add("probe", 0.1)  # the timer is set again for it
    await expired.wait("probe")
    assert list(expired.at) == ["probe"]


async def test_connections_due_together_expire_in_the_order_they_came() -> None:
    expired = Expiries()
    deadlines: Deadlines[str] = Deadlines(expired.loop, expired)
    names = [f"c{i}" for i in range(50)]
    for name in names:
        deadlines.add(name, 0.05)
    await expired.wait(names[-1])
    assert list(expired.at) == names


# -- on a server -----------------------------------------------------------------------------


async def test_a_silent_client_is_dropped_at_handshake_timeout(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"handshake_timeout": 0.3})
    start = time.perf_counter()
    reader, _ = await raw_ws.connect_raw(server.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert time.perf_counter() - start >= 0.3 - EARLY
    assert not server._live and len(server._deadlines) == 0


async def test_a_lowered_handshake_timeout_applies_to_the_next_connections(
    make_server: Any, raw_ws: Any
) -> None:
    server = await make_server({"handshake_timeout": 30})
    early, _ = await raw_ws.connect_raw(server.port)
    await raw_ws.connect_raw(server.port)  # so that the first one is surely in before the change
    server.options.handshake_timeout = 0.2
    start = time.perf_counter()
    late, _ = await raw_ws.connect_raw(server.port)
    assert await asyncio.wait_for(late.read(), 5) == b""
    assert time.perf_counter() - start >= 0.2 - EARLY
    assert not early.at_eof()  # its 30 s still run
    assert len(server._deadlines) == 2


async def test_an_open_connection_outlives_handshake_timeout(make_server: Any, raw_ws: Any) -> None:
    server = await make_server({"handshake_timeout": 0.2, "compression": False})
    server.on("connection", lambda conn: conn.on("text", conn.send_text))
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/", compression=False) as client:
        silent, _ = await raw_ws.connect_raw(server.port)  # came later: its deadline is later
        assert await asyncio.wait_for(silent.read(), 5) == b""
        await client.send_text("still here")
        assert await asyncio.wait_for(client.recv(), 5) == "still here"
    assert len(server._deadlines) == 0


async def test_a_refused_client_that_lingers_is_dropped_at_handshake_timeout(
    make_server: Any, raw_ws: Any, until: Any
) -> None:
    """The refusal's answer is written; a client that then does not close is still dropped at
    handshake_timeout (before close_timeout ends the linger)."""
    server = await make_server({"handshake_timeout": 0.3, "close_timeout": 30})
    start = time.perf_counter()
    reader, writer = await raw_ws.connect_raw(server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not an upgrade: 426
    answer = await asyncio.wait_for(reader.read(), 5)  # the server half-closed after it
    assert answer.startswith(b"HTTP/1.1 426 ")
    assert server._live  # lingering, until the client closes or a timeout
    await until(lambda: not server._live)
    assert 0.3 - EARLY <= time.perf_counter() - start < 10
    assert len(server._deadlines) == 0
