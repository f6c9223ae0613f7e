"""The benchmark machinery runs end to end with tiny counts and produces well-formed results.

`benchmarks/run.py --quick` against wsevents, websockets and Node's ws (one loop, one run of 0.1 s
per scenario, a few connections): servers, the compiled load generator (benchmarks/loadgen.c,
built with the system compiler) and the clients all run, every figure is a positive number in a
well-formed table, with the server's CPU time per message next to it, and the chart is drawn. Then
the raw-limit server under each load generator (C and Python): the same figures, the same shape.
No timing is asserted: figures live in `make bench` and benchmarks/RESULTS.md. About 15 s; needs
only what `make test` installs (websockets, uvloop and matplotlib in the dev extras; Node and ws
for the interop tests, which the Node contender falls back to when benchmarks/node is not
installed).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
SERVER_SCENARIOS = {"rtt", "pipelined", "100 conns", "1 MiB echo", "handshakes", "idle memory", "broadcast"}
#: The scenarios with a server CPU time per message (all but idle memory).
CPU_SCENARIOS = SERVER_SCENARIOS - {"idle memory"}
QUICK = ["--quick", "--loops", "asyncio", "--no-compression", "--no-styles", "--no-write"]


def run_bench(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``run.py`` with ``args`` and ``--json``: the finished process and the JSON it wrote."""
    out = folder / "figures.json"
    done = subprocess.run(
        [sys.executable, str(RUN), *args, "--json", str(out)], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return done, report


def assert_figures(row: dict[str, float], scenarios: set[str], label: str) -> None:
    assert set(row) == scenarios, label
    for scenario, value in row.items():
        assert isinstance(value, float) and math.isfinite(value), (label, scenario, value)
        # RSS may move by less than a page over a few connections; everything else must count.
        assert value > 0 or scenario == "idle memory", (label, scenario, value)


@pytest.mark.timeout(120)
def test_quick_benchmark_run_produces_well_formed_results(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    before = (ROOT / "benchmarks" / "RESULTS.md").read_bytes()
    done, report = run_bench(tmp_path, *QUICK, "--loadgen", "c", "--only", "wsevents,websockets,node ws",
                             "--chart", str(chart))
    assert report["failures"] == []
    figures = report["figures"]
    assert set(figures) == {"servers/asyncio", "cpu/servers/asyncio", "clients/asyncio"}

    servers = figures["servers/asyncio"]
    assert list(servers) == ["wsevents", "websockets", "node ws"]
    for label, row in servers.items():
        assert_figures(row, SERVER_SCENARIOS, label)
    # The server's CPU µs per message: positive or 0 (a 0.1 s run may fall between two 10 ms ticks).
    cpu = figures["cpu/servers/asyncio"]
    assert list(cpu) == list(servers)
    for label, row in cpu.items():
        assert set(row) == CPU_SCENARIOS, label
        assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in row.values()), (label, row)

    clients = figures["clients/asyncio"]
    assert list(clients) == ["wsevents", "websockets"]
    for label, row in clients.items():
        assert set(row) == {"rtt", "big"}, label
        assert all(isinstance(v, float) and v > 0 for v in row.values()), (label, row)

    # The printed report: header with machine and versions, then a table per section.
    text = done.stdout
    assert "## Benchmarks — " in text
    assert "- Machine: " in text and "Python " in text
    assert "- wsevents source: commit " in text
    assert "websockets " in text.split("- Versions: ", 1)[1].splitlines()[0]
    assert "the load generator (benchmarks/loadgen.c compiled" in text
    assert "- node ws: ws 8.23.0 on Node v" in text
    server_table = text.split("### Servers, asyncio loop", 1)[1].split("\n\n", 2)[1].splitlines()
    assert server_table[0].startswith("| contender | rtt (msgs/s) | pipelined (msgs/s) |")
    assert len(server_table) == 5  # header, rule, wsevents, websockets, node ws
    cells = server_table[2].strip("|").split("|")
    assert cells[0].strip() == "wsevents" and len(cells) == 1 + len(SERVER_SCENARIOS)
    idle_column = 1 + list(servers["wsevents"]).index("idle memory")
    # Each figure with its ratio to websockets (but idle memory, whose tiny sample may be 0), and
    # each throughput with the server's CPU time per message.
    assert all("×)" in cell for i, cell in enumerate(cells) if i and i != idle_column), cells
    assert all(cell.endswith(" µs ") for i, cell in enumerate(cells) if i and i != idle_column), cells
    assert " µs" not in cells[idle_column]
    assert "×)" not in server_table[3]  # the base row (websockets) has no ratio
    assert " µs " in server_table[3]
    assert "### Clients, asyncio loop" in text
    # The chart, a PNG; --no-write leaves RESULTS.md alone (and links no chart from it).
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "RESULTS.png" not in text
    assert (ROOT / "benchmarks" / "RESULTS.md").read_bytes() == before


@pytest.mark.timeout(120)
def test_both_load_generators_measure_the_same_figures(tmp_path: Path) -> None:
    """The raw-limit server under the compiled and the Python load generator: same scenarios, same shape."""
    reports = {}
    for loadgen in ("c", "py"):
        raw_only = ["--no-clients", "--only", "raw limit"]
        done, report = run_bench(tmp_path, *QUICK, *raw_only, "--loadgen", loadgen)
        assert report["failures"] == [], loadgen
        reports[loadgen] = report["figures"]
        about = "benchmarks/loadgen.c compiled" if loadgen == "c" else "benchmarks/loadgen.py: raw asyncio"
        assert f"the load generator ({about}" in done.stdout
    for loadgen, figures in reports.items():
        assert list(figures["servers/asyncio"]) == ["raw limit"], loadgen
        assert_figures(figures["servers/asyncio"]["raw limit"], SERVER_SCENARIOS, loadgen)
        assert set(figures["cpu/servers/asyncio"]["raw limit"]) == CPU_SCENARIOS, loadgen


def test_a_server_started_from_the_load_generator_core_moves_to_its_own() -> None:
    """run.py pins itself to the load generator's core before it starts the servers: pin() must still
    move a server (which inherits that affinity) to the server core."""
    code = "import os, common; common.pin(1); common.pin(0); print(sorted(os.sched_getaffinity(0)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "benchmarks", capture_output=True,
                          text=True, timeout=30, check=True)
    assert done.stdout.split() == ["[0]"]


@pytest.mark.timeout(180)
def test_the_instruction_count_of_the_message_path_is_measured() -> None:
    """benchmarks/icount.py under valgrind (which make test installs), one row, one case (each
    figure takes two valgrind runs of Python): a well-formed table with a positive figure."""
    command = [sys.executable, str(ROOT / "benchmarks" / "icount.py"), "--cases", "echo",
               "--messages", "50,150", "--only", "wsevents-c"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| wsevents")]
    assert [[cell.strip() for cell in row] for row in rows] == [["wsevents-c", rows[0][1].strip()]]
    assert int(rows[0][1].replace(",", "")) > 0
