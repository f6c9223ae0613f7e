"""Instructions per message of wsevents' own message path, counted by valgrind: noise-free.

    python benchmarks/icount.py                      # the current tree, compiled and pure paths
    python benchmarks/icount.py --baseline 4e73db0   # ... and that revision, side by side
    python benchmarks/icount.py --cases echo,floor --messages 500,2500 --only wsevents-c

Timed figures on a shared 2-core VM move by ±15-40 % from run to run; a change of a few per cent
in the per-message path cannot be seen in them. This counts CPU instructions instead
(``valgrind --tool=callgrind``, the same on every run with ``PYTHONHASHSEED=0``): each case runs
in process, without sockets, once with N1 and once with N2 messages; only what runs inside the
measured loop is counted (``--toggle-collect``: the set-up's event loop turns more or fewer times
from run to run), and the difference divided by N2 - N1 is the cost of one message.

The cases (a 64-byte text message, as in the rtt and '100 conns' scenarios):

- ``echo``: one message per ``data_received``, echoed by a ``"text"`` listener (``conn.send_text``),
  the event-style server of run.py: everything wsevents does per message when each read holds one.
- ``echo x100``: 100 messages per ``data_received`` (the pipelined scenario's reads).
- ``receive``: one message per read, to a listener that does nothing (the receiving half).
- ``client``: the client's side of the same: an unmasked text per read, answered by a
  ``"message"`` listener with ``conn.send`` (masked), as run.py's wsevents client does.
- ``broadcast``: ``server.broadcast(text)`` to 50 open connections, per delivery (the broadcast
  scenario's path: the frame built once, then each peer's checks and write).
- ``floor``: the least a Python echo server can do with the same compiled frame scan: parse the
  read with ``_speedups.scan``, call a listener that encodes and frames the answer, one write.
  What is above it is wsevents' own cost (its checks, state, emitter, cork, send bookkeeping).

A connection is opened over loopback, then its transport is replaced by one that only counts
writes; ``data_received`` is called directly with pre-built masked frames.

``--cases handshake`` (not among the defaults) counts one connection instead of one message: the
server makes it, its transport (one that only counts writes) is made, the usual upgrade request
and then the client's close frame arrive in one read each, and the transport is lost, as in
run.py's handshakes scenario, without the event loop's and the kernel's share:
``python benchmarks/icount.py --cases handshake --messages 200,1200 --only wsevents-c --baseline REF``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections import deque
from itertools import repeat
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import TEXT, client_frame, server_frame  # noqa: E402

CASES = ("echo", "echo x100", "receive", "client", "broadcast", "floor")
#: Connections of the broadcast case (its figure is per delivery).
BROADCAST_PEERS = 50
#: Counted per connection, on demand (--cases handshake).
EXTRA_CASES = ("handshake",)
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
PURE = {"WSEVENTS_NO_SPEEDUPS": "1"}


class NullTransport:
    """Takes the connection's writes and only counts them."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class ShortTransport(NullTransport):
    """What a connection asks of its transport from ``connection_made`` to its close."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


async def handshakes(count: int) -> None:
    """``count`` connections made, upgraded, closed by the client and lost, as in run.py's scenario."""
    import wsevents

    def on_connection(conn: Any) -> None:  # the listeners of run.py's event-style server
        conn.on("error", lambda exc: None)
        conn.on("text", conn.send_text)

        async def on_binary(stream: Any) -> None:
            conn.send_binary(await stream.read())

        conn.on("binary", on_binary)

    server = wsevents.create_server(on_connection, ping_interval=None, compression=False)
    await server.listen(0, "127.0.0.1")
    close = client_frame(8, (1000).to_bytes(2, "big"))
    for i in range(count):
        conn: Any = server._make_connection()
        transport = ShortTransport()
        conn.connection_made(transport)
        conn.data_received(UPGRADE)
        conn.data_received(close)
        assert transport.closing
        conn.connection_lost(None)
        if i % 100 == 99:
            await asyncio.sleep(0)  # what the loop would run between connections
    await server.close()


class Floor:
    """The minimal Python echo on the compiled scan: the reference the own cost is read against."""

    def __init__(self) -> None:
        from wsevents import _speedups

        self.scan = _speedups.scan
        self.transport = NullTransport()
        self.listeners: dict[str, list[Any]] = {"text": [self.send_text]}
        self.corked: list[bytes] = []

    def send_text(self, text: str) -> None:
        payload = text.encode()
        self.corked.append(bytes((0x81, len(payload))) + payload)

    def data_received(self, data: bytes) -> None:
        pending, _ = self.scan(memoryview(data), 0, 0x80, 1 << 20)
        while pending:
            event = pending.pop()
            pending.pop()
            for listener in self.listeners["text"]:
                listener(event[1])
        corked = self.corked
        if corked:
            self.transport.write(corked[0] if len(corked) == 1 else b"".join(corked))
            corked.clear()


def measured(function: Any, argument: Any, times: int) -> None:
    """``function(argument)``, ``times`` times, from inside ``map``: valgrind counts only what runs
    in the C function ``map_next`` (--toggle-collect), so the set-up, whose event loop turns
    more or fewer times from run to run, is left out."""
    deque(map(function, repeat(argument, times)), maxlen=0)


async def child(case: str, messages: int) -> None:
    """Run ``case`` with ``messages`` messages in this process (what valgrind counts)."""
    if case == "handshake":
        await handshakes(messages)
        return
    one = client_frame(1, TEXT.encode())
    per_read = 100 if case == "echo x100" else 1
    data = one * per_read
    if case == "floor":
        measured(Floor().data_received, data, messages // per_read)
        return
    import wsevents

    peers = BROADCAST_PEERS if case == "broadcast" else 1
    opened: list[Any] = []
    all_open = asyncio.Event()

    def on_connection(conn: Any) -> None:
        conn.on("text", (lambda text: None) if case == "receive" else conn.send_text)
        opened.append(conn)
        if len(opened) == peers:
            all_open.set()

    server = wsevents.create_server(on_connection, ping_interval=None, compression=False)
    await server.listen(0, "127.0.0.1")
    url = f"ws://127.0.0.1:{server.port}/"
    clients = [await wsevents.connect(url, ping_interval=None, compression=False) for _ in range(peers)]
    await asyncio.wait_for(all_open.wait(), 30)
    transports = [conn._transport for conn in opened]
    for conn in opened:
        conn._transport = NullTransport()
    if case == "client":
        await client_echo(clients[0], messages)
    elif case == "broadcast":
        measured(server.broadcast, TEXT, messages // peers)
    else:
        measured(opened[0].data_received, data, messages // per_read)
    for conn, real in zip(opened, transports, strict=True):
        conn._transport = real
    for client in clients:
        await client.close()
    await server.close()


async def client_echo(client: Any, messages: int) -> None:
    """The client case: ``messages`` reads of one server frame, each answered by the listener."""
    client.on("message", client.send)
    real, client._transport = client._transport, NullTransport()
    measured(client.data_received, server_frame(1, TEXT.encode()), messages)
    client._transport = real


def instructions(case: str, messages: int, env: dict[str, str]) -> int:
    """Instructions valgrind counted in the child process (for the message cases: in ``measured``)."""
    toggle = [] if case in EXTRA_CASES else ["--toggle-collect=map_next"]
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *toggle,
               sys.executable, __file__, "--child", case, "--messages", str(messages)]
    done = subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0", **env},
                          capture_output=True, text=True, timeout=600)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{case}: valgrind run failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_message(case: str, counts: tuple[int, int], env: dict[str, str]) -> float:
    """Instructions of one message: the difference of two runs over their difference in messages."""
    low, high = (instructions(case, n, env) for n in counts)
    return (high - low) / (counts[1] - counts[0])


def contenders(baseline: str | None) -> list[tuple[str, dict[str, str], bool]]:
    """(label, environment, compiled) of each wsevents to count."""
    rows = [("wsevents-c", {}, True), ("wsevents", PURE, False)]
    if baseline:
        from run import baseline_contenders

        for row in baseline_contenders(baseline):
            rows.append((row.label, row.env, row.speedups))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of {', '.join(CASES + EXTRA_CASES)}")
    parser.add_argument("--messages", default="1000,5000", help="N1,N2: messages of the two runs")
    parser.add_argument("--baseline", metavar="REF", help="also count wsevents as of git revision REF")
    parser.add_argument("--only", help="comma-separated rows (e.g. wsevents-c); default: all")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(child(args.child, int(args.messages)))
        return 0
    low, high = (int(n) for n in args.messages.split(","))
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 1
    cases = args.cases.split(",")
    print(f"instructions per message, per connection for handshake (valgrind, {low:,} and {high:,})\n")
    print("| contender | " + " | ".join(cases) + " |")
    print("|---|" + "---:|" * len(cases))
    for label, env, _ in contenders(args.baseline):
        if args.only and label not in args.only.split(","):
            continue
        cells = [
            # The floor is the same code for every row: counted once.
            f"{per_message(case, (low, high), env):,.0f}" if case != "floor" or label == "wsevents-c" else "-"
            for case in cases
        ]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
