"""``--workers 2 --metrics``: a scrape of ``/metrics`` on the shared port shows the sum of the workers'
figures, keeps a killed worker's counts, and does not wait for a worker that does not answer."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

import wsevents
from helpers import Figures, metric_samples

from .conftest import Redis, Supervisor
from .test_workers import clients_on_each, echoes

Start = Callable[..., Supervisor]


async def scrape(port: int, timeout: float = 10) -> Figures:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
            return str(response.read().decode())

    return metric_samples(await asyncio.to_thread(get))


def counters(found: Figures) -> Figures:
    """The counters and histograms of a scrape (what must never go down)."""
    return {key: value for key, value in found.items()
            if key[0].endswith(("_total", "_bucket", "_count", "_sum"))}


async def chat(conns: list[wsevents.Connection], rounds: int) -> None:
    for conn in conns:
        for _ in range(rounds):
            assert await echoes(conn)


def start(redis: Redis, supervisor: Start) -> Supervisor:
    return supervisor(["run", "worker_app:handler", "--port", "0", "--broker", redis.url, "--workers", "2",
                       "--metrics"])


async def test_a_scrape_shows_the_sum_of_the_workers(redis_server: Redis, supervisor: Start) -> None:
    served = start(redis_server, supervisor)
    by_pid = await clients_on_each(served.url, 2)
    assert len(by_pid) == 2, "every connection went to one worker"
    conns = [conn for group in by_pid.values() for conn in group]
    await chat(conns, 3)
    n = len(conns)
    # Each scrape is a new TCP connection, which the kernel hands to either worker: all show the sum.
    for _ in range(6):
        found = await scrape(served.port)
        assert all("worker" not in dict(labels) for _, labels in found), "a worker's own figures"
        assert found[("wsevents_workers", ())] == 2
        assert found[("wsevents_workers_reporting", ())] == 2
        assert found[("wsevents_connections_open", ())] == n
        assert found[("wsevents_connections_total", ())] == n
        assert found[("wsevents_messages_received_total", (("kind", "text"),))] == 3 * n
        # "pid ... worker ..." then the three echoes.
        assert found[("wsevents_messages_sent_total", (("kind", "text"),))] == 4 * n
        assert found[("wsevents_handshake_seconds_count", ())] == n
        assert found[("wsevents_handshake_seconds_bucket", (("le", "+Inf"),))] == n
        assert found[("wsevents_deflate_ratio", (("direction", "out"),))] >= 0
    for conn in conns:
        await conn.close()


async def test_a_killed_worker_s_counts_stay_in_the_sum(redis_server: Redis, supervisor: Start) -> None:
    served = start(redis_server, supervisor)
    by_pid = await clients_on_each(served.url, 2)
    assert len(by_pid) == 2
    victim, survivor = sorted(by_pid)
    await chat(by_pid[victim], 2)
    before = await scrape(served.port)
    os.kill(victim, signal.SIGKILL)
    for conn in by_pid[victim]:
        await asyncio.wait_for(conn.wait_closed(), 10)
    await served.wait_log(rf"worker \d started \(pid (?!{victim}\))\d+\)")
    after = await scrape(served.port)
    for _ in range(50):  # until the new worker runs its loop and answers too
        if after[("wsevents_workers_reporting", ())] == 2:
            break
        after = await scrape(served.port)
    assert after[("wsevents_workers_reporting", ())] == 2
    low = {key: (value, after.get(key)) for key, value in counters(before).items()
           if after.get(key, -1) < value}
    assert not low, f"counters went down after the restart: {low}"
    assert after[("wsevents_messages_received_total", (("kind", "text"),))] == \
        before[("wsevents_messages_received_total", (("kind", "text"),))]
    # The gauge is of the living: the victim's connections are no longer open.
    assert after[("wsevents_connections_open", ())] == len(by_pid[survivor])
    # The new worker's figures add up with the dead one's.
    more = await clients_on_each(served.url, 2)
    await chat([conn for group in more.values() for conn in group], 1)
    added = sum(len(group) for group in more.values())
    later = await scrape(served.port)
    assert later[("wsevents_connections_total", ())] == before[("wsevents_connections_total", ())] + added
    assert later[("wsevents_messages_received_total", (("kind", "text"),))] == \
        before[("wsevents_messages_received_total", (("kind", "text"),))] + added


async def scrape_a_live_worker(port: int, stopped_port_timeout: float) -> tuple[Figures, float]:
    """A scrape answered by a worker that runs (one handed to the stopped worker times out)."""
    for _ in range(40):
        began = time.monotonic()
        try:
            found = await scrape(port, stopped_port_timeout)
        except (urllib.error.URLError, TimeoutError):
            continue
        return found, time.monotonic() - began
    raise AssertionError("no scrape was answered")


async def test_a_worker_that_does_not_answer_does_not_hang_the_scrape(
    redis_server: Redis, supervisor: Start
) -> None:
    served = start(redis_server, supervisor)
    by_pid = await clients_on_each(served.url, 2)
    assert len(by_pid) == 2
    conns = [conn for group in by_pid.values() for conn in group]
    await chat(conns, 1)
    before = await scrape(served.port)
    stuck = min(by_pid)
    os.kill(stuck, signal.SIGSTOP)
    try:
        found, took = await scrape_a_live_worker(served.port, 5)
    finally:
        os.kill(stuck, signal.SIGCONT)
    assert took < 4, f"the scrape waited {took:.1f} s for the stopped worker"
    assert found[("wsevents_workers_reporting", ())] == 1
    # The stopped worker counts with its last figures. The live worker's keepalive pings may
    # complete between the two scrapes (every 20 s, whenever the test runs): those only grow.
    pings = "wsevents_keepalive_rtt_seconds"
    assert {k: v for k, v in counters(found).items() if not k[0].startswith(pings)} == {
        k: v for k, v in counters(before).items() if not k[0].startswith(pings)}
    assert all(found[k] >= v for k, v in counters(before).items() if k[0].startswith(pings))
    assert found[("wsevents_connections_open", ())] == len(conns)
    # Once it runs again, it reports again.
    for _ in range(100):
        found = await scrape(served.port)
        if found[("wsevents_workers_reporting", ())] == 2:
            break
    assert found[("wsevents_workers_reporting", ())] == 2
    for conn in conns:
        await conn.close()


async def test_without_the_supervisor_a_scrape_gets_503_not_one_worker_s_figures(
    redis_server: Redis, supervisor: Start
) -> None:
    served = start(redis_server, supervisor)
    await scrape(served.port)  # every worker runs its loop
    os.kill(served.proc.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as info:
            await scrape(served.port)
        took = time.monotonic() - began
    finally:
        os.kill(served.proc.pid, signal.SIGCONT)
    assert info.value.code == 503
    assert b"supervisor did not answer" in info.value.read()
    assert took < 6
    found = await scrape(served.port)
    assert found[("wsevents_workers_reporting", ())] == 2
