"""Fixtures of the worker tests: a real redis-server, and ``wsevents`` supervisors in subprocesses.

Everything started here is stopped at the end of the test: the supervisor is
asked with SIGTERM, and its process group (itself and its workers, in a
session of their own) is killed if it is still there after that.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.redis_server import RedisServer as Redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLI = [sys.executable, "-m", "wsevents"]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    """A running ``redis-server`` on 127.0.0.1 (``.url``), stopped at teardown."""
    with Redis(tmp_path) as server:
        yield server


class Supervisor:
    """``wsevents ...`` running in a subprocess: its banner's port, and its log as it comes."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [*CLI, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        self.log: list[str] = []
        self._log_changed = threading.Condition()
        threading.Thread(target=self._read_log, daemon=True).start()
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        assert ready, f"no banner; log: {self.log}"
        self.banner = self.proc.stdout.readline()
        found = re.search(r"ws://[^:]+:(\d+)/", self.banner)
        assert found, f"no URL in {self.banner!r}; log: {self.log}"
        self.port = int(found.group(1))
        self.url = f"ws://127.0.0.1:{self.port}/"

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._log_changed:
                self.log.append(line)
                self._log_changed.notify_all()

    async def wait_log(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """The first log line matching ``pattern`` (waiting for it)."""
        return (await self.wait_count(pattern, 1, timeout))[0]

    async def wait_count(self, pattern: str, count: int, timeout: float = 20) -> list[re.Match[str]]:
        """The log lines matching ``pattern``, once there are ``count`` of them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._log_changed:
                found = [m for m in (re.search(pattern, line) for line in self.log) if m]
            if len(found) >= count:
                return found
            assert loop.time() < deadline, f"not {count} log lines match {pattern!r}: {''.join(self.log)}"
            await asyncio.sleep(0.05)

    def worker_pids(self) -> list[int]:
        """The supervisor's children (its workers) now."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers left behind, if any
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)


@pytest.fixture
def supervisor() -> Iterator[type[Supervisor]]:
    """``supervisor(args, cwd)`` starts ``wsevents *args``; all stopped at the end of the test."""
    started: list[Supervisor] = []

    def start(args: list[str], cwd: Path = HERE) -> Supervisor:
        served = Supervisor(args, cwd)
        started.append(served)
        return served

    yield start  # type: ignore[misc]
    for served in started:
        served.stop()
