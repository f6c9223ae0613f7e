"""Runs every contender through every scenario in one go; prints tables and writes RESULTS.md.

    python benchmarks/run.py [--runs 3] [--seconds 1] [--loops asyncio,uvloop] [--quick] [--no-write]

Servers (benchmarks/servers.py) run pinned to core 0, the load generator
(benchmarks/loadgen.py, uvloop) in this process pinned to core 1. Figures are
medians of ``--runs`` runs; ratios are to websockets with the same loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import loadgen  # noqa: E402

CONTENDERS: list[tuple[str, str, dict[str, str]]] = [
    # (label, server name, environment)
    ("wsevents (C speed-up)", "wsevents", {}),
    ("wsevents (pure Python)", "wsevents", {"WSEVENTS_NO_SPEEDUPS": "1"}),
    ("websockets", "websockets", {}),
    ("aiohttp", "aiohttp", {}),
    ("picows", "picows", {}),
    ("raw limit", "raw", {}),
]
SCENARIOS = [
    ("rtt", "msgs/s", True),
    ("pipelined", "msgs/s", True),
    ("100 conns", "msgs/s", True),
    ("1 MiB echo", "MiB/s", True),
    ("handshakes", "/s", True),
    ("idle memory", "KiB/conn", False),
    ("broadcast", "deliveries/s", True),
]


class Server:
    def __init__(self, name: str, env: dict[str, str], uvloop: bool) -> None:
        self.port_file = Path(f"/tmp/wsevents-bench-{os.getpid()}-{name}.port")
        self.port_file.unlink(missing_ok=True)
        args = [sys.executable, str(HERE / "servers.py"), name, str(self.port_file)] + (
            ["--uvloop"] if uvloop else []
        )
        self.proc = subprocess.Popen(args, env={**os.environ, **env}, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not (self.port_file.exists() and self.port_file.read_text()):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server {name} did not start")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.port_file.unlink(missing_ok=True)


def median_of(runs: int, make: Callable[[], Awaitable[float]]) -> float:
    return statistics.median(asyncio.run(make()) for _ in range(runs))


def measure(server: Server, args: argparse.Namespace) -> dict[str, float]:
    port, s, runs = server.port, args.seconds, args.runs
    n_idle, n_bcast, rounds = (100, 50, 5) if args.quick else (2000, 1000, 20)
    return {
        "rtt": median_of(runs, lambda: loadgen.rtt(port, s)),
        "pipelined": median_of(runs, lambda: loadgen.pipelined(port, s)),
        "100 conns": median_of(runs, lambda: loadgen.many(port, s)),
        "1 MiB echo": median_of(runs, lambda: loadgen.big(port, s)),
        "handshakes": median_of(runs, lambda: loadgen.handshakes(port, s)),
        "idle memory": asyncio.run(loadgen.idle_memory(port, server.proc.pid, n_idle)),
        "broadcast": median_of(runs, lambda: loadgen.broadcast(port, n_bcast, rounds)),
    }


def client_side(
    args: argparse.Namespace, uvloop: bool, compression: bool = False
) -> dict[str, dict[str, float]]:
    """Scenario 8: each client against a picows server (uvloop), the fastest server here."""
    results: dict[str, dict[str, float]] = {}
    libs = ["wsevents", "websockets", "aiohttp", "picows"]
    if compression:
        libs = ["wsevents", "websockets"]
    for lib in libs:
        name = lib if compression else "picows"
        env = {"BENCH_COMPRESSION": "1"} if compression else {}
        server = Server(name, env, uvloop=not compression)
        try:
            samples: list[dict[str, float]] = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, str(HERE / "clients.py"), lib, str(server.port), str(args.seconds)]
                    + (["--uvloop"] if uvloop else []),
                    capture_output=True,
                    text=True,
                    timeout=120,
                    env={**os.environ, **env},
                    check=True,
                )
                samples.append(json.loads(out.stdout))
            results[lib] = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
        finally:
            server.stop()
    return results


def fmt(value: float, unit: str) -> str:
    if unit == "KiB/conn":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def table(rows: dict[str, dict[str, float]], columns: list[tuple[str, str, bool]], base: str) -> list[str]:
    lines = [
        "| contender | " + " | ".join(f"{c} ({u})" for c, u, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for label, values in rows.items():
        cells = []
        for col, unit, higher_better in columns:
            v = values.get(col)
            if v is None:
                cells.append("—")
                continue
            ref = rows.get(base, {}).get(col)
            ratio = ""
            if ref and label != base:
                r = v / ref if higher_better else ref / v if v else 0.0
                ratio = f" ({r:.2f}×)"
            cells.append(fmt(v, unit) + ratio)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def versions() -> str:
    out = []
    for dist in ("wsevents", "websockets", "aiohttp", "picows", "uvloop"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out)


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=HERE, timeout=10)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; Linux {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--only", default="", help="comma-separated server names to run")
    parser.add_argument("--quick", action="store_true", help="tiny counts, for the CI smoke test")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures as JSON")
    args = parser.parse_args(argv)
    started = time.time()
    loadgen.pin(1)
    generator_loop = loadgen.use_uvloop()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    only = {s for s in args.only.split(",") if s}
    report: list[str] = []
    raw: dict[str, Any] = {}
    for loop in args.loops.split(","):
        rows: dict[str, dict[str, float]] = {}
        for label, name, env in CONTENDERS:
            if only and name not in only:
                continue
            server = Server(name, env, uvloop=loop == "uvloop")
            try:
                rows[label] = measure(server, args)
            finally:
                server.stop()
            print(
                f"[{time.time() - started:5.0f} s] {loop:8} {label:24} "
                + "  ".join(
                    f"{k}={fmt(v, u)}" for (k, u, _), v in zip(SCENARIOS, rows[label].values(), strict=True)
                ),
                flush=True,
            )
        raw[loop] = rows
        report += [f"### Servers, {loop} loop (scenarios 1-7)", "", *table(rows, SCENARIOS, "websockets"), ""]
        if not only:
            clients = client_side(args, uvloop=loop == "uvloop")
            raw[f"clients-{loop}"] = clients
            report += [
                f"### Clients, {loop} loop (scenario 8, against a picows server on uvloop)",
                "",
                *table(clients, [("rtt", "msgs/s", True), ("big", "MiB/s", True)], "websockets"),
                "",
            ]
    if not only:
        compressed = client_side(args, uvloop=True, compression=True)
        raw["compression"] = compressed
        report += [
            "### With permessage-deflate on (each client against its own library's server, uvloop)",
            "",
            *table(compressed, [("rtt", "msgs/s", True), ("big", "MiB/s", True)], "websockets"),
            "",
        ]
    elapsed = time.time() - started
    header = [
        f"## Benchmarks — {time.strftime('%Y-%m-%d')}",
        "",
        f"`python benchmarks/run.py --runs {args.runs} --seconds {args.seconds}` (`make bench`)",
        f"on {machine()}.",
        f"Versions: {versions()}; wsevents commit {commit()}.",
        f"Load generator: benchmarks/loadgen.py on {generator_loop}, pinned to core 1;",
        "servers pinned to core 0. Medians of the runs; (×) = ratio to websockets in the same table",
        "(for idle memory, websockets' figure divided by the contender's: higher is better).",
        "Compression is off for every library in the server and client tables",
        "(the load generator offers none).",
        f"The whole run took {elapsed:.0f} s.",
        "",
    ]
    text = "\n".join(header + report)
    print("\n" + text)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    if not args.no_write:
        results = HERE / "RESULTS.md"
        current = results.read_text() if results.exists() else "# Benchmark and soak results\n"
        start_marker, end_marker = "<!-- bench:start -->", "<!-- bench:end -->"
        block = f"{start_marker}\n{text}\n{end_marker}"
        if start_marker in current:
            before, _, rest = current.partition(start_marker)
            _, _, after = rest.partition(end_marker)
            current = before + block + after
        else:
            title, _, rest = current.partition("\n")
            current = f"{title}\n\n{block}\n{rest}"
        results.write_text(current)
    return 0


if __name__ == "__main__":
    sys.exit(main())
