"""A small HTTP CONNECT proxy and a plain HTTP redirecting server (asyncio), for the clients' tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    first, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return first, headers


@dataclass
class ConnectProxy:
    """A small HTTP CONNECT proxy: counts tunnels, and asks for Basic auth when ``credentials`` is set."""

    credentials: str | None = None
    tunnels: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first, headers = await _read_head(reader)
        method, target, _ = first.split(" ")
        assert method == "CONNECT"
        if self.credentials is not None:
            token = base64.b64encode(self.credentials.encode()).decode()
            if headers.get("proxy-authorization") != f"Basic {token}":
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                writer.close()
                return
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        self.tunnels.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` into ``writer`` until the end (or a reset), then close ``writer``."""
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


Route = Callable[[str], tuple[int, str]]


@dataclass
class Redirector:
    """A plain HTTP server answering each request with ``route(path) -> (status, location)``."""

    route: Route
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first, headers = await _read_head(reader)
        path = first.split(" ")[1]
        self.requests.append((path, headers))
        status, location = self.route(path)
        writer.write(
            f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()


# pproxy's main() takes uvloop when it can import it, then asks for an event loop that uvloop
# does not make on Python 3.11+: run it on asyncio's own loop.
_RUN_PPROXY = """
import asyncio, sys
sys.modules["uvloop"] = None
asyncio.set_event_loop(asyncio.new_event_loop())
from pproxy.server import main
main(sys.argv[1:])
"""


@pytest.fixture(name="socks5")
def socks5_fixture() -> Iterator[int]:
    """The port of a SOCKS5 proxy (pproxy, in a subprocess), stopped at teardown."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_PPROXY, "-l", f"socks5://127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "pproxy exited"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
