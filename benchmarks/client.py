"""Scenario 8, the client side: ``python benchmarks/client.py LIB --port PORT [options]``.

Runs LIB's client against the server on 127.0.0.1:PORT (run.py uses the raw-limit
server), pinned to core 1: serial round trips of the 64-byte text (``rtt``, round
trips/s) and of the 1 MiB binary message (``big``, MiB/s), ``--runs`` times each,
one connection per run. Prints ``{"rtt": [...], "big": [...]}`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LOADGEN_CORE, pin, run  # noqa: E402
from contenders import load  # noqa: E402

MAX_COUNT = 10_000_000


async def main(args: argparse.Namespace) -> dict[str, list[float]]:
    module = load(args.lib)
    url = f"ws://127.0.0.1:{args.port}/"
    results: dict[str, list[float]] = {}
    for scenario in args.scenarios.split(","):
        results[scenario] = [
            await module.client(url, scenario, args.seconds, MAX_COUNT) for _ in range(args.runs)
        ]
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("lib", choices=["wsevents", "websockets", "aiohttp", "picows"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenarios", default="rtt,big")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--core", type=int, default=LOADGEN_CORE)
    args = parser.parse_args()
    pin(args.core)
    print(json.dumps(run(main(args), args.loop)))


if __name__ == "__main__":
    cli()
