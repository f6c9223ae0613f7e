"""run() drives uvloop when it is installed, unless WSEVENTS_NO_UVLOOP=1."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import asyncio, wsevents
async def main():
    server = await wsevents.create_server(lambda c: c.on("text", c.send_text)).listen(0, "127.0.0.1")
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as conn:
        await conn.send_text("hi")
        assert await conn.recv() == "hi"
    server.close()
    return type(asyncio.get_running_loop()).__module__
print(wsevents.run(main()))
"""


@pytest.mark.parametrize(("env", "expected"), [({}, "uvloop"), ({"WSEVENTS_NO_UVLOOP": "1"}, "asyncio")])
def test_run_picks_up_uvloop_unless_disabled(env: dict[str, str], expected: str) -> None:
    pytest.importorskip("uvloop")  # a dev dependency: installed wherever the tests run
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().split(".")[0] == expected
