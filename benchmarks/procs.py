"""The processes of a benchmark run: a contender's server, and the load generator run against it.

``Server(name, loop)`` starts benchmarks/serve.py NAME (or Node's benchmarks/node/server.js) pinned
to the server core and reads its port file; ``loadgen(server, scenarios, args)`` runs the load
generator (the compiled benchmarks/loadgen.c, built on demand by ``build_loadgen()``, or
benchmarks/loadgen.py) and returns its JSON. Used by run.py.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import SERVER_CORE, pin

HERE = Path(__file__).resolve().parent
#: The compiled load generator: built from loadgen.c on demand (and by `make bench`).
LOADGEN_C = HERE / "loadgen.c"
LOADGEN_BIN = HERE / "build" / "loadgen"
NODE_SERVER = HERE / "node" / "server.js"

_live: list[subprocess.Popen[bytes]] = []


class Failed(Exception):
    """A measurement failed: run.py lists it in the report and goes on with the others."""


class Server:
    """One contender's server process, pinned to core 0; ``stop()`` (or exit) ends it."""

    def __init__(
        self,
        name: str,
        loop: str,
        env: dict[str, str] | None = None,
        *,
        compression: bool = False,
        style: str = "event",
        profile: str | None = None,
    ) -> None:
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="wsevents-bench-")
        self.port_file = os.path.join(self.dir, "port.json")
        self.log = os.path.join(self.dir, "server.log")
        if name == "node":
            if compression or profile:
                raise Failed("the Node server has no compression and no profile")
            args = [shutil.which("node") or "node", str(NODE_SERVER), "--port-file", self.port_file]
        else:
            args = [sys.executable, str(HERE / "serve.py"), name, "--port-file", self.port_file]
            args += ["--loop", loop, "--style", style] + (["--compression"] if compression else [])
            args += ["--profile", profile] if profile else []
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                args,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=log,
                start_new_session=True,
                # Before exec, so that every thread the server starts (Node's too) is on its core.
                preexec_fn=lambda: pin(SERVER_CORE),
            )
        _live.append(self.proc)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.tail()
                self.stop()
                raise Failed(f"server {name} did not start:\n{tail}")
            time.sleep(0.02)
        info = json.loads(Path(self.port_file).read_text())
        self.port: int = info["port"]
        self.pid: int = info["pid"]
        self.speedups: bool | None = info["speedups"]
        self.source: str | None = info.get("source")
        self.about: str | None = info.get("about")  # Node: what runs (versions, bufferutil)
        cores = os.sched_getaffinity(self.pid)
        if SERVER_CORE < (os.cpu_count() or 1) and cores != {SERVER_CORE}:
            self.stop()
            raise Failed(f"server {name} runs on cores {sorted(cores)}, not on core {SERVER_CORE} alone")

    def tail(self) -> str:
        try:
            return Path(self.log).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc in _live:
            _live.remove(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _kill_servers() -> None:
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()


def run_json(args: list[str], env: dict[str, str] | None, timeout: float) -> Any:
    """Runs ``args`` (``env`` added) and returns the JSON of its last line of output; Failed if it failed."""
    done = subprocess.run(
        args, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        what = " ".join(args[1:3]) if args[0] == sys.executable else Path(args[0]).name
        raise Failed(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def loadgen(server: Server, scenarios: list[str], args: argparse.Namespace, *, deflate: bool = False) -> Any:
    """Runs the load generator against ``server``: ``{"results": {scenario: [...]}, "cpu": {...}}``.

    The compiled one (``args.loadgen_bin``) unless it is not built or permessage-deflate is on.
    Idle memory goes first, on the fresh server: after the other scenarios a server's heap has
    grown, and the idle connections fit in memory it already holds (Node's ws measured 0.4 to
    2.5 KiB per connection that way, 8.3 KiB first). The figures come back in the order asked for.
    """
    asked, scenarios = scenarios, sorted(scenarios, key=lambda name: name != "idle memory")
    if args.loadgen_bin and not deflate:
        cmd = [args.loadgen_bin]
    else:
        cmd = [sys.executable, str(HERE / "loadgen.py")] + (["--deflate"] if deflate else [])
    cmd += ["--port", str(server.port), "--pid", str(server.pid)]
    cmd += ["--scenarios", ",".join(scenarios), "--runs", str(args.runs), "--seconds", str(args.seconds)]
    cmd += ["--idle", str(args.idle), "--bcast", str(args.bcast), "--conns", str(args.conns)]
    cmd += ["--in-flight", str(args.in_flight)]
    budget = 60 + len(scenarios) * args.runs * (args.seconds + 10)
    out = run_json(cmd, None, budget)
    for key in ("results", "cpu"):
        figures = out.get(key, {})
        out[key] = {name: figures[name] for name in asked if name in figures}
    return out


def choose_loadgen(choice: str | None) -> tuple[str | None, str | None]:
    """The compiled load generator's path (None: loadgen.py), and a note when it fell back to that."""
    if choice == "py":
        return None, None
    try:
        return build_loadgen(), None
    except (Failed, OSError) as exc:
        if choice == "c":
            raise SystemExit(f"--loadgen c: {exc}") from None
        note = (f"The C load generator could not be built ({exc}): benchmarks/loadgen.py was used instead;"
                " it caps the pipelined and 100-connection figures of the fastest servers.")
        print(note, file=sys.stderr, flush=True)
        return None, note


def build_loadgen() -> str:
    """Compiles loadgen.c (when the binary is missing or older) with ``$CC`` (default ``cc``); its path.

    Raises Failed, with the compiler's message, when there is no compiler or the build fails.
    """
    cc = os.environ.get("CC", "cc")
    if LOADGEN_BIN.exists() and LOADGEN_BIN.stat().st_mtime >= LOADGEN_C.stat().st_mtime:
        return str(LOADGEN_BIN)
    if shutil.which(cc) is None:
        raise Failed(f"no C compiler ({cc})")
    LOADGEN_BIN.parent.mkdir(exist_ok=True)
    tmp = LOADGEN_BIN.with_name(f".loadgen.{os.getpid()}")
    done = subprocess.run([cc, "-O2", "-o", str(tmp), str(LOADGEN_C), "-lm"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise Failed(f"{cc} failed: {done.stderr.strip()[-500:]}")
    tmp.replace(LOADGEN_BIN)  # atomic: a concurrent run sees the old binary or the new one
    return str(LOADGEN_BIN)
