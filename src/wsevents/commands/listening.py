"""What ``wsevents serve`` and ``wsevents run`` print about where they listen, or why they cannot."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket

__all__ = ["print_ready", "print_unix_ready", "listen_failure", "why"]


def print_ready(args: argparse.Namespace, port: int, what: str, secure: bool) -> None:
    """Say where the server listens, as URLs a browser on this machine can open."""
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


def print_unix_ready(path: str, what: str, secure: bool) -> None:
    """Say which Unix socket the server listens on, and its WebSocket URL."""
    ws = "wss+unix" if secure else "ws+unix"
    print(f"wsevents {what}: listening on the Unix socket {path} "
          f"(WebSocket endpoint {ws}://{path}:/)", flush=True)


def listen_failure(args: argparse.Namespace, error: BaseException) -> str:
    """The one line that says why the server could not listen where ``args`` asked."""
    if args.unix is not None:
        # why()'s hints are about ports; the error itself names what is at the path.
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return f"wsevents: cannot listen on the Unix socket {args.unix}: {reason}"
    return f"wsevents: cannot listen on {args.host} port {args.port}: {why(error)}"


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


def why(exc: BaseException) -> str:
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
