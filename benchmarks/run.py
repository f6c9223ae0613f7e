"""Runs every contender through every scenario in one go; prints the tables and writes RESULTS.md.

    python benchmarks/run.py                       # what `make bench` runs (about 6 minutes)
    python benchmarks/run.py --only wsevents,websockets --loops asyncio --no-write
    python benchmarks/run.py --profile             # cProfile of the wsevents echo server (rtt, pipelined)
    python benchmarks/run.py --profile --profile-scenarios handshakes   # ... of its handshakes
    python benchmarks/run.py --baseline HEAD~5     # also wsevents as of a git revision, side by side

Each server (benchmarks/serve.py NAME, or benchmarks/node/server.js) runs in its own process
pinned to core 0; the load generator (benchmarks/loadgen.c compiled, or benchmarks/loadgen.py:
one program for every server) runs in another process pinned to core 1. Figures are medians
of ``--runs`` runs of ``--seconds`` each; ratios are to websockets in the same table. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import LOADGEN_CORE, machine, pin, raise_nofile, source_commit, versions  # noqa: E402
from contenders.lib_wsevents import AIOFASTNET_ENV  # noqa: E402
from procs import Failed, Server, choose_loadgen, loadgen, run_json  # noqa: E402

PURE = {"WSEVENTS_NO_SPEEDUPS": "1"}


@dataclass
class Contender:
    label: str
    server: str  # a name of contenders.MODULES
    env: dict[str, str] = field(default_factory=dict)
    #: wsevents only: whether its compiled path must (True) or must not (False) be in use.
    speedups: bool | None = None
    style: str = "event"
    #: Where its ``wsevents`` must be imported from (a --baseline worktree); None: the installed one.
    source: str | None = None
    #: False: a server with a loop of its own (Node), measured once, in the first loop's table.
    every_loop: bool = True


#: The contenders of the server tables, in order. ``wsevents`` is the pure-Python path;
#: ``wsevents-c`` (the compiled path: the same server without WSEVENTS_NO_SPEEDUPS) joins
#: when wsevents._speedups is built, and is left out (with a note) when it is not.
CONTENDERS = [
    Contender("wsevents", "wsevents", PURE, speedups=False),
    Contender("wsevents-c", "wsevents", {}, speedups=True),
    Contender("websockets", "websockets"),
    Contender("aiohttp", "aiohttp"),
    Contender("picows", "picows"),
    Contender("node ws", "node", every_loop=False),
    Contender("raw limit", "raw"),
]
#: (scenario, unit, higher is better)
SCENARIOS = [
    ("rtt", "msgs/s", True),
    ("pipelined", "msgs/s", True),
    ("100 conns", "msgs/s", True),
    ("1 MiB echo", "MiB/s", True),
    ("handshakes", "/s", True),
    ("idle memory", "KiB/conn", False),
    ("broadcast", "deliveries/s", True),
]
STYLE_SCENARIOS = ["rtt", "pipelined", "100 conns", "1 MiB echo"]
COMPRESSION_SCENARIOS = ["rtt", "pipelined", "1 MiB echo", "handshakes", "idle memory"]
CLIENT_COLUMNS = [("rtt", "msgs/s", True), ("big", "MiB/s", True)]
#: Scenario 8: (label, library, environment, required speed-ups)
CLIENTS = [
    ("wsevents", "wsevents", PURE, False),
    ("wsevents-c", "wsevents", {}, True),
    ("websockets", "websockets", {}, None),
    ("aiohttp", "aiohttp", {}, None),
    ("picows", "picows", {}, None),
]
BASE = "websockets"
def medians(results: dict[str, list[float | None]]) -> dict[str, float]:
    """The median of each list; ``null`` figures (the CPU time of a run that counted nothing) left out."""
    known = {k: [x for x in v if x is not None and math.isfinite(x)] for k, v in results.items()}
    return {k: float(statistics.median(v)) for k, v in known.items() if v}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "KiB/conn":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def table(
    rows: dict[str, dict[str, float]],
    columns: list[tuple[str, str, bool]],
    base: str = BASE,
    cpu: dict[str, dict[str, float]] | None = None,
) -> list[str]:
    """A Markdown table; each cell is the median and, but in the base row, its ratio to the base row.

    With ``cpu`` (label -> scenario -> the server's CPU µs per message) each cell also shows that.
    """
    lines = [
        "| contender | " + " | ".join(f"{c} ({u})" for c, u, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for label, values in rows.items():
        cells = []
        for col, unit, higher_better in columns:
            v = values.get(col)
            ref = rows.get(base, {}).get(col)
            cell = fmt(v, unit)
            if v is not None and ref and v > 0 and label != base:
                cell += f" ({(v / ref if higher_better else ref / v):.2f}×)"
            us = (cpu or {}).get(label, {}).get(col)
            if v is not None and us is not None and math.isfinite(us):
                cell += f" · {us:,.1f} µs" if us < 1000 else f" · {us:,.0f} µs"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.failures: list[str] = []
        self.notes: list[str] = [args.loadgen_note] if args.loadgen_note else []
        self.raw: dict[str, Any] = {}
        self.only = {s for s in args.only.split(",") if s}
        self.contenders = list(CONTENDERS)
        for ref in reversed([r for r in (args.baseline or "").split(",") if r]):
            self.contenders = with_baseline(self.contenders, ref)
        if args.aiofastnet:
            self.contenders = with_aiofastnet(self.contenders)

    def wanted(self, label: str) -> bool:
        return not self.only or label in self.only

    def log(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f} s] {text}", flush=True)

    def fail(self, what: str, error: BaseException) -> None:
        self.failures.append(f"{what}: {error}")
        self.log(f"FAILED {what}: {error}")

    def measure(
        self, c: Contender, loop: str, scenarios: list[str], *, compression: bool = False
    ) -> tuple[dict[str, float], dict[str, float]] | None:
        """Medians of ``c``'s figures and of its server's CPU µs per message, or None (failed, left out)."""
        what = f"{c.label} ({loop}{', compression' if compression else ''}, {c.style} style)"
        try:
            with Server(c.server, loop, c.env, compression=compression, style=c.style) as server:
                if c.speedups is not None and server.speedups != c.speedups:
                    if c.speedups:
                        self.notes.append(f"{c.label} left out: wsevents._speedups is not built here.")
                        return None
                    raise Failed("WSEVENTS_NO_SPEEDUPS=1 did not turn the compiled path off")
                if c.source is not None and not (server.source or "").startswith(c.source):
                    raise Failed(f"served wsevents from {server.source}, not from {c.source}")
                out = loadgen(server, scenarios, self.args, deflate=compression)
                if server.about:
                    self.notes.append(f"{c.label}: {server.about}.")
        except (Failed, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            self.fail(what, exc)
            return None
        figures, cpu = medians(out["results"]), medians(out.get("cpu", {}))
        self.log(f"{loop:8} {c.label:22} " + "  ".join(f"{k}={v:,.1f}" for k, v in figures.items()))
        return figures, cpu

    def servers(self, loop: str, cpu: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """Scenarios 1-7 for every contender on ``loop``; fills ``cpu`` (label -> scenario -> µs)."""
        rows: dict[str, dict[str, float]] = {}
        first_loop = loop == self.args.loops.split(",")[0]
        for c in self.contenders:
            if self.wanted(c.label) and (c.every_loop or first_loop):
                measured = self.measure(c, loop, [s for s, _, _ in SCENARIOS])
                if measured is not None:
                    rows[c.label], cpu[c.label] = measured
                    if not c.every_loop:
                        self.notes.append(f"{c.label} runs on an event loop of its own: measured once,"
                                          f" shown in the {loop} table.")
        return rows

    def styles(
        self, event_rows: dict[str, dict[str, float]], cpu: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]:
        rows = {}
        if "wsevents" in event_rows:
            rows["wsevents, event style"] = {k: event_rows["wsevents"][k] for k in STYLE_SCENARIOS}
            cpu["wsevents, event style"] = cpu.pop("wsevents", {})
        measured = self.measure(
            Contender("wsevents", "wsevents", PURE, False, "async"), "asyncio", STYLE_SCENARIOS
        )
        if measured is not None:
            rows["wsevents, async style"], cpu["wsevents, async style"] = measured
        return rows

    def compression(
        self, off_rows: dict[str, dict[str, float]], cpu: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]:
        rows = {}
        for c in CONTENDERS:
            if c.label not in ("wsevents", "websockets") or not self.wanted(c.label):
                continue
            if c.label in off_rows:
                rows[f"{c.label}, off"] = {k: off_rows[c.label][k] for k in COMPRESSION_SCENARIOS}
                cpu[f"{c.label}, off"] = cpu.pop(c.label, {})
            measured = self.measure(c, "asyncio", COMPRESSION_SCENARIOS, compression=True)
            if measured is not None:
                rows[f"{c.label}, on"], cpu[f"{c.label}, on"] = measured
        return rows

    def clients(self, loop: str) -> dict[str, dict[str, float]]:
        """Scenario 8: every client against the raw-limit server (uvloop); the load generator is the limit."""
        rows: dict[str, dict[str, float]] = {}
        args = self.args
        try:
            server = Server("raw", "uvloop")
        except Failed as exc:
            self.fail("raw-limit server for the clients", exc)
            return rows
        with server:
            for label, lib, env, need in CLIENTS:
                if not self.wanted(label):
                    continue
                if need and not self.speedups_built():
                    continue
                cmd = [
                    sys.executable,
                    str(HERE / "client.py"),
                    lib,
                    "--port",
                    str(server.port),
                    "--loop",
                    loop,
                ]
                cmd += ["--runs", str(args.runs), "--seconds", str(args.seconds)]
                try:
                    rows[label] = medians(run_json(cmd, env, 60 + 2 * args.runs * (args.seconds + 10)))
                except (Failed, subprocess.TimeoutExpired, ValueError) as exc:
                    self.fail(f"{label} client ({loop})", exc)
                    continue
                self.log(
                    f"{loop:8} {label + ' client':22} "
                    + "  ".join(f"{k}={v:,.1f}" for k, v in rows[label].items())
                )
            if not self.only or "raw limit" in self.only:
                try:
                    figures = medians(loadgen(server, ["rtt", "1 MiB echo"], args)["results"])
                    rows["load generator (limit)"] = {"rtt": figures["rtt"], "big": figures["1 MiB echo"]}
                except (Failed, subprocess.TimeoutExpired, ValueError) as exc:
                    self.fail("load generator against the raw-limit server", exc)
        return rows

    def loadgen_about(self) -> str:
        if self.args.loadgen_bin:
            deflate = "" if self.args.no_compression else "; for the permessage-deflate table, loadgen.py"
            return ("benchmarks/loadgen.c compiled: epoll, pre-built pre-masked frames, batched"
                    f" writev{deflate}")
        return "benchmarks/loadgen.py: raw asyncio Protocol client on uvloop, pre-built pre-masked frames"

    _built: bool | None = None

    def speedups_built(self) -> bool:
        if self._built is None:
            code = "import wsevents.protocol._mask as m; print(int(m.SPEEDUPS))"
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            self._built = out.stdout.strip() == "1"
        return self._built

    def run(self) -> str:
        args = self.args
        loops = args.loops.split(",")
        load_before = os.getloadavg()
        sections: list[str] = []
        main_rows: dict[str, dict[str, dict[str, float]]] = {}
        main_cpu: dict[str, dict[str, dict[str, float]]] = {}
        for loop in loops:
            cpu = main_cpu[loop] = {}
            rows = main_rows[loop] = self.servers(loop, cpu)
            self.raw[f"servers/{loop}"] = rows
            self.raw[f"cpu/servers/{loop}"] = cpu
            sections += [f"### Servers, {loop} loop (scenarios 1-7)", "", *table(rows, SCENARIOS, BASE, cpu)]
            sections.append("")
        if not args.no_clients:
            for loop in loops:
                rows = self.clients(loop)
                self.raw[f"clients/{loop}"] = rows
                sections += [
                    f"### Clients, {loop} loop"
                    " (scenario 8: each client against the raw-limit server on uvloop)",
                    "",
                    *table(rows, CLIENT_COLUMNS),
                    "",
                ]
        if not args.no_compression and "asyncio" in main_rows:
            cpu = dict(main_cpu["asyncio"])
            rows = self.compression(main_rows["asyncio"], cpu)
            self.raw["compression/asyncio"] = rows
            cols = [c for c in SCENARIOS if c[0] in COMPRESSION_SCENARIOS]
            off = {k: v for k, v in rows.items() if k.endswith("off")}
            on = {k: v for k, v in rows.items() if k.endswith("on")}
            sections += [
                "### permessage-deflate off and on (servers, asyncio loop;"
                " ratios to websockets with the same setting)",
                "",
                *table(off, cols, "websockets, off", cpu),
                *table(on, cols, "websockets, on", cpu)[2:],
                "",
            ]
        if not args.no_styles and self.wanted("wsevents") and "asyncio" in main_rows:
            cpu = dict(main_cpu["asyncio"])
            rows = self.styles(main_rows["asyncio"], cpu)
            self.raw["styles/asyncio"] = rows
            cols = [c for c in SCENARIOS if c[0] in STYLE_SCENARIOS]
            sections += [
                "### wsevents server styles (pure Python, asyncio loop; ratios to the event style)",
                "",
                *table(rows, cols, "wsevents, event style", cpu),
                "",
            ]
        elapsed = time.monotonic() - self.started
        load_after = os.getloadavg()
        cmdline = " ".join(["python benchmarks/run.py", *sys.argv[1:]]).strip()
        header = [
            f"## Benchmarks — {time.strftime('%Y-%m-%d %H:%M %Z')}",
            "",
            f"`{cmdline}`{' (what `make bench` runs)' if not sys.argv[1:] else ''}, {elapsed:.0f} s in all.",
            "",
            f"- Machine: {machine()}.",
            f"- Versions: {versions()}.",
            f"- wsevents source: commit {source_commit()}.",
            f"- Load average (1 min) at the start {load_before[0]:.2f}, at the end {load_after[0]:.2f}"
            " (anything else running on the two cores shows up in the figures).",
            f"- Medians of {args.runs} runs of {args.seconds:g} s each (idle memory: one run). In each cell,"
            " (×) is the ratio to websockets in the same table, written so that above 1 is better than"
            " websockets (for idle memory: websockets' figure divided by the contender's).",
            f"- Servers on core 0, the load generator ({self.loadgen_about()}) on core 1;"
            " all traffic on 127.0.0.1.",
            "- After each throughput, the server's CPU time per message (µs; 1 MiB echo: per 1 MiB"
            " message, handshakes: per connection, broadcast: per delivery): user + system time of the"
            " server process (every thread) from /proc/PID/stat, 10 ms ticks, over the timed part of"
            " each run, median of the runs. Throughput × µs is the share of its core the server used:"
            " a server well under one full core was held back by something else (the load generator,"
            " the kernel, the machine's other load), not by its own code.",
            (
                "- Idle CPUs kept polling during the run (PM QoS request: /dev/cpu_dma_latency = 0,"
                " dropped at exit), so that serial round trips do not measure the VM's vCPU wake-up."
                if args.polling
                else "- Idle CPUs were allowed to halt (no /dev/cpu_dma_latency request): on a VM,"
                " rtt then includes the vCPU wake-up and varies with the machine's other load."
            ),
            "- Compression is off for every library in every table but the permessage-deflate one.",
            f"- Counts: idle memory over {args.idle:,} connections, broadcast to {args.bcast:,},"
            f" pipelined with {args.in_flight} in flight, '100 conns' with {args.conns} connections;"
            " keepalive pings off for every library.",
            "- wsevents = the pure-Python path (WSEVENTS_NO_SPEEDUPS=1), event-style server;"
            " wsevents-c = the same with the compiled speed-up (masking) in use.",
            *[f"- {note}" for note in dict.fromkeys(self.notes)],
            *[f"- **Failed:** {f.splitlines()[0]}" for f in self.failures],
            "",
        ]
        return "\n".join(header + sections)


def keep_cpus_polling() -> bool:
    """Ask the kernel to keep idle CPUs polling instead of halting, for as long as this process lives.

    A PM QoS request (``/dev/cpu_dma_latency`` = 0, as ``pyperf system tune`` and tuned's
    latency-performance profile make): idle CPUs stay in the polling idle state. On a VM a halted
    vCPU takes tens of microseconds to wake, which serial round trips would otherwise measure
    (here: the raw limit's rtt is about 12,500/s with halting, 84,000/s with polling), and which
    varies with whatever else runs on the machine. The kernel drops the request when the file is
    closed, at the latest when this process exits. Needs root; without it nothing changes.
    """
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, struct.pack("i", 0))
    except OSError:
        os.close(fd)
        return False
    _held_fds.append(fd)
    return True


_held_fds: list[int] = []


def add_chart(text: str, figures: dict[str, Any], path: Path, *, link: bool) -> str:
    """Draws the chart of the server tables to ``path``; ``text`` and a link to it (or why there is none)."""
    try:
        import chart

        chart.draw(figures, path)
    except ImportError:
        return text + "\nNo chart: matplotlib is not installed (benchmarks/requirements.txt has it).\n"
    except ValueError as exc:
        return text + f"\nNo chart: {exc}.\n"
    print(f"chart: {path}", file=sys.stderr)
    return text + "\n![The server tables above as a chart](RESULTS.png)\n" if link else text


def write_results(text: str) -> None:
    results = HERE / "RESULTS.md"
    current = results.read_text() if results.exists() else "# Benchmark results\n"
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    block = f"{start}\n{text}\n{end}"
    if start in current and end in current:
        before, _, rest = current.partition(start)
        _, _, after = rest.partition(end)
        current = before + block + after
    else:
        title, _, rest = current.partition("\n")
        current = f"{title}\n\n{block}\n{rest}"
    results.write_text(current)


def with_baseline(contenders: list[Contender], ref: str) -> list[Contender]:
    """``contenders`` with wsevents as of git revision ``ref`` (both paths) after the current one.

    The revision is served through ``PYTHONPATH`` by the same benchmarks/serve.py: a
    before/after comparison in one run, on the same machine state.
    """
    extra = baseline_contenders(ref)
    # After the current wsevents rows, before any other revision's.
    at = max(i for i, c in enumerate(contenders) if c.label in ("wsevents", "wsevents-c")) + 1
    return [*contenders[:at], *extra, *contenders[at:]]


def baseline_contenders(ref: str) -> list[Contender]:
    """wsevents as of git revision ``ref``, pure and compiled: checked out in a temporary git
    worktree (removed at exit), its C speed-up built in place."""
    repo = HERE.parent
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=repo, capture_output=True,
                            text=True, check=True).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix=f"wsevents-{commit}-"))
    subprocess.run(["git", "worktree", "add", "--detach", "--force", str(tree), commit], cwd=repo,
                   check=True, capture_output=True)
    atexit.register(lambda: subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo,
                                           capture_output=True, check=False))
    build_speedups(tree / "src" / "wsevents")
    src = str(tree / "src")
    return [
        Contender(f"wsevents@{commit}", "wsevents", {**PURE, "PYTHONPATH": src}, speedups=False, source=src),
        Contender(f"wsevents-c@{commit}", "wsevents", {"PYTHONPATH": src}, speedups=True, source=src),
    ]


def with_aiofastnet(contenders: list[Contender]) -> list[Contender]:
    """``contenders`` with wsevents-c served on aiofastnet's transports, right after wsevents-c.

    The same server, its loop patched by ``aiofastnet.patch_loop`` (README.md, "Fast transports").
    """
    fast = Contender("wsevents-c+aiofastnet", "wsevents", {AIOFASTNET_ENV: "1"}, speedups=True)
    at = next(i for i, c in enumerate(contenders) if c.label == "wsevents-c") + 1
    return [*contenders[:at], fast, *contenders[at:]]


def build_speedups(package: Path) -> None:
    """Compile ``package``'s C speed-up in place with the system compiler (what setup.py builds)."""
    import sysconfig

    source = package / "_speedups.c"
    if not source.exists():
        return  # a revision without it: its wsevents-c row is left out, with a note
    target = package / f"_speedups{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", f"-I{include}", str(source),
                    "-o", str(target)], check=True, capture_output=True)


def profile(args: argparse.Namespace) -> None:
    """cProfile of the wsevents echo server (pure Python, event style, asyncio) under the chosen scenarios."""
    import pstats

    for scenario in args.profile_scenarios.split(","):
        folder = tempfile.mkdtemp(prefix="wsevents-profile-")
        out = os.path.join(folder, f"{scenario}.prof")
        try:
            with Server("wsevents", "asyncio", PURE, profile=out) as server:
                once = argparse.Namespace(**{**vars(args), "runs": 1})
                figures = loadgen(server, [scenario], once)["results"]
            print(f"\n## {scenario}: {figures[scenario][0]:,.0f} msgs/s under cProfile, {args.seconds:g} s")
            pstats.Stats(out).strip_dirs().sort_stats("tottime").print_stats(args.top)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument(
        "--only", default="", help="comma-separated contender labels (e.g. wsevents,websockets)"
    )
    parser.add_argument("--idle", type=int, default=2000, help="idle memory: connections")
    parser.add_argument("--bcast", type=int, default=1000, help="broadcast: receiving connections")
    parser.add_argument("--conns", type=int, default=100, help="connections of the '100 conns' scenario")
    parser.add_argument("--in-flight", type=int, default=100, help="pipelined: messages in flight")
    parser.add_argument("--loadgen", choices=["c", "py"],
                        help="c: benchmarks/loadgen.c, compiled on demand (the default when it builds);"
                        " py: benchmarks/loadgen.py")
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke test): 1 run of 0.1 s")
    parser.add_argument("--no-clients", action="store_true", help="skip scenario 8")
    parser.add_argument("--no-compression", action="store_true", help="skip the permessage-deflate table")
    parser.add_argument("--no-styles", action="store_true", help="skip the wsevents style table")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--chart", metavar="FILE",
                        help="write the PNG chart there (default: benchmarks/RESULTS.png, unless --no-write)")
    parser.add_argument(
        "--allow-idle", action="store_true", help="let idle CPUs halt (no /dev/cpu_dma_latency request)"
    )
    parser.add_argument("--profile", action="store_true", help="profile the wsevents server instead")
    parser.add_argument("--baseline", metavar="REF",
                        help="also serve wsevents as of these git revisions, comma-separated (before/after "
                        "in one run)")
    parser.add_argument("--aiofastnet", action="store_true",
                        help="also serve wsevents-c on aiofastnet's transports (row wsevents-c+aiofastnet)")
    parser.add_argument("--top", type=int, default=15, help="--profile: functions shown")
    parser.add_argument("--profile-scenarios", default="rtt,pipelined",
                        help="--profile: comma-separated scenarios (e.g. handshakes)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.idle, args.bcast, args.conns, args.in_flight = 1, 0.1, 50, 20, 10, 10
    args.loadgen_bin, args.loadgen_note = choose_loadgen(args.loadgen)
    pin(LOADGEN_CORE)  # this process mostly waits; keep it off the servers' core
    raise_nofile()
    args.polling = not args.quick and not args.allow_idle and keep_cpus_polling()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.profile:
        profile(args)
        return 0
    bench = Bench(args)
    text = bench.run()
    chart = Path(args.chart) if args.chart else None if args.no_write else HERE / "RESULTS.png"
    if chart is not None:
        text = add_chart(text, bench.raw, chart, link=chart.resolve() == HERE / "RESULTS.png")
    print("\n" + text, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": bench.raw, "failures": bench.failures}, indent=1))
    if not args.no_write:
        write_results(text)
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
