"""The chat demo across workers: ``wsevents serve --workers 2 --broker redis://...``; two
clients that landed on different workers chat with each other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import wsevents

from .conftest import Redis, Supervisor


async def recv(conn: wsevents.Connection) -> str | bytes:
    return await asyncio.wait_for(conn.recv(), 10)


async def said(conn: wsevents.Connection, expected: str) -> None:
    """The next message of ``conn`` is ``expected``, but for "alice entered": a worker delivers a
    message to the members of the room when it reads it from Redis, so bob, who joined just
    after alice entered in another worker, may get it too."""
    message = await recv(conn)
    if message == "alice entered" != expected:
        message = await recv(conn)
    assert message == expected


async def test_two_clients_on_different_workers_chat(
    redis_server: Redis, supervisor: Callable[..., Supervisor]
) -> None:
    served = supervisor(["serve", "--workers", "2", "--broker", redis_server.url, "--port", "0"])
    assert served.banner.startswith("wsevents chat (2 workers): open http://127.0.0.1:")
    workers = served.worker_pids()
    by_worker: dict[int, wsevents.Connection] = {}
    spare: list[wsevents.Connection] = []
    for _ in range(60):
        conn = await asyncio.wait_for(wsevents.connect(served.url), 10)
        port = conn.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        # Each worker logs the connections it accepts, under its own pid.
        found = await served.wait_log(rf"\[(\d+)\] wsevents connection from \('127.0.0.1', {port}\)")
        pid = int(found.group(1))
        assert pid in workers
        if pid in by_worker:
            spare.append(conn)
        else:
            by_worker[pid] = conn
        if len(by_worker) == 2:
            break
    assert len(by_worker) == 2, "every connection went to one worker"
    for conn in spare:
        await conn.close()
    alice, bob = by_worker.values()

    await alice.send_text("alice")
    await said(alice, "alice entered")
    await bob.send_text("bob")
    await said(bob, "bob entered")
    await said(alice, "bob entered")  # from the other worker, through Redis
    await alice.send_text("hello bob")
    await said(bob, "[alice] hello bob")
    await said(alice, "[alice] hello bob")
    await bob.send_text("hi alice")
    await said(alice, "[bob] hi alice")
    await said(bob, "[bob] hi alice")
    await bob.close()
    await said(alice, "bob left")
    await alice.close()
