"""benchmarks/cluster.py in its smoke mode (--quick: 20 members, a few hundred messages, a
Redis restart): it runs, its figures are well formed, and nothing was lost. Not its speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.mark.timeout(120)
def test_cluster_benchmark_quick(tmp_path: Path) -> None:
    out = tmp_path / "cluster.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cluster.py"), "--quick", "--no-write",
         "--json", str(out)],
        capture_output=True, text=True, timeout=110,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [row["mode"] for row in results["fanout"]] == ["single", "workers2"]
    for row in results["fanout"]:
        assert row["lost"] == row["lost_one"] == row["dropped_members"] == 0
        assert row["deliveries_per_s"] > 0 and row["p50_one_ms"] > 0
    assert len(results["fanout"][1]["per_worker"]) == 2  # the members landed on both workers
    for row in results["zero_loss"]:
        assert row["out_of_order"] == 0 and row["open_at_end"] == row["members"]
    # With persistence nothing may be lost. Without it, a 0.15 s restart loses messages at one
    # worker in about 1 run of 3 here: a known, open bug of the Redis broker (issue 12), not
    # yet explained; tests/cluster holds the restart tests that pass. This smoke test checks
    # that the benchmark runs and reports it, so it asserts the loss-free row only.
    persistent = [row for row in results["zero_loss"] if row["persistence"] != "none"]
    assert persistent and all(row["every_member_got_all"] for row in persistent)
    assert results["stream"]["xadd_per_s"] > 0
    assert "## Cluster" in done.stdout
