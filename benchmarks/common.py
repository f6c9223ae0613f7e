"""What every benchmark program shares: payloads, frame building, pinning, limits, machine facts.

The payloads are fixed so that the load generator can send pre-built,
pre-masked frames and the raw-limit server can answer with pre-built frames.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import random
import resource
import subprocess
import zlib
from collections.abc import Coroutine
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: The 64-byte text message of the rtt, pipelined and 100-connection scenarios.
TEXT = '{"type":"tick","seq":1048576,"price":101.25,"qty":3,"side":"buy"}'[:64]
assert len(TEXT) == 64

#: The 1 MiB binary message: pseudo-random words, so it compresses (about 3×) like text would.
_words = [bytes(random.Random(i).choices(b"abcdefghijklmnopqrstuvwxyz", k=1 + i % 9)) for i in range(512)]
_rng = random.Random(4)
BLOB = b" ".join(_rng.choice(_words) for _ in range(300_000))[: 1 << 20]
assert len(BLOB) == 1 << 20

#: What the servers send to every connection when the control connection asks for a broadcast.
BCAST_TEXT = "B" * 64
#: The path of the control connection of the broadcast scenario; every other path echoes.
CONTROL_PATH = "/control"
#: Bounds on the size of one message, set the same for every library.
MAX_SIZE = 4 << 20

KEY = b"\x37\xfa\x21\x3d"
SERVER_CORE, LOADGEN_CORE = 0, 1


def frame_header(opcode: int, length: int, *, masked: bool, rsv1: bool = False) -> bytes:
    b0 = 0x80 | (0x40 if rsv1 else 0) | opcode
    m = 0x80 if masked else 0
    if length < 126:
        return bytes((b0, m | length))
    if length < 65536:
        return bytes((b0, m | 126)) + length.to_bytes(2, "big")
    return bytes((b0, m | 127)) + length.to_bytes(8, "big")


def client_frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    """A whole masked frame, as a client sends it."""
    n = len(payload)
    value = int.from_bytes(payload, "little") ^ int.from_bytes((KEY * (n // 4 + 1))[:n], "little")
    return frame_header(opcode, n, masked=True, rsv1=rsv1) + KEY + value.to_bytes(n, "little")


def server_frame(opcode: int, payload: bytes) -> bytes:
    """A whole unmasked frame, as a server sends it."""
    return frame_header(opcode, len(payload), masked=False) + payload


def deflate_message(payload: bytes) -> bytes:
    """``payload`` compressed as one permessage-deflate message from a fresh compressor.

    A fresh compressor's blocks reference nothing before them, so the same bytes
    are a valid message whether or not the peer keeps its context between
    messages; a 9-bit window fits any ``client_max_window_bits`` the server may ask.
    """
    comp = zlib.compressobj(6, zlib.DEFLATED, -9, 5)
    data = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def pin(core: int) -> None:
    """Run this process on ``core`` only (when the machine has it).

    Whatever the current affinity: a server started by run.py inherits run.py's own core (the
    load generator's) and must still move to its own.
    """
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {core})
        except OSError:  # EINVAL: no such core on this machine (or not allowed here)
            pass


def raise_nofile(needed: int = 0) -> int:
    """Raise the soft limit on open files to the hard one; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def server_cpu_us(pid: int) -> float:
    """Process ``pid``'s CPU time so far (user + system, every thread) in µs; NaN without a pid.

    From ``/proc/PID/stat`` (fields 14 and 15), so in clock ticks (10 ms here): a run of a
    second measures the server's CPU to about 1 %.
    """
    if not pid:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) * 1e6 / os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {mem_kib / (1 << 20):.0f} GiB"
    except (OSError, ValueError, IndexError):
        mem = ""
    return (
        f"{cpu_model()}, {os.cpu_count()} cores{mem}; Python {platform.python_version()} "
        f"({platform.python_implementation()}); Linux {platform.release()}"
    )


def versions(
    dists: tuple[str, ...] = ("wsevents", "websockets", "aiohttp", "picows", "aiofastnet", "uvloop"),
) -> str:
    out = []
    for dist in dists:
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out)


def source_commit() -> str:
    """The wsevents commit measured (this checkout's HEAD), and whether ``src/`` differs from it."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    if not head:
        return "unknown (not a git checkout)"
    return head + (" with uncommitted changes in src/" if dirty else "")


def run(main: Coroutine[Any, Any, T], loop: str) -> T:
    """``asyncio.run(main)`` on the default loop (``asyncio``) or on ``uvloop``."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    if loop != "asyncio":
        raise ValueError(f"unknown loop {loop!r}")
    return asyncio.run(main)
