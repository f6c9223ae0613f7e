"""The reconnecting wsevents client against Node servers (npm ``ws``, ``nodejs-websocket``) whose
process is killed and started again on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nodepeer import LIBS, NodePeer

import wsevents
from helpers import wait_until
from wsevents import ReadyState


@pytest.fixture
async def peers() -> AsyncIterator[list[NodePeer]]:
    started: list[NodePeer] = []
    yield started
    for peer in started:
        await peer.close()


@pytest.mark.parametrize("lib", LIBS)
async def test_reconnects_after_the_node_server_process_is_killed(lib: str, peers: list[NodePeer]) -> None:
    first = await NodePeer.start("server", lib, echo=True)
    peers.append(first)
    port = first.port
    assert port is not None
    rc = wsevents.connect(
        f"ws://127.0.0.1:{port}/", reconnect=True, reconnect_delay=0.05, reconnect_max_delay=0.2
    )
    log: list[object] = []
    echoes: asyncio.Queue[str] = asyncio.Queue()
    rc.on("connect", lambda: log.append("connect"))
    rc.on("close", lambda code, reason: log.append(("close", code, rc.ready_state)))
    rc.on("text", echoes.put_nowait)
    try:
        await asyncio.wait_for(rc, 10)
        rc.send_text("before")
        assert await asyncio.wait_for(echoes.get(), 10) == "before"

        first.proc.kill()  # no close frame: the client sees 1006
        await asyncio.wait_for(first.proc.wait(), 10)
        peers.append(await NodePeer.start("server", lib, echo=True, port=port))
        await wait_until(lambda: len(log) == 3, 10)
        rc.send_text("after")
        assert await asyncio.wait_for(echoes.get(), 10) == "after"
        assert log == ["connect", ("close", 1006, ReadyState.CONNECTING), "connect"]
    finally:
        await asyncio.wait_for(rc.close(), 10)
    assert rc.ready_state is ReadyState.CLOSED
