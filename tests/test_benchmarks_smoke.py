"""The benchmark machinery runs (tiny counts, a few seconds) and produces well-formed figures.

No timing is asserted: performance lives in `make bench` and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.mark.parametrize("name", ["wsevents", "raw"])
def test_benchmark_runs_and_reports(tmp_path: Path, name: str) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--runs",
            "1",
            "--seconds",
            "0.2",
            "--loops",
            "asyncio",
            "--only",
            name,
            "--no-write",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())["asyncio"]
    assert rows, done.stdout
    for figures in rows.values():
        assert set(figures) == {
            "rtt",
            "pipelined",
            "100 conns",
            "1 MiB echo",
            "handshakes",
            "idle memory",
            "broadcast",
        }
        for key, value in figures.items():
            assert value > 0 or key == "idle memory", (key, value)
    assert "| contender |" in done.stdout
