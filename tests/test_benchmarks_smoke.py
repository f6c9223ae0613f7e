"""The benchmark machinery runs end to end with tiny counts and produces well-formed results.

`benchmarks/run.py --quick` against wsevents and websockets (one loop, one run of 0.1 s per
scenario, a few connections): servers, the load generator and the clients all run, and every
figure is a positive number in a well-formed table. No timing is asserted: figures live in
`make bench` and benchmarks/RESULTS.md. About 5 s; needs only the dev extras (websockets, uvloop).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
SERVER_SCENARIOS = {"rtt", "pipelined", "100 conns", "1 MiB echo", "handshakes", "idle memory", "broadcast"}


def test_quick_benchmark_run_produces_well_formed_results(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    before = (ROOT / "benchmarks" / "RESULTS.md").read_bytes()
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "wsevents,websockets", "--loops", "asyncio"]
        + ["--no-compression", "--no-styles", "--no-write", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failures"] == []
    figures = report["figures"]
    assert set(figures) == {"servers/asyncio", "clients/asyncio"}

    servers = figures["servers/asyncio"]
    assert list(servers) == ["wsevents", "websockets"]
    for label, row in servers.items():
        assert set(row) == SERVER_SCENARIOS, label
        for scenario, value in row.items():
            assert isinstance(value, float) and math.isfinite(value), (label, scenario, value)
            # RSS may move by less than a page over a few connections; everything else must count.
            assert value > 0 or scenario == "idle memory", (label, scenario, value)

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
    server_table = text.split("### Servers, asyncio loop", 1)[1].split("\n\n", 2)[1].splitlines()
    assert server_table[0].startswith("| contender | rtt (msgs/s) | pipelined (msgs/s) |")
    assert len(server_table) == 4  # header, rule, wsevents, websockets
    cells = server_table[2].strip("|").split("|")
    assert cells[0].strip() == "wsevents" and len(cells) == 1 + len(SERVER_SCENARIOS)
    idle_column = 1 + list(servers["wsevents"]).index("idle memory")
    # Each figure with its ratio to websockets (but idle memory, whose tiny sample may be 0).
    assert all("×)" in cell for i, cell in enumerate(cells) if i and i != idle_column), cells
    assert "×)" not in server_table[3]  # the base row (websockets) has no ratio
    assert "### Clients, asyncio loop" in text
    # --no-write leaves RESULTS.md alone.
    assert (ROOT / "benchmarks" / "RESULTS.md").read_bytes() == before


def test_a_server_started_from_the_load_generator_core_moves_to_its_own() -> None:
    """run.py pins itself to the load generator's core before it starts the servers: pin() must still
    move a server (which inherits that affinity) to the server core."""
    code = "import os, common; common.pin(1); common.pin(0); print(sorted(os.sched_getaffinity(0)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "benchmarks", capture_output=True,
                          text=True, timeout=30, check=True)
    assert done.stdout.split() == ["[0]"]
