"""Autobahn|Testsuite section 9 (limits and performance) against wsevents and websockets echo servers.

    python benchmarks/autobahn9.py                 # what `make bench` runs after run.py
    python benchmarks/autobahn9.py --cases 9.1.*   # a part of the section

Section 9 sends big messages (64 KiB to 16 MiB, whole, fragmented or chopped into small TCP
writes) and 1000-message round trips; kosoku (Autobahn's case files, a dev dependency) times each
case. Each server runs in its own process (a new one per run), one case at a time, with messages
allowed up to 32 MiB, keepalive pings and compression off (section 9 does not negotiate
compression). wsevents runs its events-style echo on the compiled path. Prints the per-case
median times of ``--runs`` runs in milliseconds, with the ratio to websockets (below 1: wsevents
is faster), and writes them to AUTOBAHN9.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KOSOKU = Path(sys.executable).parent / "kosoku"
LIMIT = 32 * 1024 * 1024

SERVERS = {
    "wsevents": f"""
import asyncio, wsevents
async def main():
    def echo(conn):
        conn.on("message", conn.send)
    server = wsevents.create_server(echo, max_buffer_length={LIMIT}, ping_interval=None, compression=False)
    await server.listen(0, "127.0.0.1")
    print(server.port, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
""",
    "websockets": f"""
import asyncio
from websockets.asyncio.server import serve
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    async with serve(echo, "127.0.0.1", 0, max_size={LIMIT}, ping_interval=None, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
""",
}

#: behavior, duration in ms, and kosoku's reason when the case is not OK.
Result = tuple[str, int, str]


def run_section(name: str, cases: list[str], outdir: Path) -> dict[str, Result]:
    """Run the cases against one server, one at a time; return the results by case id."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVERS[name]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        selection = [arg for case in cases for arg in ("-i", case)]
        subprocess.run(
            [str(KOSOKU), "-m", "fuzzingclient", "-o", str(outdir), *selection, f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800, check=False,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)
    index = json.loads((outdir / "index.json").read_text())
    results = {}
    for agent in index.values():
        for case, entry in agent.items():
            why = ""
            if entry["behavior"] != "OK":
                detail = json.loads((outdir / entry["reportfile"]).read_text())
                code, reason = detail["remoteCloseCode"], detail["remoteCloseReason"]
                why = f"{detail['result']} (it closed with {code} {reason!r})"
            results[case] = (entry["behavior"], entry["duration"], why)
    return results


def median_of(runs: list[dict[str, Result]]) -> dict[str, Result]:
    """Per case: the median time; the first verdict that is not OK (with its reason), else OK."""
    merged = {}
    for case in runs[0]:
        results = [run[case] for run in runs]
        worst = next((r for r in results if r[0] != "OK"), results[0])
        merged[case] = (worst[0], int(statistics.median(r[1] for r in results)), worst[2])
    return merged


def case_key(case: str) -> list[int]:
    return [int(part) for part in case.split(".")]


def table(results: dict[str, dict[str, Result]]) -> list[str]:
    """The Markdown table (ratio and totals only over the cases OK on both sides), then notes."""
    names = list(results)
    lines = [
        "| case | " + " | ".join(f"{n} (ms)" for n in names) + " | wsevents / websockets |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    totals = dict.fromkeys(names, 0)
    for case in sorted(results[names[0]], key=case_key):
        row = [results[n].get(case, ("missing", 0, "")) for n in names]
        cells = [f"{ms}" + ("" if behavior == "OK" else f" ({behavior})") for behavior, ms, _ in row]
        ratio = "–"
        if all(behavior == "OK" for behavior, _, _ in row):
            for n, (_, ms, _) in zip(names, row, strict=True):
                totals[n] += ms
            ratio = f"{results['wsevents'][case][1] / max(results['websockets'][case][1], 1):.2f}"
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {ratio} |")
    ratio = f"{totals['wsevents'] / max(totals['websockets'], 1):.2f}"
    sums = " | ".join(f"**{totals[n]}**" for n in names)
    lines.append(f"| **cases OK on both** | {sums} | **{ratio}** |")
    notes = [
        f"- {case}, {n}: {behavior}: {why}"
        for n in names
        for case, (behavior, _, why) in sorted(results[n].items(), key=lambda kv: case_key(kv[0]))
        if behavior != "OK"
    ]
    return lines + ([""] + notes if notes else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", action="append", help="case ids or globs (default: 9.*)")
    parser.add_argument("--runs", type=int, default=3, help="runs per server; times are medians (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write AUTOBAHN9.md")
    args = parser.parse_args()
    cases = args.cases or ["9.*"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SERVERS:
            started = time.monotonic()
            runs = [run_section(name, cases, Path(tmp) / f"{name}{i}") for i in range(args.runs)]
            results[name] = median_of(runs)
            took = time.monotonic() - started
            print(f"{name}: {len(results[name])} cases, {args.runs} runs in {took:.0f} s", file=sys.stderr)
    lines = table(results)
    print("\n".join(lines))
    if not args.no_write:
        header = [
            "# Autobahn|Testsuite section 9 (kosoku), per-case time",
            "",
            f"Written by `python benchmarks/autobahn9.py` on {time.strftime('%Y-%m-%d')}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; one case at a "
            "time, server and kosoku on the same machine. Times in ms, medians of "
            f"{args.runs} runs; a case not OK is marked.",
            "",
        ]
        (HERE / "AUTOBAHN9.md").write_text("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
