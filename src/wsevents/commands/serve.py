"""``wsevents serve`` (the chat demo or an echo server) and ``wsevents run MODULE:HANDLER``,
from one process or from ``--workers`` processes (see ``wsevents.cli`` for the exit codes)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import ssl
import sys
from collections.abc import Callable
from typing import Any, cast

import wsevents
from wsevents.demo import make_chat_server, make_echo_server

from . import EXIT_CLOSED, EXIT_NETWORK, EXIT_OK, EXIT_TLS, EXIT_USAGE
from .listening import listen_failure, print_ready, print_unix_ready, why

__all__ = ["serve"]

_Make = Callable[..., wsevents.Server]


def serve(args: argparse.Namespace) -> int:
    """``wsevents serve`` and ``wsevents run``: returns the exit code."""
    problem = _scale_problem(args)
    if problem:
        print(f"wsevents: {problem}", file=sys.stderr)
        return EXIT_USAGE
    # The process id tells the workers apart in the log.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s [%(process)d] %(name)s %(message)s")
    options: dict[str, Any] = {}
    if args.broker:
        options.update(broker=args.broker, cluster=args.cluster)
    if args.command == "run":
        return _run_handler(args, options)
    return _serve_demo(args, options)


def _scale_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--workers``/``--broker``/``--cluster``, or None."""
    if args.workers > 1 and not args.broker:
        return (f"--workers {args.workers} needs --broker URL (e.g. redis://127.0.0.1:6379/0): "
                "without a broker, broadcasts and rooms would reach one worker's connections only")
    if args.broker:
        problem = _broker_problem(args.broker, args.cluster)
        if problem:
            return f"cannot use --broker: {problem}"
    return None


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


def _serve_demo(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """``wsevents serve``: the chat, or the echo server with ``--echo``."""
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            print("wsevents: --tls-cert and --tls-key go together", file=sys.stderr)
            return EXIT_USAGE
        options.update(secure=True, certfile=args.tls_cert, keyfile=args.tls_key)
    make: _Make = make_echo_server if args.echo else make_chat_server
    if args.metrics:
        make = _with_metrics(make)
    what = "echo server" if args.echo else "chat"
    secure = "secure" in options
    if args.unix is not None and args.workers > 1:
        print("wsevents: --unix serves from one process: drop --workers", file=sys.stderr)
        return EXIT_USAGE
    if args.workers > 1:
        return _serve_workers(args, lambda: make(**options), what, secure)
    try:
        server = make(**options)
    except OSError as exc:  # ssl.SSLError included: the files are missing or not a PEM pair
        print(f"wsevents: cannot use --tls-cert/--tls-key: {exc}", file=sys.stderr)
        return EXIT_TLS
    return _serve_one(args, server, what, secure)


def _serve_one(args: argparse.Namespace, server: wsevents.Server, what: str, secure: bool) -> int:
    """Listen with ``server`` in this process and run until Ctrl-C / SIGTERM."""
    failed: list[BaseException] = []

    def ready() -> None:
        if args.unix is not None:
            print_unix_ready(args.unix, what, secure)
        else:
            print_ready(args, server.port or 0, what, secure)

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
        print(listen_failure(args, failed[0]), file=sys.stderr)
        return EXIT_NETWORK
    return EXIT_OK


def _serve_workers(args: argparse.Namespace, make: Callable[[], wsevents.Server], what: str,
                   secure: bool) -> int:
    """Check the certificate here, before the workers start (as one process would), then supervise."""
    try:
        if args.tls_cert:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.tls_cert, args.tls_key)
    except OSError as exc:  # ssl.SSLError included: the files are missing or not a PEM pair
        print(f"wsevents: cannot use --tls-cert/--tls-key: {exc}", file=sys.stderr)
        return EXIT_TLS
    return _supervise(args, make, what, secure)


def _with_metrics(make: _Make) -> _Make:
    """``make`` whose server also answers ``GET /metrics`` with its metrics (``--metrics``)."""

    def make_with_metrics(**options: Any) -> wsevents.Server:
        server = make(**options)
        server.options.http_handler = wsevents.metrics_handler(server, server.options.http_handler)
        return server

    return make_with_metrics


def _supervise(args: argparse.Namespace, make: Callable[[], wsevents.Server], what: str,
               secure: bool) -> int:
    """Serve ``make()``'s server from ``--workers`` processes (wsevents.workers)."""
    from wsevents.workers import serve_servers

    try:
        serve_servers(make, args.port, args.host, workers=args.workers,
                      ready=lambda port: print_ready(args, port, what, secure))
    except OSError as exc:
        print(f"wsevents: cannot listen on {args.host} port {args.port}: {why(exc)}", file=sys.stderr)
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
