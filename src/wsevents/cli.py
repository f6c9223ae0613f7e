"""The ``wsevents`` command line: ``serve`` (the chat demo or an echo server), ``run``
(an application's connection handler, in one or several worker processes) and ``connect``
(an interactive client, like wscat).

``connect`` sends each line of standard input as a text message and prints each
message received (binary ones as their length and first bytes in hex). In a pipe
it prints bare lines; on a terminal it has a ``> `` prompt, readline editing and
history, shows messages as ``< message``, and Ctrl-C or Ctrl-D closes with 1000.

Exit codes of ``connect``: 0 closed normally (1000/1001), 1 closed otherwise,
2 bad usage or URL, 3 connection refused or other network error, 4 handshake
rejected, 5 TLS failure. ``serve`` and ``run`` exit 0 after Ctrl-C / SIGTERM, 2 on bad
usage (``run``: also a handler that cannot be imported), 3 when it cannot listen, 5 when
the certificate or key cannot be used, 1 when a worker fails before it listens.
Every error is one line on standard error, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

import wsevents

# The exit codes and the commands live in wsevents.commands; their names stay importable from here.
from wsevents.commands import EXIT_CLOSED as EXIT_CLOSED
from wsevents.commands import EXIT_HANDSHAKE as EXIT_HANDSHAKE
from wsevents.commands import EXIT_NETWORK as EXIT_NETWORK
from wsevents.commands import EXIT_OK as EXIT_OK
from wsevents.commands import EXIT_TLS as EXIT_TLS
from wsevents.commands import EXIT_USAGE as EXIT_USAGE
from wsevents.commands.connect import connect
from wsevents.commands.serve import serve
from wsevents.demo import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["main", "main_exit", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (exit 2), not the usage block."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn; exit() does not return
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


_EVERYWHERE_HELP = "0.0.0.0 for every IPv4 interface, :: for every IPv6 one"

def _port(text: str) -> int:
    """A TCP port for ``--port``: 0..65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def _seconds(text: str) -> float:
    """A duration for ``--wait`` / ``--ping-interval``: a finite number of seconds, not negative."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds (0 or more)")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``wsevents``."""
    parser = _Parser(prog="wsevents", description="WebSocket server and client.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {wsevents.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the chat demo (page and WebSocket on one port)")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default {DEFAULT_HOST}; {_EVERYWHERE_HELP})")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT,
                       help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    serve.add_argument("--unix", metavar="PATH",
                       help="listen on this Unix socket instead of --host/--port (one process; "
                       "clients connect to ws+unix://PATH:/)")
    serve.add_argument("--tls-cert", metavar="FILE", help="certificate (PEM) to serve https/wss")
    serve.add_argument("--tls-key", metavar="FILE", help="private key (PEM) of --tls-cert")
    serve.add_argument("--echo", action="store_true", help="run an echo server instead of the chat")
    serve.add_argument("--metrics", action="store_true", help=_METRICS_HELP)
    _scale_options(serve)
    serve.add_argument("-v", "--verbose", action="store_true",
                       help="log every message, broadcast and close too (DEBUG)")

    run = sub.add_parser("run", help="serve MODULE:HANDLER, called with each new connection")
    run.add_argument("target", metavar="MODULE:HANDLER",
                     help="a function of an importable module (the current directory included), "
                          "called with each new Connection like a \"connection\" listener")
    run.add_argument("--host", default=DEFAULT_HOST,
                     help=f"address to listen on (default {DEFAULT_HOST}; {_EVERYWHERE_HELP})")
    run.add_argument("--port", type=_port, default=DEFAULT_PORT,
                     help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    run.add_argument("--metrics", action="store_true", help=_METRICS_HELP)
    _scale_options(run)
    run.add_argument("-v", "--verbose", action="store_true", help="log every message too (DEBUG)")

    connect = sub.add_parser("connect", help="connect to URL; stdin lines are sent, messages printed")
    connect.add_argument("url", help="ws:// or wss:// URL")
    connect.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'",
                         help="extra request header (repeatable)")
    connect.add_argument("--protocol", action="append", default=[], metavar="P",
                         help="subprotocol to ask for (repeatable, most preferred first)")
    connect.add_argument("--no-check-certificate", action="store_true", help="accept any TLS certificate")
    connect.add_argument("--ping-interval", type=_seconds, default=None, metavar="S",
                         help="send keepalive pings every S seconds")
    connect.add_argument("--wait", type=_seconds, default=1.0, metavar="S",
                         help="after stdin ends, wait S seconds for replies before closing (default 1)")
    return parser


_METRICS_HELP = ("also serve the server's metrics at /metrics (Prometheus text format; with --workers, "
                 "the sum of every worker's)")


def _scale_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=_count, default=1, metavar="N",
                        help="serve from N processes sharing the port (default 1; more needs --broker)")
    parser.add_argument("--broker", metavar="URL",
                        help="Redis URL (redis://host:6379/0) that connects the workers' and other "
                             "servers' broadcasts and rooms")
    parser.add_argument("--cluster", default="wsevents",
                        help="name shared by the servers of one cluster on the broker (default wsevents)")


def _count(text: str) -> int:
    """A number of workers: 1 or more."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count} is not a number of workers (1 or more)")
    return count


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("serve", "run"):
        return serve(args)
    if args.command != "connect":
        return EXIT_USAGE
    try:
        return asyncio.run(connect(args, sys.stdin, sys.stdout))
    except KeyboardInterrupt:  # Ctrl-C before the connection was open (once open, it closes with 1000)
        return 128 + signal.SIGINT


def main_exit() -> None:
    """The ``wsevents`` console script."""
    sys.exit(main())
