"""Soak test: many concurrent connections, messages flowing for minutes, churn; nothing lost, no growth.

    python benchmarks/soak.py [--connections 5000] [--duration 180] [--rate 1] [--churn 0.02] [--json]

The server (a wsevents echo server) runs in its own process pinned to core 0;
the load (wsevents clients: ``--connections`` of them, each sending ``--rate``
64-byte text messages per second) runs in this process, pinned to core 1.
Every ``--churn-every`` s (10) a fraction ``--churn`` of the connections finish their pending
echoes, close, and are replaced by new ones. The server's RSS is sampled every
``--sample`` seconds. At the end it reports messages sent and received (they
must be equal: nothing lost), the p50/p99 round-trip latency, and RSS over
time (after warm-up it must not grow).

Traffic stays on 127.0.0.1; every loop is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import wsevents


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


# -- the server process ---------------------------------------------------------------------


def serve(port_file: str, connections: int) -> None:
    pin(0)
    raise_nofile(connections * 2 + 100)

    async def main() -> None:
        def on_connection(conn: wsevents.Connection) -> None:
            conn.on("text", conn.send_text)
            conn.on("error", lambda exc: None)

        server = wsevents.create_server(on_connection, compression=False)
        await server.listen(0, "127.0.0.1")
        Path(port_file).write_text(str(server.port))
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the load --------------------------------------------------------------------------------


class Client:
    """One connection: sends on a timer, counts echoes, measures their round trip."""

    def __init__(self, load: Load, ident: int) -> None:
        self.load = load
        self.ident = ident
        self.seq = 0
        self.pending: dict[int, float] = {}
        self.conn: wsevents.Connection | None = None
        self.leaving = False

    async def start(self) -> None:
        conn = await wsevents.connect(
            f"ws://127.0.0.1:{self.load.port}/", compression=False, ping_interval=None, handshake_timeout=30
        )
        conn.on("text", self.on_text)
        conn.on("error", lambda exc: None)
        conn.on("close", self.on_close)
        self.conn = conn

    def on_close(self, code: int, reason: str) -> None:
        if not self.leaving:
            self.load.dropped.append((code, reason))

    def on_text(self, text: str) -> None:
        seq = int(text.split(":", 2)[1])
        sent_at = self.pending.pop(seq, None)
        if sent_at is None:
            self.load.unexpected += 1
            return
        self.load.received += 1
        self.load.latencies.append(time.perf_counter() - sent_at)

    def send(self) -> None:
        conn = self.conn
        if conn is None or conn.ready_state != wsevents.Connection.OPEN:
            return
        self.seq += 1
        self.pending[self.seq] = time.perf_counter()
        conn.send_text(f"{self.ident}:{self.seq}:" + "x" * 48)
        self.load.sent += 1

    async def finish(self, timeout: float = 10.0) -> None:
        deadline = time.perf_counter() + timeout
        while self.pending and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        self.leaving = True
        if self.conn is not None:
            await asyncio.wait_for(self.conn.close(1000), timeout)


class Load:
    def __init__(self, port: int, args: argparse.Namespace, server_pid: int) -> None:
        self.port = port
        self.args = args
        self.server_pid = server_pid
        self.sent = 0
        self.received = 0
        self.unexpected = 0
        self.latencies: list[float] = []
        self.samples: list[tuple[float, int, int]] = []  # (t, rss KiB, open connections)
        self.churned = 0
        self.next_id = 0
        self.dropped: list[tuple[int, str]] = []  # connections closed without the load asking

    def new_client(self) -> Client:
        self.next_id += 1
        return Client(self, self.next_id)

    async def run(self) -> dict[str, Any]:
        args = self.args
        clients = [self.new_client() for _ in range(args.connections)]
        for i in range(0, len(clients), 200):  # connect in waves
            await asyncio.gather(*(c.start() for c in clients[i : i + 200]))
        start = time.perf_counter()
        next_sample = 0.0
        next_churn = args.churn_every
        tick = 0.1
        per_tick = args.connections * args.rate * tick
        carry = 0.0
        cursor = 0
        while (elapsed := time.perf_counter() - start) < args.duration:
            if elapsed >= next_sample:
                self.samples.append((round(elapsed, 1), rss_kib(self.server_pid), len(clients)))
                next_sample += args.sample
                print(
                    f"[{elapsed:6.1f} s] server RSS {self.samples[-1][1] / 1024:.1f} MiB, "
                    f"{len(clients)} connections, sent {self.sent}, received {self.received}",
                    file=sys.stderr,
                    flush=True,
                )
            if args.churn and elapsed >= next_churn:
                next_churn += args.churn_every
                count = max(1, int(len(clients) * args.churn))
                leaving, clients = clients[:count], clients[count:]
                await asyncio.gather(*(c.finish() for c in leaving))
                fresh = [self.new_client() for _ in range(count)]
                await asyncio.gather(*(c.start() for c in fresh))
                clients.extend(fresh)
                self.churned += count
            carry += per_tick
            n = int(carry)
            carry -= n
            for _ in range(n):
                clients[cursor % len(clients)].send()
                cursor += 1
            await asyncio.sleep(tick)
        self.samples.append((round(time.perf_counter() - start, 1), rss_kib(self.server_pid), len(clients)))
        await asyncio.gather(*(c.finish() for c in clients))
        lat = sorted(self.latencies) or [0.0]
        warm = [rss for t, rss, _ in self.samples if t >= min(30.0, args.duration / 3)]
        return {
            "connections": args.connections,
            "duration_s": args.duration,
            "rate_per_connection": args.rate,
            "churned": self.churned,
            "sent": self.sent,
            "received": self.received,
            "lost": self.sent - self.received,
            "unexpected": self.unexpected,
            "dropped": len(self.dropped),
            "dropped_codes": sorted({code for code, _ in self.dropped}),
            "p50_ms": round(statistics.median(lat) * 1000, 2),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
            "rss_kib": self.samples,
            "rss_growth_after_warmup_kib": (max(warm) - min(warm)) if warm else 0,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=180.0)
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per connection")
    parser.add_argument("--churn", type=float, default=0.02, help="fraction replaced every --churn-every s")
    parser.add_argument("--churn-every", type=float, default=10.0)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    parser.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.connections)
        return 0
    raise_nofile(args.connections * 2 + 100)
    port_file = Path(f"/tmp/wsevents-soak-{os.getpid()}.port")
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port_file), "--connections", str(args.connections)]
    )
    try:
        deadline = time.time() + 20
        while not port_file.exists() or not port_file.read_text():
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError("the soak server did not start")
            time.sleep(0.05)
        pin(1)
        result = asyncio.run(Load(int(port_file.read_text()), args, server.pid).run())
    finally:
        server.terminate()
        server.wait(10)
        port_file.unlink(missing_ok=True)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['connections']} connections, {result['duration_s']:.0f} s, "
            f"{result['rate_per_connection']} msg/s each, {result['churned']} replaced by churn"
        )
        print(
            f"sent {result['sent']}, received {result['received']}, lost {result['lost']}, "
            f"unexpected {result['unexpected']}, connections dropped {result['dropped']}"
        )
        print(f"round trip p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
        print(
            "server RSS (KiB) over time: " + ", ".join(f"{t:.0f}s={rss}" for t, rss, _ in result["rss_kib"])
        )
        print(f"RSS growth after warm-up: {result['rss_growth_after_warmup_kib']} KiB")
    return 0 if result["lost"] == 0 and result["unexpected"] == 0 and result["dropped"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
