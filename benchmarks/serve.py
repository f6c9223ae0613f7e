"""Runs one contender's echo server: ``python benchmarks/serve.py NAME --port-file FILE [options]``.

The server is pinned to core 0, may use uvloop, and writes ``{"port": ..., "pid": ...,
"speedups": ...}`` to the port file once it listens. It stops on SIGTERM/SIGINT, when
the process that started it is gone, or after ``--lifetime`` seconds, whichever comes
first. With ``--profile FILE`` it runs under cProfile and dumps the stats there on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SERVER_CORE, pin, raise_nofile, run  # noqa: E402
from contenders import MODULES, load  # noqa: E402


def speedups() -> bool | None:
    """Whether wsevents' compiled path is in use in this process (None: wsevents not imported)."""
    if "wsevents" not in sys.modules:
        return None
    from wsevents.protocol import _mask

    return bool(_mask.SPEEDUPS)


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    module = load(args.name)

    def ready(port: int) -> None:
        info = {"port": port, "pid": os.getpid(), "speedups": speedups(), "loop": type(loop).__module__,
                "source": getattr(sys.modules.get("wsevents"), "__file__", None)}
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(args.port_file)

    async def watchdog() -> None:
        deadline = loop.time() + args.lifetime
        while loop.time() < deadline and os.getppid() == parent:
            await asyncio.sleep(0.5)
        stop.set()

    task = asyncio.ensure_future(module.serve(ready, compression=args.compression, style=args.style))
    guard = asyncio.ensure_future(watchdog())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    guard.cancel()
    if task.done():
        task.result()  # the server failed: raise its error
    task.cancel()
    try:
        await asyncio.wait_for(task, 5)
    except (asyncio.CancelledError, asyncio.TimeoutError):
        pass


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", choices=sorted(MODULES))
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--style", default="event", help="wsevents only: event or async")
    parser.add_argument("--core", type=int, default=SERVER_CORE)
    parser.add_argument("--lifetime", type=float, default=900.0)
    parser.add_argument("--profile", metavar="FILE")
    args = parser.parse_args()
    pin(args.core)
    raise_nofile()
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run(main(args), args.loop)
        finally:
            profiler.disable()
            profiler.dump_stats(args.profile)
    else:
        run(main(args), args.loop)


if __name__ == "__main__":
    cli()
