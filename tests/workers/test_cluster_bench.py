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
    assert [row["persistence"] != "none" for row in results["zero_loss"]] == [False, True]
    for row in results["zero_loss"]:  # across a Redis restart, with and without persistence
        assert row["out_of_order"] == 0 and row["open_at_end"] == row["members"]
        assert row["every_member_got_all"], row
    assert results["stream"]["xadd_per_s"] > 0
    assert "## Cluster" in done.stdout
