"""A ``redis-server`` of one's own, for a benchmark or a test: 127.0.0.1, a free port, a given
directory, no RDB snapshots (``--save ''``), and an append-only file only when asked.

benchmarks/cluster.py runs it as a script (``from redis_server import RedisServer``); the tests
import it as ``benchmarks.redis_server`` (the checkout's root is on their ``sys.path``). Stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from typing import TypeVar

__all__ = ["REDIS_SERVER", "RedisServer", "free_port"]

#: The ``redis-server`` binary: on PATH, else where the Debian package puts it.
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

_Server = TypeVar("_Server", bound="RedisServer")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on a fixed port, which may be stopped and started again.

    ``persist``: with an append-only file (fsync every second), so that a restart keeps the data;
    without it a restart loses what Redis held. ``with RedisServer(directory) as server:`` starts
    it and stops it at the end.
    """

    def __init__(self, directory: str | os.PathLike[str], persist: bool = False) -> None:
        self.directory = os.fspath(directory)
        self.persist = persist
        self.port = free_port()
        self.binary = REDIS_SERVER
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        """Start it and wait until it answers ``PING`` (a RuntimeError if it does not, or exits)."""
        assert self.proc is None, "already running"
        if not os.path.exists(self.binary):
            raise RuntimeError(
                f"{self.binary} is not installed: run `make system-deps` (Debian package redis-server)"
            )
        persistence = ["--appendonly", "no"]
        if self.persist:
            persistence = ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory,
             "--save", "", *persistence],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port} (exit status {self.proc.poll()})")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            proc.wait(10)

    def restart(self) -> None:
        """Stop it and start it again on the same port (the data survives only with ``persist``)."""
        self.stop()
        self.start()

    def __enter__(self: _Server) -> _Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        found = re.search(r"v=(\S+)", out)
        return found.group(1) if found else "?"
