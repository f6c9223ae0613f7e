"""Drives ``peers/peer.js`` (npm ``ws`` or ``nodejs-websocket``) from asyncio tests.

The peer is a subprocess that takes JSON commands on stdin and reports JSON
events on stdout; see the comment at the top of ``peers/peer.js``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent
PEER = NODE_DIR / "peers" / "peer.js"
LIBS = ("ws", "nodejs-websocket")


def pattern(n: int) -> bytes:
    """The peer's binary pattern: byte i is (i * 31 + 7) & 0xff."""
    return bytes((i * 31 + 7) & 0xFF for i in range(256)) * (n // 256) + bytes(
        (i * 31 + 7) & 0xFF for i in range(n % 256)
    )


class NodePeer:
    """One running ``peer.js``; use :meth:`start`, then :meth:`send` / :meth:`next_event`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.port: int | None = None
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def start(
        cls,
        role: str,
        lib: str,
        url: str | None = None,
        *,
        echo: bool = False,
        deflate: bool = False,
        protocols: list[str] | None = None,
        port: int = 0,
        unix: str | None = None,
    ) -> NodePeer:
        """Start a peer; a server's ``port`` (``port``, or a free one) is known when this returns.

        ``unix``: a server (``ws`` only) listens on that Unix socket instead.
        """
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed: the interop tests need Node.js (see .ci/run)")
        if not (NODE_DIR / "node_modules" / lib).is_dir():
            raise RuntimeError(f"{lib} is not installed: run 'npm ci' in {NODE_DIR} (make test does)")
        args = [str(PEER), role, lib]
        if url is not None:
            args.append(url)
        if port:
            args += ["--port", str(port)]
        if unix is not None:
            args += ["--unix", unix]
        if protocols:
            args += ["--protocols", ",".join(protocols)]
        if echo:
            args.append("--echo")
        if deflate:
            args.append("--deflate")
        proc = await asyncio.create_subprocess_exec(
            node, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=NODE_DIR
        )
        peer = cls(proc)
        if role == "server":
            event = await peer.next_event("listening")
            peer.port = int(event["port"])
        return peer

    async def send(self, **command: Any) -> None:
        """Send one command, e.g. ``send(op="send_text", data="hi")``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def next_event(self, kind: str | None = None, timeout: float = 10) -> dict[str, Any]:
        """The next event (of ``kind``, skipping others); AssertionError on timeout or exit."""
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), max(remaining, 0.001))
            except asyncio.TimeoutError:
                what = kind or "event"
                raise AssertionError(f"no {what} from the peer in {timeout} s; saw {self.seen}") from None
            if not line:
                raise AssertionError(f"the peer exited before {kind or 'an event'}; saw {self.seen}")
            event: dict[str, Any] = json.loads(line)
            self.seen.append(event)
            if kind is None or event["event"] == kind:
                return event

    async def close(self) -> None:
        """Stop the peer (politely, then by force)."""
        with contextlib.suppress(Exception):
            await self.send(op="exit")
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
