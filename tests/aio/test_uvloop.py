"""wsevents on uvloop (the optional extra): uvloop's transports are not asyncio.Transport
subclasses and it caches ``data_received`` when a connection starts; both broke wsevents once."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

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
    pytest.importorskip("uvloop")  # a dev dependency: installed wherever the tests run
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


def test_asyncio_policy_is_the_one_under_test() -> None:
    """The in-process suite runs on whatever policy conftest chose (uvloop when asked)."""
    assert asyncio.get_event_loop_policy() is not None
