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
import errno
import importlib
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO, cast

import wsevents
from wsevents.demo import DEFAULT_HOST, DEFAULT_PORT, make_chat_server, make_echo_server
from wsevents.errors import OK_CLOSE_CODES

__all__ = ["main", "main_exit", "build_parser"]

EXIT_OK, EXIT_CLOSED, EXIT_USAGE, EXIT_NETWORK, EXIT_HANDSHAKE, EXIT_TLS = 0, 1, 2, 3, 4, 5


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


# -- serve ---------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    """``wsevents serve`` and ``wsevents run``."""
    if args.workers > 1 and not args.broker:
        print(f"wsevents: --workers {args.workers} needs --broker URL (e.g. redis://127.0.0.1:6379/0): "
              "without a broker, broadcasts and rooms would reach one worker's connections only",
              file=sys.stderr)
        return EXIT_USAGE
    if args.broker:
        problem = _broker_problem(args.broker, args.cluster)
        if problem:
            print(f"wsevents: cannot use --broker: {problem}", file=sys.stderr)
            return EXIT_USAGE
    # The process id tells the workers apart in the log.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s [%(process)d] %(name)s %(message)s")
    options: dict[str, Any] = {}
    if args.broker:
        options.update(broker=args.broker, cluster=args.cluster)
    if args.command == "run":
        return _run_handler(args, options)
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            print("wsevents: --tls-cert and --tls-key go together", file=sys.stderr)
            return EXIT_USAGE
        options.update(secure=True, certfile=args.tls_cert, keyfile=args.tls_key)
    make = make_echo_server if args.echo else make_chat_server
    if args.metrics:
        make = _with_metrics(make)
    what = "echo server" if args.echo else "chat"
    if args.unix is not None and args.workers > 1:
        print("wsevents: --unix serves from one process: drop --workers", file=sys.stderr)
        return EXIT_USAGE
    if args.workers > 1:
        try:  # here, before the workers start, as one process would
            if args.tls_cert:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                    args.tls_cert, args.tls_key)
        except OSError as exc:  # ssl.SSLError included: the files are missing or not a PEM pair
            print(f"wsevents: cannot use --tls-cert/--tls-key: {exc}", file=sys.stderr)
            return EXIT_TLS
        return _supervise(args, lambda: make(**options), what, "secure" in options)
    try:
        server = make(**options)
    except OSError as exc:  # ssl.SSLError included: the files are missing or not a PEM pair
        print(f"wsevents: cannot use --tls-cert/--tls-key: {exc}", file=sys.stderr)
        return EXIT_TLS
    failed: list[BaseException] = []

    def ready() -> None:
        if args.unix is not None:
            ws = "wss+unix" if "secure" in options else "ws+unix"
            print(f"wsevents {what}: listening on the Unix socket {args.unix} "
                  f"(WebSocket endpoint {ws}://{args.unix}:/)", flush=True)
        else:
            _print_ready(args, server.port or 0, what, "secure" in options)

    server.on("error", failed.append)
    try:
        if args.unix is not None:
            server.listen(callback=ready, path=args.unix)
        else:
            server.listen(args.port, args.host, ready)
    except ValueError as exc:  # an argument the server refuses (argparse checked the port)
        print(f"wsevents: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        wsevents.run()
    except OSError as exc:  # the bind error, if raised rather than emitted as "error"
        if exc not in failed:
            failed.append(exc)
    if failed:
        if args.unix is not None:
            # _why()'s hints are about ports; the error itself names what is at the path.
            error = failed[0]
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            print(f"wsevents: cannot listen on the Unix socket {args.unix}: {reason}", file=sys.stderr)
        else:
            print(f"wsevents: cannot listen on {args.host} port {args.port}: {_why(failed[0])}",
                  file=sys.stderr)
        return EXIT_NETWORK
    return EXIT_OK


def _with_metrics(make: Callable[..., wsevents.Server]) -> Callable[..., wsevents.Server]:
    """``make`` whose server also answers ``GET /metrics`` with its metrics (``--metrics``)."""

    def make_with_metrics(**options: Any) -> wsevents.Server:
        server = make(**options)
        server.options.http_handler = wsevents.metrics_handler(server, server.options.http_handler)
        return server

    return make_with_metrics


def _broker_problem(url: str, cluster: str) -> str | None:
    """Why ``--broker``/``--cluster`` cannot be used (a bad URL, redis-py missing), or None.

    Checked here, once: in the workers, it would be one traceback per worker.
    """
    from wsevents.aio.broker_option import make_broker

    try:
        make_broker(url, cluster)  # makes the broker object only: nothing connects
    except (ImportError, ValueError) as exc:
        return str(exc)
    return None


def _print_ready(args: argparse.Namespace, port: int, what: str, secure: bool) -> None:
    host, everywhere = _browser_host(args.host)
    web, ws = ("https", "wss") if secure else ("http", "ws")
    workers = f" ({args.workers} workers)" if args.workers > 1 else ""
    if what == "handler":
        print(f"wsevents{workers}: serving {args.target} at {ws}://{host}:{port}/", flush=True)
    else:
        print(f"wsevents {what}{workers}: open {web}://{host}:{port}/ in a browser "
              f"(WebSocket endpoint {ws}://{host}:{port}/)", flush=True)
    if everywhere:
        # asyncio makes a "::" socket IPv6-only: say so, or IPv4 clients would be refused unexplained.
        which = "every interface"
        if ":" in args.host:
            which = "every IPv6 interface, not IPv4 (--host 0.0.0.0 for IPv4)"
        print(f"listening on {which} ({args.host}): from another machine, use this "
              f"machine's name or address instead of {host}", flush=True)


def _supervise(args: argparse.Namespace, make: Callable[[], wsevents.Server], what: str,
               secure: bool) -> int:
    """Serve ``make()``'s server from ``--workers`` processes (wsevents.workers)."""
    from wsevents.workers import serve_servers

    try:
        serve_servers(make, args.port, args.host, workers=args.workers,
                      ready=lambda port: _print_ready(args, port, what, secure))
    except OSError as exc:
        print(f"wsevents: cannot listen on {args.host} port {args.port}: {_why(exc)}", file=sys.stderr)
        return EXIT_NETWORK
    except RuntimeError as exc:  # a worker failed at start; its error is in the log
        print(f"wsevents: {exc}", file=sys.stderr)
        return EXIT_CLOSED
    return EXIT_OK


def _run_handler(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """``wsevents run MODULE:HANDLER``."""
    try:
        handler = _import_handler(args.target)
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"wsevents: cannot use {args.target}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    def make(**kwargs: Any) -> wsevents.Server:
        return wsevents.create_server(handler, **kwargs)

    if args.metrics:
        make = _with_metrics(make)
    return _supervise(args, lambda: make(**options), "handler", False)


def _import_handler(target: str) -> Callable[..., Any]:
    """The function ``MODULE:HANDLER`` names (the module imported, the current directory searched)."""
    module_name, sep, name = target.partition(":")
    if not sep or not module_name or not name:
        raise ValueError("expected MODULE:HANDLER, e.g. myapp:on_connection")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj: Any = importlib.import_module(module_name)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{name} is not callable")
    return cast(Callable[..., Any], obj)


def _browser_host(host: str) -> tuple[str, bool]:
    """The host to put in a URL for ``host`` as listened on, and whether that is every interface.

    A browser cannot open ``http://0.0.0.0:8000/``: for the address of every interface, the
    loopback address of the same family is shown (asyncio makes a ``::`` socket IPv6-only).
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name, such as localhost
        return host, False
    if address.version == 6:
        return ("[::1]" if address.is_unspecified else f"[{host}]"), address.is_unspecified
    return ("127.0.0.1" if address.is_unspecified else host), address.is_unspecified


def _why(exc: BaseException) -> str:
    """A bind error in a few words, with what to do about the common ones."""
    if isinstance(exc, socket.gaierror):
        return f"{exc.strerror} (--host must be a name or address of this machine)"
    if not isinstance(exc, OSError) or not exc.errno:
        return str(exc)
    text = os.strerror(exc.errno).lower()
    if exc.errno == errno.EADDRINUSE:
        return f"{text} (another program uses it: choose another --port, or 0 for any free one)"
    if exc.errno == errno.EACCES:
        return f"{text} (ports below 1024 need privileges: choose another --port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{text} (--host must be an address of this machine)"
    return text


# -- connect -------------------------------------------------------------------------------


def _describe(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    preview = message[:32].hex(" ")
    more = " …" if len(message) > 32 else ""
    return f"[binary, {len(message)} bytes] {preview}{more}"


def _lines(loop: asyncio.AbstractEventLoop, stdin: TextIO, queue: asyncio.Queue[str | None],
           prompt: str) -> None:
    """Read stdin in a thread (works for pipes and TTYs alike; readline gives history on a TTY)."""
    interactive = stdin.isatty()
    try:
        while True:
            if interactive:
                try:
                    line = input(prompt)
                except EOFError:
                    break
            else:
                line = stdin.readline()
                if not line:
                    break
                line = line.rstrip("\r\n")
            loop.call_soon_threadsafe(queue.put_nowait, line)
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, None)


class _Terminal:
    """What ``connect`` does to a terminal: line editing and history with readline, a ``> ``
    prompt that incoming messages (shown as ``< message``) do not garble, and the terminal's
    settings restored on exit however the session ends (readline changes them while it reads)."""

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self.stdout = stdout
        self.saved: list[Any] | None = None
        self.readline: Any = None
        self.prompt = ""
        if not stdin.isatty():
            return
        try:
            import termios

            self.saved = termios.tcgetattr(stdin.fileno())
            self.fd = stdin.fileno()
        except (ImportError, OSError, ValueError):  # pragma: no cover - not a POSIX terminal
            pass
        try:
            import readline  # line editing and history for input()

            self.readline = readline
        except ImportError:  # pragma: no cover - Python built without readline
            pass
        if stdout.isatty():
            self.prompt = "> "

    def show(self, text: str) -> None:
        """Print a received message above the line being typed."""
        if not self.prompt:
            self.stdout.write(text + "\n")
        else:
            typed = self.readline.get_line_buffer() if self.readline is not None else ""
            self.stdout.write(f"\r\x1b[K< {text}\n{self.prompt}{typed}")
        self.stdout.flush()

    def leave(self) -> None:
        """Clear the prompt line and give the terminal back as it was."""
        if self.prompt:
            self.stdout.write("\r\x1b[K")
            self.stdout.flush()
        if self.saved is not None:
            import termios

            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except OSError:  # pragma: no cover - the terminal went away
                pass


async def connect(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """``wsevents connect``: returns the exit code."""
    headers: dict[str, str] = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            print(f"wsevents: bad header {item!r} (expected 'Name: value')", file=sys.stderr)
            return EXIT_USAGE
        headers[name.strip()] = value.strip()
    options: dict[str, Any] = {"extra_headers": headers, "protocols": args.protocol,
                               "ping_interval": args.ping_interval}
    if args.no_check_certificate:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        options["ssl"] = context
    try:
        conn = await wsevents.connect(args.url, **options)
    except ssl.SSLError as exc:  # first: a certificate error is also a ValueError
        print(f"wsevents: TLS failure: {exc}", file=sys.stderr)
        return EXIT_TLS
    except ValueError as exc:
        print(f"wsevents: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except wsevents.HandshakeError as exc:
        what = f"handshake rejected (HTTP {exc.status})" if exc.status else "handshake failed"
        print(f"wsevents: {what}: {exc}", file=sys.stderr)
        return EXIT_HANDSHAKE
    except OSError as exc:
        print(f"wsevents: cannot connect to {args.url}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_NETWORK
    print(f"connected to {args.url}" + (f" (protocol {conn.protocol})" if conn.protocol else ""),
          file=sys.stderr, flush=True)
    terminal = _Terminal(stdin, stdout)
    try:
        await _session(conn, args, stdin, terminal)
    finally:
        terminal.leave()
    code, reason = conn.close_code, conn.close_reason
    print(f"closed: {code}" + (f" {reason}" if reason else ""), file=sys.stderr, flush=True)
    return EXIT_OK if code in OK_CLOSE_CODES else EXIT_CLOSED


async def _session(conn: wsevents.Connection, args: argparse.Namespace, stdin: TextIO,
                   terminal: _Terminal) -> None:
    """Send stdin's lines and show what arrives until either side ends (or Ctrl-C)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_lines, args=(loop, stdin, queue, terminal.prompt), daemon=True).start()
    interrupted: asyncio.Future[None] = loop.create_future()

    def on_sigint() -> None:
        if not interrupted.done():
            interrupted.set_result(None)

    try:  # Ctrl-C closes the connection cleanly (1000) instead of a traceback
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - no signals here
        pass

    async def printer() -> None:
        async for message in conn:
            terminal.show(_describe(message))

    printing = asyncio.ensure_future(printer())
    try:
        while True:
            getting = asyncio.ensure_future(queue.get())
            waiting: set[asyncio.Future[Any]] = {getting, printing, interrupted}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if printing.done() or interrupted.done():
                getting.cancel()
                break
            line = getting.result()
            if line is None:  # stdin ended: give replies a moment, then close
                waiting = {printing, interrupted}
                await asyncio.wait(waiting, timeout=args.wait)
                break
            if conn.ready_state == wsevents.Connection.OPEN:
                try:
                    await conn.send_text(line)
                except (wsevents.WebSocketError, OSError):
                    break
        if conn.ready_state == wsevents.Connection.OPEN:
            await asyncio.wait_for(conn.close(wsevents.CloseCode.NORMAL), 10)
        try:
            await asyncio.wait_for(printing, 10)
        except wsevents.ConnectionClosed:
            pass
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            pass
