"""What the broker and the workers ask of a server: the whole interface, named.

``broker.py`` (and ``redis_broker.py`` through it) and ``workers.py`` reach a server's
internals only through these calls. Internal API: not exported by ``wsevents``, not for
applications.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connection import Connection
    from .rooms import Message
    from .server import Server

__all__ = ["deliver", "listen_socket", "loop_of"]


def loop_of(server: Server) -> asyncio.AbstractEventLoop:
    """The loop ``server`` runs on."""
    return server._loop


def deliver(server: Server, message: Message, skip: Collection[Connection] = ()) -> int:
    """Send ``message`` to the members of its room among ``server``'s connections (``skip``
    left out); how many got it."""
    return server._deliver(message, skip)


def listen_socket(server: Server, sock: socket.socket, callback: Callable[[], Any] | None = None) -> Server:
    """Accept on ``sock``, already bound and listening (a worker's socket); otherwise as
    ``server.listen()``."""
    return server._listen_socket(sock, callback)
