"""Every sample under samples/ runs and prints what it promises."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wsevents

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def run(path: Path) -> list[str]:
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_samples_need_nothing_but_wsevents() -> None:
    """A sample runs where ``make demo`` installed wsevents alone (the TLS one needed trustme)."""
    for path in SAMPLES.rglob("*.py"):
        for module in re.findall(r"^(?:import|from) (\w+)", path.read_text(), re.M):
            assert module == "wsevents" or module in sys.stdlib_module_names, (path.name, module)


def test_wss_echo() -> None:
    lines = run(SAMPLES / "wss" / "wss_echo.py")
    assert lines[0] == "secure echo: hello over TLS"
    assert lines[1].startswith("cipher: ")


def test_binary_streaming() -> None:
    """Progress counts what was read (not what arrived): it only grows, and ends at the 8 MiB sent."""
    *progress, last = run(SAMPLES / "binary_streaming.py")
    assert last == "sha256 matches: True"
    matches = [re.fullmatch(r"  received (\d+(?:\.\d+)?) MiB", line) for line in progress]
    assert all(matches), progress
    mib = [float(match[1]) for match in matches if match]
    assert len(mib) >= 2 and mib == sorted(set(mib)), progress
    assert mib[-1] == 8.0, progress


def test_broadcast() -> None:
    lines = run(SAMPLES / "broadcast.py")
    assert lines[:5] == [f"tick {t} delivered to 50 clients" for t in range(5)]
    assert lines[-1] == "every client got every tick, in order"


async def test_chat() -> None:
    """chat.py serves its page and chats between two clients, then stops on SIGINT."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SAMPLES / "chat" / "chat.py"), "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        assert banner.startswith("chat: open http://127.0.0.1:"), banner
        port = int(banner.rsplit(":", 1)[1].strip(" /\n"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        page = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert page.startswith(b"HTTP/1.1 200 OK") and b"new WebSocket(" in page

        async def recv(conn: wsevents.Connection) -> str | bytes:
            return await asyncio.wait_for(conn.recv(), 5)

        ann = await wsevents.connect(f"ws://127.0.0.1:{port}/")
        ben = await wsevents.connect(f"ws://127.0.0.1:{port}/")
        await ann.send_text("ann")
        assert await recv(ann) == "ann entered"
        await ben.send_text("ben")
        assert [await recv(ann), await recv(ben)] == ["ben entered", "ben entered"]
        await ben.send_text("hi ann")
        assert [await recv(ann), await recv(ben)] == ["[ben] hi ann", "[ben] hi ann"]
        await ben.close(1000)
        assert await recv(ann) == "ben left"
        proc.send_signal(signal.SIGINT)
        with pytest.raises(wsevents.ConnectionClosed) as closed:
            await recv(ann)
        assert closed.value.code == 1001
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# The sample runs in a fresh interpreter where a bare ``wsevents`` package is registered first, so
# that only what the sample imports gets imported (the package's __init__ re-exports the asyncio
# API); on its way out it says which asyncio modules were loaded.
SANS_IO_RUNNER = textwrap.dedent(
    """
    import runpy, sys, types
    package = types.ModuleType("wsevents")
    package.__path__ = [{src!r}]
    sys.modules["wsevents"] = package
    sys.argv = [{sample!r}, "0"]
    try:
        runpy.run_path({sample!r}, run_name="__main__")
    finally:
        loaded = sorted(m for m in sys.modules if m == "asyncio" or m.startswith("asyncio."))
        print("asyncio modules:", loaded, flush=True)
    """
)


async def test_sans_io_echo() -> None:
    """The blocking echo server on the protocol objects answers wsevents' client (a text message,
    a binary one in three frames, a ping, the closing handshake; two connections in turn), stops
    on SIGINT, and never imports asyncio."""
    src = Path(wsevents.__file__).resolve().parent
    program = SANS_IO_RUNNER.format(src=str(src), sample=str(SAMPLES / "sans_io_echo.py"))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", program, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        assert banner.startswith("sans-I/O echo server: ws://127.0.0.1:"), banner
        url = banner.split(": ", 1)[1].strip()
        for _ in range(2):
            conn = await wsevents.connect(url)
            pong: asyncio.Future[str] = asyncio.get_running_loop().create_future()  # "pong"(data: str)
            conn.on("pong", pong.set_result)
            await conn.send_text("héllo")
            assert await asyncio.wait_for(conn.recv(), 5) == "héllo"
            stream = conn.begin_binary()
            for piece in (b"\x00" * 70_000, b"\x01\x02", b"\xff" * 3):
                await stream.write(piece)
            await stream.end()
            assert await asyncio.wait_for(conn.recv(), 5) == b"\x00" * 70_000 + b"\x01\x02" + b"\xff" * 3
            await conn.send_ping(b"probe")
            assert await asyncio.wait_for(pong, 5) == "probe"
            await asyncio.wait_for(conn.close(1000, "bye"), 5)
            assert (conn.close_code, conn.close_reason) == (1000, "")  # the code echoed, not the reason
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert (await proc.stdout.read()).decode().splitlines() == ["asyncio modules: []"]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
