"""``make demo``'s server: starts, chats between two clients, stops cleanly on SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

import wsevents


async def _recv(conn: wsevents.Connection) -> str | bytes:
    return await asyncio.wait_for(conn.recv(), 5)


async def test_chat_between_two_clients() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsevents.demo",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.startswith("wsevents chat: open http://127.0.0.1:"), line
        url = line.rsplit("endpoint ", 1)[1].rstrip(")\n")
        alice = await wsevents.connect(url)
        bob = await wsevents.connect(url)
        await alice.send_text("alice")
        assert await _recv(alice) == "alice entered"
        await bob.send_text("bob")
        assert await _recv(alice) == "bob entered"
        assert await _recv(bob) == "bob entered"
        await alice.send_text("hi bob")
        assert await _recv(bob) == "[alice] hi bob"
        assert await _recv(alice) == "[alice] hi bob"
        await alice.close(1000)
        assert await _recv(bob) == "alice left"
        mallory = await wsevents.connect(url)
        await mallory.send_binary(b"\x00\x01")  # the chat is text only: refused with 1003
        try:
            await _recv(mallory)
            raise AssertionError("expected the connection to end")
        except wsevents.ConnectionClosed as exc:
            assert (exc.code, exc.reason) == (1003, "text messages only")
        proc.send_signal(signal.SIGINT)
        # The server closes bob with 1001 on SIGINT, then exits.
        try:
            await _recv(bob)
            raise AssertionError("expected the connection to end")
        except wsevents.ConnectionClosed as exc:
            assert exc.code == 1001
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
