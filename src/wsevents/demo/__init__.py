"""The chat demo that ``wsevents serve`` (and ``make demo``) runs, and an echo server.

The chat: the first text a client sends is its nickname, and joins the room
``"chat"``; every later one is published to the room as ``[nick] text``; joins
and leaves are announced as ``nick entered`` / ``nick left``; a binary message
is refused (closed with 1003). With a broker (``wsevents serve --workers 2
--broker redis://...``), the room spans every worker.
The web page is served over plain HTTP on the same port as the WebSocket
endpoint (the ``http_handler`` option). Only the public API is used, the way an
application would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

import wsevents

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "make_chat_server", "make_echo_server", "page"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
ROOM = "chat"

logger = logging.getLogger("wsevents.demo")


def page(echo: bool = False) -> bytes:
    """The chat page (``static/index.html``); with ``echo``, its variant for the echo server
    (no nickname: every line is sent as is and its echo shown)."""
    html = resources.files(__package__).joinpath("static/index.html").read_bytes()
    if echo:
        html = html.replace(b"wsevents chat", b"wsevents echo").replace(b"<body>", b'<body data-mode="echo">')
    return html


def _http_handler(echo: bool) -> Callable[[wsevents.HttpRequest], tuple[int, dict[str, str], bytes]]:
    def handle(request: wsevents.HttpRequest) -> tuple[int, dict[str, str], bytes]:
        if request.method not in ("GET", "HEAD"):
            return 405, {"Allow": "GET, HEAD"}, b"method not allowed\n"
        if request.path.split("?", 1)[0] in ("/", "/index.html"):
            headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
            # For HEAD too: the library sends the head with this body's Content-Length, not the body.
            return 200, headers, page(echo)
        return 404, {}, b"not found\n"

    return handle


def _log_errors_and_close(conn: wsevents.Connection) -> None:
    """Log the peer's errors and, at INFO as the library logs connections, the close."""
    peer = conn.remote_address
    conn.on("error", lambda exc: logger.info("%r: %s", conn, exc))
    conn.on("close", lambda code, reason: logger.info(
        "connection from %s closed: %d%s", peer, code, f" {reason}" if reason else ""))


def make_chat_server(**options: Any) -> wsevents.Server:
    """A server (not yet listening) running the chat; ``options`` go to ``create_server``."""
    nicknames: dict[wsevents.Connection, str] = {}

    def on_connection(conn: wsevents.Connection) -> None:
        @conn.on("text")
        def on_text(text: str) -> None:
            if conn not in nicknames:
                nicknames[conn] = text.strip()[:40] or "anonymous"
                conn.join(ROOM)
                publish(f"{nicknames[conn]} entered")
            else:
                publish(f"[{nicknames[conn]}] {text}")

        @conn.on("close")
        def on_close(code: int, reason: str) -> None:
            nick = nicknames.pop(conn, None)
            if nick is not None:
                publish(f"{nick} left")

        refuse = wsevents.CloseCode.UNSUPPORTED_DATA
        conn.on("binary", lambda stream: conn.close(refuse, "text messages only"))
        _log_errors_and_close(conn)

    def publish(text: str) -> None:
        # The room, not broadcast(): a connection that has not given its nickname yet is not in it,
        # here or in another worker.
        sent = server.publish(ROOM, text)
        # Like the library's message logs: the size, not the content (recipients: of this process).
        logger.debug("broadcast a text message of %d characters (recipients: %d)", len(text), sent)

    server = wsevents.create_server(on_connection, http_handler=_http_handler(False), **options)
    return server


def make_echo_server(**options: Any) -> wsevents.Server:
    """A server (not yet listening) that echoes every message."""

    def on_connection(conn: wsevents.Connection) -> None:
        conn.on("text", conn.send_text)

        async def on_binary(stream: wsevents.InStream) -> None:
            conn.send_binary(await stream.read())

        conn.on("binary", on_binary)
        _log_errors_and_close(conn)

    return wsevents.create_server(on_connection, http_handler=_http_handler(True), **options)
