"""The threaded (blocking) API: the same protocol core as the asyncio API, with no asyncio inside.

``with connect(url) as conn: conn.send("hi"); print(conn.recv(timeout=5))``;
``serve(handler, host, port)`` runs ``handler(conn)`` in a thread per connection.
"""

from ..protocol.hooks import HttpRequest
from .client import connect
from .connection import Connection, ReadyState
from .server import Server, serve

__all__ = ["Connection", "HttpRequest", "ReadyState", "Server", "connect", "serve"]
