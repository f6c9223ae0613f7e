"""The listening sockets of the workers (:mod:`wsevents.workers`), bound by the supervisor.

On Linux (and wherever ``SO_REUSEPORT`` exists), one socket per worker, all on
the same port; elsewhere, one socket that every worker shares.
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["bind_worker_sockets"]

_BACKLOG = 511


def _address(port: int, host: str | None) -> tuple[int, Any]:
    """``(family, sockaddr)`` to bind: every address (IPv6 and IPv4 when possible) for None."""
    if host is None:
        if socket.has_ipv6:
            try:
                socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
            except OSError:
                pass
            else:
                return socket.AF_INET6, ("::", port)
        return socket.AF_INET, ("0.0.0.0", port)
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    return info[0], info[4]


def _listening_socket(family: int, sockaddr: Any, reuse_port: bool, dual_stack: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind(sockaddr)
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def bind_worker_sockets(port: int, host: str | None, count: int) -> list[socket.socket]:
    """The socket of each worker: ``count`` ``SO_REUSEPORT`` sockets, or one shared socket.

    ``host`` None binds every address (IPv6 and IPv4 when possible); port 0 a free port, the
    same for every socket.
    """
    family, sockaddr = _address(port, host)
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    first = _listening_socket(family, sockaddr, reuse_port, host is None)
    if not reuse_port:
        return [first] * count
    sockets = [first]
    try:
        # Port 0: the others take the port the first one got.
        bound = (sockaddr[0], first.getsockname()[1], *sockaddr[2:])
        for _ in range(count - 1):
            sockets.append(_listening_socket(family, bound, True, host is None))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
