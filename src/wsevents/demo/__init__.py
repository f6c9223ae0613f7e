"""A small chat server that ``make demo`` starts: the first text a client sends is its nickname,
every later one is broadcast to everyone as ``[nick] text``.

It uses only the public API, the way an application would.
"""

from __future__ import annotations

import argparse
import logging

import wsevents

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "make_chat_server", "main"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def make_chat_server() -> wsevents.Server:
    """A server (not yet listening) running the chat."""
    nicknames: dict[wsevents.Connection, str] = {}

    def broadcast(text: str) -> None:
        for other in server.connections:
            if other in nicknames and other.ready_state == wsevents.Connection.OPEN:
                other.send_text(text)

    def on_connection(conn: wsevents.Connection) -> None:
        @conn.on("text")
        def on_text(text: str) -> None:
            if conn not in nicknames:
                nicknames[conn] = text.strip()[:40] or "anonymous"
                broadcast(f"{nicknames[conn]} entered")
            else:
                broadcast(f"[{nicknames[conn]}] {text}")

        @conn.on("close")
        def on_close(code: int, reason: str) -> None:
            nick = nicknames.pop(conn, None)
            if nick is not None:
                broadcast(f"{nick} left")

        conn.on("error", lambda exc: logging.getLogger("wsevents.demo").info("%r: %s", conn, exc))

    server = wsevents.create_server(on_connection)
    return server


def main(argv: list[str] | None = None) -> None:
    """Run the chat server until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m wsevents.demo", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = make_chat_server()

    def ready() -> None:
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"chat server on ws://{host}:{server.port}/ (Ctrl-C to stop)", flush=True)

    server.listen(args.port, args.host, ready)
    wsevents.run()
