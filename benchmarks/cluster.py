"""Cluster benchmark (issue 12): fan-out to a room over workers and Redis, zero loss across a
Redis restart, 2 workers against 1, and what one Redis stream carries.

    .venv/bin/python benchmarks/cluster.py            # about 3 min; writes the Cluster section of RESULTS.md
    .venv/bin/python benchmarks/cluster.py --quick --no-write    # a few seconds, small counts

Every part runs here, on this machine: a redis-server of its own (``redis-server`` on PATH or
/usr/bin, a free port, a temporary directory, no persistence), the wsevents servers (this file
with ``--role server``: ``wsevents.workers.serve_servers`` with 1 or 2 workers and a
``RedisBroker``, or one process without a broker) and the load generator (this process, on
uvloop: raw WebSocket clients that count frames, and a wsevents client as the publisher).

Fan-out: the members connect to ``/`` and join the room ``"r"``; the publisher connects to
``/pub`` and each text it sends is ``server.publish("r", text)``'d by the worker it landed on
(the other worker gets it from Redis). The publisher keeps ``window`` messages in flight
(published, not yet delivered to every member), so the figure is what the whole chain
sustains. Each message carries its publish time (CLOCK_MONOTONIC, shared by the processes of
the machine); a sample of members (one in ten) records publish->delivery latencies. CPU is
read from /proc for the server processes (supervisor, workers) and redis-server, and from
``getrusage`` for the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from redis_server import RedisServer, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROOM = "r"
TICK = os.sysconf("SC_CLK_TCK")


# -- the server (--role server) ------------------------------------------------------------


def run_server(mode: str, port: int, redis_url: str) -> None:
    """A fan-out server: ``single`` (one process, no broker) or ``workers1``/``workers2``."""
    import logging

    import wsevents
    from wsevents.aio.broker import BrokerBacklogFull
    from wsevents.aio.redis_broker import RedisBroker
    from wsevents.workers import serve_servers

    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s [%(process)d] %(levelname)s %(name)s %(message)s")

    def make() -> wsevents.Server:
        server: wsevents.Server

        def on_connection(conn: wsevents.Connection) -> None:
            if conn.path == "/pub":
                def on_text(text: str) -> None:
                    try:
                        server.publish(ROOM, text)
                    except BrokerBacklogFull:
                        conn.send_text("refused")

                conn.on("text", on_text)
                conn.send_text(f"publisher {os.getpid()}")
                return
            conn.join(ROOM)
            conn.send_text(f"joined {os.getpid()}")

        broker = None
        if mode != "single":
            broker = RedisBroker(redis_url, cluster="bench", maxlen=1_000_000, max_backlog=1_000_000)
        server = wsevents.create_server(on_connection, broker=broker, max_write_buffer=64 * 1024 * 1024)
        return server

    workers = 2 if mode == "workers2" else 1
    serve_servers(make, port, "127.0.0.1", workers=workers,
                  ready=lambda p: print(f"ready {p}", flush=True))


def _sio_worker(sock: socket.socket, redis_url: str) -> None:
    import aiohttp.web
    import socketio
    import uvloop

    manager = socketio.AsyncRedisManager(redis_url, channel="bench-sio")
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, ping_interval=600,
                               ping_timeout=600, max_http_buffer_size=1 << 20)
    app = aiohttp.web.Application()
    sio.attach(app)

    @sio.event  # type: ignore[misc]
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        if "pub=1" in environ.get("QUERY_STRING", ""):
            await sio.emit("publisher", str(os.getpid()), to=sid)
            return
        await sio.enter_room(sid, ROOM)
        await sio.emit("m", f"joined {os.getpid()}", to=sid)

    @sio.on("pub")  # type: ignore[misc]
    async def on_pub(sid: str, data: str) -> None:
        await sio.emit("m", data, room=ROOM)

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    aiohttp.web.run_app(app, sock=sock, print=None, handle_signals=True)


def run_sio_server(workers: int, redis_url: str) -> None:
    """The same fan-out with python-socketio (aiohttp, uvloop) and its AsyncRedisManager (pub/sub),
    in ``workers`` forked processes on SO_REUSEPORT sockets."""
    port = free_port()
    sockets = []
    for _ in range(workers):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(511)
        sockets.append(sock)
    children = []
    for sock in sockets:
        pid = os.fork()
        if pid == 0:
            _sio_worker(sock, redis_url)
            os._exit(0)
        children.append(pid)
    time.sleep(1.0)  # the redis subscriber of each worker starts with its app
    print(f"ready {port}", flush=True)

    def stop(signum: int, frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)


# -- processes -------------------------------------------------------------------------------


def bench_redis(persist: bool = False) -> RedisServer:
    """A redis-server of this run, in a temporary directory of its own (removed at the end)."""
    return RedisServer(tempfile.mkdtemp(prefix="wsevents-bench-redis-"), persist)


class Server:
    def __init__(self, mode: str, redis: RedisServer) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--role", "server", "--mode", mode, "--redis", redis.url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"the {mode} server did not start: {self.stderr()}")
        self.port = int(line.split()[1])

    def pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [self.proc.pid, *map(int, children)]

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the load generator ---------------------------------------------------------------------


class Bench:
    """What the members of one run share: counts, latencies, the publisher's wake-up."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.joined = 0
        self.all_joined = asyncio.Event()
        self.warmed = 0
        self.delivered = 0
        self.progress = asyncio.Event()
        self.wake_at = 0
        self.latencies: list[int] = []
        self.sio = False
        self.last_delivery = 0.0
        self.disorder = 0


SIO_PATH = "/socket.io/?EIO=4&transport=websocket"


def handshake(transport: Any, path: str) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    transport.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n\r\n".encode())


def client_text(data: bytes) -> bytes:
    """A masked text frame (mask key 0: the payload goes as it is)."""
    n = len(data)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + data


class Member(asyncio.Protocol):
    """A raw WebSocket client that counts the text frames it gets (and checks their order).

    With ``bench.sio``, a Socket.IO client (Engine.IO 4 over a WebSocket): it answers the open
    packet with a namespace connect and pings with pongs, and takes the data of each event."""

    def __init__(self, bench: Bench, sample: bool, check: bool) -> None:
        self.bench = bench
        self.sample = sample
        self.check = check
        self.buf = bytearray()
        self.open = False
        self.count = 0
        self.next_seq = 0
        self.worker = 0
        self.warm = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        handshake(transport, SIO_PATH if self.bench.sio else "/")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        if not self.open:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            assert buf.startswith(b"HTTP/1.1 101"), bytes(buf[:100])
            self.open = True
            pos = head_end + 4
        bench = self.bench
        size = len(buf)
        got = 0
        now = 0
        while pos + 2 <= size:
            length = buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if start + 2 > size:
                    break
                length = int.from_bytes(buf[start:start + 2], "big")
                start += 2
            elif length == 127:
                if start + 8 > size:
                    break
                length = int.from_bytes(buf[start:start + 8], "big")
                start += 8
            end = start + length
            if end > size:
                break
            opcode = buf[pos] & 0x0F
            pos = end
            if opcode == 8:  # the server closes (it stops): no reply needed for the benchmark
                self.transport.close()
                continue
            if opcode == 9:  # the server's keepalive ping: pong, or it closes the connection
                self.transport.write(bytes([0x8A, 0x80 | length]) + b"\0\0\0\0" + bytes(buf[start:end]))
                continue
            if opcode != 1:
                continue
            if bench.sio:
                if buf[start] != 0x34 or buf[start + 1] != 0x32:  # not '42[...]' (an event)
                    self.sio_control(bytes(buf[start:end]))
                    continue
                start = buf.index(b",", start) + 2  # 42["m","<data>"]
                end -= 2
            if not self.worker:
                self.worker = int(bytes(buf[start:end]).split()[1])  # "joined <pid>"
                bench.joined += 1
                if bench.joined == bench.members:
                    bench.all_joined.set()
            elif buf[start] == 0x77:  # "w": warm-up, not counted
                if not self.warm:
                    self.warm = True
                    bench.warmed += 1
            else:
                self.count += 1
                got += 1
                if self.sample or self.check:
                    seq, stamp = bytes(buf[start:end]).split(b" ", 2)[:2]
                    if self.check:
                        if int(seq) != self.next_seq:
                            bench.disorder += 1
                        self.next_seq = int(seq) + 1
                    if self.sample:
                        now = now or time.monotonic_ns()
                        bench.latencies.append(now - int(stamp))
        del buf[:pos]
        if got:
            bench.delivered += got
            bench.last_delivery = time.monotonic()
            if bench.delivered >= bench.wake_at:
                bench.progress.set()

    def sio_control(self, packet: bytes) -> None:
        if packet.startswith(b"0{"):  # Engine.IO open: connect to the default namespace
            self.transport.write(client_text(b"40"))
        elif packet == b"2":  # ping
            self.transport.write(client_text(b"3"))


class SioPublisher(asyncio.Protocol):
    """A raw Socket.IO client that emits "pub" events (the wsevents publisher's counterpart)."""

    def __init__(self) -> None:
        self.ready = asyncio.get_running_loop().create_future()
        self.buf = bytearray()
        self.refused = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        handshake(transport, SIO_PATH + "&pub=1")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"0{" in self.buf and not self.ready.done():
            self.transport.write(client_text(b"40"))
            self.ready.set_result(None)
        del self.buf[:-2]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("the publisher was disconnected"))

    async def send_text(self, text: str) -> None:
        self.transport.write(client_text(b'42["pub","' + text.encode() + b'"]'))

    async def close(self) -> None:
        self.transport.close()


async def disconnect(members: list[Member]) -> None:
    for member in members:
        member.transport.close()
    await asyncio.wait([member.closed for member in members], timeout=10)


async def connect_members(port: int, bench: Bench, check: bool) -> list[Member]:
    loop = asyncio.get_running_loop()
    members: list[Member] = []
    batch = 200
    for first in range(0, bench.members, batch):
        made = await asyncio.gather(*(
            loop.create_connection(lambda i=i: Member(bench, i % 10 == 0, check), "127.0.0.1", port)
            for i in range(first, min(bench.members, first + batch))))
        members.extend(protocol for _, protocol in made)
    await asyncio.wait_for(bench.all_joined.wait(), 120)
    return members


async def publish(port: int, bench: Bench, messages: int, window: int, pad: int,
                  restart: Any = None, warm: bool = True) -> tuple[int, float]:
    """Publish ``messages`` with at most ``window`` in flight; (refused, seconds from first to last)."""
    import wsevents

    refused = 0
    pub: Any
    if bench.sio:
        _, pub = await asyncio.get_running_loop().create_connection(SioPublisher, "127.0.0.1", port)
        await asyncio.wait_for(pub.ready, 10)
    else:
        pub = await wsevents.connect(f"ws://127.0.0.1:{port}/pub")
        await pub.recv()  # "publisher <pid>"

        def on_text(text: str) -> None:
            nonlocal refused
            refused += 1

        pub.on("text", on_text)
    # Until every member got one: every worker then reads the stream (a worker's reader starts
    # at the stream's end when it first reaches Redis, which may be after its members joined).
    deadline = time.monotonic() + 30
    while warm and bench.warmed < bench.members:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {bench.warmed} of {bench.members} members got a warm-up message")
        await pub.send_text("w")
        await asyncio.sleep(0.05)
    padding = "x" * pad
    members = bench.members
    start = time.monotonic()
    for seq in range(messages):
        while seq - bench.delivered // members >= window:
            bench.wake_at = (seq - window + 1) * members
            bench.progress.clear()
            if bench.delivered >= bench.wake_at:
                break
            try:
                await asyncio.wait_for(bench.progress.wait(), 30)
            except asyncio.TimeoutError:
                raise RuntimeError(
                    f"no delivery for 30 s (published {seq}, delivered {bench.delivered})") from None
        if restart is not None and seq == restart[0]:
            # In the background: publishing goes on while Redis is down.
            restarting = asyncio.ensure_future(restart[1]())
        await pub.send_text(f"{seq} {time.monotonic_ns()} {padding}")
    total = members * messages
    deadline = time.monotonic() + 60
    while bench.delivered < total and time.monotonic() < deadline:
        bench.wake_at = total
        bench.progress.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(bench.progress.wait(), max(0.01, deadline - time.monotonic()))
    if restart is not None:
        await restarting
    await pub.close()
    return refused, bench.last_delivery - start


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6 if ordered else float("nan")


async def fanout(mode: str, members: int, messages: int, window: int, redis: RedisServer) -> dict[str, Any]:
    server = Server(mode, redis)
    try:
        bench = Bench(members)
        bench.sio = mode.startswith("sio")
        conns = await connect_members(server.port, bench, check=False)
        workers = sorted({m.worker for m in conns})
        pids = server.pids() + ([redis.proc.pid] if mode != "single" and redis.proc else [])
        cpu0, own0 = cpu_seconds(pids), own_cpu()
        refused, seconds = await publish(server.port, bench, messages, window, pad=16)
        cpu1, own1 = cpu_seconds(pids), own_cpu()
        delivered = bench.delivered
        loaded = bench.latencies
        # Then one message at a time: the latency of the chain itself, without a queue.
        single = Bench(members)
        single.sio, single.joined, single.warmed = bench.sio, members, members
        for member in conns:
            member.bench, member.count = single, 0
        await publish(server.port, single, max(10, 200_000 // members), 1, pad=16, warm=False)
        dropped = sum(1 for m in conns if m.closed.done())
        await disconnect(conns)
        return {
            "mode": mode, "members": members, "messages": messages, "window": window,
            "per_worker": [sum(1 for m in conns if m.worker == w) for w in workers],
            "delivered": delivered, "lost": members * messages - delivered, "refused": refused,
            "dropped_members": dropped,
            "seconds": seconds, "deliveries_per_s": delivered / seconds,
            "p50_ms": percentile(loaded, 0.50), "p99_ms": percentile(loaded, 0.99),
            "p50_one_ms": percentile(single.latencies, 0.50),
            "p99_one_ms": percentile(single.latencies, 0.99),
            "lost_one": single.members * max(10, 200_000 // members) - single.delivered,
            "server_cpu_us": (cpu1 - cpu0) / delivered * 1e6,
            "total_cpu_us": (cpu1 - cpu0 + own1 - own0) / delivered * 1e6,
        }
    finally:
        await asyncio.to_thread(server.stop)


async def zero_loss(members: int, messages: int, restart_at: int, redis: RedisServer) -> dict[str, Any]:
    """``messages`` published to ``members`` over 2 workers; Redis restarted at ``restart_at``."""
    server = Server("workers2", redis)
    outage = 0.0
    try:
        bench = Bench(members)
        conns = await connect_members(server.port, bench, check=True)

        async def restart() -> None:
            nonlocal outage
            began = time.monotonic()
            await asyncio.to_thread(redis.stop)
            await asyncio.to_thread(redis.start)
            outage = time.monotonic() - began

        refused, seconds = await publish(server.port, bench, messages, window=2_000, pad=16,
                                         restart=(restart_at, restart))
        counts = [m.count for m in conns]
        open_members = sum(1 for m in conns if not m.closed.done())
        await disconnect(conns)
        log = server.stderr()
        return {
            "members": members, "messages": messages, "restart_at": restart_at, "outage_s": outage,
            "per_worker": [sum(1 for m in conns if m.worker == w) for w in sorted({m.worker for m in conns})],
            "open_at_end": open_members, "min_count": min(counts), "max_count": max(counts),
            "every_member_got_all": all(c == messages for c in counts), "out_of_order": bench.disorder,
            "refused": refused, "seconds": seconds,
            "warnings": [line for line in log.splitlines() if " WARNING " in line][:8],
            "log_tail": log.splitlines()[-6:],
        }
    finally:
        await asyncio.to_thread(server.stop)


async def stream_rate(redis: RedisServer, entries: int) -> dict[str, Any]:
    """XADD (pipelines of 100, entries shaped as the broker's) and XREAD (1,000 at a time) rates."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis.url)
    key = "bench:stream"
    await client.delete(key)
    fields = {"o": os.urandom(16).hex(), "n": 0, "k": b"t", "r": ROOM, "d": b"x" * 40}
    start = time.monotonic()
    for first in range(0, entries, 100):
        pipe = client.pipeline(transaction=False)
        for n in range(first, min(entries, first + 100)):
            fields["n"] = n
            pipe.xadd(key, fields, maxlen=1_000_000, approximate=True)
        await pipe.execute()
    added = time.monotonic() - start
    start = time.monotonic()
    last, read = "0-0", 0
    while read < entries:
        got = await client.xread({key: last}, count=1000)
        batch = got[0][1]
        read += len(batch)
        last = batch[-1][0]
    took = time.monotonic() - start
    await client.delete(key)
    await client.aclose()
    return {"entries": entries, "xadd_per_s": entries / added, "xread_per_s": entries / took}


# -- report ---------------------------------------------------------------------------------


MODES = {"single": "1 process, no broker", "workers1": "1 worker + Redis", "workers2": "2 workers + Redis",
         "sio1": "python-socketio, 1 process + AsyncRedisManager",
         "sio2": "python-socketio, 2 processes + AsyncRedisManager"}


def report(results: dict[str, Any], facts: dict[str, str]) -> str:
    lines = [f"## Cluster — {facts['date']}", "",
             f"`{facts['command']}` ({facts['seconds']:.0f} s in all).", "",
             f"- Machine: {facts['machine']}. Shared and busy: load average (1 min) {facts['load_start']} "
             f"at the start, {facts['load_end']} at the end; the load generator, the servers and "
             "redis-server all share the same two cores, so read the figures as relative to each other.",
             f"- wsevents commit {facts['commit']}; Python {platform.python_version()}, "
             f"redis-server {facts['redis']}, uvloop in the workers and the load generator.",
             "- Fan-out: 1 publisher (a wsevents client on `/pub`; the worker it lands on calls "
             "`server.publish`), members are raw clients that join the room; the publisher keeps "
             "a window of messages in flight (published, not yet delivered to every member), so "
             "the first latency includes that queue; then the same members get messages one at a "
             "time (window 1): the second latency is the chain's own. Latency: publish -> delivery, "
             "1 member in 10 sampled. python-socketio gets a fifth of the messages (it is slower). "
             "CPU per delivery: server processes (supervisor, workers, redis-server) and all "
             "(the load generator too).", "",
             "### Fan-out to one room", "",
             "| members | server | window | spread | deliveries/s | p50 / p99 ms (window) "
             "| p50 / p99 ms (one at a time) | server CPU µs/delivery | all CPU µs/delivery | lost |",
             "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for row in results["fanout"]:
        if "error" in row:
            lines.append(f"| {row['members']:,} | {MODES[row['mode']]} | {row['window']} | "
                         f"failed: {row['error']} | | | | | | |")
            continue
        lines.append(
            f"| {row['members']:,} | {MODES[row['mode']]} | {row['window']} | "
            f"{'/'.join(map(str, row['per_worker']))} | {row['deliveries_per_s']:,.0f} | "
            f"{row['p50_ms']:.0f} / {row['p99_ms']:.0f} | "
            f"{row['p50_one_ms']:.1f} / {row['p99_one_ms']:.1f} | "
            f"{row['server_cpu_us']:.2f} | {row['total_cpu_us']:.2f} | {row['lost'] + row['lost_one']} |")
    lines += ["", "### Zero loss across a Redis restart", ""]
    for z in results["zero_loss"]:
        lines += [
            f"- Redis persistence {z['persistence']}: {z['messages']:,} messages published to "
            f"{z['members']} members over 2 workers (spread {'/'.join(map(str, z['per_worker']))}); "
            f"redis-server stopped (SIGTERM) and started again after message "
            f"{z['restart_at']:,} (down {z['outage_s']:.2f} s) while publishing went on. Members open at "
            f"the end: {z['open_at_end']}/{z['members']}; counted per member: min {z['min_count']:,}, "
            f"max {z['max_count']:,}; every member got every message: "
            f"**{'yes' if z['every_member_got_all'] else 'NO'}**; gaps seen by members (a message "
            f"missing or out of order): {z['out_of_order']}; publishes refused: {z['refused']}; "
            f"{z['seconds']:.1f} s."]
    lines += ["",
              "### One Redis stream", "",
              f"{results['stream']['entries']:,} entries shaped as the broker's (40-byte payload): XADD in "
              f"pipelines of 100 with approximate MAXLEN: **{results['stream']['xadd_per_s']:,.0f} /s**; "
              f"XREAD 1,000 at a time: **{results['stream']['xread_per_s']:,.0f} /s** (one redis-py "
              "asyncio client each, on this machine).", ""]
    return "\n".join(lines)


def write_results(text: str) -> None:
    path = HERE / "RESULTS.md"
    current = path.read_text()
    block = f"<!-- cluster:start -->\n{text}\n<!-- cluster:end -->"
    if "<!-- cluster:start -->" in current:
        current = re.sub(r"<!-- cluster:start -->.*<!-- cluster:end -->", lambda _: block, current,
                         flags=re.S)
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(current)


def facts(args: argparse.Namespace, started: float, load_start: str) -> dict[str, str | float]:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    cpu = "?"
    with contextlib.suppress(OSError):
        found = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = found.group(1) if found else cpu
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "command": "python benchmarks/cluster.py" + (" --quick" if args.quick else ""),
        "seconds": time.time() - started,
        "machine": f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}",
        "commit": commit + (" (src/ with uncommitted changes)" if dirty else ""),
        "load_start": load_start, "load_end": f"{os.getloadavg()[0]:.2f}",
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    redis = bench_redis()
    redis.start()
    try:
        results: dict[str, Any] = {"redis": redis.version(), "fanout": []}
        sizes = [(20, 20, 5)] if args.quick else [(1_000, 1_000, 20), (10_000, 100, 2)]
        modes = ["single", "workers2"] if args.quick else ["single", "workers1", "workers2"]
        if args.socketio:
            modes += ["sio1", "sio2"]
        for members, messages, window in sizes:
            for mode in modes:
                if mode.startswith("sio") and members > args.socketio_max:
                    continue
                count = messages // 5 if mode.startswith("sio") else messages  # it is much slower
                try:
                    row = await fanout(mode, members, count, window, redis)
                except (RuntimeError, OSError, asyncio.TimeoutError) as exc:  # reported, not hidden
                    row = {"mode": mode, "members": members, "window": window, "error": str(exc)}
                print(json.dumps(row), flush=True)
                results["fanout"].append(row)
        z = (10, 500, 250) if args.quick else (20, 100_000, 30_000)
        results["zero_loss"] = []
        for persist in (False, True):
            other = bench_redis(persist)
            other.start()
            try:
                row = await zero_loss(*z, other)
            finally:
                other.stop()
                shutil.rmtree(other.directory, ignore_errors=True)
            row["persistence"] = "appendonly yes (fsync every second)" if persist else "none"
            print(json.dumps(row), flush=True)
            results["zero_loss"].append(row)
        results["stream"] = await stream_rate(redis, 500 if args.quick else 200_000)
        print(json.dumps(results["stream"]), flush=True)
        return results
    finally:
        redis.stop()
        shutil.rmtree(redis.directory, ignore_errors=True)


def _stop_with_parent() -> None:
    """A server stops (SIGTERM to itself) when the benchmark that started it is gone, however it
    ended: its standard input, a pipe from the benchmark, then reaches its end."""
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["bench", "server"], default="bench")
    parser.add_argument("--mode", choices=list(MODES), default="single")
    parser.add_argument("--redis", default="")
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures there")
    parser.add_argument("--socketio", action="store_true",
                        help="add python-socketio + AsyncRedisManager (aiohttp) as the anchor")
    parser.add_argument("--socketio-max", type=int, default=1_000, metavar="N",
                        help="the largest room for python-socketio (default 1,000)")
    args = parser.parse_args()
    if args.role == "server":
        threading.Thread(target=_stop_with_parent, daemon=True).start()
        if args.mode.startswith("sio"):
            run_sio_server(int(args.mode[3:]), args.redis)
        else:
            run_server(args.mode, 0, args.redis)
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started, load_start = time.time(), f"{os.getloadavg()[0]:.2f}"
    try:
        import uvloop
        results = uvloop.run(main_async(args))
    except ImportError:
        results = asyncio.run(main_async(args))
    results["facts"] = facts(args, started, load_start)
    results["facts"]["redis"] = results["redis"]
    text = report(results, results["facts"])
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if not args.no_write:
        write_results(text)
    ok = not any("error" in row or row["lost"] or row["lost_one"] for row in results["fanout"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
