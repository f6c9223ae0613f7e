"""Shared fixtures: loopback servers (wsevents and raw asyncio), tracked clients, a raw WebSocket peer,
a path for a Unix socket.

Everything listens on 127.0.0.1 (or ::1) port 0 and is torn down at the end of
the test, whatever the test left open. The module-wide defaults changed by
``set_binary_fragmentation`` / ``set_max_buffer_length`` are restored after
every test.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import socket
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wsevents

if os.environ.get("WSEVENTS_TEST_UVLOOP"):
    # `make test` runs the socket-level tests a second time on uvloop.
    import uvloop

    def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
        return {"uvloop": uvloop.new_event_loop}


from helpers import Handler, MakeServer, RawServer, Servers, attach_echo, url_of, wait_until
from wsevents.aio.options import DEFAULTS
from wsevents.protocol.handshake import accept_key

# -- module defaults ----------------------------------------------------------


@pytest.fixture(autouse=True)
def restore_defaults() -> Iterator[None]:
    """Whatever a test does to the module defaults is undone after it."""
    saved = dataclasses.asdict(DEFAULTS)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(DEFAULTS, name, value)


# -- wsevents servers -----------------------------------------------------------


async def _shutdown_server(server: wsevents.Server) -> None:
    for conn in list(server._live):
        if conn.transport is not None:
            conn.transport.abort()
    try:
        await asyncio.wait_for(server.close(), 5)
    except (asyncio.TimeoutError, OSError):  # pragma: no cover - teardown best effort
        pass




@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    """``await make_server(options=None, host="127.0.0.1", port=0, **kwargs)``: a listening server.

    Options go to ``wsevents.create_server``. Every server made is closed (its
    connections aborted) at teardown.
    """
    servers: list[wsevents.Server] = []

    async def factory(
        options: dict[str, Any] | None = None, *, host: str | None = "127.0.0.1", port: int = 0, **kwargs: Any
    ) -> wsevents.Server:
        server = wsevents.create_server(options, **kwargs)
        servers.append(server)
        await asyncio.wait_for(server.listen(port, host), 5)
        return server

    yield factory
    for server in servers:
        await _shutdown_server(server)


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    """Servers the test made and appended here (wsevents or asyncio ones), closed at teardown
    (a wsevents server's connections aborted first)."""
    made: Servers = []
    yield made
    for server in made:
        if not isinstance(server, wsevents.Server):
            server.close()
            continue
        for conn in server.connections:
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.wait_for(server.close(), 5)


# sun_path holds 108 bytes on Linux (104 on macOS); pytest's tmp_path can be longer.
_MAX_SOCKET_PATH = 100


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[str]:
    """A path for a Unix socket in ``tmp_path`` (in a short temporary directory if that is too long)."""
    path = str(tmp_path / "ws.sock")
    if len(path) <= _MAX_SOCKET_PATH:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="wsu") as short:
        yield os.path.join(short, "ws.sock")


@pytest.fixture
async def echo_server(make_server: MakeServer) -> wsevents.Server:
    """A wsevents server on 127.0.0.1, port 0, echoing text and binary messages."""
    server = await make_server(close_timeout=1)
    server.on("connection", attach_echo)
    return server


@pytest.fixture
def echo_url(echo_server: wsevents.Server) -> str:
    """``ws://127.0.0.1:<port>/`` of :func:`echo_server`."""
    return url_of(echo_server)


@pytest.fixture
def url_for() -> Callable[..., str]:
    """``url_for(server, path="/", scheme="ws", host="127.0.0.1")``: the URL of a listening server."""
    return url_of


@pytest.fixture
def echo_handler() -> Callable[[wsevents.Connection], None]:
    """A ``"connection"`` listener that makes the connection echo text and binary."""
    return attach_echo


# -- wsevents clients -----------------------------------------------------------


Connect = Callable[..., Awaitable[wsevents.Connection]]


@pytest.fixture
async def ws_connect() -> AsyncIterator[Connect]:
    """``await connect(url, **options)``: an open client connection, aborted at teardown if still open."""
    conns: list[wsevents.Connection] = []

    async def factory(url: str, options: dict[str, Any] | None = None, **kwargs: Any) -> wsevents.Connection:
        conn = wsevents.connect(url, options, **kwargs)
        conns.append(conn)
        return await asyncio.wait_for(conn, 5)

    yield factory
    for conn in conns:
        if conn.ready_state != wsevents.Connection.CLOSED and conn.transport is not None:
            conn.transport.abort()
    for conn in conns:
        try:
            await asyncio.wait_for(conn.wait_closed(), 2)
        except asyncio.TimeoutError:  # pragma: no cover - teardown best effort
            pass


Pair = tuple[wsevents.Server, wsevents.Connection, wsevents.Connection]
MakePair = Callable[..., Awaitable[Pair]]


@pytest.fixture
def make_pair(make_server: MakeServer, ws_connect: Connect) -> MakePair:
    """``server, server_conn, client = await make_pair(server_options=None, **client_options)``.

    A server on 127.0.0.1 with no listener of the test's, and one open client: both ends of
    the connection, torn down like those of :func:`make_server` and :func:`ws_connect`.
    """

    async def factory(server_options: dict[str, Any] | None = None, **client_options: Any) -> Pair:
        server = await make_server(server_options)
        accepted: asyncio.Future[wsevents.Connection] = asyncio.get_running_loop().create_future()
        server.on("connection", lambda conn: accepted.done() or accepted.set_result(conn))
        client = await ws_connect(url_of(server), client_options or None)
        server_conn = await asyncio.wait_for(accepted, 5)
        return server, server_conn, client

    return factory


# -- raw asyncio servers ---------------------------------------------------------



@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    """``port = await raw_server(handler)``: a plain ``asyncio.start_server`` on 127.0.0.1.

    ``handler(reader, writer)`` runs per connection; servers, writers and
    handler tasks are closed at teardown.
    """
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []
    tasks: set[asyncio.Task[None]] = set()

    async def factory(handler: Handler) -> int:
        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass

        server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield factory
    for server in servers:
        server.close()
    for writer in writers:
        writer.transport.abort()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- a raw WebSocket peer (for byte-level checks) -------------------------------------


class RawReader(asyncio.StreamReader):
    """A StreamReader for which a connection reset is the end of the stream, recorded in :attr:`reset`.

    asyncio's own reader raises a reset before handing out the bytes that arrived before it, so
    a server's last frame would be lost whenever a reset follows it (Linux resets a connection
    that is closed with unread input, as after a flood of frames).
    """

    reset = False

    def set_exception(self, exc: BaseException) -> None:
        if isinstance(exc, ConnectionResetError):
            self.reset = True
            self.feed_eof()
            return
        super().set_exception(exc)


@dataclasses.dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    masked: bool


class RawWS:
    """Helpers to speak WebSocket by hand over ``asyncio`` streams."""

    Frame = Frame

    @staticmethod
    def request(
        path: str = "/", host: str = "127.0.0.1", key: str | None = None, extra: str = ""
    ) -> tuple[bytes, str]:
        """A valid upgrade request and its key; ``extra`` is raw header lines ending in CRLF."""
        key = key or base64.b64encode(os.urandom(16)).decode()
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        return head.encode("latin-1"), key

    @staticmethod
    def response(key: str, extra: str = "") -> bytes:
        """A valid ``101`` answer to ``key``; ``extra`` is raw header lines ending in CRLF."""
        return (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n{extra}\r\n"
        ).encode("latin-1")

    @staticmethod
    def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True) -> bytes:
        """One frame; masked (as a client sends) unless ``mask=False``."""
        first = (0x80 if fin else 0) | opcode
        n = len(payload)
        mask_bit = 0x80 if mask else 0
        if n < 126:
            header = struct.pack("!BB", first, mask_bit | n)
        elif n < 65536:
            header = struct.pack("!BBH", first, mask_bit | 126, n)
        else:
            header = struct.pack("!BBQ", first, mask_bit | 127, n)
        if not mask:
            return header + payload
        key = os.urandom(4)
        return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    @staticmethod
    def close_payload(code: int | None = None, reason: str = "") -> bytes:
        return b"" if code is None else struct.pack("!H", code) + reason.encode()

    @staticmethod
    async def read_head(reader: asyncio.StreamReader) -> bytes:
        """Everything up to and including the blank line ending an HTTP head."""
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)

    @staticmethod
    async def read_frame(reader: asyncio.StreamReader) -> Frame:
        """The next frame (unmasking it if masked)."""
        b1, b2 = await asyncio.wait_for(reader.readexactly(2), 5)
        n = b2 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await reader.readexactly(8))
        masked = bool(b2 & 0x80)
        key = await reader.readexactly(4) if masked else b""
        payload = await asyncio.wait_for(reader.readexactly(n), 5)
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return Frame(bool(b1 & 0x80), b1 & 0x0F, payload, masked)

    async def open(
        self, port: int, path: str = "/", host: str = "127.0.0.1"
    ) -> tuple[RawReader, asyncio.StreamWriter, bytes]:
        """Connect to a wsevents server by hand and complete the handshake; returns the 101 head too."""
        reader, writer = await self.connect_raw(port)
        request, _ = self.request(path, host)
        writer.write(request)
        head = await self.read_head(reader)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return reader, writer, head

    async def connect_raw(
        self, port: int, host: str = "127.0.0.1", *, sock: socket.socket | None = None
    ) -> tuple[RawReader, asyncio.StreamWriter]:
        """A plain TCP connection (closed at teardown), or one over the connected ``sock``.

        Its reader is a :class:`RawReader`: a reset ends the stream after the bytes that came before it.
        """
        loop = asyncio.get_running_loop()
        reader = RawReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        if sock is None:
            transport, _ = await loop.create_connection(lambda: protocol, host, port)
        else:
            transport, _ = await loop.create_connection(lambda: protocol, sock=sock)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self._writers.append(writer)
        return reader, writer

    async def stalled(self, port: int) -> tuple[RawReader, asyncio.StreamWriter]:
        """A client with a small receive buffer that completes the handshake, then reads nothing."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        reader, writer = await self.connect_raw(port, sock=sock)
        writer.write(self.request()[0])
        assert (await self.read_head(reader)).startswith(b"HTTP/1.1 101 ")
        writer.transport.pause_reading()
        return reader, writer

    def __init__(self) -> None:
        self._writers: list[asyncio.StreamWriter] = []


@pytest.fixture
async def raw_ws() -> AsyncIterator[RawWS]:
    """A :class:`RawWS` whose connections are aborted at teardown."""
    helper = RawWS()
    yield helper
    for writer in helper._writers:
        writer.transport.abort()
    await asyncio.sleep(0)


@pytest.fixture
def until() -> Callable[..., Awaitable[None]]:
    """``await until(predicate, timeout=5)``: poll until ``predicate()`` is true (``helpers.wait_until``)."""
    return wait_until
