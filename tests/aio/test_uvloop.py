"""wsevents on uvloop (the optional extra): uvloop's transports are not asyncio.Transport
subclasses and it caches ``data_received`` when a connection starts; both broke wsevents once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

BLOB = bytes(range(256)) * 64

SCRIPT = """
import asyncio, uvloop, wsevents
BLOB = bytes(range(256)) * 4096
async def main():
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    def on_connection(conn):
        conn.on("text", conn.send_text)
        async def on_binary(stream):
            conn.send_binary(await stream.read())
        conn.on("binary", on_binary)
    server = await wsevents.create_server(on_connection, max_buffer_length=4 << 20).listen(0, "127.0.0.1")
    for compression in (True, False):
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/", compression=compression,
                                    max_buffer_length=4 << 20) as conn:
            assert (conn.deflate is not None) is compression
            await conn.send("hello")
            assert await asyncio.wait_for(conn.recv(), 5) == "hello"
            await conn.send(BLOB)
            assert await asyncio.wait_for(conn.recv(), 5) == BLOB
        assert conn.close_code == 1000
    await server.close()
    print("ok")
uvloop.install()
asyncio.run(main())
"""


def test_echo_and_close_on_uvloop() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


async def test_the_suite_runs_on_the_loop_it_was_asked_for(make_pair: Any) -> None:
    """``make test`` runs tests/aio and tests/integration a second time with WSEVENTS_TEST_UVLOOP=1:
    that run must really be on uvloop (and the default one on asyncio's own loop), down to the
    transports of both ends, and a whole exchange must work there."""
    expected = "uvloop" if os.environ.get("WSEVENTS_TEST_UVLOOP") else "asyncio"
    assert type(asyncio.get_running_loop()).__module__.partition(".")[0] == expected
    _, server_conn, client = await make_pair()
    for conn in (server_conn, client):
        assert type(conn.transport).__module__.partition(".")[0] == expected
    server_conn.on("text", server_conn.send_text)

    @server_conn.on("binary")
    async def echo_binary(stream: Any) -> None:
        server_conn.send_binary(await stream.read())

    await client.send_text("héllo")
    assert await asyncio.wait_for(client.recv(), 5) == "héllo"
    await client.send_binary(BLOB)
    assert await asyncio.wait_for(client.recv(), 5) == BLOB
    await asyncio.wait_for(client.close(1000, "done"), 5)
    await asyncio.wait_for(server_conn.wait_closed(), 5)
    assert (server_conn.close_code, server_conn.close_reason) == (1000, "done")
    assert client.close_code == 1000
