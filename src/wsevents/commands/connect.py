"""``wsevents connect``: an interactive client, like wscat (see ``wsevents.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys
import threading
from typing import Any, TextIO

import wsevents
from wsevents.errors import OK_CLOSE_CODES

from . import EXIT_CLOSED, EXIT_HANDSHAKE, EXIT_NETWORK, EXIT_OK, EXIT_TLS, EXIT_USAGE
from .terminal import Terminal, read_lines

__all__ = ["connect"]


async def connect(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """``wsevents connect``: returns the exit code."""
    headers = _headers(args.header)
    if headers is None:
        return EXIT_USAGE
    opened = await _open(args, headers)
    if isinstance(opened, int):
        return opened
    conn = opened
    print(f"connected to {args.url}" + (f" (protocol {conn.protocol})" if conn.protocol else ""),
          file=sys.stderr, flush=True)
    terminal = Terminal(stdin, stdout)
    try:
        await _session(conn, args, stdin, terminal)
    finally:
        terminal.leave()
    code, reason = conn.close_code, conn.close_reason
    print(f"closed: {code}" + (f" {reason}" if reason else ""), file=sys.stderr, flush=True)
    return EXIT_OK if code in OK_CLOSE_CODES else EXIT_CLOSED


def _headers(items: list[str]) -> dict[str, str] | None:
    """The ``-H 'Name: value'`` headers, or None (after saying which is malformed)."""
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            print(f"wsevents: bad header {item!r} (expected 'Name: value')", file=sys.stderr)
            return None
        headers[name.strip()] = value.strip()
    return headers


async def _open(args: argparse.Namespace, headers: dict[str, str]) -> wsevents.Connection | int:
    """The open connection, or the exit code of the failure (after saying what failed)."""
    options: dict[str, Any] = {"extra_headers": headers, "protocols": args.protocol,
                               "ping_interval": args.ping_interval}
    if args.no_check_certificate:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        options["ssl"] = context
    try:
        conn: wsevents.Connection = await wsevents.connect(args.url, **options)
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
    return conn


def _describe(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    preview = message[:32].hex(" ")
    more = " …" if len(message) > 32 else ""
    return f"[binary, {len(message)} bytes] {preview}{more}"


async def _session(conn: wsevents.Connection, args: argparse.Namespace, stdin: TextIO,
                   terminal: Terminal) -> None:
    """Send stdin's lines and show what arrives until either side ends (or Ctrl-C)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=read_lines, args=(loop, stdin, queue, terminal.prompt), daemon=True).start()
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
