"""The supervisor's side of the workers' metrics (``MetricsHub``), driven by hand: the test plays
the workers on the other ends of the socket pairs, and the clock."""

from __future__ import annotations

import json
import select
import socket
from typing import Any

import pytest

import wsevents
from helpers import Figures, metric_samples
from wsevents.worker_metrics import GATHER_WAIT, REFRESH, MetricsHub


def snapshot(connections: int, open_now: int) -> list[Any]:
    metrics = wsevents.create_server().metrics
    metrics.connections_total = connections
    metrics._open_count = lambda: open_now
    carried: list[Any] = json.loads(json.dumps(metrics._families({})))  # as the wire carries it
    return carried


class Worker:
    """The worker's end of one link."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(5)
        self.buffer = b""

    def read(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def write(self, message: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")


def pump(hub: MetricsHub, now: float) -> None:
    """What the supervisor's loop does with whatever is ready now."""
    readable, writable = hub.fds()
    ready_r, ready_w, _ = select.select(readable, writable, [], 0.5)
    hub.ready(ready_r, ready_w, now)
    hub.tick(now)


def scrape(hub: MetricsHub, workers: list[Worker], answers: dict[int, list[Any]], now: float) -> Figures:
    """Worker 0 asks for the sum; the workers in ``answers`` give those figures."""
    workers[0].write({"op": "scrape", "id": 1})
    pump(hub, now)
    for index, worker in enumerate(workers):
        if index in answers:
            asked = worker.read()
            assert asked["op"] == "snapshot"
            worker.write({"op": "snapshot", "round": asked["round"], "families": answers[index]})
    for _ in range(len(answers)):
        pump(hub, now)
    if len(answers) < len(workers):
        pump(hub, now + GATHER_WAIT)  # the others' time is up
    reply = workers[0].read()
    while reply["op"] != "sum":  # snapshot requests to worker 0 it has not answered
        reply = workers[0].read()
    return metric_samples(reply["text"])


@pytest.fixture
def hub() -> Any:
    made = MetricsHub(2)
    yield made
    made.close()


def test_the_sum_keeps_a_dead_worker_s_counters_not_its_gauges(hub: MetricsHub) -> None:
    workers = [Worker(hub.attach(0)), Worker(hub.attach(1))]
    found = scrape(hub, workers, {0: snapshot(3, 1), 1: snapshot(5, 2)}, 0.0)
    assert found[("wsevents_connections_total", ())] == 8
    assert found[("wsevents_connections_open", ())] == 3
    assert found[("wsevents_workers", ())] == 2 and found[("wsevents_workers_reporting", ())] == 2
    hub.detach(1)  # worker 1 died; its replacement starts from zero
    workers[1] = Worker(hub.attach(1))
    found = scrape(hub, workers, {0: snapshot(3, 1), 1: snapshot(1, 1)}, 10.0)
    assert found[("wsevents_connections_total", ())] == 3 + 5 + 1
    assert found[("wsevents_connections_open", ())] == 2


def test_a_worker_that_does_not_answer_counts_with_its_last_figures(hub: MetricsHub) -> None:
    workers = [Worker(hub.attach(0)), Worker(hub.attach(1))]
    scrape(hub, workers, {0: snapshot(3, 1), 1: snapshot(5, 2)}, 0.0)
    found = scrape(hub, workers, {0: snapshot(4, 1)}, 10.0)
    assert found[("wsevents_workers_reporting", ())] == 1
    assert found[("wsevents_connections_total", ())] == 4 + 5
    assert found[("wsevents_connections_open", ())] == 3


def test_figures_are_refreshed_while_someone_scrapes_and_not_before(hub: MetricsHub) -> None:
    workers = [Worker(hub.attach(0)), Worker(hub.attach(1))]
    assert hub.timeout(0.0) is None  # nobody scraped: nothing to do, ever
    scrape(hub, workers, {0: snapshot(1, 0), 1: snapshot(1, 0)}, 0.0)
    assert hub.timeout(0.0) == pytest.approx(REFRESH)
    pump(hub, REFRESH)
    for worker in workers:
        assert worker.read()["op"] == "snapshot"


def test_a_malformed_message_leaves_the_supervisor_running(hub: MetricsHub) -> None:
    workers = [Worker(hub.attach(0)), Worker(hub.attach(1))]
    workers[1].sock.sendall(b"not json\n")
    pump(hub, 0.0)
    found = scrape(hub, workers, {0: snapshot(2, 1)}, 1.0)
    assert found[("wsevents_connections_total", ())] == 2
    assert found[("wsevents_workers_reporting", ())] == 1
