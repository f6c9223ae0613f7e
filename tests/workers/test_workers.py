"""Workers (``wsevents run MODULE:HANDLER --workers N``): real worker processes on one port,
real sockets, a real redis-server as the broker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import wsevents
from wsevents.workers import serve

from .conftest import CLI, HERE, Redis, Supervisor

Start = Callable[..., Supervisor]


async def open_one(url: str) -> tuple[wsevents.Connection, int]:
    """A client and the pid of the worker that serves it (its first message)."""
    conn = await asyncio.wait_for(wsevents.connect(url), 10)
    first = await asyncio.wait_for(conn.recv(), 10)
    found = re.fullmatch(r"pid (\d+) worker (\d+)", str(first))
    assert found, first
    return conn, int(found.group(1))


async def clients_on_each(url: str, workers: int, attempts: int = 60) -> dict[int, list[wsevents.Connection]]:
    """Clients until every worker serves at least one (the kernel spreads them)."""
    by_pid: dict[int, list[wsevents.Connection]] = {}
    for _ in range(attempts):
        conn, pid = await open_one(url)
        by_pid.setdefault(pid, []).append(conn)
        if len(by_pid) == workers and len(by_pid[pid]) > 1:
            break
    return by_pid


async def echoes(conn: wsevents.Connection) -> bool:
    await conn.send_text("ping?")
    return await asyncio.wait_for(conn.recv(), 10) == "ping?"


def run_args(redis: Redis, *more: str) -> list[str]:
    return ["run", "worker_app:handler", "--port", "0", "--broker", redis.url, *more]


async def test_workers_share_one_port_and_the_kernel_spreads_connections(
    redis_server: Redis, supervisor: Start
) -> None:
    served = supervisor(run_args(redis_server, "--workers", "2"))
    assert "(2 workers)" in served.banner
    by_pid = await clients_on_each(served.url, 2)
    assert len(by_pid) == 2, "every connection went to one worker"
    assert sorted(by_pid) == sorted(served.worker_pids())
    for conns in by_pid.values():
        for conn in conns:
            assert await echoes(conn)
            await conn.close()


async def test_an_async_handler_serves_too(redis_server: Redis, supervisor: Start) -> None:
    served = supervisor(["run", "worker_app:async_handler", "--port", "0", "--broker", redis_server.url,
                         "--workers", "2"])
    conn, pid = await open_one(served.url)
    assert pid in served.worker_pids()
    assert await echoes(conn)
    await conn.close()


async def test_a_killed_worker_is_restarted_its_clients_see_1006_the_others_go_on(
    redis_server: Redis, supervisor: Start
) -> None:
    served = supervisor(run_args(redis_server, "--workers", "2"))
    by_pid = await clients_on_each(served.url, 2)
    assert len(by_pid) == 2
    victim, survivor = sorted(by_pid)
    os.kill(victim, signal.SIGKILL)
    for conn in by_pid[victim]:
        await asyncio.wait_for(conn.wait_closed(), 10)
        assert conn.close_code == 1006
    await served.wait_log(r"worker \d was killed by SIGKILL after [\d.]+ s: restarting it")
    await served.wait_log(rf"worker \d started \(pid (?!{victim}\))\d+\)")
    for conn in by_pid[survivor]:
        assert await echoes(conn)
    # Its clients reconnect, and the replacement serves some of them.
    pids: set[int] = set()
    for _ in range(60):
        conn, pid = await open_one(served.url)
        pids.add(pid)
        await conn.close()
        if len(pids) == 2:
            break
    assert victim not in pids
    assert survivor in pids and len(pids) == 2
    assert sorted(pids) == sorted(served.worker_pids())


async def test_a_worker_dying_in_a_loop_is_restarted_later_and_later(
    redis_server: Redis, supervisor: Start
) -> None:
    served = supervisor(run_args(redis_server, "--workers", "2"))
    conn, pid = await open_one(served.url)
    index = (await served.wait_log(rf"worker (\d) started \(pid {pid}\)")).group(1)
    delays = []
    for deaths in (1, 2):
        await conn.send_text("exit")  # the worker exits at once (status 3)
        await asyncio.wait_for(conn.wait_closed(), 10)
        assert conn.close_code == 1006
        lines = await served.wait_count(
            rf"worker {index} exited with status 3 after [\d.]+ s: restarting it(?: in ([\d.]+) s)?", deaths)
        delays.append(float(lines[-1].group(1) or 0))
        if deaths == 2:
            break
        # A client of the replacement, which has just started.
        started = await served.wait_count(rf"worker {index} started \(pid (\d+)\)", 2)
        replacement = int(started[-1].group(1))
        for _ in range(60):
            conn, pid = await open_one(served.url)
            if pid == replacement:
                break
            await conn.close()
        assert pid == replacement
    # Dying soon after it started doubles the delay (the first death may come after a long life).
    assert delays in ([0.0, 0.5], [0.5, 1.0])


async def test_sigterm_to_the_supervisor_closes_every_connection_with_1001(
    redis_server: Redis, supervisor: Start
) -> None:
    served = supervisor(run_args(redis_server, "--workers", "2"))
    by_pid = await clients_on_each(served.url, 2)
    workers = served.worker_pids()
    served.proc.send_signal(signal.SIGTERM)
    for conns in by_pid.values():
        for conn in conns:
            await asyncio.wait_for(conn.wait_closed(), 15)
            assert (conn.close_code, conn.close_reason) == (1001, "going away")
    assert await asyncio.to_thread(served.proc.wait, 25) == 0
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} outlived the supervisor"


def test_more_than_one_worker_without_a_broker_is_refused() -> None:
    done = subprocess.run([*CLI, "run", "worker_app:handler", "--port", "0", "--workers", "2"],
                          cwd=HERE, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert "--workers 2 needs --broker URL" in done.stderr
    assert "reach one worker's connections only" in done.stderr
    with pytest.raises(ValueError, match="2 workers need a broker"):
        serve(lambda conn: None, 0, workers=2)


@pytest.mark.parametrize(("broker", "why"), [
    ("http://127.0.0.1:6379/0", "must be a redis://, rediss:// or unix:// URL"),
    ("redis://127.0.0.1:notaport/0", "Port could not be cast to integer"),
])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_bad_broker_url_is_a_usage_error_before_any_worker_starts(broker: str, why: str,
                                                                     workers: str) -> None:
    # It used to be a traceback in every worker and exit status 1 (with one worker: a traceback).
    done = subprocess.run([*CLI, "run", "worker_app:handler", "--port", "0", "--workers", workers,
                           "--broker", broker], cwd=HERE, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()  # one line: no traceback, nothing per worker
    assert line.startswith("wsevents: cannot use --broker: ") and why in line
    with pytest.raises(ValueError, match=why):  # from Python: raised here, before the fork
        serve(lambda conn: None, 0, workers=int(workers), broker=broker)


def test_without_redis_py_only_the_redis_broker_is_missing(tmp_path: Path) -> None:
    # redis-py is the extra: hidden here (None in sys.modules makes its import fail).
    code = """
import asyncio, sys
sys.modules["redis"] = None
import wsevents
from wsevents.aio.broker import LocalBroker
try:
    wsevents.create_server(broker="redis://127.0.0.1:6379/0")
except ImportError as exc:
    print("ImportError:", exc)

async def main():
    shared = LocalBroker()
    a = await wsevents.create_server(lambda conn: conn.join("r"), broker=shared).listen(0, "127.0.0.1")
    b = await wsevents.create_server(broker=shared).listen(0, "127.0.0.1")
    client = await wsevents.connect(f"ws://127.0.0.1:{a.port}/")
    while not b.publish("r", "rooms work"):
        await asyncio.sleep(0.01)
    print(await client.recv())
    await client.close()
    await a.close()
    await b.close()

asyncio.run(main())
from wsevents.cli import main
sys.argv = ["wsevents", "serve", "--port", "0", "--workers", "2", "--broker", "redis://127.0.0.1:1/0"]
sys.exit(main())
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30)
    assert done.stdout.splitlines() == [
        "ImportError: the Redis broker needs redis-py: pip install 'wsevents[redis]' (or pip install "
        "'redis>=5')",
        "rooms work",
    ]
    assert done.returncode == 2
    assert done.stderr == ("wsevents: cannot use --broker: the Redis broker needs redis-py: "
                           "pip install 'wsevents[redis]' (or pip install 'redis>=5')\n")


def test_a_handler_that_cannot_be_imported_is_a_usage_error() -> None:
    for target, why in (("no_such_module:handler", "No module named 'no_such_module'"),
                        ("worker_app:nothing", "has no attribute 'nothing'"),
                        ("worker_app", "expected MODULE:HANDLER")):
        done = subprocess.run([*CLI, "run", target, "--port", "0"], cwd=HERE,
                              capture_output=True, text=True, timeout=20)
        assert done.returncode == 2, done.stderr
        assert why in done.stderr
        assert "Traceback" not in done.stderr


def test_a_worker_that_fails_before_it_listens_stops_everything(redis_server: Redis) -> None:
    code = ("import wsevents\nfrom wsevents.workers import serve_servers\n"
            "def make():\n    raise RuntimeError('no server today')\n"
            "serve_servers(make, 0, '127.0.0.1', workers=2)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "no server today" in done.stderr
    assert "before it listened: stopping" in done.stderr
    assert "RuntimeError: a worker failed before it listened" in done.stderr
