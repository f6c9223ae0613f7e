"""Fixtures of the threaded API's tests: sync servers run in a thread, raw TCP peers, and a check
that every thread a test started has ended when it is over."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wsevents.protocol.handshake import accept_key
from wsevents.sync import Connection, Server, serve


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Every thread a test (or wsevents.sync for it) started has ended at teardown."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    while True:
        left = [
            t for t in threading.enumerate() if t not in before and t.name.startswith(("wsevents-", "test-"))
        ]
        if not left or time.monotonic() > deadline:
            break
        left[0].join(0.1)
    assert left == []


def echo(conn: Connection) -> None:
    """Send every message back until the connection closes."""
    for message in conn:
        conn.send(message)


SyncServe = Callable[..., Server]


@pytest.fixture
def sync_serve() -> Iterator[SyncServe]:
    """``sync_serve(handler=echo, **options)``: a sync server on 127.0.0.1, serving in a thread.

    Every server made is shut down at teardown, and its thread joined.
    """
    running: list[tuple[Server, threading.Thread]] = []

    def factory(handler: Callable[[Connection], object] = echo, **options: Any) -> Server:
        server = serve(handler, "127.0.0.1", 0, **options)
        thread = threading.Thread(target=server.serve_forever, name="test-serve-forever")
        thread.start()
        running.append((server, thread))
        return server

    yield factory
    for server, thread in running:
        server.shutdown()
        thread.join(10)
        assert not thread.is_alive()


def url(server: Server, path: str = "/") -> str:
    """``ws://127.0.0.1:<port><path>``."""
    return f"ws://127.0.0.1:{server.port}{path}"


class RawPeer:
    """A TCP server in a thread that hands each accepted socket to ``behave(sock)``."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.behave = behave
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-raw-peer")
        self.thread.start()

    def _run(self) -> None:
        sock, _ = self.listener.accept()
        with sock:
            sock.settimeout(10)
            try:
                self.behave(sock)
            except OSError:
                pass  # The client under test went away: that is what some tests do.
            self.done.wait(10)

    def stop(self) -> None:
        self.done.set()
        # Unblock an accept() that never got a client.
        with socket.create_connection(("127.0.0.1", self.port)):
            pass
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def raw_peer() -> Iterator[Callable[[Callable[[socket.socket], None]], RawPeer]]:
    """``raw_peer(behave)``: a one-connection TCP server; stopped at teardown."""
    peers: list[RawPeer] = []

    def factory(behave: Callable[[socket.socket], None]) -> RawPeer:
        peer = RawPeer(behave)
        peers.append(peer)
        return peer

    yield factory
    for peer in peers:
        peer.stop()


def accept_upgrade(sock: socket.socket) -> bytes:
    """Read a client's upgrade request from ``sock`` and accept it; return what followed the head."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(4096)
        assert data, "the client closed before its request was whole"
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )
    return rest


def upgrade_request(port: int, path: str = "/") -> bytes:
    """A client's upgrade request to 127.0.0.1:``port``."""
    key = base64.b64encode(b"0123456789abcdef").decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
