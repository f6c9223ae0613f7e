"""docs/tutorial.md is true: each program prints what its comments say (tests/test_docs.py also runs
them), and the server that step 5 makes of step 4 serves browsers until Ctrl-C."""

from __future__ import annotations

import asyncio
import functools
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import wsevents

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


def programs() -> list[str]:
    return re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), re.S)


@functools.cache
def output(index: int) -> list[str]:
    done = subprocess.run([sys.executable, "-c", programs()[index]], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def commented(index: int) -> list[str]:
    """What the program's comments say it prints: the comment after each ``print(...)``, and the
    comment lines (``# text``) that follow the code."""
    said = []
    for line in programs()[index].splitlines():
        if line.startswith("# "):
            said.append(line[2:])
        elif "print(" in line and "  # " in line:
            said.append(line.rsplit("  # ", 1)[1].strip())
    return said


def test_the_tutorial_has_its_three_programs() -> None:
    assert len(programs()) == 3
    assert "## 5. Run it for real" in TUTORIAL.read_text()


def test_echo_prints_what_its_comments_say() -> None:
    assert output(0) == commented(0) == [
        "server: a client connected to /echo",
        "client: the server answered hello",
    ]


def test_chat_prints_what_its_comments_say() -> None:
    assert output(1) == [
        "ann reads: ann entered",
        "bob reads: bob entered",
        "ann reads: bob entered",
        "bob reads: [ann] hi bob",
        "bob reads: ann left",
    ]
    assert [line.split(": ", 1)[1] for line in output(1)] == commented(1)


def test_browser_chat_prints_what_its_comments_say() -> None:
    assert output(2) == commented(2) == ["200 text/html; charset=utf-8", "ann entered", "[ann] anyone here?"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def step_five(port: int) -> str:
    """Step 4 with ``main()`` and ``asyncio.run(main())`` replaced by the two lines step 5 gives."""
    text = TUTORIAL.read_text().split("## 5. Run it for real", 1)[1]
    step4 = programs()[2]
    first, second = re.findall(r"`(server = wsevents\.create_server\(.*?\)|wsevents\.run\(\))`", text)[:2]
    server_line = first.replace("listen(8000)", f"listen({port}, '127.0.0.1')")
    assert server_line != first, "step 5 listens on port 8000"
    return step4[: step4.index("async def main():")] + f"{server_line}\n{second}\n"


async def test_step_five_serves_browsers_until_ctrl_c() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", step_five(port),
                                                stderr=asyncio.subprocess.PIPE)
    try:
        page = await until_served(f"http://127.0.0.1:{port}/", proc)
        assert "new WebSocket" in page
        async with wsevents.connect(f"ws://127.0.0.1:{port}/") as zoe:
            await zoe.send_text("zoe")
            assert await zoe.recv() == "zoe entered"
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(zoe.wait_closed(), 10)
            assert zoe.close_code == 1001
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def until_served(url: str, proc: asyncio.subprocess.Process) -> str:
    """The page at ``url`` once the program listens (it fails the test if the program exits)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        try:
            return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
        except OSError:
            assert proc.returncode is None, "the program exited before it listened"
            assert loop.time() < deadline, "the program did not listen within 20 s"
            await asyncio.sleep(0.05)
