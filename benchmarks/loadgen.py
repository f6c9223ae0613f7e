"""The load generator: one program, used for every server.

    python benchmarks/loadgen.py --port PORT [--pid PID] [--scenarios rtt,pipelined,...]
                                 [--runs 3] [--seconds 1] [--deflate] [--loop uvloop]

A raw asyncio Protocol client on uvloop, pinned to core 1. It sends pre-built,
pre-masked frames (built once at start-up, never masked per message) and does no
WebSocket work on what comes back beyond finding frame boundaries: a message
completes when its last byte arrives, and payloads are skipped, never copied.
Answers are batched: every read that completes k messages is answered with one
write of k frames. It prints one JSON object: ``{"loop": ..., "results":
{scenario: [one figure per run]}, "cpu": {scenario: [server CPU µs per message per run]}}``
(the server's CPU time over the timed part of each run, from ``/proc/PID/stat``; with ``--pid``).
benchmarks/loadgen.c is the same program compiled, without the per-message cost of this one.

With ``--deflate`` it offers permessage-deflate and sends pre-compressed frames
(each compressed on its own, so they stay valid whatever context the server keeps);
what the server sends back, compressed or not, is only counted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BLOB,
    CONTROL_PATH,
    LOADGEN_CORE,
    TEXT,
    client_frame,
    deflate_message,
    pin,
    raise_nofile,
    rss_kib,
    run,
    server_cpu_us,
)

SCENARIOS = ("idle memory", "rtt", "pipelined", "100 conns", "1 MiB echo", "handshakes", "broadcast")
#: Any single wait (connecting, a round, draining) gives up after this long.
WAIT = 30.0
#: Upper bound on the messages of one run, whatever the duration.
MAX_MESSAGES = 20_000_000


def handshake(path: str, deflate: bool) -> bytes:
    key = base64.b64encode(os.urandom(16))
    ext = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if deflate else b""
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: "
        + key
        + b"\r\nSec-WebSocket-Version: 13\r\n"
        + ext
        + b"\r\n"
    )


class Frames:
    """The pre-built frames, compressed or not."""

    def __init__(self, deflate: bool) -> None:
        self.deflate = deflate
        if deflate:
            self.small = client_frame(1, deflate_message(TEXT.encode()), rsv1=True)
            self.big = client_frame(2, deflate_message(BLOB), rsv1=True)
        else:
            self.small = client_frame(1, TEXT.encode())
            self.big = client_frame(2, BLOB)
        self.trigger = client_frame(1, b"go")
        self.close = client_frame(8, b"\x03\xe8")
        self.echo_handshake = handshake("/", deflate)
        self.control_handshake = handshake(CONTROL_PATH, False)


def _ignore(k: int) -> None:
    pass


class Conn(asyncio.Protocol):
    """One raw WebSocket client connection.

    ``on_messages(k)`` is called once per read that completes ``k`` messages.
    """

    def __init__(self, request: bytes, deflate: bool) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.deflate = deflate
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.t: Any = None
        self.open = False
        self.head = b""
        self.pending = b""  # an incomplete frame header
        self.skip = 0  # bytes of the current frame still to come
        self.skip_counts = 0  # 1 if the frame being skipped ends a data message
        self.close_received = False
        self.on_messages: Callable[[int], None] = _ignore
        self.outstanding = 0  # messages sent whose echo has not arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.t.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the opening handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _opening(self, data: bytes) -> bytes | None:
        head = self.head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self.head = head
            return None
        self.head = b""
        status = head[: head.find(b"\r\n")]
        if not status.startswith(b"HTTP/1.1 101"):
            self.opened.set_exception(ConnectionError(f"handshake refused: {status!r}"))
            self.t.abort()
            return None
        if self.deflate and b"permessage-deflate" not in head[:end].lower():
            self.opened.set_exception(ConnectionError("the server declined permessage-deflate"))
            self.t.abort()
            return None
        self.open = True
        self.opened.set_result(None)
        return head[end + 4 :]

    def data_received(self, data: bytes) -> None:
        if not self.open:
            rest = self._opening(data)
            if not rest:
                return
            data = rest
        n = len(data)
        done = 0
        pos = 0
        if self.skip:
            if self.skip > n:
                self.skip -= n
                return
            pos = self.skip
            self.skip = 0
            done = self.skip_counts
        if self.pending:
            data = self.pending + data[pos:]
            self.pending = b""
            pos = 0
            n = len(data)
        while n - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1] & 0x7F
            if length < 126:
                end = pos + 2 + length
            elif length == 126:
                if n - pos < 4:
                    break
                end = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3])
            else:
                if n - pos < 10:
                    break
                end = pos + 10 + int.from_bytes(data[pos + 2 : pos + 10], "big")
            # A whole message: FIN set, opcode text, binary or continuation.
            counts = 1 if b0 & 0x80 and b0 & 0x0F < 3 else 0
            if b0 & 0x0F == 8:
                self.close_received = True
            if end > n:
                self.skip = end - n
                self.skip_counts = counts
                pos = n
                break
            done += counts
            pos = end
        if pos < n:
            self.pending = data[pos:]
        if done:
            self.outstanding -= done
            self.on_messages(done)


async def connect(port: int, request: bytes, deflate: bool = False) -> Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: Conn(request, deflate), "127.0.0.1", port)
    await asyncio.wait_for(conn.opened, WAIT)
    return conn


async def connect_many(
    port: int, n: int, request: bytes, deflate: bool = False, batch: int = 100
) -> list[Conn]:
    conns: list[Conn] = []
    try:
        for i in range(0, n, batch):
            conns += await asyncio.gather(
                *(connect(port, request, deflate) for _ in range(min(batch, n - i)))
            )
    except BaseException:
        for conn in conns:
            conn.t.abort()
        raise
    return conns


async def close_all(conns: list[Conn], frames: Frames) -> None:
    """Closing handshake on every connection (bounded), then abort whatever is still open."""
    for conn in conns:
        if not conn.t.is_closing():
            conn.on_messages = _ignore
            conn.t.write(frames.close)
    pending = [c.closed for c in conns if not c.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=5)
    for conn in conns:
        conn.t.abort()
    await asyncio.sleep(0.01 + len(conns) / 20000)  # the server cleans up before what comes next


async def echo_run(
    conns: list[Conn], frame: bytes, seconds: float, in_flight: int, pid: int
) -> tuple[float, float]:
    """Every connection keeps ``in_flight`` messages outstanding.

    Returns echoed messages per second and the server's CPU µs per message.
    """
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[tuple[float, float]] = loop.create_future()
    total = 0
    clock = time.perf_counter
    cpu_start = server_cpu_us(pid)
    start = clock()
    stop_at = start + seconds

    def driver(conn: Conn) -> Callable[[int], None]:
        write = conn.t.write

        def on_messages(k: int) -> None:
            nonlocal total
            total += k
            if clock() < stop_at and total < MAX_MESSAGES:
                write(frame if k == 1 else frame * k)
                conn.outstanding += k
            elif not finished.done():
                finished.set_result((total / (clock() - start), (server_cpu_us(pid) - cpu_start) / total))

        return on_messages

    for conn in conns:
        conn.on_messages = driver(conn)
        conn.outstanding += in_flight
        conn.t.write(frame * in_flight)
    rate, cpu = await asyncio.wait_for(finished, seconds + WAIT)
    # Let what is still in flight land, so that the next run starts from quiet.
    drain_until = clock() + 10
    while any(c.outstanding > 0 for c in conns) and clock() < drain_until:
        await asyncio.sleep(0.005)
    for conn in conns:
        conn.on_messages = _ignore
    return rate, cpu


Figures = tuple[list[float], list[float]]  # one figure per run, the server's CPU µs per message per run
ScenarioFigures = tuple[dict[str, list[float]], dict[str, list[float]]]


async def echo_scenario(
    port: int, frames: Frames, args: argparse.Namespace, n_conns: int, frame: bytes, in_flight: int
) -> Figures:
    results, cpus = [], []
    for _ in range(args.runs):
        conns = await connect_many(port, n_conns, frames.echo_handshake, frames.deflate)
        try:
            rate, cpu = await echo_run(conns, frame, args.seconds, in_flight, args.pid)
        finally:
            await close_all(conns, frames)
        results.append(rate)
        cpus.append(cpu)
    return results, cpus


async def handshakes(
    port: int, frames: Frames, seconds: float, pid: int, concurrency: int = 10
) -> tuple[float, float]:
    """Opening handshake, closing handshake, TCP close: completed per second, ``concurrency`` at a time.

    Also returns the server's CPU µs per connection.
    """
    count = 0
    clock = time.perf_counter
    cpu_start = server_cpu_us(pid)
    start = clock()
    stop_at = start + seconds

    async def worker() -> None:
        nonlocal count
        while clock() < stop_at and count < MAX_MESSAGES:
            conn = await connect(port, frames.echo_handshake, frames.deflate)
            conn.t.write(frames.close)
            try:
                await asyncio.wait_for(conn.closed, WAIT)
            finally:
                conn.t.abort()
            if not conn.close_received:
                raise ConnectionError("the server closed TCP without a close frame")
            count += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (clock() - start), (server_cpu_us(pid) - cpu_start) / max(count, 1)


async def idle_memory(port: int, frames: Frames, pid: int, n: int) -> float:
    """Server RSS added per idle (open, silent) connection, in KiB."""
    # Allocations made on first use out of the way, and time for the server to finish with a batch.
    settle = min(0.5, 0.05 + n / 4000)
    warm = await connect_many(port, min(50, n), frames.echo_handshake, frames.deflate)
    await asyncio.sleep(settle)
    before = rss_kib(pid)
    conns: list[Conn] = []
    try:
        conns = await connect_many(port, n, frames.echo_handshake, frames.deflate)
        await asyncio.sleep(settle)
        after = rss_kib(pid)
    finally:
        await close_all(conns + warm, frames)
    return (after - before) / n


async def broadcast(port: int, frames: Frames, args: argparse.Namespace) -> Figures:
    """Deliveries per second: the control connection asks, the server sends one message to ``n`` clients.

    Rounds follow one another for ``seconds``; each waits until every client has its message.
    """
    loop = asyncio.get_running_loop()
    n = args.bcast
    conns = await connect_many(port, n, frames.echo_handshake, frames.deflate)
    control: Conn | None = None
    results, cpus = [], []
    try:
        control = await connect(port, frames.control_handshake)
        state: dict[str, Any] = {"remaining": 0, "done": loop.create_future()}

        def on_messages(k: int) -> None:
            state["remaining"] -= k
            if state["remaining"] <= 0 and not state["done"].done():
                state["done"].set_result(None)

        for conn in conns:
            conn.on_messages = on_messages
        for _ in range(args.runs):
            rounds = 0
            cpu_start = server_cpu_us(args.pid)
            start = time.perf_counter()
            stop_at = start + args.seconds
            while time.perf_counter() < stop_at and rounds < 100_000:
                state["remaining"] = n
                state["done"] = loop.create_future()
                control.t.write(frames.trigger)
                await asyncio.wait_for(state["done"], WAIT)
                rounds += 1
            results.append(n * rounds / (time.perf_counter() - start))
            cpus.append((server_cpu_us(args.pid) - cpu_start) / max(n * rounds, 1))
    finally:
        await close_all(conns + ([control] if control else []), frames)
    return results, cpus


async def main(args: argparse.Namespace) -> ScenarioFigures:
    """Every scenario of ``args.scenarios`` in turn: (figures, server CPU µs per message) by scenario."""
    frames = Frames(args.deflate)
    port = args.port
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for scenario in args.scenarios.split(","):
        if scenario == "idle memory":
            if not args.pid:
                raise SystemExit("idle memory needs --pid")
            results[scenario] = [await idle_memory(port, frames, args.pid, args.idle)]
            continue
        if scenario == "rtt":
            figures = await echo_scenario(port, frames, args, 1, frames.small, 1)
        elif scenario == "pipelined":
            figures = await echo_scenario(port, frames, args, 1, frames.small, args.in_flight)
        elif scenario == "100 conns":
            figures = await echo_scenario(port, frames, args, args.conns, frames.small, 1)
        elif scenario == "1 MiB echo":
            rates, cpus = await echo_scenario(port, frames, args, 1, frames.big, 1)
            figures = [r * len(BLOB) / (1 << 20) for r in rates], cpus
        elif scenario == "handshakes":
            runs = [await handshakes(port, frames, args.seconds, args.pid) for _ in range(args.runs)]
            figures = [r for r, _ in runs], [c for _, c in runs]
        elif scenario == "broadcast":
            figures = await broadcast(port, frames, args)
        else:
            raise SystemExit(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        results[scenario] = figures[0]
        if args.pid:
            cpu[scenario] = figures[1]
    return results, cpu


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, default=0, help="the server's pid (idle memory reads its RSS)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--in-flight", type=int, default=100, help="pipelined: messages in flight")
    parser.add_argument("--conns", type=int, default=100, help="connections of '100 conns'")
    parser.add_argument("--idle", type=int, default=2000, help="idle memory: connections")
    parser.add_argument("--bcast", type=int, default=1000, help="broadcast: receiving connections")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--core", type=int, default=LOADGEN_CORE)
    args = parser.parse_args(argv)
    pin(args.core)
    limit = raise_nofile()
    needed = max(args.idle + 50, args.bcast + 1, args.conns) + 64
    if limit < needed:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}, {needed} needed: lower --idle / --bcast")
    results, cpu = run(main(args), args.loop)
    print(json.dumps({"loop": args.loop, "results": results, "cpu": cpu}))


if __name__ == "__main__":
    cli()
