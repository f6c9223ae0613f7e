"""``wsevents serve --workers 2 --metrics``: each worker serves its own figures, labelled ``worker``."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from .conftest import Redis, Supervisor


def worker_labels(text: str) -> set[str | None]:
    """The ``worker`` label of every sample of one scrape."""
    return {
        sample.labels.get("worker")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_each_worker_labels_its_figures(redis_server: Redis, supervisor: Callable[..., Supervisor]) -> None:
    served = supervisor(["serve", "--workers", "2", "--broker", redis_server.url, "--port", "0", "--metrics"])
    seen: set[str | None] = set()
    # Each scrape is a new TCP connection, which the kernel hands to either worker.
    for _ in range(100):
        with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/metrics", timeout=10) as response:
            labels = worker_labels(response.read().decode())
        assert len(labels) == 1, labels  # one scrape, one worker's figures
        seen |= labels
        if seen == {"0", "1"}:
            break
    assert seen == {"0", "1"}
